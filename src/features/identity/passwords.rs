//! Password hashing with argon2id (PHC strings), at the configured cost, behind a process-wide gate that bounds
//! how many hashes run at once, and a dummy hash so that an unknown username costs the same time as a wrong
//! password.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::AuthSettings;
use crate::error::AppError;

/// Lets at most `limit` password hashes run at once: argon2id takes ~19 MiB and a core per hash, so without a
/// global bound a sign-in flood from many addresses takes the server's memory and CPU from every other request.
/// Waiting longer than `wait` for a slot is a 503 the client may retry.
pub struct HashGate {
    in_flight: Mutex<u32>,
    freed: Condvar,
    limit: u32,
    wait: Duration,
}

/// A slot of the gate, given back when dropped.
pub struct HashSlot<'a>(&'a HashGate);

impl HashGate {
    pub fn new(limit: u32, wait: Duration) -> Self {
        Self {
            in_flight: Mutex::new(0),
            freed: Condvar::new(),
            limit: limit.max(1),
            wait,
        }
    }

    /// Waits up to the gate's `wait` for a slot.
    pub fn enter(&self) -> Result<HashSlot<'_>, AppError> {
        // A poisoned lock only means another hash panicked; the count itself is still right.
        let guard = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        let (mut in_flight, timeout) = self
            .freed
            .wait_timeout_while(guard, self.wait, |n| *n >= self.limit)
            .unwrap_or_else(|e| e.into_inner());
        if timeout.timed_out() && *in_flight >= self.limit {
            return Err(AppError::retryable(
                "Too many sign-ins are being checked right now; retry in a moment.",
            ));
        }
        *in_flight += 1;
        Ok(HashSlot(self))
    }

    /// Hashes running now.
    pub fn in_flight(&self) -> u32 {
        *self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for HashSlot<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.0.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        *in_flight = in_flight.saturating_sub(1);
        self.0.freed.notify_one();
    }
}

/// The configured hasher, plus a hash of a random secret to verify against when the user does not exist.
#[derive(Clone)]
pub struct PasswordHashing {
    params: Params,
    dummy_hash: String,
    gate: Arc<HashGate>,
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
            gate: Arc::new(HashGate::new(
                settings.max_concurrent_hashes,
                Duration::from_millis(settings.hash_wait_ms),
            )),
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
        let _slot = self.gate.enter()?;
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| AppError::internal(format!("argon2 hashing failed: {e}")))
    }

    /// Verifies against a stored PHC string (its own parameters are used). Unparseable hashes never match.
    /// Fails only when no hashing slot came free in time (503).
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool, AppError> {
        let _slot = self.gate.enter()?;
        Ok(self.argon2().verify_password(password.as_bytes(), phc).is_ok())
    }

    /// Spends the same work as a real verification, for unknown users.
    pub fn verify_dummy(&self, password: &str) -> Result<(), AppError> {
        self.verify(password, &self.dummy_hash).map(|_| ())
    }

    /// The gate bounding concurrent hashes.
    pub fn gate(&self) -> &HashGate {
        &self.gate
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use super::*;

    #[test]
    fn never_more_than_the_limit_run_at_once() {
        let gate = HashGate::new(2, Duration::from_secs(5));
        let (now, peak) = (AtomicU32::new(0), AtomicU32::new(0));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let _slot = gate.enter().expect("a slot within 5 s");
                    let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(running, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(gate.in_flight(), 0, "every slot given back");
    }

    #[test]
    fn a_full_gate_answers_retryable_503_after_the_wait() {
        let gate = HashGate::new(1, Duration::from_millis(30));
        let held = gate.enter().expect("first slot");
        let started = Instant::now();
        let refused = gate.enter().err().expect("no second slot");
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(refused.kind().status().as_u16(), 503);
        drop(held);
        assert!(gate.enter().is_ok(), "free again once the first hash ends");
    }
}
