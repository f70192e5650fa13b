//! Notifications no audit event triggers: a consultation deadline within 24 hours, an implementation's
//! completion report due within 7 days or overdue (past the pool's maximum duration). Idempotent: one event per round or proposal and kind
//! (a unique `dedupe_key`), so every instance may run it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::kinds::Kind;
use super::outbox::{self, Source};
use super::recipients::{self, EventFacts};
use crate::db::DbConn;
use crate::db::schema::consultation_rounds;
use crate::error::AppResult;

/// Days before an implementation's due date that its unit is told the completion report is due.
const REPORT_DUE_NOTICE_DAYS: i64 = 7;

/// One pass over everything that may need a reminder.
pub fn run(conn: &mut DbConn, now: NaiveDateTime) -> AppResult<()> {
    let soon: Vec<(String, String)> = consultation_rounds::table
        .filter(consultation_rounds::closed_at.is_null())
        .filter(consultation_rounds::deadline.gt(now))
        .filter(consultation_rounds::deadline.le(now + chrono::Duration::hours(24)))
        .select((consultation_rounds::id, consultation_rounds::proposal_id))
        .load(conn)?;
    for (round_id, proposal_id) in soon {
        remind(
            conn,
            Kind::ConsultationDeadlineSoon,
            &format!("deadline_soon:{round_id}"),
            &proposal_id,
            "consultation_round",
            &round_id,
            now,
        )?;
    }
    let today = now.date();
    for (proposal, due) in crate::features::implementation::service::implementation_due_dates(conn)? {
        let (kind, key) = if due < today {
            (Kind::ReportOverdue, format!("report_overdue:{}", proposal.id))
        } else if due <= today + chrono::Duration::days(REPORT_DUE_NOTICE_DAYS) {
            (Kind::ReportDue, format!("report_due:{}", proposal.id))
        } else {
            continue;
        };
        remind(conn, kind, &key, &proposal.id, "proposal", &proposal.id, now)?;
    }
    Ok(())
}

fn remind(
    conn: &mut DbConn,
    kind: Kind,
    key: &str,
    proposal_id: &str,
    entity_type: &str,
    entity_id: &str,
    now: NaiveDateTime,
) -> AppResult<()> {
    if outbox::reminded(conn, key)? {
        return Ok(());
    }
    let result = crate::db::write_tx(conn, |tx| {
        // Checked again inside the transaction; the unique key settles a race between instances.
        if outbox::reminded(tx, key)? {
            return Ok(());
        }
        let Some(proposal) = crate::features::proposals::repo::find_proposal(tx, proposal_id)? else {
            return Ok(());
        };
        let r = recipients::for_proposal(tx, kind, &proposal, &EventFacts::default(), now)?;
        let source = Source {
            audit_event_id: None,
            dedupe_key: Some(key),
            entity_type,
            entity_id: Some(entity_id),
        };
        let link = format!("/api/v1/proposals/{}", proposal.id);
        let summary = kind.summary(&outbox::reference_of(&proposal));
        // An event with nobody to tell still records the key, so the reminder is not recomputed every pass.
        if outbox::enqueue(tx, kind, &source, Some(&proposal), &summary, &link, &r, now)?.is_none() {
            outbox::mark_reminded(tx, kind, &source, &summary, &link, now)?;
        }
        Ok::<_, crate::error::AppError>(())
    });
    if let Err(e) = result {
        tracing::debug!(key, error = %e, "reminder not recorded (another instance may have)");
    }
    Ok(())
}
