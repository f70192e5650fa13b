//! Service settings: the compiled-in defaults of `config/default.toml`, overlaid by a `--config` file and
//! `QIP__SECTION__KEY` environment variables, validated once at startup.

use std::fmt;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

/// The defaults file, compiled in so the binary runs with no files beside it.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// OWASP minimum argon2id cost; production refuses anything cheaper.
pub const ARGON2_MIN_MEMORY_KIB: u32 = 19_456;
pub const ARGON2_MIN_ITERATIONS: u32 = 2;
/// Shortest acceptable HS256 secret, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub mode: Mode,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub log: LogSettings,
    pub auth: AuthSettings,
    pub ledger: LedgerSettings,
    pub consultation: ConsultationSettings,
    pub dual_control: DualControlSettings,
}

/// Dual control over power (issue 11): how long a privileged grant waits for a second administrator, and how
/// long a password setup token lives.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DualControlSettings {
    pub grant_confirmation_ttl_hours: u32,
    pub setup_token_ttl_hours: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsultationSettings {
    pub sweep_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSettings {
    pub idempotency_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    pub workers: usize,
    pub json_limit_bytes: usize,
    pub upload_limit_bytes: usize,
    pub max_page_size: u32,
    pub default_page_size: u32,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    pub url: Secret,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
    pub sqlite_busy_timeout_ms: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub filter: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: Secret,
    pub jwt_key_id: String,
    pub previous_keys: Vec<VerificationKey>,
    pub issuer: String,
    pub audience: String,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_days: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub auth_rate_limit_per_minute: u32,
}

/// A retired signing key, still accepted when verifying tokens it signed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerificationKey {
    pub kid: String,
    pub secret: Secret,
}

/// A string that never prints: database URLs carry passwords, secrets are secrets.
#[derive(Clone, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why the settings could not be loaded; printed as the one startup error line.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Loads defaults < `file` < `QIP__*` variables of the process environment, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment, so tests do not touch the process's.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let qip_vars: config::Map<String, String> = env
            .into_iter()
            .filter(|(key, _)| key.starts_with("QIP__"))
            .collect();
        let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError::Invalid(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml).required(true));
        }
        builder = builder.add_source(
            Environment::with_prefix("QIP")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(qip_vars)),
        );
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rules the types cannot say: limits that must be positive, production's security floor.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |msg: &str| Err(SettingsError::Invalid(msg.to_owned()));
        if self.server.max_page_size == 0 || self.server.default_page_size == 0 {
            return invalid("server.max_page_size and server.default_page_size must be at least 1");
        }
        if self.server.default_page_size > self.server.max_page_size {
            return invalid("server.default_page_size must not exceed server.max_page_size");
        }
        if self.server.json_limit_bytes == 0 {
            return invalid("server.json_limit_bytes must be at least 1");
        }
        if self.auth.auth_rate_limit_per_minute == 0 {
            return invalid("auth.auth_rate_limit_per_minute must be at least 1");
        }
        if self.auth.access_token_ttl_secs == 0 || self.auth.refresh_token_ttl_days == 0 {
            return invalid("auth.access_token_ttl_secs and auth.refresh_token_ttl_days must be at least 1");
        }
        if self.dual_control.grant_confirmation_ttl_hours == 0 || self.dual_control.setup_token_ttl_hours == 0
        {
            return invalid(
                "dual_control.grant_confirmation_ttl_hours and dual_control.setup_token_ttl_hours must be at least 1",
            );
        }
        if self.ledger.idempotency_retention_days < 7 {
            return invalid("ledger.idempotency_retention_days must be at least 7");
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size must be at least 1");
        }
        if self.database.url.expose().trim().is_empty() {
            return invalid("database.url must be set");
        }
        if self.mode == Mode::Production {
            let secret = self.auth.jwt_secret.expose();
            if secret.is_empty() {
                return invalid(
                    "production mode needs auth.jwt_secret (set QIP__AUTH__JWT_SECRET to at least 32 random bytes)",
                );
            }
            if secret.len() < MIN_JWT_SECRET_BYTES {
                return Err(SettingsError::Invalid(format!(
                    "auth.jwt_secret is {} bytes; production mode needs at least {MIN_JWT_SECRET_BYTES}",
                    secret.len()
                )));
            }
            if let Some(weak) = self
                .auth
                .previous_keys
                .iter()
                .find(|k| k.secret.expose().len() < MIN_JWT_SECRET_BYTES)
            {
                return Err(SettingsError::Invalid(format!(
                    "auth.previous_keys `{}` is shorter than {MIN_JWT_SECRET_BYTES} bytes",
                    weak.kid
                )));
            }
            if self.auth.argon2_memory_kib < ARGON2_MIN_MEMORY_KIB
                || self.auth.argon2_iterations < ARGON2_MIN_ITERATIONS
                || self.auth.argon2_parallelism < 1
            {
                return invalid("production mode needs argon2 cost of at least m=19456 KiB, t=2, p=1");
            }
        }
        Ok(())
    }
}
