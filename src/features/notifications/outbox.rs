//! The transactional outbox: `capture` turns an audit event into notifications inside the transaction that
//! records it (so a rollback takes them along and a commit makes them durable before anyone is told), with
//! recipients computed there and then, one delivery row per recipient and channel.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use diesel::prelude::*;
use serde_json::{Value, json};

use super::kinds::{Kind, kinds_for};
use super::recipients::{self, EventFacts, Recipients};
use super::repo::{self, DeliveryRow, EventRow, FeedRow};
use crate::db::DbConn;
use crate::db::schema::reports;
use crate::domain::status::{DeliveryChannel, DeliveryStatus, EmailMode};
use crate::features::audit::repo::AuditEventRow;
use crate::features::proposals::repo::ProposalRow;

/// Called by `audit::append` after every insert, on its transaction: records the notifications the event
/// gives rise to. Most events give none and cost one match. `known`: the proposal as the caller holds it after
/// the change the event records, used instead of reading it again when the event is about it.
pub fn capture(conn: &mut DbConn, event: &AuditEventRow, known: Option<&ProposalRow>) -> QueryResult<()> {
    if !super::kinds::watched(&event.action) {
        return Ok(());
    }
    let after: Option<Value> = event
        .after_state
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok());
    let kinds = kinds_for(&event.action, &event.outcome, after.as_ref());
    if kinds.is_empty() {
        return Ok(());
    }
    let now = event.occurred_at;
    if event.action == "hat.grant_request" {
        let r = recipients::second_administrators(conn, event.actor_id.as_deref(), now)?;
        let link = "/api/v1/hat-grant-requests".to_owned();
        let summary = Kind::HatGrantPending.summary("");
        let source = Source {
            audit_event_id: Some(&event.id),
            dedupe_key: None,
            entity_type: &event.entity_type,
            entity_id: event.entity_id.as_deref(),
        };
        enqueue(
            conn,
            Kind::HatGrantPending,
            &source,
            None,
            &summary,
            &link,
            &r,
            now,
        )?;
        return Ok(());
    }
    let Some(proposal) = proposal_of(conn, event, after.as_ref(), known)? else {
        return Ok(());
    };
    let facts = EventFacts {
        organizations: organizations_named(&event.action, after.as_ref()),
        flag_id: (event.entity_type == "flag")
            .then(|| event.entity_id.clone())
            .flatten(),
        actor_id: event.actor_id.clone(),
    };
    let link = match event.entity_type.as_str() {
        "report" => format!("/api/v1/proposals/{}/reports", proposal.id),
        _ => format!("/api/v1/proposals/{}", proposal.id),
    };
    for kind in kinds {
        let r = recipients::for_proposal(conn, kind, &proposal, &facts, now)?;
        let summary = kind.summary(&reference_of(&proposal));
        let source = Source {
            audit_event_id: Some(&event.id),
            dedupe_key: None,
            entity_type: &event.entity_type,
            entity_id: event.entity_id.as_deref(),
        };
        enqueue(conn, kind, &source, Some(&proposal), &summary, &link, &r, now)?;
    }
    Ok(())
}

/// Where a notification comes from.
pub struct Source<'a> {
    pub audit_event_id: Option<&'a str>,
    /// Reminders: at most one event per key.
    pub dedupe_key: Option<&'a str>,
    pub entity_type: &'a str,
    pub entity_id: Option<&'a str>,
}

pub fn reference_of(p: &ProposalRow) -> String {
    p.reference
        .clone()
        .unwrap_or_else(|| format!("\u{201c}{}\u{201d}", p.title))
}

fn proposal_of(
    conn: &mut DbConn,
    event: &AuditEventRow,
    after: Option<&Value>,
    known: Option<&ProposalRow>,
) -> QueryResult<Option<ProposalRow>> {
    let id = match event.entity_type.as_str() {
        "proposal" => event.entity_id.clone(),
        "flag" => after
            .and_then(|a| a.get("proposal_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        "report" => match &event.entity_id {
            Some(report_id) => reports::table
                .find(report_id)
                .select(reports::proposal_id)
                .first::<String>(conn)
                .optional()?,
            None => None,
        },
        _ => None,
    };
    match (id, known) {
        (Some(id), Some(known)) if known.id == id => Ok(Some(known.clone())),
        (Some(id), _) => crate::features::proposals::repo::find_proposal(conn, &id),
        (None, _) => Ok(None),
    }
}

/// Organisations an event names: the consultees asked, the organisation added, those who lapsed.
fn organizations_named(action: &str, after: Option<&Value>) -> Vec<String> {
    let Some(after) = after else { return Vec::new() };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    match action {
        "consultation.open" => after
            .get("consultees")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.get("organization_id").and_then(Value::as_str))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        "consultation.add_consultee" => after
            .get("organization_id")
            .and_then(Value::as_str)
            .map(|o| vec![o.to_owned()])
            .unwrap_or_default(),
        "consultation.lapse" => strings(after.get("lapsed")),
        _ => Vec::new(),
    }
}

