//! Account lockout after repeated failed logins: 5 failures within 15 minutes lock the account for 15 minutes,
//! doubling with each further lock, capped at 24 hours. A successful login clears the count.

use chrono::{Duration, NaiveDateTime};

pub const MAX_FAILURES: i32 = 5;
pub const FAILURE_WINDOW_MINUTES: i64 = 15;
pub const BASE_LOCK_MINUTES: i64 = 15;
pub const MAX_LOCK_MINUTES: i64 = 24 * 60;

/// The login-failure state kept on a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutState {
    pub failed_logins: i32,
    pub failed_window_start: Option<NaiveDateTime>,
    pub locked_until: Option<NaiveDateTime>,
    /// Locks so far (drives the doubling).
    pub lock_count: i32,
}

impl LockoutState {
    pub fn is_locked_at(&self, now: NaiveDateTime) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// The state after one more failed attempt at `now`.
    pub fn after_failure(self, now: NaiveDateTime) -> LockoutState {
        if self.is_locked_at(now) {
            return self;
        }
        let window_open = self
            .failed_window_start
            .is_some_and(|start| now - start < Duration::minutes(FAILURE_WINDOW_MINUTES));
        let (failed, start) = if window_open {
            (self.failed_logins + 1, self.failed_window_start)
        } else {
            (1, Some(now))
        };
        if failed >= MAX_FAILURES {
            LockoutState {
                failed_logins: 0,
                failed_window_start: None,
                locked_until: Some(now + lock_duration(self.lock_count)),
                lock_count: self.lock_count.saturating_add(1),
            }
        } else {
            LockoutState {
                failed_logins: failed,
                failed_window_start: start,
                ..self
            }
        }
    }

    /// The state after a successful login.
    pub fn after_success(self) -> LockoutState {
        LockoutState {
            failed_logins: 0,
            failed_window_start: None,
            locked_until: None,
            lock_count: 0,
        }
    }
}

/// 15 minutes × 2^(earlier locks), at most 24 hours.
pub fn lock_duration(earlier_locks: i32) -> Duration {
    let doublings = earlier_locks.clamp(0, 16) as u32;
    let minutes = BASE_LOCK_MINUTES
        .saturating_mul(1_i64 << doublings)
        .min(MAX_LOCK_MINUTES);
    Duration::minutes(minutes)
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

    fn fresh() -> LockoutState {
        LockoutState {
            failed_logins: 0,
            failed_window_start: None,
            locked_until: None,
            lock_count: 0,
        }
    }

    #[test]
    fn fifth_failure_in_the_window_locks_for_fifteen_minutes() {
        let mut s = fresh();
        for i in 0..4 {
            s = s.after_failure(t0() + Duration::minutes(i));
            assert!(!s.is_locked_at(t0() + Duration::minutes(i)));
        }
        s = s.after_failure(t0() + Duration::minutes(4));
        assert_eq!(s.locked_until, Some(t0() + Duration::minutes(19)));
        assert!(s.is_locked_at(t0() + Duration::minutes(18)));
        assert!(!s.is_locked_at(t0() + Duration::minutes(19)));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_lock() {
        let mut s = fresh();
        for i in 0..10 {
            s = s.after_failure(t0() + Duration::minutes(16 * i));
        }
        assert_eq!(s.locked_until, None);
    }

    #[test]
    fn lock_duration_doubles_and_caps_at_a_day() {
        assert_eq!(lock_duration(0), Duration::minutes(15));
        assert_eq!(lock_duration(1), Duration::minutes(30));
        assert_eq!(lock_duration(2), Duration::minutes(60));
        assert_eq!(lock_duration(6), Duration::minutes(960));
        assert_eq!(lock_duration(7), Duration::minutes(1440));
        assert_eq!(lock_duration(50), Duration::minutes(1440));
    }

    proptest! {
        #[test]
        fn never_locked_longer_than_a_day(gaps in prop::collection::vec(0i64..40, 1..80)) {
            let mut s = fresh();
            let mut now = t0();
            for gap in gaps {
                now += Duration::minutes(gap);
                s = s.after_failure(now);
                if let Some(until) = s.locked_until {
                    prop_assert!(until - now <= Duration::minutes(MAX_LOCK_MINUTES));
                }
            }
        }
    }
}
