//! The audit sealer job: every `audit.seal_interval_ms` it chains the audit events committed since its last
//! pass into the hash chain (`audit::seal_pending`), so writers never wait for the chain head. Safe with
//! several instances on one database: sealing takes the chain head's row lock (PostgreSQL; SQLite's single
//! writer does the same), and a pass that finds another sealer at work skips and leaves the events to it.

use std::time::Duration;

use crate::db::{DbConn, DbPool};
use crate::features::audit::{self, WhenBusy};
use crate::metrics::AuditMetrics;

/// One pass on `conn`: seals what is pending (unless another sealer is at it) and updates the metrics.
/// Returns how many events this pass sealed.
///
/// The pass looks before it locks: the unsealed tail is read first (the partial index `audit_events_unsealed`
/// holds only the tail), and an idle pass stops there. Sealing takes the chain head's row lock in a write
/// transaction, and on PostgreSQL a row lock is itself a write (a WAL record and a commit flush): five times a
/// second on every instance, whether or not anything was written, competing with the requests for the disk.
pub fn seal_once(conn: &mut DbConn) -> u64 {
    let before = match audit::unsealed_tail(conn) {
        Ok(tail) => Some(tail),
        Err(e) => {
            tracing::warn!(error = %e, "audit sealer could not measure the unsealed tail");
            None
        }
    };
    // Nothing pending: nothing to seal. When the tail could not be read, try sealing anyway.
    let sealed = if before.is_some_and(|tail| tail.events == 0) {
        0
    } else {
        match audit::seal_pending(conn, WhenBusy::Skip) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "audit sealer pass failed");
                0
            }
        }
    };
    if let Some(m) = AuditMetrics::get() {
        m.sealed.inc_by(sealed);
        // The tail after the pass: the one read before it when the pass did nothing.
        let after = match before {
            Some(tail) if sealed == 0 && tail.events == 0 => Ok(tail),
            _ => audit::unsealed_tail(conn),
        };
        match after {
            Ok(tail) => {
                m.unsealed_events
                    .set(i64::try_from(tail.events).unwrap_or(i64::MAX));
                m.oldest_unsealed_age
                    .set(tail.oldest_age_ms.unwrap_or(0) as f64 / 1_000.0);
            }
            Err(e) => tracing::warn!(error = %e, "audit sealer could not measure the unsealed tail"),
        }
        m.sealer_last_pass.set(chrono::Utc::now().timestamp());
    }
    sealed
}

/// Runs [`seal_once`] on the blocking pool, `interval` after the end of the previous pass (a slow pass never
/// queues up more), for the life of the actix system.
pub fn spawn(pool: DbPool, interval: Duration) {
    actix_web::rt::spawn(async move {
        loop {
            actix_web::rt::time::sleep(interval).await;
            let pool = pool.clone();
            let _ = actix_web::web::block(move || match pool.get() {
                Ok(mut conn) => seal_once(&mut conn),
                Err(e) => {
                    tracing::warn!(error = %e, "audit sealer pass skipped: no database connection");
                    0
                }
            })
            .await;
        }
    });
}
