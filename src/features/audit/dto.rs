//! Response and query types of the audit API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::repo::AuditEventRow;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEvent {
    /// Number given when the event was written: the order of this list, stable before and after sealing.
    pub event_no: i64,
    /// Whether the sealer has chained the event yet (it does within `audit.seal_interval_ms`).
    pub sealed: bool,
    /// Position in the hash chain; `null` until sealed.
    pub seq: Option<i64>,
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub organization_id: Option<String>,
    /// The hat the action was taken in.
    pub hat: Option<String>,
    /// Taken as officer-in-charge.
    pub acting: bool,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    pub reason: Option<String>,
    #[schema(value_type = Object)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Object)]
    pub after: Option<serde_json::Value>,
    /// `null` until sealed.
    pub prev_hash: Option<String>,
    /// `null` until sealed.
    pub hash: Option<String>,
}

impl From<AuditEventRow> for AuditEvent {
    fn from(r: AuditEventRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|t| serde_json::from_str(&t).ok());
        Self {
            event_no: r.event_no,
            sealed: r.is_sealed(),
            seq: r.seq,
            id: r.id,
            occurred_at: r.occurred_at.and_utc(),
            actor_id: r.actor_id,
            actor_username: r.actor_username,
            organization_id: r.organization_id,
            hat: r.hat,
            acting: r.acting,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            request_id: r.request_id,
            client_addr: r.client_addr,
            outcome: r.outcome,
            reason: r.reason,
            before: parse(r.before_state),
            after: parse(r.after_state),
            prev_hash: r.prev_hash,
            hash: r.hash,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// User id of the actor.
    pub actor_id: Option<String>,
    pub hat: Option<String>,
    pub action: Option<String>,
    /// Inclusive lower bound, RFC 3339.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound, RFC 3339.
    pub to: Option<DateTime<Utc>>,
}

/// The chain head, to keep outside the system and compare with a later verification.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Checkpoint {
    pub head_seq: i64,
    pub head_hash: String,
    /// When the head event was appended (`null` on an empty chain).
    pub head_occurred_at: Option<DateTime<Utc>>,
    pub taken_at: DateTime<Utc>,
}
