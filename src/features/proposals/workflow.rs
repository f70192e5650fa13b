//! The one owner of a proposal's state: the only code that changes `proposals.state`. Every use case that moves
//! a proposal (edit, submit, revise, withdraw, round closing, flags ending, approval decisions, payments, report
//! acceptance, cancellation, close-out) locks it here with the version it expects, asks the lifecycle table
//! (`domain::lifecycle`) for the transition, and hands the change back here to be applied: state, version,
//! timestamps, the audit event, and the side effects the lifecycle names (a new draft version on `revise` and
//! `return_for_revision`, a consultation round on entering `in_consultation`, approval steps on entering
//! `in_review`). Saving a proposal row is private to this module.

use diesel::prelude::*;
use serde_json::Value;

use super::repo::{self, ProposalRow, VersionRow};
use crate::access::Actor;
use crate::db::DbConn;
use crate::db::schema::proposals;
use crate::domain::ids::ProposalId;
use crate::domain::lifecycle::{self, Action, Performer, State};
use crate::domain::proposal::ProposalContent;
use crate::domain::status::VersionStatus;
use crate::error::{AppError, AppResult};
use crate::features::audit::repo::AuditEventRow;
use crate::features::audit::{self, AuditAction, AuditContext, Automatic, NewAuditEvent, now_micros};

/// Who performs a change: a person (their request's audit context), or the service itself after a trigger.
#[derive(Clone, Copy)]
pub enum By<'a> {
    /// A person in a hat; the side effects that follow are the system's, linked to this change's event.
    Person(&'a AuditContext),
    /// The system, in an automatic step after `Automatic`'s trigger; its side effects link the same trigger.
    System(&'a Automatic),
}

impl By<'_> {
    fn event(&self, action: AuditAction, entity_type: &str, id: &str) -> NewAuditEvent {
        match self {
            By::Person(ctx) => ctx.event(action, entity_type, Some(id)),
            By::System(auto) => auto.event(action, entity_type, Some(id)),
        }
    }
}

/// A proposal locked for the rest of the transaction, with its stored state already read as a [`State`].
#[derive(Debug)]
pub struct Locked {
    row: ProposalRow,
    state: State,
}

/// What the audit event of a change records besides its action (the state afterwards is passed to the
/// builder, so callers never read a half-changed row).
#[derive(Debug, Default)]
pub struct Record {
    /// The entity the event is about when it is not the proposal (e.g. the report whose acceptance completes it).
    pub entity: Option<(&'static str, String)>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
}

/// A change applied: where the proposal came from and went, and the audit event that recorded it.
#[derive(Debug)]
pub struct Applied {
    pub from: State,
    pub to: State,
    pub event: AuditEventRow,
}

impl Locked {
    /// The locked row as it stands (after [`apply`], as saved).
    pub fn row(&self) -> &ProposalRow {
        &self.row
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The proposal's id.
    pub fn id(&self) -> &str {
        &self.row.id
    }

    /// The columns a use case changes along with a transition (content copies, reference, submission facts),
    /// saved by [`apply`]. The state and the version are not among them: only [`apply`] sets those.
    pub fn columns(&mut self) -> Columns<'_> {
        Columns { row: &mut self.row }
    }

    /// The state `action` leads to from here, or the 409 naming what is allowed instead.
    pub fn check(&self, action: Action) -> AppResult<State> {
        Ok(lifecycle::transition(self.state, action)?.to)
    }
}

/// Write access to the non-lifecycle columns of a locked proposal.
pub struct Columns<'a> {
    row: &'a mut ProposalRow,
}

impl std::ops::Deref for Columns<'_> {
    type Target = ProposalRow;
    fn deref(&self) -> &ProposalRow {
        self.row
    }
}

impl Columns<'_> {
    pub fn set_reference(&mut self, reference: String, first_submitted_at: chrono::NaiveDateTime) {
        self.row.reference = Some(reference);
        self.row.first_submitted_at = Some(first_submitted_at);
    }
    pub fn set_submission(
        &mut self,
        by: &str,
        at: chrono::NaiveDateTime,
        settings_version: i32,
        requested_minor: i64,
    ) {
        self.row.submitted_by = Some(by.to_owned());
        self.row.submitted_at = Some(at);
        self.row.pool_settings_version = Some(settings_version);
        self.row.requested_minor = Some(requested_minor);
    }
    /// The searchable and filterable copies of the draft's content.
    pub fn set_content_copies(
        &mut self,
        title: String,
        search_text: String,
        sector_code: Option<String>,
        adm1_pcode: Option<String>,
        adm2_pcode: Option<String>,
        requested_minor: Option<i64>,
    ) {
        self.row.title = title;
        self.row.search_text = search_text;
        self.row.sector_code = sector_code;
        self.row.adm1_pcode = adm1_pcode;
        self.row.adm2_pcode = adm2_pcode;
        self.row.requested_minor = requested_minor;
    }
}

