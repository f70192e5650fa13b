//! A fixed-window request limiter per client address (used on `/api/v1/auth/*`), and the process-wide sign-in
//! budget: a token bucket that admits password-checking attempts from all clients together, decided in memory
//! before any database work or hashing, with a small reserve for clients that signed in before. Per instance:
//! with several instances each keeps its own counts, which bounds an attacker to N × the limit — still a hard
//! bound.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
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

/// A token bucket: `per_second` tokens flow in, at most `burst` are kept, each admitted attempt takes one. Kept
/// as the generic cell rate algorithm does (the time the bucket would be full again, in exact `Instant`
/// arithmetic, no float drift); pure (time is passed in); [`SignInBudget`] keeps buckets behind a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    /// Time one token takes to flow in.
    interval: Duration,
    /// How far ahead of now the bucket may be drawn: (burst - 1) intervals.
    tolerance: Duration,
    /// When the tokens taken so far will all have flowed back in; `None` while full.
    full_at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket (a quiet spell before the first attempt).
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Self {
            interval,
            tolerance: interval * (burst.max(1) - 1),
            full_at: None,
        }
    }

    /// Takes a token at `now`, or says how long until one is there (a refused ask takes nothing).
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let full_at = self.full_at.map_or(now, |at| at.max(now));
        let drawn_ahead = full_at.saturating_duration_since(now);
        if drawn_ahead > self.tolerance {
            return Err(drawn_ahead - self.tolerance);
        }
        self.full_at = Some(full_at + self.interval);
        Ok(())
    }
}

/// Why an attempt was admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// From the budget every client shares.
    Budget,
    /// From the reserve of a client that signed in before, the budget being spent.
    KnownClient,
}

/// (account, client address) pairs remembered as known at most (a few MB); past it, pairs learnt longest ago
/// are forgotten first.
pub const KNOWN_CLIENTS_MAX: usize = 100_000;

/// A known pair is trusted this long after its last sign-in (the lockout's known-address period).
const KNOWN_CLIENT_FOR: Duration =
    Duration::from_secs(crate::domain::lockout::KNOWN_ADDRESS_DAYS.unsigned_abs() * 24 * 3600);

struct BudgetState {
    shared: TokenBucket,
    known: TokenBucket,
    /// Keyed digests of (account, address) pairs that signed in, with until when they are trusted (their sign-in
    /// plus the known-address period); a failure from a pair removes it.
    known_clients: HashMap<u64, Instant>,
}

/// The process-wide sign-in budget. Every password-checking attempt asks it first; a refusal costs no database
/// work, no hash and no audit event. A client that signed in to an account from an address (and has not failed
/// since) may draw on a small reserve when the shared budget is spent, so a flood from elsewhere does not keep
/// the usual users out. The pairs are kept as digests under a per-process random key, so the map neither keeps
/// names nor lets a client choose collisions.
pub struct SignInBudget {
    state: Mutex<BudgetState>,
    digest: RandomState,
}

impl SignInBudget {
    pub fn new(per_second: u32, burst: u32, known_per_second: u32, known_burst: u32) -> Self {
        Self {
            state: Mutex::new(BudgetState {
                shared: TokenBucket::new(per_second, burst),
                known: TokenBucket::new(known_per_second, known_burst),
                known_clients: HashMap::new(),
            }),
            digest: RandomState::new(),
        }
    }

