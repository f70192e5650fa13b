//! `append` — the one way an audit event is written, always on the caller's transaction —, `seal_pending`,
//! which chains committed events (the sealer job's one step), and `verify_chain`.

use super::action::AuditAction;
use chrono::{NaiveDateTime, Timelike, Utc};
use diesel::QueryResult;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::bounds::{IDENTIFIER_MAX_CHARS, TEXT_MAX_CHARS, bound, bound_json, bound_opt};
use super::repo::{self, AuditEventRow, Seal};
use crate::db::DbConn;
use crate::domain::canonical_json::to_canonical_string;
use crate::domain::hash_chain::{ChainVerifier, ChainedEvent, VerifyReport, chain_hash};
use crate::features::proposals::repo::ProposalRow;

/// How the recorded attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Denied,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Denied => "denied",
            Outcome::Failure => "failure",
        }
    }
}

/// Who acts, in which hat, from where: the part of every event that comes from the request.
#[derive(Debug, Clone, Default)]
pub struct AuditContext {
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub organization_id: Option<String>,
    pub hat: Option<String>,
    pub acting: bool,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
}

impl AuditContext {
    /// Events the service raises itself (CLI commands, sweepers), with no person behind them.
    pub fn system(request_id: Option<String>) -> Self {
        Self {
            actor_username: Some("system".into()),
            request_id,
            ..Self::default()
        }
    }

    /// Starts an event about `entity_type`/`entity_id`, successful unless told otherwise.
    /// `action` is an [`super::AuditAction`] (or, in code not yet moved to it, its stored name).
    pub fn event(
        &self,
        action: impl super::action::ActionName,
        entity_type: &str,
        entity_id: Option<&str>,
    ) -> NewAuditEvent {
        NewAuditEvent {
            context: self.clone(),
            action: action.action_name().to_owned(),
            entity_type: entity_type.to_owned(),
            entity_id: entity_id.map(str::to_owned),
            outcome: Outcome::Success,
            reason: None,
            before: None,
            after: None,
        }
    }
}

/// The audit context of an automatic step — a round closing on its last answer or at its deadline, approval
/// steps instantiated on entering review, a proposal moving on once its last blocking flag ended. DESIGN.md §7:
/// the system is the actor, never the person whose request happened to set it off, and every event names the
/// triggering event (its id, action and actor) in its `reason`. A separate type, so an automatic step cannot
/// be handed a person's context by mistake.
#[derive(Debug, Clone)]
pub struct Automatic {
    context: AuditContext,
    trigger: String,
}

impl Automatic {
    /// The automatic steps that follow `trigger`, an event appended in the same transaction (same request id).
    pub fn after(trigger: &AuditEventRow) -> Self {
        Self {
            context: AuditContext::system(trigger.request_id.clone()),
            trigger: format!(
                "automatic, triggered by audit event {} (`{}` by {})",
                trigger.id,
                trigger.action,
                trigger
                    .actor_username
                    .as_deref()
                    .or(trigger.actor_id.as_deref())
                    .unwrap_or("system"),
            ),
        }
    }

    /// Starts an event of the automatic step: the system's, with the trigger as its reason.
    pub fn event(
        &self,
        action: impl super::action::ActionName,
        entity_type: &str,
        entity_id: Option<&str>,
    ) -> NewAuditEvent {
        self.context
            .event(action, entity_type, entity_id)
            .reason(self.trigger.clone())
    }
}

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub context: AuditContext,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl NewAuditEvent {
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn before(mut self, value: serde_json::Value) -> Self {
        self.before = Some(value);
        self
    }
    pub fn after(mut self, value: serde_json::Value) -> Self {
        self.after = Some(value);
        self
    }
}

