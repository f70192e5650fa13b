//! Password hashing with argon2id (PHC strings), at the configured cost, and a dummy hash so that an unknown
//! username costs the same time as a wrong password.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::AuthSettings;
use crate::error::AppError;

/// The configured hasher, plus a hash of a random secret to verify against when the user does not exist.
#[derive(Clone)]
pub struct PasswordHashing {
    params: Params,
    dummy_hash: String,
}

impl PasswordHashing {
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| format!("invalid argon2 parameters: {e}"))?;
        let mut hashing = Self {
            params,
            dummy_hash: String::new(),
        };
        let random: [u8; 16] = rand::random();
        hashing.dummy_hash = hashing.hash(&hex::encode(random)).map_err(|e| e.to_string())?;
        Ok(hashing)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string `$argon2id$v=19$m=…,t=…,p=…$salt$hash` with a fresh random salt. CPU-heavy: call it on
    /// the blocking pool and outside any database transaction.
    pub fn hash(&self, password: &str) -> Result<String, AppError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(format!("argon2 hashing failed: {e}")))
    }

    /// Verifies against a stored PHC string (its own parameters are used). Unparseable hashes never match.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        self.argon2().verify_password(password.as_bytes(), phc).is_ok()
    }

    /// Spends the same work as a real verification, for unknown users.
    pub fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy_hash);
    }
}
