//! Sign-in throttling after failed passwords, so that nobody can lock a user out by guessing wrong.
//!
//! Two counters are kept for each account name: one per (account, client address) pair and one for the
//! account across all addresses. A pair that keeps failing waits longer and longer (1 minute after the 5th
//! failure, doubling with each further failure, at most an hour) — only that pair: the user signing in from
//! elsewhere is not affected. The account-wide counter has a much higher ceiling (100 failures within 15
//! minutes, a spread-out guessing attack) and then makes addresses that have not signed in to the account
//! recently wait (15 minutes, doubling per further ceiling, at most 4 hours); addresses the account signed in
//! from within [`KNOWN_ADDRESS_DAYS`] keep only their own pair rule. Attempts during a wait are refused before
//! the password is checked, so waiting cannot be skipped by guessing.

use chrono::{Duration, NaiveDateTime};

/// How one counter grows waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    /// The failure (counted within `window`) that starts the first wait.
    pub threshold: i32,
    /// Failures older than this, counted from the first one, no longer count.
    pub window: Duration,
    /// The first wait; each further wait doubles it.
    pub base_wait: Duration,
    /// No wait is longer than this.
    pub max_wait: Duration,
    /// After a wait starts, count from zero again (the account-wide ceiling) instead of making every further
    /// failure wait longer (the per-address rule).
    pub restart_count_after_wait: bool,
    /// The doubling is forgotten once the last wait ended this long ago.
    pub forget_after: Duration,
}

/// One client address guessing one account's password.
pub const PER_ADDRESS: ThrottlePolicy = ThrottlePolicy {
    threshold: 5,
    window: Duration::hours(24),
    base_wait: Duration::minutes(1),
    max_wait: Duration::hours(1),
    restart_count_after_wait: false,
    forget_after: Duration::hours(24),
};

/// Everyone together guessing one account's password.
pub const PER_ACCOUNT: ThrottlePolicy = ThrottlePolicy {
    threshold: 100,
    window: Duration::minutes(15),
    base_wait: Duration::minutes(15),
    max_wait: Duration::hours(4),
    restart_count_after_wait: true,
    forget_after: Duration::hours(24),
};

/// An address the account signed in from within this many days is exempt from the account-wide wait.
pub const KNOWN_ADDRESS_DAYS: i64 = 30;

/// The state of one counter (one stored row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleState {
    /// Failures counted in the current window.
    pub failures: i32,
    pub window_start: Option<NaiveDateTime>,
    pub blocked_until: Option<NaiveDateTime>,
    /// Waits started so far (drives the doubling).
    pub blocks: i32,
}

/// What one more failure did to a counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    pub state: ThrottleState,
    /// Set when this failure started a wait (the moment to audit); `None` when it only counted.
    pub wait_started: Option<Duration>,
}

impl ThrottleState {
    /// How long the holder must still wait at `now`, if at all.
    pub fn wait_at(&self, now: NaiveDateTime) -> Option<Duration> {
        self.blocked_until
            .filter(|until| now < *until)
            .map(|until| until - now)
    }

    /// The state after one more failed password at `now`. A failure while waiting changes nothing (the
    /// service refuses such attempts before checking the password; this keeps the rule total).
    pub fn after_failure(self, policy: &ThrottlePolicy, now: NaiveDateTime) -> FailureOutcome {
        if self.wait_at(now).is_some() {
            return FailureOutcome {
                state: self,
                wait_started: None,
            };
        }
        let blocks = if self
            .blocked_until
            .is_some_and(|until| now - until >= policy.forget_after)
        {
            0
        } else {
            self.blocks
        };
        let window_open = self
            .window_start
            .is_some_and(|start| now - start < policy.window && now >= start);
        let (failures, window_start) = if window_open {
            (self.failures.saturating_add(1), self.window_start)
        } else {
            (1, Some(now))
        };
        if failures < policy.threshold {
            return FailureOutcome {
                state: ThrottleState {
                    failures,
                    window_start,
                    blocked_until: self.blocked_until,
                    blocks,
                },
                wait_started: None,
            };
        }
        let wait = wait_for(policy, blocks);
        let (failures, window_start) = if policy.restart_count_after_wait {
            (0, None)
        } else {
            (failures, window_start)
        };
        FailureOutcome {
            state: ThrottleState {
                failures,
                window_start,
                blocked_until: Some(now + wait),
                blocks: blocks.saturating_add(1),
            },
            wait_started: Some(wait),
        }
    }

    /// The state after the right password: everything forgotten.
    pub fn after_success(self) -> ThrottleState {
        ThrottleState::default()
    }
}

