//! Splitting a range of days into whole calendar months and the loose days at its ends, so a sum over a long
//! period reads a bounded number of roll-up rows (monthly totals for whole months, daily totals for the rest).

use chrono::{Datelike, NaiveDate};

/// A half-open range of days `[from, to)`; `None` is unbounded on that side.
pub type DayRange = (Option<NaiveDate>, Option<NaiveDate>);

/// The pieces of a day range: whole months (`months`, as a half-open range of first-of-month dates) and up to
/// two ranges of loose days. Together they cover the range exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodSplit {
    pub months: Option<DayRange>,
    pub days: Vec<(NaiveDate, NaiveDate)>,
}

fn first_of_month(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The first day of the month after the one `d` is in (`d` itself when it already is a first of month).
fn month_start_at_or_after(d: NaiveDate) -> Option<NaiveDate> {
    if d.day() == 1 {
        return Some(d);
    }
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
}

/// Splits `[from, to)` into whole months and loose days. An empty range (`to <= from`) gives no pieces.
pub fn split_days(from: Option<NaiveDate>, to: Option<NaiveDate>) -> PeriodSplit {
    if let (Some(f), Some(t)) = (from, to) {
        if t <= f {
            return PeriodSplit {
                months: None,
                days: Vec::new(),
            };
        }
    }
    // Whole months lie in [lo, hi): lo the first month start at or after `from`, hi the start of `to`'s month.
    let lo = match from {
        Some(f) => match month_start_at_or_after(f) {
            Some(lo) => Some(lo),
            // No month start after `from` within the calendar's range: all loose days.
            None => {
                return PeriodSplit {
                    months: None,
                    days: to.map(|t| (f, t)).into_iter().collect(),
                };
            }
        },
        None => None,
    };
    let hi = to.map(first_of_month);
    if let (Some(lo_d), Some(hi_d), Some(f), Some(t)) = (lo, hi, from, to) {
        if lo_d >= hi_d {
            // Within one month, or across one month boundary without a whole month: loose days only.
            return PeriodSplit {
                months: None,
                days: vec![(f, t)],
            };
        }
    }
    let mut days = Vec::new();
    if let (Some(f), Some(lo_d)) = (from, lo) {
        if f < lo_d {
            days.push((f, lo_d));
        }
    }
    if let (Some(hi_d), Some(t)) = (hi, to) {
        if hi_d < t {
            days.push((hi_d, t));
        }
    }
    PeriodSplit {
        months: Some((lo, hi)),
        days,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn a_range_inside_one_month_is_loose_days() {
        let s = split_days(Some(d(2026, 1, 5)), Some(d(2026, 1, 20)));
        assert_eq!(s.months, None);
        assert_eq!(s.days, vec![(d(2026, 1, 5), d(2026, 1, 20))]);
    }

    #[test]
    fn whole_months_and_the_loose_days_at_both_ends() {
        let s = split_days(Some(d(2025, 12, 30)), Some(d(2026, 3, 2)));
        assert_eq!(s.months, Some((Some(d(2026, 1, 1)), Some(d(2026, 3, 1)))));
        assert_eq!(
            s.days,
            vec![(d(2025, 12, 30), d(2026, 1, 1)), (d(2026, 3, 1), d(2026, 3, 2))]
        );
    }

    #[test]
    fn an_opening_balance_is_the_months_before_and_the_days_of_the_partial_month() {
        let s = split_days(None, Some(d(2026, 10, 15)));
        assert_eq!(s.months, Some((None, Some(d(2026, 10, 1)))));
        assert_eq!(s.days, vec![(d(2026, 10, 1), d(2026, 10, 15))]);
        let s = split_days(None, Some(d(2026, 10, 1)));
        assert_eq!(s.months, Some((None, Some(d(2026, 10, 1)))));
        assert!(s.days.is_empty());
        assert_eq!(split_days(None, None).months, Some((None, None)));
    }

    #[test]
    fn an_empty_range_has_no_pieces() {
        let s = split_days(Some(d(2026, 2, 1)), Some(d(2026, 2, 1)));
        assert_eq!(s.months, None);
        assert!(s.days.is_empty());
    }

    fn day_strategy() -> impl Strategy<Value = NaiveDate> {
        (0i64..1500).prop_map(|n| d(2024, 11, 1) + chrono::Duration::days(n))
    }

    proptest! {
        /// Summing movements over the pieces (months from a monthly roll-up, days from a daily one) gives
        /// the sum over the range, for any range and any movements.
        #[test]
        fn the_pieces_cover_the_range_exactly_once(
            from in proptest::option::of(day_strategy()),
            to in proptest::option::of(day_strategy()),
            moves in proptest::collection::vec((day_strategy(), -1000i64..1000), 0..60),
        ) {
            let inside = |day: NaiveDate, lo: Option<NaiveDate>, hi: Option<NaiveDate>| {
                lo.is_none_or(|l| day >= l) && hi.is_none_or(|h| day < h)
            };
            let expected: i64 = moves.iter().filter(|(day, _)| inside(*day, from, to)).map(|(_, a)| a).sum();
            let split = split_days(from, to);
            let mut got = 0;
            for (day, amount) in &moves {
                let month = first_of_month(*day);
                let by_month = split.months.is_some_and(|(lo, hi)| inside(month, lo, hi));
                let by_day = split.days.iter().filter(|(lo, hi)| day >= lo && day < hi).count();
                prop_assert!(usize::from(by_month) + by_day <= 1, "counted twice: {day} in {split:?}");
                if by_month || by_day == 1 {
                    got += amount;
                }
            }
            prop_assert_eq!(got, expected, "{:?}", split);
            // Bounded: at most two runs of loose days, each shorter than a month.
            prop_assert!(split.days.len() <= 2);
            for (lo, hi) in &split.days {
                prop_assert!((*hi - *lo).num_days() <= 62);
            }
        }
    }
}
