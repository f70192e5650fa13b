//! A fixed-window request limiter per client address (used on `/api/v1/auth/*`). Per instance: with several
//! instances each keeps its own count, which bounds an attacker to N × the limit — still a hard bound.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct RateLimiter {
    per_window: u32,
    window: Duration,
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn per_minute(limit: u32) -> Self {
        Self {
            per_window: limit,
            window: Duration::from_secs(60),
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request from `client`; `Err(seconds)` says how long until it may try again.
    pub fn check(&self, client: &str) -> Result<(), u64> {
        let now = Instant::now();
        let Ok(mut counts) = self.counts.lock() else {
            return Ok(()); // A poisoned lock must not take sign-in down with it.
        };
        if counts.len() > 10_000 {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(client.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        if entry.1 >= self.per_window {
            let wait = self.window.saturating_sub(now.duration_since(entry.0));
            return Err(wait.as_secs().max(1));
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client() {
        let l = RateLimiter::per_minute(2);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let wait = l.check("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check("b").is_ok());
    }
}
