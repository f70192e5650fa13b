//! Approval use cases: the step snapshot when a proposal enters review, decisions (in order, in the right hat
//! and scope, never on one's own organisation's proposal, multi-hat decisions acknowledged), the final approval
//! committing funds in the same transaction. The decision brief and turnaround are read models
//! (`features::read_models`).

use chrono::Duration;
use serde_json::json;

use super::dto::{Approval, DecisionInput, Step};
use super::repo::{self, StepRow};
use crate::access::{Actor, Hat};
use crate::db::{self, DbConn};
use crate::domain::approval_policy::plan_steps;
use crate::domain::ids::{ProposalId, StepId};
use crate::domain::lifecycle::Action;
use crate::domain::status::{Decision, StepStatus};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, AuditAction, Automatic, deny, now_micros};
use crate::features::ledger::service::{self as ledger, PoolRef, PostingDetails};
use crate::features::pools::service as pools;
use crate::features::proposals::repo::{self as proposals_repo, ProposalRow, VersionRow};
use crate::features::proposals::service::{load_visible, waived};
use crate::features::proposals::workflow::{self, By, Record};

pub(crate) fn current_version(tx: &mut DbConn, proposal: &ProposalRow) -> AppResult<VersionRow> {
    proposals_repo::find_version(tx, &proposal.id, proposal.current_version)?
        .ok_or_else(|| AppError::internal("current version missing"))
}

/// Instantiates the approval policy the proposal was checked against as concrete steps on its current
/// version; the first step opens now. Called whenever a proposal enters `in_review`: an automatic step,
/// audited as the system after the event that moved the proposal.
pub fn instantiate_steps(tx: &mut DbConn, ctx: &Automatic, proposal: &ProposalRow) -> AppResult<()> {
    let version = current_version(tx, proposal)?;
    if repo::steps_of(tx, &proposal.id)?
        .iter()
        .any(|s| s.version_number == version.number)
    {
        return Ok(()); // Flags cleared after a round: the version's steps exist already.
    }
    let pool_row = crate::features::pools::repo::find_pool(tx, &proposal.pool_id)?
        .ok_or_else(|| AppError::internal("proposal without pool"))?;
    let settings_version = version.pool_settings_version.unwrap_or(pool_row.settings_version);
    let pool = pools::load_version(tx, pool_row, settings_version)?;
    let amount = version.requested_minor.unwrap_or(0);
    let sector = proposal.sector_code.clone().unwrap_or_default();
    let plan = plan_steps(&pool.policy, amount, &sector, !waived(&version)?.is_empty())
        .map_err(|e| AppError::internal(format!("approval policy cannot be instantiated: {e:?}")))?;
    let now = now_micros();
    for (i, step) in plan.iter().enumerate() {
        let first = i == 0;
        repo::insert_step(
            tx,
            &StepRow {
                id: uuid::Uuid::now_v7().to_string(),
                proposal_id: proposal.id.clone(),
                version_number: version.number,
                position: i32::try_from(i).unwrap_or(0) + 1,
                hat: step.hat,
                reason: serde_json::to_string(&step.reason).unwrap_or_default(),
                financial: step.financial,
                sla_days: i32::try_from(step.sla_days).unwrap_or(5),
                status: StepStatus::Pending,
                opened_at: first.then_some(now),
                due_at: first.then(|| now + Duration::days(i64::from(step.sla_days))),
                overdue: false,
                decided_by: None,
                decided_hat: None,
                acting: false,
                decided_at: None,
                decision: None,
                comment: None,
                conditions: None,
                multi_hat_acknowledgement: None,
                created_at: now,
            },
        )?;
    }
    audit::append(
        tx,
        ctx.event(AuditAction::ApprovalStepsInstantiated, "proposal", Some(&proposal.id)).after(json!({
            "version": version.number, "pool_settings_version": settings_version,
            "steps": plan.iter().map(|s| json!({"hat": s.hat, "reason": s.reason, "sla_days": s.sla_days, "financial": s.financial})).collect::<Vec<_>>(),
        })),
    )?;
    Ok(())
}

fn step_view(row: &StepRow, current: bool, now: chrono::NaiveDateTime) -> AppResult<Step> {
    Ok(Step {
        id: row.id.clone(),
        version_number: row.version_number,
        position: row.position,
        hat: row.hat,
        reason: row.reason().map_err(AppError::internal)?,
        financial: row.financial,
        sla_days: row.sla_days,
        status: row.status,
        current,
        opened_at: row.opened_at.map(|t| t.and_utc()),
        due_at: row.due_at.map(|t| t.and_utc()),
        overdue: row.overdue || (row.status == StepStatus::Pending && row.due_at.is_some_and(|d| d < now)),
        decided_by: row.decided_by.clone(),
        decided_hat: row.decided_hat,
        acting: row.acting,
        decided_at: row.decided_at.map(|t| t.and_utc()),
        decision: row.decision,
        comment: row.comment.clone(),
        conditions: row.conditions.clone(),
        multi_hat_acknowledgement: row.multi_hat_acknowledgement.clone(),
    })
}

