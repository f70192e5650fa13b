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
/// Least strength of a production JWT secret by the empirical entropy of its characters, in bits (a random
/// 32-character hex string has about 115; see [`jwt_secret_weakness`]).
pub const MIN_JWT_SECRET_BITS: f64 = 96.0;
/// Least zxcvbn estimate, in bits. zxcvbn counts guesses in 64 bits, so any random secret of 32 characters
/// or more reaches about 64; less means it found sequences, keyboard rows, repeats or dictionary words.
pub const MIN_JWT_SECRET_PATTERN_BITS: f64 = 60.0;
/// Words that mark a secret as a placeholder someone forgot to replace.
const PLACEHOLDER_WORDS: [&str; 12] = [
    "changeme",
    "change-me",
    "change_me",
    "changethis",
    "secret",
    "password",
    "example",
    "placeholder",
    "default",
    "dummy",
    "sample",
    "test",
];

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
    pub imports: ImportSettings,
    pub dual_control: DualControlSettings,
    pub exchange: ExchangeSettings,
    pub notifications: NotificationSettings,
    pub console: ConsoleSettings,
    pub audit: AuditSettings,
}

/// The web console's server-side sessions (issue 18, docs/CONSOLE.md): how long one lives unused and at most.
/// A console session also ends with its API sign-in (`auth.refresh_family_max_days`, sign-out, revocation).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    pub session_idle_minutes: u32,
    pub session_max_hours: u32,
}

/// The audit trail's sealer (issue 14): events are written unsealed and chained by the sealer job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Milliseconds between sealer passes: the usual delay before a written event is in the hash chain.
    pub seal_interval_ms: u64,
}

/// Notifications (issue 17, docs/NOTIFICATIONS.md): where links point, how mail leaves, how webhooks retry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Base URL of the service as readers reach it; messages link to `public_base_url` + the resource path.
    pub public_base_url: String,
    /// Where messages are written as `.eml` files when no SMTP host is configured.
    pub outbox_dir: String,
    /// Whether `serve` runs a delivery worker (an API-only instance may leave delivery to others).
    pub worker_enabled: bool,
    /// Milliseconds between delivery-worker polls.
    pub worker_interval_ms: u64,
    /// Deliveries one worker claims per poll.
    pub batch_size: u32,
    /// Seconds a claimed delivery is leased to the worker that claimed it (then another may take it).
    pub lease_secs: u64,
    /// First retry delay in seconds; doubled at every failure, capped at `retry_max_delay_secs`.
    pub retry_base_secs: u64,
    pub retry_max_delay_secs: u64,
    /// Seconds after the first attempt beyond which a failing delivery is dead-lettered (at least 24 h in production).
    pub retry_window_secs: u64,
    /// Seconds a webhook call may take (connect and whole request).
    pub webhook_timeout_secs: u64,
    /// CIDR ranges a webhook may resolve to although private, loopback or link-local (operator allowlist).
    pub webhook_allow_cidrs: Vec<String>,
    /// Hour (UTC) at which daily digests are sent.
    pub digest_hour_utc: u32,
    pub smtp: SmtpSettings,
}

impl NotificationSettings {
    fn validate(&self, mode: Mode) -> Result<(), String> {
        for cidr in &self.webhook_allow_cidrs {
            cidr.trim().parse::<ipnet::IpNet>().map_err(|_| {
                format!("notifications.webhook_allow_cidrs: `{cidr}` is not a CIDR range like 10.0.0.0/8")
            })?;
        }
        if !matches!(self.smtp.tls.as_str(), "none" | "starttls" | "tls") {
            return Err("notifications.smtp.tls must be `none`, `starttls` or `tls`".into());
        }
        if self.batch_size == 0
            || self.lease_secs == 0
            || self.webhook_timeout_secs == 0
            || self.digest_hour_utc > 23
        {
            return Err("notifications: batch_size, lease_secs and webhook_timeout_secs must be at least 1, digest_hour_utc 0-23".into());
        }
        if mode == Mode::Production && (self.retry_window_secs < 24 * 3600 || self.retry_base_secs == 0) {
            return Err(
                "notifications: in production retry_window_secs must be at least 86400 (24 h) and retry_base_secs at least 1"
                    .into(),
            );
        }
        Ok(())
    }