/// RFC 3339 UTC with exactly six fractional digits: the form hashed and shown.
pub fn format_timestamp(ts: &NaiveDateTime) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Now, truncated to the microseconds both databases store, so a stored event re-hashes identically.
pub fn now_micros() -> NaiveDateTime {
    let now = Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// The hashed content of `row` at chain position `seq` (its own, once sealed).
pub fn to_chained_at(row: &AuditEventRow, seq: i64) -> ChainedEvent {
    ChainedEvent {
        seq,
        id: row.id.clone(),
        occurred_at: format_timestamp(&row.occurred_at),
        actor_id: row.actor_id.clone(),
        actor_username: row.actor_username.clone(),
        organization_id: row.organization_id.clone(),
        hat: row.hat.clone(),
        acting: row.acting,
        action: row.action.clone(),
        entity_type: row.entity_type.clone(),
        entity_id: row.entity_id.clone(),
        request_id: row.request_id.clone(),
        client_addr: row.client_addr.clone(),
        outcome: row.outcome.clone(),
        reason: row.reason.clone(),
        before_state: row.before_state.clone(),
        after_state: row.after_state.clone(),
    }
}

/// The chained content of a sealed event (an unsealed one has no position yet: 0, which never verifies).
pub fn to_chained(row: &AuditEventRow) -> ChainedEvent {
    to_chained_at(row, row.seq.unwrap_or(0))
}

/// The row an event is stored as: every field bounded, its id and time given; not yet numbered or sealed.
pub fn event_row(event: NewAuditEvent) -> AuditEventRow {
    let ctx = event.context;
    // The trail is append-only forever: every field is bounded here, whoever built the event.
    let (id_max, text_max) = (IDENTIFIER_MAX_CHARS, TEXT_MAX_CHARS);
    let state = |value: Option<serde_json::Value>| {
        value.map(|mut v| {
            bound_json(&mut v, text_max);
            to_canonical_string(&v)
        })
    };
    AuditEventRow {
        event_no: 0,
        seq: None,
        id: uuid::Uuid::now_v7().to_string(),
        occurred_at: now_micros(),
        actor_id: bound_opt(ctx.actor_id, id_max),
        actor_username: bound_opt(ctx.actor_username, id_max),
        organization_id: bound_opt(ctx.organization_id, id_max),
        hat: bound_opt(ctx.hat, id_max),
        acting: ctx.acting,
        action: bound(event.action, id_max),
        entity_type: bound(event.entity_type, id_max),
        entity_id: bound_opt(event.entity_id, id_max),
        request_id: bound_opt(ctx.request_id, id_max),
        client_addr: bound_opt(ctx.client_addr, id_max),
        outcome: event.outcome.as_str().to_owned(),
        reason: bound_opt(event.reason, text_max),
        before_state: state(event.before),
        after_state: state(event.after),
        prev_hash: None,
        hash: None,
    }
}

/// Appends one event on `conn`, which must be inside the write transaction of the change it records: all or
/// nothing with the change itself. The event is written unsealed — no chain position or hash yet, and no
/// lock shared by every writer — and [`seal_pending`] chains it once committed (within
/// `audit.seal_interval_ms`, the sealer job's period).
pub fn append(conn: &mut DbConn, event: NewAuditEvent) -> QueryResult<AuditEventRow> {
    append_concerning(conn, event, None)
}

/// [`append`] for an event about `proposal`, given as the caller holds it after the change (its notifications
/// then do not read it again).
pub fn append_concerning(
    conn: &mut DbConn,
    event: NewAuditEvent,
    proposal: Option<&ProposalRow>,
) -> QueryResult<AuditEventRow> {
    let mut row = event_row(event);
    row.event_no = repo::insert_event(conn, &row.insertable())?;
    crate::features::notifications::outbox::capture(conn, &row, proposal)?;
    Ok(row)
}

/// The values of `row` for a statement that writes events with the changes they record, in the order of
/// `repo::EVENT_COLUMNS`; [`appended`] must follow on the same transaction when it was written.
pub fn event_fields(row: &AuditEventRow) -> crate::db::cached::CachedSql<'static> {
    repo::event_fields(&row.insertable())
}

/// What follows an event's insert on its transaction, for a statement that inserted it with the change it
/// records ([`event_fields`]): the notifications it gives rise to.
pub fn appended(conn: &mut DbConn, row: &AuditEventRow) -> QueryResult<()> {
    crate::features::notifications::outbox::capture(conn, row, None)
}

/// Most events one sealing transaction chains (the next takes the rest).
const SEAL_BATCH: i64 = 2_000;

