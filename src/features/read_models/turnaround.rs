//! Decision turnaround of a pool: per step kind and per hat, how long decisions took and what is overdue now.

use std::collections::BTreeMap;

use crate::db::DbConn;
use crate::domain::ids::PoolId;
use crate::domain::status::StepStatus;
use crate::error::{AppError, AppResult};
use crate::features::approval::dto::{Turnaround, TurnaroundGroup, TurnaroundLine};
use crate::features::approval::repo;
use crate::features::audit::now_micros;
use crate::features::ledger::service::PoolRef;

fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).map(|v| (v * 100.0).round() / 100.0)
}

/// Per step kind and per hat: decisions, median and 90th-percentile days from open to decision, overdue now.
pub fn turnaround(conn: &mut DbConn, pool_id: &PoolId) -> AppResult<Turnaround> {
    PoolRef::load(conn, pool_id)?;
    let now = now_micros();
    let steps = repo::steps_of_pool(conn, pool_id.as_str())?;
    let mut groups: BTreeMap<(TurnaroundGroup, String), (Vec<f64>, usize)> = BTreeMap::new();
    for s in &steps {
        // A stored reason this code cannot read is an error, never an `unknown` line.
        let kind = s.reason().map_err(AppError::internal)?.kind_name();
        for key in [
            (TurnaroundGroup::StepKind, kind.to_owned()),
            (TurnaroundGroup::Hat, s.hat.as_str().to_owned()),
        ] {
            let entry = groups.entry(key).or_default();
            if let (Some(opened), Some(decided)) = (s.opened_at, s.decided_at) {
                entry.0.push((decided - opened).num_seconds() as f64 / 86_400.0);
            }
            if s.status == StepStatus::Pending && s.due_at.is_some_and(|d| d < now) {
                entry.1 += 1;
            }
        }
    }
    let lines = groups
        .into_iter()
        .map(|((group, key), (mut days, overdue))| {
            days.sort_by(f64::total_cmp);
            TurnaroundLine {
                key,
                group,
                decided: days.len(),
                median_days: percentile(&days, 0.5),
                p90_days: percentile(&days, 0.9),
                overdue_now: overdue,
            }
        })
        .collect();
    Ok(Turnaround {
        pool_id: pool_id.to_string(),
        lines,
    })
}
