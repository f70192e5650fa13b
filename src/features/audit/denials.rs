//! Denial auditing: a refused attempt (separation of duties and other object-level rules) is recorded in the
//! trail in its own transaction — the refused change rolled back — before the 403 leaves.

use super::{Outcome, append};
use crate::access::Actor;
use crate::db::{self, DbConn};
use crate::error::AppError;

/// Records a refused attempt as `action` and returns the 403 carrying `message`.
pub fn deny(
    conn: &mut DbConn,
    actor: &Actor,
    action: super::AuditAction,
    entity_type: &str,
    entity_id: &str,
    message: &str,
) -> AppError {
    let recorded = db::write_tx(conn, |tx| {
        append(
            tx,
            actor
                .audit()
                .event(action, entity_type, Some(entity_id))
                .outcome(Outcome::Denied)
                .reason(message),
        )
    });
    match recorded {
        Ok(_) => AppError::forbidden(message),
        Err(e) => e.into(),
    }
}