fn stored_state(row: &ProposalRow) -> AppResult<State> {
    row.lifecycle_state()
}

fn check_version(row: &ProposalRow, expected: Option<i64>) -> AppResult<()> {
    match expected {
        Some(v) if v != row.version => Err(AppError::stale(row.version)),
        _ => Ok(()),
    }
}

/// Locks the proposal (`FOR UPDATE` on PostgreSQL; SQLite's write lock already serializes) and reads it:
/// 404 when there is none, 412 when `expected` is given and the stored version moved on.
pub fn lock(tx: &mut DbConn, id: &ProposalId, expected: Option<i64>) -> AppResult<Locked> {
    let row = repo::find_proposal_for_update(tx, id.as_str())?
        .ok_or_else(|| AppError::not_found("No such proposal."))?;
    check_version(&row, expected)?;
    let state = stored_state(&row)?;
    Ok(Locked { row, state })
}

/// [`lock`] for a proposal the caller may see (404 otherwise, so existence does not leak).
pub fn lock_visible(
    tx: &mut DbConn,
    actor: &Actor,
    id: &ProposalId,
    expected: Option<i64>,
) -> AppResult<Locked> {
    let row = super::service::visible(actor, repo::find_proposal_for_update(tx, id.as_str())?)?;
    check_version(&row, expected)?;
    let state = stored_state(&row)?;
    Ok(Locked { row, state })
}

/// Applies `action` to a locked proposal: asks the lifecycle table (409), runs the lifecycle's side effects that
/// come before the save (a new draft version on `revise`/`return_for_revision`), saves state, version and
/// timestamps, appends the change's audit event (`record` sees the state afterwards), then runs the side effects
/// that follow it (a consultation round on entering `in_consultation`, approval steps on entering
/// `in_review`), audited as the system after the change (or after the system's own trigger).
pub fn apply(
    tx: &mut DbConn,
    locked: &mut Locked,
    action: Action,
    by: By<'_>,
    audit_action: AuditAction,
    record: impl FnOnce(&ProposalRow, State, State) -> Record,
) -> AppResult<Applied> {
    let transition = lifecycle::transition(locked.state, action)?;
    if !performer_admits(transition.performer, matches!(by, By::System(_))) {
        return Err(AppError::internal(format!(
            "`{action}` is the system's, but a person was about to perform it"
        )));
    }
    let (from, to) = (locked.state, transition.to);
    let now = now_micros();
    if matches!(action, Action::Revise | Action::ReturnForRevision) {
        let created_by = match by {
            By::Person(ctx) => ctx.actor_id.clone().unwrap_or_default(),
            By::System(_) => "system".to_owned(),
        };
        open_next_draft_version(tx, &mut locked.row, &created_by, now)?;
    }
    locked.row.state = to;
    locked.row.version += 1;
    locked.row.updated_at = now;
    locked.state = to;
    if save(tx, &locked.row)? != 1 {
        return Err(AppError::internal("a locked proposal row was not saved"));
    }
    let Record {
        entity,
        before,
        after,
        reason,
    } = record(&locked.row, from, to);
    let mut event = match &entity {
        Some((entity_type, id)) => by.event(audit_action, entity_type, id),
        None => by.event(audit_action, "proposal", &locked.row.id),
    };
    event.before = before;
    event.after = after;
    event.reason = merge_reason(reason, event.reason.take());
    let event = audit::append_concerning(tx, event, Some(&locked.row))?;
    let automatic = match by {
        By::Person(_) => Automatic::after(&event),
        By::System(auto) => auto.clone(),
    };
    if to != from && to == State::InConsultation {
        let (content, policy) = submitted_content_and_policy(tx, &locked.row)?;
        crate::features::consultation::service::open_round(tx, &automatic, &locked.row, &content, &policy)?;
    }
    if to != from && to == State::InReview {
        crate::features::approval::service::instantiate_steps(tx, &automatic, &locked.row)?;
    }
    Ok(Applied { from, to, event })
}

