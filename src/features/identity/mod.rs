//! Identity: organisations, users, hats, passwords, sign-in with access and refresh tokens, and the lookup
//! that turns a token into an authorized `Actor` on every request.

pub mod dto;
pub mod passwords;
pub mod rate_limit;
pub mod repo;
pub mod routes;
pub mod service;
pub mod tokens;

use crate::config::AuthSettings;
use rate_limit::RateLimiter;

/// Process-wide authentication machinery, built once at startup.
pub struct AuthRuntime {
    pub keys: tokens::JwtKeys,
    pub hashing: passwords::PasswordHashing,
    pub limiter: RateLimiter,
    pub refresh_ttl_days: i64,
    /// Absolute lifetime of a sign-in's refresh-token family, from the sign-in.
    pub refresh_family_max_days: i64,
}

impl AuthRuntime {
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        Ok(Self {
            keys: tokens::JwtKeys::new(settings)?,
            hashing: passwords::PasswordHashing::new(settings)?,
            limiter: RateLimiter::per_minute(settings.auth_rate_limit_per_minute),
            refresh_ttl_days: i64::try_from(settings.refresh_token_ttl_days).unwrap_or(14),
            refresh_family_max_days: i64::try_from(settings.refresh_family_max_days).unwrap_or(30),
        })
    }
}