    /// The allowlisted ranges (validated at startup).
    pub fn allowed_cidrs(&self) -> Vec<ipnet::IpNet> {
        self.webhook_allow_cidrs
            .iter()
            .filter_map(|c| c.trim().parse().ok())
            .collect()
    }
}

/// `[notifications.smtp]`: empty `host` = write `.eml` files to `outbox_dir` instead.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub from: String,
    /// `none` (plain, e.g. a local relay), `starttls` or `tls` (implicit TLS, port 465).
    pub tls: String,
    pub username: String,
    pub password: Secret,
    pub timeout_secs: u64,
}

/// Limits on bulk imports (3W activities, gazetteer).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportSettings {
    /// Most data rows one import file may carry; a larger file is refused whole (413).
    pub max_rows: usize,
}

/// Data exchange (issue 16): how the pool publishes itself to IATI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeSettings {
    /// The reporting organisation's IATI organisation identifier (e.g. `XM-DAC-41114`).
    pub iati_reporting_org_ref: String,
    /// Its name, as published in `reporting-org`.
    pub iati_reporting_org_name: String,
    /// Its IATI OrganisationType code (`40` multilateral).
    pub iati_reporting_org_type: String,
    /// Prefix of every activity identifier: the fund's is the prefix + the pool code, a project's the prefix +
    /// its QIP reference. IATI requires it to begin with `iati_reporting_org_ref`.
    pub iati_activity_prefix: String,
    /// ISO 3166-1 alpha-2 code of the recipient country; empty: the activities name the region instead
    /// (`iati_recipient_region`, OECD DAC vocabulary 1), e.g. for the fictional demo country.
    pub iati_recipient_country: String,
    /// OECD DAC region code used when no recipient country is configured (`998` developing countries,
    /// unspecified).
    pub iati_recipient_region: String,
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
    /// Most contributions written in one statement and commit when they arrive together (PostgreSQL).
    pub group_commit_max: usize,
    /// Batches written at once (PostgreSQL): one can run while another's commit is flushed.
    pub group_commit_writers: usize,
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
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers name the client (empty: none are).
    pub trusted_proxies: TrustedProxies,
    /// The address clients reach the service at (`https://qip.mission.example`): problem `type` URIs and the
    /// OpenAPI `servers` entry are made absolute with it.
    pub public_url: String,
}

/// Addresses and networks of trusted reverse proxies (`192.0.2.1`, `10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Parses addresses and CIDR networks; blank entries are skipped (an empty environment variable).
    pub fn parse(entries: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut nets = Vec::new();
        for entry in entries {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let net = match entry.parse::<std::net::IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => entry.parse::<ipnet::IpNet>().map_err(|_| {
                    format!("server.trusted_proxies: `{entry}` is not an IP address or CIDR network")
                })?,
            };
            nets.push(net);
        }
        Ok(Self(nets))
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as its IPv4 address) is a trusted proxy.
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.0
            .iter()
            .any(|net| net.contains(&ip) || net.contains(&canonical))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;
    fn try_from(entries: Vec<String>) -> Result<Self, String> {
        Self::parse(entries)
    }
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
    pub refresh_family_max_days: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub auth_rate_limit_per_minute: u32,
    /// Password hashes running at once in this process (at least 1).
    pub max_concurrent_hashes: u32,
    /// How long a sign-in waits for a hashing slot before a 503.
    pub hash_wait_ms: u64,
    /// Whether the hashing threads run in the idle scheduling class (SCHED_IDLE, else nice 19), so other requests
    /// get the cores first and take them back from a hash at once.
    pub hash_threads_low_priority: bool,
    /// Password-checking attempts (sign-in, password setup) admitted per second across all clients, decided in
    /// memory before any database work or hashing; over it, 429 with Retry-After.
    pub sign_in_budget_per_second: u32,
    /// Attempts the budget admits at once after a quiet spell (the bucket's size).
    pub sign_in_budget_burst: u32,
    /// Attempts per second admitted beyond the spent budget for an account signing in from an address it signed
    /// in from before in this process, with no failure since (so a flood cannot lock out known clients).
    pub known_client_budget_per_second: u32,
    /// The known clients' bucket size.
    pub known_client_budget_burst: u32,
    /// Milliseconds a 429 on `/api/v1/auth/*` is held before it is sent (on a timer, no thread held), so a
    /// client that retries as soon as it is answered asks about once per hold instead of thousands of times.
    pub refusal_hold_ms: u64,
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

