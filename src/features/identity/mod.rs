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
use rate_limit::{RateLimiter, SignInBudget};

/// Process-wide authentication machinery, built once at startup.
pub struct AuthRuntime {
    pub keys: tokens::JwtKeys,
    pub hashing: passwords::PasswordHashing,
    pub limiter: RateLimiter,
    /// Password-checking attempts admitted across all clients (`auth.sign_in_budget_*`).
    pub sign_in_budget: SignInBudget,
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
            sign_in_budget: SignInBudget::new(
                settings.sign_in_budget_per_second,
                settings.sign_in_budget_burst,
                settings.known_client_budget_per_second,
                settings.known_client_budget_burst,
            ),
            refresh_ttl_days: i64::try_from(settings.refresh_token_ttl_days).unwrap_or(14),
            refresh_family_max_days: i64::try_from(settings.refresh_family_max_days).unwrap_or(30),
        })
    }
}
