//! The deadline sweeper: a periodic task inside every server instance that closes overdue consultation
//! rounds, marks overdue approval steps, removes expired idempotency keys and reports overdue implementations. Each close is a conditional update, so several instances on one database close a round once.

use std::time::Duration;

use crate::db::DbPool;
use crate::features::audit::now_micros;

/// Closes every overdue round; returns how many this call closed.
pub fn sweep_once(pool: &DbPool) -> usize {
    let mut closed = 0;
    let Ok(mut conn) = pool.get() else {
        tracing::warn!("deadline sweep skipped: no database connection");
        return 0;
    };
    let overdue = match crate::features::consultation::repo::overdue_rounds(&mut conn, now_micros(), 500) {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "deadline sweep could not list overdue rounds");
            return 0;
        }
    };
    for round_id in overdue {
        match crate::features::consultation::service::close_overdue_round(&mut conn, &round_id) {
            Ok(true) => closed += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(round_id, error = %e, "deadline sweep could not close a round"),
        }
    }
    if closed > 0 {
        tracing::info!(closed, "consultation rounds closed at their deadline");
    }
    match crate::db::write_tx(&mut conn, |tx| {
        crate::features::approval::repo::mark_overdue(tx, now_micros())
    }) {
        Ok(0) => {}
        Ok(n) => tracing::info!(steps = n, "approval steps marked overdue"),
        Err(e) => tracing::warn!(error = %e, "could not mark overdue approval steps"),
    }
    match crate::features::ledger::idempotency::purge_expired(&mut conn, now_micros()) {
        Ok(0) => {}
        Ok(n) => tracing::info!(keys = n, "expired idempotency keys removed"),
        Err(e) => tracing::warn!(error = %e, "could not remove expired idempotency keys"),
    }
    match crate::features::implementation::service::overdue_implementations(&mut conn, now_micros().date()) {
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
    closed
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