/// Why `secret` is guessable, or `None` when it looks random. Refused: the compiled-in default, placeholder
/// words ("changeme", "secret", "test", …), few distinct characters (repeats), patterns zxcvbn finds
/// (sequences, keyboard rows, words), and a low empirical entropy (length × bits per character as they are
/// distributed in the secret). A random 32-byte value in hex or base64 passes.
pub fn jwt_secret_weakness(secret: &str) -> Option<String> {
    if secret.is_empty() || Some(secret) == default_jwt_secret().as_deref() {
        return Some("it is the compiled-in default".to_owned());
    }
    let lowered = secret.to_lowercase();
    if let Some(word) = PLACEHOLDER_WORDS.iter().find(|w| lowered.contains(*w)) {
        return Some(format!("it contains the placeholder word \"{word}\""));
    }
    let mut counts = std::collections::HashMap::<char, usize>::new();
    for c in secret.chars() {
        *counts.entry(c).or_default() += 1;
    }
    if counts.len() < 12 {
        return Some(format!("only {} distinct characters", counts.len()));
    }
    // zxcvbn looks at the first 100 characters at most; a longer secret is judged by its head.
    let head: String = secret.chars().take(100).collect();
    let pattern_bits = zxcvbn::zxcvbn(&head, &[]).guesses_log10() * std::f64::consts::LOG2_10;
    if pattern_bits < MIN_JWT_SECRET_PATTERN_BITS {
        return Some(format!(
            "it is made of patterns guessable in about 2^{pattern_bits:.0} tries"
        ));
    }
    let bits = empirical_entropy_bits(secret.chars().count(), &counts);
    if bits < MIN_JWT_SECRET_BITS {
        return Some(format!(
            "estimated {bits:.0} bits of entropy, at least {MIN_JWT_SECRET_BITS:.0} needed"
        ));
    }
    None
}

/// Length × Shannon entropy of the character distribution.
#[expect(clippy::cast_precision_loss, reason = "character counts are far below 2^52")]
fn empirical_entropy_bits(length: usize, counts: &std::collections::HashMap<char, usize>) -> f64 {
    let n = length as f64;
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = k as f64 / n;
            -p * p.log2()
        })
        .sum();
    per_char * n
}

