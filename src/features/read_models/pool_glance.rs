//! The pool at a glance (console): the pool's balances over time, summed by the database from the daily totals
//! the ledger keeps (`ledger_daily_totals`), so the cost follows the number of days with movements, never the
//! number of transactions. The other figures of the page come from the ledger statement and the pool report.

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Date, Text};

use crate::db::DbConn;
use crate::domain::ids::PoolId;
use crate::domain::ledger_rules::AccountKind;
use crate::error::AppResult;
use crate::features::ledger::service::PoolRef;

/// The balances at the end of one day (minor units): contributed (net), unallocated, committed, disbursed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BalancePoint {
    pub day: NaiveDate,
    pub contributed: i64,
    pub unallocated: i64,
    pub committed: i64,
    pub disbursed: i64,
}

#[derive(Debug, QueryableByName)]
struct DayKindTotal {
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Text)]
    account_kind: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// One row per (day, account kind) with movements: the database sums the daily totals.
fn movements_by_day(conn: &mut DbConn, pool_id: &str) -> QueryResult<Vec<DayKindTotal>> {
    let param = if matches!(conn, DbConn::Pg(_)) { "$1" } else { "?" };
    let sql = format!(
        "SELECT day, account_kind, CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) AS total \
         FROM ledger_daily_totals WHERE pool_id = {param} GROUP BY day, account_kind ORDER BY day"
    );
    diesel::sql_query(sql).bind::<Text, _>(pool_id).load(conn)
}

/// Running balances from per-day movements (in day order), at most `max_points` points: when there are more
/// days, the balance at the end of each of `max_points` evenly spaced days is kept (the last day always).
pub fn running_balances(
    movements: impl IntoIterator<Item = (NaiveDate, AccountKind, i64)>,
    max_points: usize,
) -> Vec<BalancePoint> {
    let mut points: Vec<BalancePoint> = Vec::new();
    let mut current: Option<BalancePoint> = None;
    for (day, kind, total) in movements {
        let point = match current {
            Some(ref mut p) if p.day == day => p,
            _ => {
                // A new day starts from the balances at the end of the previous one.
                let base = current.take().inspect(|p| points.push(*p)).unwrap_or_default();
                current.insert(BalancePoint { day, ..base })
            }
        };
        match kind {
            AccountKind::Contributor => point.contributed -= total,
            AccountKind::Unallocated => point.unallocated += total,
            AccountKind::Commitment => point.committed += total,
            AccountKind::Disbursed => point.disbursed += total,
        }
    }
    points.extend(current);
    thin(points, max_points)
}

fn thin(points: Vec<BalancePoint>, max_points: usize) -> Vec<BalancePoint> {
    let n = points.len();
    if max_points < 2 || n <= max_points {
        return points;
    }
    // Keep evenly spaced points, always the first and the last.
    (0..max_points)
        .map(|i| points[i * (n - 1) / (max_points - 1)])
        .collect()
}

/// The pool's balances at the end of each day with movements (thinned to `max_points`).
pub fn balances_over_time(
    conn: &mut DbConn,
    pool_id: &PoolId,
    max_points: usize,
) -> AppResult<Vec<BalancePoint>> {
    PoolRef::load(conn, pool_id)?;
    let rows = movements_by_day(conn, pool_id.as_str())?;
    // An unknown stored account kind is an error, never a skipped row.
    let rows = rows
        .into_iter()
        .map(|r| Ok((r.day, AccountKind::try_from(r.account_kind)?, r.total)))
        .collect::<Result<Vec<_>, crate::domain::status::UnknownStored>>()?;
    Ok(running_balances(rows, max_points))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 1, day).unwrap()
    }

    #[test]
    fn balances_run_from_daily_movements() {
        let points = running_balances(
            [
                (d(1), AccountKind::Contributor, -1000),
                (d(1), AccountKind::Unallocated, 1000),
                (d(3), AccountKind::Unallocated, -400),
                (d(3), AccountKind::Commitment, 400),
                (d(5), AccountKind::Commitment, -100),
                (d(5), AccountKind::Disbursed, 100),
            ],
            10,
        );
        assert_eq!(points.len(), 3);
        assert_eq!(
            points[2],
            BalancePoint {
                day: d(5),
                contributed: 1000,
                unallocated: 600,
                committed: 300,
                disbursed: 100
            }
        );
        assert_eq!(points[0].unallocated, 1000);
        assert_eq!(points[1].committed, 400);
    }

    #[test]
    fn long_histories_are_thinned_keeping_first_and_last() {
        let moves = (1..=28).map(|day| (d(day), AccountKind::Unallocated, 10));
        let points = running_balances(moves, 5);
        assert_eq!(points.len(), 5);
        assert_eq!(points[0].day, d(1));
        assert_eq!(points[4].day, d(28));
        assert_eq!(points[4].unallocated, 280);
    }

    #[test]
    fn no_movements_no_points() {
        assert!(running_balances(std::iter::empty(), 10).is_empty());
    }
}