/// Records one notification event and its deliveries: a feed item and an email (per the reader's preference)
/// for every user, a webhook delivery for every active endpoint of every organisation. Nothing when nobody is
/// to be told. Returns the event id.
#[expect(clippy::too_many_arguments, reason = "the parts of one outbox record")]
pub fn enqueue(
    conn: &mut DbConn,
    kind: Kind,
    source: &Source<'_>,
    proposal: Option<&ProposalRow>,
    summary: &str,
    link: &str,
    r: &Recipients,
    now: NaiveDateTime,
) -> QueryResult<Option<String>> {
    if r.is_empty() {
        return Ok(None);
    }
    let event_id = uuid::Uuid::now_v7().to_string();
    let payload = json!({
        "event_id": event_id,
        "kind": kind.as_str(),
        "entity_type": source.entity_type,
        "entity_id": source.entity_id,
        "proposal_id": proposal.map(|p| p.id.clone()),
        "proposal_reference": proposal.and_then(|p| p.reference.clone()),
        "summary": summary,
        "link": link,
    });
    repo::insert_event(
        conn,
        &EventRow {
            id: event_id.clone(),
            kind,
            audit_event_id: source.audit_event_id.map(str::to_owned),
            dedupe_key: source.dedupe_key.map(str::to_owned),
            entity_type: source.entity_type.to_owned(),
            entity_id: source.entity_id.map(str::to_owned),
            proposal_id: proposal.map(|p| p.id.clone()),
            summary: summary.to_owned(),
            link: link.to_owned(),
            payload: payload.to_string(),
            created_at: now,
        },
    )?;
    let delivery = |channel: DeliveryChannel,
                    user_id: Option<&str>,
                    webhook_id: Option<&str>,
                    reason: &str,
                    digest: bool| {
        DeliveryRow {
            id: uuid::Uuid::now_v7().to_string(),
            event_id: event_id.clone(),
            channel,
            user_id: user_id.map(str::to_owned),
            webhook_id: webhook_id.map(str::to_owned),
            reason: reason.to_owned(),
            digest,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            locked_until: None,
            locked_by: None,
            last_error: None,
            last_status_code: None,
            delivered_at: None,
            created_at: now,
        }
    };
    let ids: Vec<&str> = r.users.keys().map(|user_id| user_id.as_str()).collect();
    let modes = repo::email_modes(conn, &ids)?;
    let mut feed = Vec::with_capacity(r.users.len());
    let mut deliveries = Vec::with_capacity(r.users.len());
    for (user_id, reason) in &r.users {
        feed.push(FeedRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.clone(),
            event_id: event_id.clone(),
            kind,
            summary: summary.to_owned(),
            reason: reason.clone(),
            link: link.to_owned(),
            read_at: None,
            created_at: now,
        });
        // No stored preference: immediate (an unknown stored one fails the query, never falls back to this).
        let mode = modes.get(user_id).copied().unwrap_or(EmailMode::Immediate);
        if mode != EmailMode::Off {
            deliveries.push(delivery(
                DeliveryChannel::Email,
                Some(user_id),
                None,
                reason,
                mode == EmailMode::DailyDigest,
            ));
        }
    }
    let orgs: Vec<&str> = r.organizations.keys().map(String::as_str).collect();
    for hook in repo::active_webhooks_of(conn, &orgs)? {
        if let Some(reason) = r.organizations.get(&hook.organization_id) {
            deliveries.push(delivery(
                DeliveryChannel::Webhook,
                None,
                Some(&hook.id),
                reason,
                false,
            ));
        }
    }
    repo::insert_feed_items(conn, &feed)?;
    repo::insert_deliveries(conn, &deliveries)?;
    Ok(Some(event_id))
}

/// Whether a reminder with this key was recorded already (reminders are idempotent).
pub fn reminded(conn: &mut DbConn, key: &str) -> QueryResult<bool> {
    repo::event_with_dedupe_key_exists(conn, key)
}

/// Records a reminder's key with no deliveries (nobody was to be told), so it is not recomputed.
pub fn mark_reminded(
    conn: &mut DbConn,
    kind: Kind,
    source: &Source<'_>,
    summary: &str,
    link: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    repo::insert_event(
        conn,
        &EventRow {
            id: uuid::Uuid::now_v7().to_string(),
            kind,
            audit_event_id: None,
            dedupe_key: source.dedupe_key.map(str::to_owned),
            entity_type: source.entity_type.to_owned(),
            entity_id: source.entity_id.map(str::to_owned),
            proposal_id: None,
            summary: summary.to_owned(),
            link: link.to_owned(),
            payload: "{}".into(),
            created_at: now,
        },
    )
}