/// `auth.jwt_secret` as config/default.toml sets it.
fn default_jwt_secret() -> Option<String> {
    Config::builder()
        .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
        .build()
        .ok()?
        .get_string("auth.jwt_secret")
        .ok()
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
                // Lists given in one variable: QIP__SERVER__TRUSTED_PROXIES="10.0.0.1,10.0.0.2".
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("notifications.webhook_allow_cidrs")
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
        if self.auth.max_concurrent_hashes == 0 {
            return invalid("auth.max_concurrent_hashes must be at least 1");
        }
        if self.auth.sign_in_budget_per_second == 0
            || self.auth.sign_in_budget_burst == 0
            || self.auth.known_client_budget_per_second == 0
            || self.auth.known_client_budget_burst == 0
        {
            return invalid(
                "auth.sign_in_budget_per_second, auth.sign_in_budget_burst, auth.known_client_budget_per_second and auth.known_client_budget_burst must be at least 1",
            );
        }
        if self.auth.auth_rate_limit_per_minute == 0 {
            return invalid("auth.auth_rate_limit_per_minute must be at least 1");
        }
        if self.auth.access_token_ttl_secs == 0
            || self.auth.refresh_token_ttl_days == 0
            || self.auth.refresh_family_max_days == 0
        {
            return invalid(
                "auth.access_token_ttl_secs, auth.refresh_token_ttl_days and auth.refresh_family_max_days must be at least 1",
            );
        }
        if self.console.session_idle_minutes == 0 || self.console.session_max_hours == 0 {
            return invalid("console.session_idle_minutes and console.session_max_hours must be at least 1");
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
        if !self
            .exchange
            .iati_activity_prefix
            .starts_with(&self.exchange.iati_reporting_org_ref)
            || self.exchange.iati_reporting_org_ref.trim().is_empty()
        {
            return invalid("exchange.iati_activity_prefix must begin with exchange.iati_reporting_org_ref");
        }
        if self.imports.max_rows == 0 {
            return invalid("imports.max_rows must be at least 1");
        }
        self.notifications
            .validate(self.mode)
            .map_err(SettingsError::Invalid)?;
        if self.database.pool_size == 0 {
            return invalid("database.pool_size must be at least 1");
        }
        if self.database.url.expose().trim().is_empty() {
            return invalid("database.url must be set");
        }
        crate::db::check_url(self.database.url.expose()).map_err(SettingsError::Invalid)?;
        let public_url = &self.server.public_url;
        if !(public_url.starts_with("http://") || public_url.starts_with("https://"))
            || public_url.ends_with('/')
        {
            return invalid(
                "server.public_url must be an http:// or https:// address without a trailing slash",
            );
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
            if let Some(why) = jwt_secret_weakness(secret) {
                return Err(SettingsError::Invalid(format!(
                    "auth.jwt_secret is guessable ({why}); production mode needs a random one, e.g. \
                     `openssl rand -base64 48`"
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
            for key in &self.auth.previous_keys {
                if let Some(why) = jwt_secret_weakness(key.secret.expose()) {
                    return Err(SettingsError::Invalid(format!(
                        "auth.previous_keys `{}` is guessable ({why})",
                        key.kid
                    )));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_secrets_pass() {
        for random in [
            // 32 random bytes as hex and as base64, 24 as base64, 32 random alphanumerics.
            "3c9a7f0e51b24d68e0f97a1c2b5d8e437a06c1f92d4b8e53a1f07c6d29e4b815",
            "Kx8fJ2mQ9vT4wZ7pL1nR6sY3bH5cD0gA2eU8iO4kM7q=",
            "b7Rk2pXw9QzL4mVn8TcY1sFh6JdG3eAo",
            "q3Vh8Zk1XoP2mNw7Lr5TjYb0cF4sGd9E",
            "c4e1a9f07b3d528e6f1a0c9b7d2e4f38",
        ] {
            assert_eq!(jwt_secret_weakness(random), None, "{random}");
        }
    }

    #[test]
    fn guessable_secrets_are_refused_with_the_reason() {
        let cases = [
            ("", "default"),
            ("changeme-changeme-changeme-changeme", "placeholder"),
            ("my-super-Secret-value-for-the-pool-2026", "placeholder"),
            ("this-is-only-a-test-key-0123456789abc", "placeholder"),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "distinct"),
            ("abababababababababababababababab", "distinct"),
            ("0123456789abcdef0123456789abcdef", "patterns"),
            ("abcdefghijklmnopqrstuvwxyz012345", "patterns"),
            ("qwertyuiopasdfghjklzxcvbnm123456", "patterns"),
        ];
        for (secret, why) in cases {
            let weakness = jwt_secret_weakness(secret);
            assert!(
                weakness.as_deref().is_some_and(|w| w.contains(why)),
                "{secret:?}: {weakness:?}"
            );
        }
    }

    #[test]
    fn one_character_that_dominates_lowers_the_estimate() {
        // 36 characters, two thirds of them `z`: about 76 bits by the character counts.
        let secret = "zkzqz3zz9zmzzwz7zzpzrzz2zfzzhzz4zzxz";
        let weakness = jwt_secret_weakness(secret);
        assert!(weakness.is_some(), "{weakness:?}");
    }

    fn production(secret: &str) -> Result<Settings, SettingsError> {
        let env = [
            ("QIP__MODE".to_owned(), "production".to_owned()),
            ("QIP__AUTH__JWT_SECRET".to_owned(), secret.to_owned()),
        ];
        Settings::load_from(None, env)
    }

    #[test]
    fn production_refuses_a_guessable_secret_development_does_not() {
        let err = production("changeme-changeme-changeme-changeme")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("guessable"), "{err}");
        assert!(production("q3Vh8Zk1XoP2mNw7Lr5TjYb0cF4sGd9E").is_ok());
        let dev = Settings::load_from(
            None,
            [(
                "QIP__AUTH__JWT_SECRET".to_owned(),
                "changeme-changeme-changeme-changeme".to_owned(),
            )],
        );
        assert!(dev.is_ok());
    }
}