/// Whether a change by the system (`by_system`) or by a person may perform a row of `performer`: the
/// system's rows (a round closing) never by a person. Rows of a hat may follow automatically (the last
/// blocking flag ending moves the proposal on as the system).
fn performer_admits(performer: Performer, by_system: bool) -> bool {
    performer != Performer::System || by_system
}

/// The event's reason: the caller's, and for an automatic step the trigger it follows.
fn merge_reason(reason: Option<String>, trigger: Option<String>) -> Option<String> {
    match (reason, trigger) {
        (Some(r), Some(t)) => Some(format!("{r}; {t}")),
        (r, t) => r.or(t),
    }
}

fn submitted_content_and_policy(
    tx: &mut DbConn,
    row: &ProposalRow,
) -> AppResult<(ProposalContent, crate::domain::pool_policy::PoolPolicy)> {
    let version = repo::find_version(tx, &row.id, row.current_version)?
        .ok_or_else(|| AppError::internal("current version missing"))?;
    let content = serde_json::from_str(&version.content)
        .map_err(|e| AppError::internal(format!("stored content unreadable: {e}")))?;
    let pool = crate::features::pools::service::load(tx, &row.pool())?;
    Ok((content, pool.policy))
}

/// Opens the next version of a proposal as a draft copy of its current content (a return for revision from
/// review, or a revision its submitter starts from `flagged`) and points the proposal at it. The earlier
/// version stays as it was.
fn open_next_draft_version(
    tx: &mut DbConn,
    proposal: &mut ProposalRow,
    created_by: &str,
    now: chrono::NaiveDateTime,
) -> AppResult<()> {
    let current = repo::find_version(tx, &proposal.id, proposal.current_version)?
        .ok_or_else(|| AppError::internal("current version missing"))?;
    repo::insert_version(
        tx,
        &VersionRow {
            proposal_id: proposal.id.clone(),
            number: current.number + 1,
            status: VersionStatus::Draft,
            content: current.content,
            budget_total_minor: None,
            requested_minor: None,
            duration_days: None,
            waiver_reasons: None,
            pool_settings_version: None,
            created_by: created_by.to_owned(),
            created_at: now,
            submitted_by: None,
            submitted_at: None,
        },
    )?;
    proposal.current_version = current.number + 1;
    Ok(())
}

/// Replaces the whole row: every column's new value comes from [`apply`] (and [`Columns`]).
fn save(conn: &mut DbConn, row: &ProposalRow) -> QueryResult<usize> {
    diesel::update(proposals::table.find(&row.id))
        .set((
            proposals::reference.eq(&row.reference),
            proposals::state.eq(row.state.as_str()),
            proposals::current_version.eq(row.current_version),
            proposals::version.eq(row.version),
            proposals::title.eq(&row.title),
            proposals::search_text.eq(&row.search_text),
            proposals::sector_code.eq(&row.sector_code),
            proposals::adm1_pcode.eq(&row.adm1_pcode),
            proposals::adm2_pcode.eq(&row.adm2_pcode),
            proposals::requested_minor.eq(row.requested_minor),
            proposals::pool_settings_version.eq(row.pool_settings_version),
            proposals::updated_at.eq(row.updated_at),
            proposals::first_submitted_at.eq(row.first_submitted_at),
            proposals::submitted_at.eq(row.submitted_at),
            proposals::submitted_by.eq(&row.submitted_by),
        ))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_system_performs_the_system_rows() {
        assert!(performer_admits(Performer::System, true));
        assert!(!performer_admits(Performer::System, false));
        assert!(performer_admits(Performer::Hat(lifecycle::hat::HC), false));
        assert!(performer_admits(Performer::Hat(lifecycle::hat::CONSULTEE), true));
        assert!(performer_admits(Performer::ApprovalStepDecider, false));
        // Every row the system performs closes a round; nothing a person calls `apply` with can be one.
        for t in lifecycle::TRANSITIONS
            .iter()
            .filter(|t| t.performer == Performer::System)
        {
            assert!(matches!(
                t.action,
                Action::CloseConsultation | Action::FlagConsultation
            ));
        }
    }

    #[test]
    fn an_automatic_reason_keeps_its_trigger() {
        assert_eq!(merge_reason(None, None), None);
        assert_eq!(merge_reason(Some("why".into()), None).as_deref(), Some("why"));
        assert_eq!(
            merge_reason(None, Some("automatic, triggered by x".into())).as_deref(),
            Some("automatic, triggered by x")
        );
        assert_eq!(
            merge_reason(Some("why".into()), Some("automatic".into())).as_deref(),
            Some("why; automatic")
        );
    }
}