pub(crate) fn steps_view(
    tx: &mut DbConn,
    proposal: &ProposalRow,
    all_versions: bool,
) -> AppResult<Vec<Step>> {
    let now = now_micros();
    let rows = repo::steps_of(tx, &proposal.id)?;
    let current_id = rows
        .iter()
        .find(|s| {
            s.version_number == proposal.current_version
                && s.status == StepStatus::Pending
                && s.opened_at.is_some()
        })
        .map(|s| s.id.clone());
    rows.iter()
        .filter(|s| all_versions || s.version_number == proposal.current_version)
        .map(|s| step_view(s, Some(&s.id) == current_id.as_ref(), now))
        .collect()
}

pub fn get_approval(conn: &mut DbConn, actor: &Actor, proposal_id: &ProposalId) -> AppResult<Approval> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    Ok(Approval {
        proposal_id: proposal.id.clone(),
        state: proposal.lifecycle_state()?,
        version: proposal.version,
        steps: steps_view(conn, &proposal, true)?,
    })
}

fn lifecycle_action(decision: Decision, last: bool) -> Action {
    match (decision, last) {
        (Decision::Approve, false) => Action::ApproveStep,
        (Decision::Approve, true) => Action::FinalApprove,
        (Decision::Return, _) => Action::ReturnForRevision,
        (Decision::Reject, _) => Action::Reject,
    }
}