    fn pair(&self, account: &str, address: &str) -> u64 {
        self.digest.hash_one((account, address))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        // A poisoned lock only means a panic mid-update of plain numbers; the state is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one attempt by `account` from `address` at `now`, or says how long until the budget has room.
    pub fn admit(&self, account: &str, address: &str, now: Instant) -> Result<Admission, Duration> {
        let pair = self.pair(account, address);
        let mut state = self.state();
        let wait = match state.shared.take(now) {
            Ok(()) => return Ok(Admission::Budget),
            Err(wait) => wait,
        };
        let known = state
            .known_clients
            .get(&pair)
            .is_some_and(|trusted| now < *trusted);
        if known && state.known.take(now).is_ok() {
            return Ok(Admission::KnownClient);
        }
        Err(wait)
    }

    /// `account` signed in from `address` at `now`: the pair is known from now on, for the known-address period.
    pub fn signed_in(&self, account: &str, address: &str, now: Instant) {
        self.known_until(self.pair(account, address), now + KNOWN_CLIENT_FOR, now);
    }

    /// `account` signed in from `address` `ago` (on any instance, as the database remembers it; learnt at `now`):
    /// the pair is known for what remains of its known-address period.
    pub fn learn(&self, account: &str, address: &str, ago: Duration, now: Instant) {
        if let Some(left) = KNOWN_CLIENT_FOR.checked_sub(ago) {
            self.known_until(self.pair(account, address), now + left, now);
        }
    }

    /// Trusts `pair` until `until` (or longer, if it was already).
    fn known_until(&self, pair: u64, until: Instant, now: Instant) {
        let mut state = self.state();
        if state.known_clients.len() >= KNOWN_CLIENTS_MAX && !state.known_clients.contains_key(&pair) {
            state.known_clients.retain(|_, trusted| now < *trusted);
            if state.known_clients.len() >= KNOWN_CLIENTS_MAX {
                // Keep the half trusted longest (the newest sign-ins).
                let mut ends: Vec<Instant> = state.known_clients.values().copied().collect();
                let (_, median, _) = ends.select_nth_unstable(KNOWN_CLIENTS_MAX / 2);
                let median = *median;
                state.known_clients.retain(|_, trusted| *trusted > median);
            }
        }
        state
            .known_clients
            .entry(pair)
            .and_modify(|trusted| *trusted = (*trusted).max(until))
            .or_insert(until);
    }

    /// A password check of `account` from `address` failed: the pair is no longer known (until it signs in
    /// again), so a client that learnt one password cannot spend the reserve guessing.
    pub fn failed(&self, account: &str, address: &str) {
        let pair = self.pair(account, address);
        self.state().known_clients.remove(&pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3);
        for _ in 0..3 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        let wait = bucket.take(t0).expect_err("burst spent");
        assert!(wait > ms(99) && wait <= ms(100), "{wait:?}");
        // 10 per second: one more after 100 ms, not before.
        assert!(bucket.take(t0 + ms(50)).is_err());
        assert_eq!(bucket.take(t0 + ms(100)), Ok(()));
        assert!(bucket.take(t0 + ms(100)).is_err());
        // A long quiet spell refills to the burst, never beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn a_refused_attempt_does_not_use_up_the_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1, 1);
        assert_eq!(bucket.take(t0), Ok(()));
        for n in 1..10 {
            assert!(bucket.take(t0 + ms(n * 90)).is_err());
        }
        assert_eq!(bucket.take(t0 + ms(1000)), Ok(()), "refused asks took nothing");
    }

    #[test]
    fn the_budget_is_shared_by_every_client() {
        let t0 = Instant::now();
        let budget = SignInBudget::new(2, 2, 1, 1);
        assert_eq!(budget.admit("a", "10.0.0.1", t0), Ok(Admission::Budget));
        assert_eq!(budget.admit("b", "10.0.0.2", t0), Ok(Admission::Budget));
        let wait = budget.admit("c", "10.0.0.3", t0).expect_err("spent");
        assert_eq!(wait, ms(500));
        assert_eq!(budget.admit("c", "10.0.0.3", t0 + ms(500)), Ok(Admission::Budget));
    }

    #[test]
    fn a_known_client_draws_on_the_reserve_until_it_fails() {
        let t0 = Instant::now();
        let budget = SignInBudget::new(1, 1, 1, 2);
        budget.signed_in("field", "10.0.0.9", t0);
        assert_eq!(budget.admit("flood", "10.0.0.1", t0), Ok(Admission::Budget));
        assert!(budget.admit("flood", "10.0.0.1", t0).is_err());
        // Known only as that account from that address.
        assert!(budget.admit("field", "10.0.0.1", t0).is_err());
        assert!(budget.admit("other", "10.0.0.9", t0).is_err());
        assert_eq!(budget.admit("field", "10.0.0.9", t0), Ok(Admission::KnownClient));
        assert_eq!(budget.admit("field", "10.0.0.9", t0), Ok(Admission::KnownClient));
        assert!(budget.admit("field", "10.0.0.9", t0).is_err(), "reserve spent");
        budget.failed("field", "10.0.0.9");
        assert!(
            budget.admit("field", "10.0.0.9", t0 + ms(1000)).is_ok(),
            "the shared budget refilled"
        );
        assert!(
            budget.admit("field", "10.0.0.9", t0 + ms(1000)).is_err(),
            "a failure forgets the pair"
        );
    }

    #[test]
    fn a_known_client_is_forgotten_after_the_known_address_period() {
        let t0 = Instant::now();
        let budget = SignInBudget::new(1, 1, 1, 1);
        budget.signed_in("field", "10.0.0.9", t0);
        let later = t0 + KNOWN_CLIENT_FOR + ms(1);
        assert!(budget.admit("x", "10.0.0.1", later).is_ok());
        assert!(budget.admit("field", "10.0.0.9", later).is_err());
    }

    #[test]
    fn a_pair_learnt_from_the_database_is_trusted_for_what_remains_of_its_period() {
        let t0 = Instant::now();
        let day = Duration::from_secs(24 * 3600);
        let budget = SignInBudget::new(1, 1, 1, 1);
        budget.learn("field", "10.0.0.9", KNOWN_CLIENT_FOR - day, t0);
        budget.learn("old", "10.0.0.9", KNOWN_CLIENT_FOR + ms(1), t0);
        assert!(
            budget.admit("x", "10.0.0.1", t0).is_ok(),
            "the shared budget's one token"
        );
        assert!(
            budget.admit("old", "10.0.0.9", t0).is_err(),
            "past its period: not known"
        );
        assert_eq!(budget.admit("field", "10.0.0.9", t0), Ok(Admission::KnownClient));
        // Learning an older sign-in again never shortens the trust of a newer one.
        budget.signed_in("field", "10.0.0.9", t0);
        budget.learn("field", "10.0.0.9", KNOWN_CLIENT_FOR - ms(10), t0);
        let later = t0 + day + ms(2000);
        assert!(budget.admit("x", "10.0.0.1", later).is_ok());
        assert_eq!(
            budget.admit("field", "10.0.0.9", later),
            Ok(Admission::KnownClient),
            "trusted from its sign-in here, not from the older one learnt"
        );
    }

    #[test]
    fn known_clients_stay_bounded() {
        let t0 = Instant::now();
        let budget = SignInBudget::new(1, 1, 1, 1);
        for n in 0..(KNOWN_CLIENTS_MAX + 10) {
            budget.signed_in(&format!("user{n}"), "10.0.0.9", t0 + ms(n as u64));
        }
        let kept = budget.state().known_clients.len();
        assert!(kept <= KNOWN_CLIENTS_MAX, "{kept}");
        // The newest is kept.
        assert!(budget.admit("x", "10.0.0.1", t0).is_ok());
        let newest = format!("user{}", KNOWN_CLIENTS_MAX + 9);
        assert_eq!(
            budget.admit(&newest, "10.0.0.9", t0 + ms(1)),
            Ok(Admission::KnownClient)
        );
    }

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