/// Whether [`seal_pending`] waits for another sealer (PostgreSQL) or leaves the work to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenBusy {
    /// Wait for the other sealer, then seal what is left: on return every event committed before the call
    /// is sealed (tests, `audit verify --seal`).
    Wait,
    /// Return at once: the sealer already running takes the work (the periodic job on several instances).
    Skip,
}

/// Chains every committed unsealed event, in the order the sealer sees them committed (by `event_no`
/// within one pass): each gets the next chain position and `hash = SHA-256(prev_hash ‖ content)` exactly as
/// an append used to, and the head moves, all in one transaction per batch under the head lock (so two
/// sealers, on one instance or several, never both chain an event). Returns how many events this call sealed.
pub fn seal_pending(conn: &mut DbConn, when_busy: WhenBusy) -> QueryResult<u64> {
    let mut sealed = 0;
    loop {
        let batch = crate::db::write_tx(conn, |tx| seal_batch(tx, when_busy))?;
        sealed += batch as u64;
        if batch < SEAL_BATCH as usize {
            return Ok(sealed);
        }
    }
}

fn seal_batch(conn: &mut DbConn, when_busy: WhenBusy) -> QueryResult<usize> {
    let Some(head) = repo::lock_head(conn, when_busy == WhenBusy::Skip)? else {
        return Ok(0);
    };
    let rows = repo::unsealed(conn, SEAL_BATCH)?;
    if rows.is_empty() {
        return Ok(0);
    }
    let (mut seq, mut prev_hash) = (head.seq, head.hash);
    let mut seals = Vec::with_capacity(rows.len());
    for row in &rows {
        seq += 1;
        let hash = chain_hash(&prev_hash, &to_chained_at(row, seq));
        seals.push(Seal {
            event_no: row.event_no,
            seq,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
    }
    repo::write_seals(conn, &seals)?;
    repo::move_head(conn, seq, &prev_hash)?;
    Ok(rows.len())
}

/// The events not sealed yet: how many, and how long the oldest has waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsealedTail {
    pub events: u64,
    pub oldest_age_ms: Option<i64>,
}

pub fn unsealed_tail(conn: &mut DbConn) -> QueryResult<UnsealedTail> {
    let (count, oldest) = repo::unsealed_tail(conn)?;
    Ok(UnsealedTail {
        events: u64::try_from(count).unwrap_or(0),
        oldest_age_ms: oldest.map(|t| (now_micros() - t).num_milliseconds().max(0)),
    })
}

/// Recomputes the sealed chain in pages, in one snapshot (so concurrent sealing cannot make an intact chain
/// look broken), and reports the unsealed tail beside it. Sealed events beyond the stored head (a head moved
/// back to hide them) also count as a break.
pub fn verify_chain(conn: &mut DbConn) -> QueryResult<VerifyReport> {
    crate::db::snapshot_tx(conn, verify_in_snapshot)
}

fn verify_in_snapshot(conn: &mut DbConn) -> QueryResult<VerifyReport> {
    const PAGE: i64 = 1_000;
    let head = repo::read_head(conn)?;
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let rows = repo::events_after(conn, after, head.seq, PAGE)?;
        for row in &rows {
            verifier.check(
                &to_chained(row),
                row.prev_hash.as_deref().unwrap_or_default(),
                row.hash.as_deref().unwrap_or_default(),
            );
        }
        match rows.last().and_then(|last| last.seq) {
            Some(last) if rows.len() as i64 == PAGE => after = last,
            _ => break,
        }
    }
    let mut report = verifier.finish(head.seq, &head.hash);
    if report.intact && repo::max_seq(conn)? > head.seq {
        report.intact = false;
        report.first_broken_seq = Some(head.seq + 1);
    }
    let tail = unsealed_tail(conn)?;
    report.unsealed_events = tail.events;
    report.oldest_unsealed_age_ms = tail.oldest_age_ms;
    Ok(report)
}