/// Decides a step. Checks, all under the proposal's lock, in this order: visibility (404), the step's hat
/// (403), scope (403), separation of duties (403; audited after the rollback), `If-Match` (412), the multi-hat acknowledgement on the steps
/// as they are now (422), state and order (409). The final approval commits the requested amount in the same transaction — an underfunded
/// pool refuses it with the available amount, and nothing changes.
pub fn decide(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
    step_id: &StepId,
    expected_version: i64,
    input: &DecisionInput,
) -> AppResult<Approval> {
    let trimmed = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
    };
    let comment = trimmed(&input.comment);
    let conditions = trimmed(&input.conditions);
    let acknowledgement = trimmed(&input.multi_hat_acknowledgement);
    if input.decision != Decision::Approve && comment.as_deref().is_none_or(|c| c.len() < 5) {
        return Err(AppError::invalid_field(
            "comment",
            "returning or rejecting needs the reasons (at least 5 characters)",
        ));
    }
    let hat = actor
        .hat()
        .ok_or_else(|| AppError::forbidden("No hat resolved."))?;
    let now = now_micros();
    // A refusal by an object-level rule, decided under the lock; audited after the rollback.
    let mut refused: Option<String> = None;
    let outcome = db::write_tx(conn, |tx| {
        let mut locked = workflow::lock_visible(tx, actor, proposal_id, None)?;
        let proposal = locked.row().clone();
        let all_steps = repo::steps_of(tx, proposal_id.as_str())?;
        let step = all_steps
            .iter()
            .find(|s| s.id == step_id.as_str())
            .ok_or_else(|| AppError::not_found("This proposal has no such approval step."))?;
        if let Some(message) = decider_refusal(actor, hat, step.hat, &proposal) {
            refused = Some(message.clone());
            return Err(AppError::forbidden(message));
        }
        if proposal.version != expected_version {
            return Err(AppError::stale(proposal.version));
        }
        // Read under the proposal's lock: a decision of this person in another hat that committed a moment
        // ago counts, so two racing decisions cannot both skip the acknowledgement.
        let decided_before = crate::access::needs_multi_hat_acknowledgement(
            &actor.user_id,
            proposal.current_version,
            all_steps
                .iter()
                .map(|s| (s.decided_by.as_deref(), s.version_number)),
        );
        if decided_before && acknowledgement.as_deref().is_none_or(|a| a.len() < 10) {
            return Err(AppError::validation(vec![FieldError::new(
                "multi_hat_acknowledgement",
                "you decided an earlier step of this version of the proposal in another hat; acknowledge deciding again (at least 10 characters)",
            )]));
        }
        let mut steps: Vec<StepRow> = all_steps
            .into_iter()
            .filter(|s| s.version_number == proposal.current_version)
            .collect();
        let index = steps
            .iter()
            .position(|s| s.id == step_id.as_str())
            .ok_or_else(|| AppError::conflict("This step belongs to an earlier version of the proposal."))?;
        let last = index + 1 == steps.len();
        let action = lifecycle_action(input.decision, last);
        locked.check(action)?;
        if steps[index].status != StepStatus::Pending {
            return Err(AppError::conflict(format!(
                "This step was decided already ({}).",
                steps[index].status
            )));
        }
        if let Some(first_open) = steps.iter().find(|s| s.status == StepStatus::Pending) {
            if first_open.id != step_id.as_str() {
                return Err(AppError::conflict(format!(
                    "Steps are decided in order: step {} (`{}`) comes first.",
                    first_open.position, first_open.hat
                )));
            }
        }
        // Money first (lock order: balance rows, then the audit head).
        let mut commitment = None;
        if input.decision == Decision::Approve && last {
            let version = current_version(tx, &proposal)?;
            let amount = version
                .requested_minor
                .ok_or_else(|| AppError::internal("submitted version without amount"))?;
            let pool = PoolRef::load(tx, &proposal.pool())?;
            let details = PostingDetails {
                memo: proposal.reference.clone(),
                ..Default::default()
            };
            let row = ledger::commit_funds(
                tx,
                &actor.audit(),
                &pool,
                &proposal.proposal_id(),
                amount,
                details,
            )?;
            commitment = Some(row.id);
            crate::features::implementation::service::create_tranches(tx, &proposal, &version, amount)?;
        }
        let acting = actor.audit().acting;
        {
            let step = &mut steps[index];
            step.status = match input.decision {
                Decision::Approve => StepStatus::Approved,
                Decision::Return => StepStatus::Returned,
                Decision::Reject => StepStatus::Rejected,
            };
            step.decided_by = Some(actor.user_id.clone());
            step.decided_hat = Some(hat);
            step.acting = acting;
            step.decided_at = Some(now);
            step.decision = Some(input.decision);
            step.comment = comment.clone();
            step.conditions = conditions.clone();
            step.multi_hat_acknowledgement = if decided_before {
                acknowledgement.clone()
            } else {
                None
            };
        }
        repo::save_step(tx, &steps[index])?;
        match (input.decision, last) {
            (Decision::Approve, false) => {
                let following = &mut steps[index + 1];
                following.opened_at = Some(now);
                following.due_at = Some(now + Duration::days(i64::from(following.sla_days)));
                repo::save_step(tx, following)?;
            }
            (Decision::Approve, true) => {}
            _ => {
                for later in steps.iter_mut().skip(index + 1) {
                    later.status = StepStatus::Superseded;
                    repo::save_step(tx, later)?;
                }
            }
        }
        // A return opens the next draft version (the workflow's side effect of `return_for_revision`).
        let step = &steps[index];
        let ctx = actor.audit();
        let applied = workflow::apply(
            tx,
            &mut locked,
            action,
            By::Person(&ctx),
            AuditAction::ApprovalDecide,
            |_, _, to| Record {
                after: Some(json!({
                    "step_id": step.id, "position": step.position, "hat": step.hat, "decision": input.decision,
                    "comment": comment, "conditions": conditions, "acting": acting,
                    "multi_hat_acknowledgement": step.multi_hat_acknowledgement, "state": to,
                    "commitment_transaction": commitment,
                })),
                ..Record::default()
            },
        )?;
        Ok(Approval {
            proposal_id: locked.id().to_owned(),
            state: applied.to,
            version: locked.row().version,
            steps: steps_view(tx, locked.row(), true)?,
        })
    });
    if let Some(message) = refused {
        return Err(deny(
            conn,
            actor,
            AuditAction::ApprovalDecide,
            "approval_step",
            step_id.as_str(),
            &message,
        ));
    }
    outcome
}

/// Why `actor`, in `hat`, may not decide a step in `step_hat` on `proposal`: the step's hat, the hat's area,
/// separation of duties. Read under the proposal's lock.
fn decider_refusal(actor: &Actor, hat: Hat, step_hat: Hat, proposal: &ProposalRow) -> Option<String> {
    if hat != step_hat {
        return Some(format!("This step is decided in the `{step_hat}` hat."));
    }
    let grants: Vec<&crate::access::HatGrant> = actor
        .acting_in
        .as_ref()
        .map(|r| r.grants.iter().collect())
        .unwrap_or_default();
    if !crate::access::grants_reach_adm1(&grants, proposal.adm1_pcode.as_deref()) {
        return Some("Your hat is limited to another area than this proposal's.".to_owned());
    }
    if !crate::access::may_decide_on(
        &actor.user_id,
        &actor.organization_id,
        &proposal.organization_id,
        &proposal.created_by,
        proposal.submitted_by.as_deref(),
    ) {
        return Some("Nobody decides on a proposal that they or their organisation submitted.".to_owned());
    }
    None
}