/// `base_wait` × 2^(earlier waits), at most `max_wait`.
pub fn wait_for(policy: &ThrottlePolicy, earlier_waits: i32) -> Duration {
    let doublings = earlier_waits.clamp(0, 30) as u32;
    let seconds = policy
        .base_wait
        .num_seconds()
        .saturating_mul(1_i64 << doublings)
        .min(policy.max_wait.num_seconds());
    Duration::seconds(seconds)
}

/// Whether an address whose last successful sign-in to the account was at `last_success` skips the
/// account-wide wait at `now`.
pub fn is_known_address(last_success: Option<NaiveDateTime>, now: NaiveDateTime) -> bool {
    last_success.is_some_and(|at| at <= now && now - at < Duration::days(KNOWN_ADDRESS_DAYS))
}

/// The wait an attempt faces before its password is checked: its own pair's, then the account's unless the
/// address is known. Returns the longer of those that apply.
pub fn wait_before_attempt(
    pair: &ThrottleState,
    account: &ThrottleState,
    pair_last_success: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Option<Duration> {
    let own = pair.wait_at(now);
    let shared = if is_known_address(pair_last_success, now) {
        None
    } else {
        account.wait_at(now)
    };
    own.into_iter().chain(shared).max()
}

/// Whole seconds to put in `Retry-After` (rounded up, at least 1).
pub fn retry_after_secs(wait: Duration) -> i64 {
    let ms = wait.num_milliseconds().max(0);
    ((ms + 999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn t0() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 29)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .unwrap_or_default()
    }

    fn fail_n(mut s: ThrottleState, policy: &ThrottlePolicy, n: i32, at: NaiveDateTime) -> ThrottleState {
        for _ in 0..n {
            s = s.after_failure(policy, at).state;
        }
        s
    }

    #[test]
    fn four_failures_from_an_address_cost_nothing_the_fifth_a_minute() {
        let s = fail_n(ThrottleState::default(), &PER_ADDRESS, 4, t0());
        assert_eq!(s.wait_at(t0()), None);
        let out = s.after_failure(&PER_ADDRESS, t0());
        assert_eq!(out.wait_started, Some(Duration::minutes(1)));
        assert_eq!(out.state.wait_at(t0()), Some(Duration::minutes(1)));
        assert_eq!(out.state.wait_at(t0() + Duration::minutes(1)), None);
    }

    #[test]
    fn every_further_failure_from_the_address_doubles_the_wait_up_to_an_hour() {
        let mut s = fail_n(ThrottleState::default(), &PER_ADDRESS, 4, t0());
        let mut now = t0();
        let mut waits = Vec::new();
        for _ in 0..9 {
            let out = s.after_failure(&PER_ADDRESS, now);
            let wait = out.wait_started.unwrap_or_default();
            waits.push(wait.num_minutes());
            s = out.state;
            now += wait;
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_failure_while_waiting_changes_nothing() {
        let s = fail_n(ThrottleState::default(), &PER_ADDRESS, 5, t0());
        let out = s.after_failure(&PER_ADDRESS, t0() + Duration::seconds(30));
        assert_eq!(out.state, s);
        assert_eq!(out.wait_started, None);
    }

    #[test]
    fn account_ceiling_needs_a_hundred_failures_in_fifteen_minutes_then_counts_afresh() {
        let s = fail_n(ThrottleState::default(), &PER_ACCOUNT, 99, t0());
        assert_eq!(s.wait_at(t0()), None);
        let out = s.after_failure(&PER_ACCOUNT, t0());
        assert_eq!(out.wait_started, Some(Duration::minutes(15)));
        assert_eq!(out.state.failures, 0);
        // The next ceiling needs another hundred failures, and waits twice as long.
        let later = t0() + Duration::minutes(15);
        let s = fail_n(out.state, &PER_ACCOUNT, 99, later);
        assert_eq!(s.wait_at(later), None);
        assert_eq!(
            s.after_failure(&PER_ACCOUNT, later).wait_started,
            Some(Duration::minutes(30))
        );
    }

    #[test]
    fn failures_spread_beyond_the_window_never_reach_the_ceiling() {
        let mut s = ThrottleState::default();
        for i in 0..1000 {
            // 99 failures per 16 minutes.
            let now = t0() + Duration::minutes(16 * (i / 99)) + Duration::milliseconds(i % 99);
            let out = s.after_failure(&PER_ACCOUNT, now);
            assert_eq!(out.wait_started, None, "failure {i}");
            s = out.state;
        }
    }

    #[test]
    fn success_forgets_everything_and_quiet_days_forget_the_doubling() {
        let s = fail_n(ThrottleState::default(), &PER_ADDRESS, 5, t0());
        assert_eq!(s.after_success(), ThrottleState::default());
        let after_a_day = t0() + Duration::minutes(1) + Duration::hours(24);
        let s = fail_n(s, &PER_ADDRESS, 4, after_a_day);
        let out = s.after_failure(&PER_ADDRESS, after_a_day);
        assert_eq!(out.wait_started, Some(Duration::minutes(1)));
    }

    #[test]
    fn known_addresses_skip_the_account_wait_but_not_their_own() {
        let blocked = ThrottleState {
            blocked_until: Some(t0() + Duration::minutes(10)),
            blocks: 1,
            ..ThrottleState::default()
        };
        let free = ThrottleState::default();
        let yesterday = Some(t0() - Duration::days(1));
        let long_ago = Some(t0() - Duration::days(KNOWN_ADDRESS_DAYS));
        assert_eq!(wait_before_attempt(&free, &blocked, yesterday, t0()), None);
        assert_eq!(
            wait_before_attempt(&free, &blocked, long_ago, t0()),
            Some(Duration::minutes(10))
        );
        assert_eq!(
            wait_before_attempt(&free, &blocked, None, t0()),
            Some(Duration::minutes(10))
        );
        assert_eq!(
            wait_before_attempt(&blocked, &free, yesterday, t0()),
            Some(Duration::minutes(10))
        );
        assert_eq!(wait_before_attempt(&free, &free, None, t0()), None);
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::milliseconds(1)), 1);
        assert_eq!(retry_after_secs(Duration::milliseconds(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::seconds(60)), 60);
        assert_eq!(retry_after_secs(Duration::zero()), 1);
    }

    #[test]
    fn waits_double_and_cap() {
        assert_eq!(wait_for(&PER_ACCOUNT, 0), Duration::minutes(15));
        assert_eq!(wait_for(&PER_ACCOUNT, 1), Duration::minutes(30));
        assert_eq!(wait_for(&PER_ACCOUNT, 4), Duration::hours(4));
        assert_eq!(wait_for(&PER_ACCOUNT, i32::MAX), Duration::hours(4));
        assert_eq!(wait_for(&PER_ADDRESS, -3), Duration::minutes(1));
    }

    fn policy() -> impl Strategy<Value = ThrottlePolicy> {
        prop_oneof![Just(PER_ADDRESS), Just(PER_ACCOUNT)]
    }

    proptest! {
        #[test]
        fn no_wait_is_longer_than_the_cap(policy in policy(), gaps in prop::collection::vec(0i64..7200, 1..300)) {
            let mut s = ThrottleState::default();
            let mut now = t0();
            for gap in gaps {
                now += Duration::seconds(gap);
                let out = s.after_failure(&policy, now);
                if let Some(wait) = out.wait_started {
                    prop_assert!(wait <= policy.max_wait);
                    prop_assert!(wait >= policy.base_wait);
                }
                if let Some(left) = out.state.wait_at(now) {
                    prop_assert!(left <= policy.max_wait);
                }
                s = out.state;
            }
        }

        #[test]
        fn fewer_failures_than_the_threshold_never_wait(policy in policy(), gaps in prop::collection::vec(0i64..7200, 0..99)) {
            let mut s = ThrottleState::default();
            let mut now = t0();
            for gap in gaps.iter().take(usize::try_from(policy.threshold - 1).unwrap_or(0)) {
                now += Duration::seconds(*gap);
                let out = s.after_failure(&policy, now);
                prop_assert_eq!(out.wait_started, None);
                s = out.state;
            }
        }

        #[test]
        fn consecutive_waits_never_shrink_without_a_quiet_day(gaps in prop::collection::vec(0i64..600, 1..200)) {
            // Attempts come as soon as a wait allows (plus a gap below the forgetting time).
            let mut s = ThrottleState::default();
            let mut now = t0();
            let mut last_wait = Duration::zero();
            for gap in gaps {
                now = s.blocked_until.filter(|u| *u > now).unwrap_or(now) + Duration::seconds(gap);
                let out = s.after_failure(&PER_ADDRESS, now);
                if let Some(wait) = out.wait_started {
                    prop_assert!(wait >= last_wait, "{wait} after {last_wait}");
                    last_wait = wait;
                }
                s = out.state;
            }
        }

        #[test]
        fn known_addresses_never_wait_for_the_account(
            minutes in 1i64..240, since in 0i64..(KNOWN_ADDRESS_DAYS * 24 * 60)
        ) {
            let account = ThrottleState { blocked_until: Some(t0() + Duration::minutes(minutes)), blocks: 3, ..ThrottleState::default() };
            let last_success = Some(t0() - Duration::minutes(since));
            prop_assert_eq!(wait_before_attempt(&ThrottleState::default(), &account, last_success, t0()), None);
        }
    }
}