/// Reads audit events for `actor` (every read is itself audited, in the same transaction). An `admin` sees
/// only their own domain (organisations, users, hats, sessions); an `auditor` sees everything.
pub fn list_events(
    conn: &mut DbConn,
    actor: &crate::access::Actor,
    query: &super::dto::EventQuery,
    before_event_no: Option<i64>,
    limit: u32,
) -> crate::error::AppResult<Vec<super::dto::AuditEvent>> {
    let filter = repo::EventFilter {
        entity_type: query.entity_type.clone(),
        entity_id: query.entity_id.clone(),
        actor_id: query.actor_id.clone(),
        hat: query.hat.clone(),
        action: query.action.clone(),
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
        ..repo::EventFilter::default()
    };
    let described = serde_json::json!({
        "entity_type": query.entity_type, "entity_id": query.entity_id, "actor_id": query.actor_id,
        "hat": query.hat, "action": query.action, "before_event_no": before_event_no,
    });
    read_events(conn, actor, filter, described, before_event_no, limit)
}

/// The events recorded on any of `entity_ids` (a proposal with its flags and reports, whose ids the caller read
/// through those features), newest first: the console's proposal history. Same access scope and `audit.read`
/// record as [`list_events`].
pub fn list_events_of_entities(
    conn: &mut DbConn,
    actor: &crate::access::Actor,
    entity_ids: Vec<String>,
    before_event_no: Option<i64>,
    limit: u32,
) -> crate::error::AppResult<Vec<super::dto::AuditEvent>> {
    let described = serde_json::json!({"entity_ids": entity_ids, "before_event_no": before_event_no});
    let filter = repo::EventFilter {
        entity_ids: Some(entity_ids),
        ..repo::EventFilter::default()
    };
    read_events(conn, actor, filter, described, before_event_no, limit)
}

/// One page of events under the caller's audit scope (an admin sees its own domain), recorded as `audit.read`
/// with what was asked (`described`) and how many came back; `limit + 1` rows are returned so callers see
/// whether there is more.
fn read_events(
    conn: &mut DbConn,
    actor: &crate::access::Actor,
    mut filter: repo::EventFilter,
    mut described: serde_json::Value,
    before_event_no: Option<i64>,
    limit: u32,
) -> crate::error::AppResult<Vec<super::dto::AuditEvent>> {
    let scope = actor.hat().and_then(crate::access::audit_entity_scope);
    filter.entity_types = scope.map(|types| types.iter().map(|t| (*t).to_owned()).collect());
    crate::db::write_tx(conn, |tx| {
        let rows = repo::list_events(tx, &filter, before_event_no, i64::from(limit) + 1)?;
        described["returned"] = serde_json::json!(rows.len().min(limit as usize));
        append(
            tx,
            actor
                .audit()
                .event(AuditAction::AuditRead, "audit_log", None)
                .after(described.clone()),
        )?;
        Ok(rows.into_iter().map(super::dto::AuditEvent::from).collect())
    })
}

/// Verifies the chain, then records that it was verified (and with what result).
pub fn verify_and_record(
    conn: &mut DbConn,
    actor: &crate::access::Actor,
) -> crate::error::AppResult<VerifyReport> {
    let report = verify_chain(conn)?;
    crate::db::write_tx(conn, |tx| {
        append(
            tx,
            actor
                .audit()
                .event(AuditAction::AuditVerify, "audit_log", None)
                .after(serde_json::to_value(&report).unwrap_or_default()),
        )
    })?;
    Ok(report)
}

/// The current head, recorded as read.
pub fn checkpoint(
    conn: &mut DbConn,
    actor: &crate::access::Actor,
) -> crate::error::AppResult<super::dto::Checkpoint> {
    crate::db::write_tx(conn, |tx| {
        let head = repo::read_head(tx)?;
        let occurred = repo::find_event(tx, head.seq)?.map(|e| e.occurred_at.and_utc());
        let checkpoint = super::dto::Checkpoint {
            head_seq: head.seq,
            head_hash: head.hash,
            head_occurred_at: occurred,
            taken_at: Utc::now(),
        };
        append(
            tx,
            actor
                .audit()
                .event(AuditAction::AuditCheckpoint, "audit_log", None)
                .after(
                    serde_json::json!({"head_seq": checkpoint.head_seq, "head_hash": checkpoint.head_hash}),
                ),
        )?;
        Ok(checkpoint)
    })
}

/// The stored hash of event `seq` (`None` when there is no such event): compared with a checkpoint kept
/// outside the service to prove nothing up to it was rewritten.
pub fn hash_at(conn: &mut DbConn, seq: i64) -> QueryResult<Option<String>> {
    repo::hash_at(conn, seq)
}
