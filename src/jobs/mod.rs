//! The periodic jobs: `serve` runs them inside every instance (`spawn`), each on its own pooled connection
//! and transaction. Each is safe with several instances on one database: a round closes once (a conditional
//! update decides, under the proposal's lock), marking steps overdue and purging expired idempotency keys are
//! idempotent updates, the overdue-implementation report and the learning of known sign-in clients
//! (`spawn_known_clients`, into this instance's memory) only read, and folding the ledger roll-ups' stripes
//! moves each row once (one statement deletes and adds it).

pub mod audit_sealer;

use std::time::Duration;

use crate::db::{DbConn, DbPool};
use crate::domain::ids::RoundId;
use crate::features::audit::now_micros;

/// Most overdue rounds one run closes (the next run takes the rest).
const ROUNDS_PER_RUN: i64 = 500;

/// Runs every job once; returns how many consultation rounds this call closed.
pub fn sweep_once(pool: &DbPool) -> usize {
    let Ok(mut conn) = pool.get() else {
        tracing::warn!("deadline sweep skipped: no database connection");
        return 0;
    };
    let closed = close_overdue_rounds(&mut conn);
    mark_overdue_steps(&mut conn);
    purge_expired_idempotency_keys(&mut conn);
    report_overdue_implementations(&mut conn);
    fold_ledger_total_stripes(&mut conn);
    closed
}

/// Closes the consultation rounds past their deadline (pending consultees lapse; the workflow moves the
/// proposal on as the system). Returns how many this call closed.
pub fn close_overdue_rounds(conn: &mut DbConn) -> usize {
    let overdue =
        match crate::features::consultation::repo::overdue_rounds(conn, now_micros(), ROUNDS_PER_RUN) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "deadline sweep could not list overdue rounds");
                return 0;
            }
        };
    let mut closed = 0;
    for round_id in overdue.into_iter().map(RoundId::from) {
        match crate::features::consultation::service::close_overdue_round(conn, &round_id) {
            Ok(true) => closed += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(%round_id, error = %e, "deadline sweep could not close a round"),
        }
    }
    if closed > 0 {
        tracing::info!(closed, "consultation rounds closed at their deadline");
    }
    closed
}

/// Marks opened, undecided approval steps past their due date as overdue.
pub fn mark_overdue_steps(conn: &mut DbConn) {
    match crate::db::write_tx(conn, |tx| {
        crate::features::approval::repo::mark_overdue(tx, now_micros())
    }) {
        Ok(0) => {}
        Ok(n) => tracing::info!(steps = n, "approval steps marked overdue"),
        Err(e) => tracing::warn!(error = %e, "could not mark overdue approval steps"),
    }
}

/// Removes idempotency keys past their retention.
pub fn purge_expired_idempotency_keys(conn: &mut DbConn) {
    match crate::features::ledger::idempotency::purge_expired(conn, now_micros()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "expired idempotency keys removed"),
        Err(e) => tracing::warn!(error = %e, "could not remove expired idempotency keys"),
    }
}

/// Folds the ledger roll-ups' stripes of days before yesterday (and of months before its month) into one row
/// per key, so reads of the roll-ups sum a bounded number of rows (PostgreSQL; a no-op on SQLite).
pub fn fold_ledger_total_stripes(conn: &mut DbConn) {
    let yesterday = now_micros().date() - chrono::Days::new(1);
    match crate::features::ledger::repo::fold_total_stripes(conn, yesterday) {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "ledger roll-up stripes folded"),
        Err(e) => tracing::warn!(error = %e, "could not fold ledger roll-up stripes"),
    }
}

/// Logs the proposals in implementation past their maximum duration.
pub fn report_overdue_implementations(conn: &mut DbConn) {
    match crate::features::implementation::service::overdue_implementations(conn, now_micros().date()) {
        Ok(overdue) if !overdue.is_empty() => {
            let references: Vec<String> = overdue.iter().filter_map(|(p, _)| p.reference.clone()).collect();
            tracing::warn!(
                count = overdue.len(),
                ?references,
                "proposals in implementation past their maximum duration"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not check implementation durations"),
    }
}

/// Every `interval`, teaches this instance's sign-in budget the clients that signed in on any instance since
/// the last pass (with a margin for transactions that committed late): every instance keeps the usual users'
/// reserve, whichever instance they signed in on.
pub fn spawn_known_clients(state: actix_web::web::Data<crate::app::AppState>, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(interval);
        // The first tick is at once, and startup has just learnt the whole known-address period.
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let state = state.clone();
            let _ = actix_web::web::block(move || learn_known_clients_lately(&state, interval)).await;
        }
    });
}

/// One pass of [`spawn_known_clients`]: the sign-ins of the last two periods and a minute.
fn learn_known_clients_lately(state: &crate::app::AppState, interval: Duration) {
    let margin = chrono::Duration::from_std(interval * 2).unwrap_or_default() + chrono::Duration::minutes(1);
    learn_known_clients(&state.pool, &state.auth.sign_in_budget, now_micros() - margin);
}

/// Teaches `budget` the clients that signed in at or after `since` on any instance (at startup, the whole
/// known-address period; then [`spawn_known_clients`]). Logs and goes on when the database cannot tell
/// (unreachable, or migrations pending): the clients are then learnt as they sign in.
pub fn learn_known_clients(
    pool: &DbPool,
    budget: &crate::features::identity::rate_limit::SignInBudget,
    since: chrono::NaiveDateTime,
) {
    let learnt = pool.get().map_err(|e| e.to_string()).and_then(|mut conn| {
        crate::features::identity::service::learn_known_clients(&mut conn, budget, since)
            .map_err(|e| e.to_string())
    });
    match learnt {
        Ok(0) => {}
        Ok(pairs) => tracing::info!(pairs, "sign-in budget: known clients learnt from the database"),
        Err(error) => tracing::warn!(%error, "sign-in budget: known clients not learnt from the database"),
    }
}

/// Runs [`sweep_once`] every `interval` on the blocking pool, for the life of the actix system.
pub fn spawn(pool: DbPool, interval: Duration) {
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(interval);
        loop {
            ticker.tick().await;
            let pool = pool.clone();
            let _ = actix_web::web::block(move || sweep_once(&pool)).await;
        }
    });
}
