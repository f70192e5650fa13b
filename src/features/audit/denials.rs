//! Denial auditing: a refused attempt (separation of duties and other object-level rules) is recorded in the
//! trail in its own transaction — the refused change rolled back — before the 403 leaves.

use super::{Outcome, append};
use crate::access::Actor;
use crate::db::{self, DbConn};
use crate::error::AppError;

/// Records a refused attempt and returns the 403 carrying `message`. `action` is an
/// [`super::AuditAction`] (or its stored name).
pub fn deny(
    conn: &mut DbConn,
    actor: &Actor,
    action: impl super::action::ActionName,
    entity_type: &str,
    entity_id: &str,
    message: &str,
) -> AppError {
    let recorded = db::write_tx(conn, |tx| {
        append(
            tx,
            actor
                .audit()
                .event(action.action_name(), entity_type, Some(entity_id))
                .outcome(Outcome::Denied)
                .reason(message),
        )
    });
    match recorded {
        Ok(_) => AppError::forbidden(message),
        Err(e) => e.into(),
    }
}
