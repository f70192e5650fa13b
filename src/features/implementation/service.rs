//! Implementation use cases: the tranche schedule at approval, reports and their acceptance, tranche payments
//! (idempotent; never by someone who approved the proposal), refunds, cancellation releasing what is unpaid,
//! and close-out releasing what is left. Money is always posted before other audit events (lock order).

use chrono::{Duration, NaiveDate, NaiveDateTime};
use serde_json::json;

use super::dto::{CloseRequest, NewDisbursement, NewRefund, NewReport, Report, ReportDecision, Tranche};
use super::repo::{self, CloseoutRow, PaymentRow, ReportRow, TrancheRow};
use crate::access::{Actor, Hat};
use crate::db::{self, DbConn};
use crate::domain::ids::{ProposalId, ReportId};
use crate::domain::ledger_rules::AccountKind;
use crate::domain::lifecycle::{Action, State};
use crate::domain::money::{Currency, format_amount, parse_amount, parse_positive_amount};
use crate::domain::proposal::PartnerKind;
use crate::domain::status::{ReportKind, ReportStatus, TrancheStatus};
use crate::domain::tranches::{PayFacts, payable_now, schedule};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::approval::dto::Task;
use crate::features::audit::{self, AuditAction, deny, now_micros};
use crate::features::ledger::idempotency::{self, IdempotentRequest, StoredResponse};
use crate::features::ledger::service::{self as ledger, PoolRef, PostingDetails};
use crate::features::pools::service as pools;
use crate::features::proposals::repo::{self as proposals_repo, ProposalRow, VersionRow};
use crate::features::proposals::service::load_visible;
use crate::features::proposals::workflow::{self, By, Record};

/// Creates the tranche schedule when a proposal is approved (same transaction as the commitment).
pub fn create_tranches(
    tx: &mut DbConn,
    proposal: &ProposalRow,
    version: &VersionRow,
    amount: i64,
) -> AppResult<()> {
    let pool_row = crate::features::pools::repo::find_pool(tx, &proposal.pool_id)?
        .ok_or_else(|| AppError::internal("proposal without pool"))?;
    let settings_version = version.pool_settings_version.unwrap_or(pool_row.settings_version);
    let pool = pools::load_version(tx, pool_row, settings_version)?;
    // An unreadable stored content (an unknown partner kind) is an error, never a schedule for no partner.
    let content = crate::features::proposals::service::read_content(version)?;
    let reimbursement = content
        .implementing_partner
        .is_some_and(|p| p.kind == PartnerKind::UnitItself);
    let now = now_micros();
    for (i, t) in schedule(amount, &pool.policy.tranche_plan, reimbursement)
        .iter()
        .enumerate()
    {
        repo::insert_tranche(
            tx,
            &TrancheRow {
                id: uuid::Uuid::now_v7().to_string(),
                proposal_id: proposal.id.clone(),
                number: i32::try_from(i).unwrap_or(0) + 1,
                percent: i32::try_from(t.percent).unwrap_or(100),
                amount_minor: t.amount_minor,
                condition: t.condition,
                status: TrancheStatus::Scheduled,
                paid_minor: 0,
                waive_reason: None,
                created_at: now,
            },
        )?;
    }
    Ok(())
}

fn facts(tx: &mut DbConn, proposal: &ProposalRow) -> AppResult<PayFacts> {
    let tranches = repo::tranches_of(tx, &proposal.id)?;
    facts_with(tx, proposal, &tranches)
}

/// [`facts`] for a proposal whose tranches the caller has just read.
fn facts_with(tx: &mut DbConn, proposal: &ProposalRow, tranches: &[TrancheRow]) -> AppResult<PayFacts> {
    let state = proposal.lifecycle_state()?;
    let reports = repo::reports_of(tx, &proposal.id)?;
    let accepted = |kind: ReportKind| {
        reports
            .iter()
            .any(|r| r.kind == kind && r.status == ReportStatus::Accepted)
    };
    Ok(PayFacts {
        payable_state: matches!(
            state,
            State::Approved | State::InImplementation | State::Completed
        ),
        progress_report_accepted: accepted(ReportKind::Progress),
        completion_report_accepted: accepted(ReportKind::Completion),
        accepted_expenditure_minor: reports
            .iter()
            .filter(|r| r.status == ReportStatus::Accepted)
            .filter_map(|r| r.expenditure_minor)
            .max()
            .unwrap_or(0),
        paid_total_minor: tranches.iter().map(|t| t.paid_minor).sum(),
    })
}

fn tranche_view(t: &TrancheRow, facts: &PayFacts, currency: Currency) -> Tranche {
    // Read as a `PayCondition` at the repo boundary: an unknown stored condition failed the query (a 500), it
    // never became "payable on approval".
    let condition = t.condition;
    let payable = if t.status == TrancheStatus::Scheduled {
        payable_now(condition, t.amount_minor, t.paid_minor, facts)
    } else {
        0
    };
    Tranche {
        number: t.number,
        percent: t.percent,
        amount: format_amount(t.amount_minor, currency),
        condition,
        status: t.status,
        paid: format_amount(t.paid_minor, currency),
        remaining: format_amount((t.amount_minor - t.paid_minor).max(0), currency),
        payable_now: format_amount(payable, currency),
        waive_reason: t.waive_reason.clone(),
    }
}

pub fn list_tranches(conn: &mut DbConn, actor: &Actor, proposal_id: &ProposalId) -> AppResult<Vec<Tranche>> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    let pool = PoolRef::load(conn, &proposal.pool())?;
    let tranches = repo::tranches_of(conn, proposal_id.as_str())?;
    let f = facts_with(conn, &proposal, &tranches)?;
    Ok(tranches
        .iter()
        .map(|t| tranche_view(t, &f, pool.currency))
        .collect())
}

/// `POST /proposals/{id}/tranches/{n}/disbursements`.
pub fn disbursement_request(
    conn: &mut DbConn,
    retention: Duration,
    actor: &Actor,
    proposal_id: &ProposalId,
    number: i32,
    input: &NewDisbursement,
    idem: &IdempotentRequest,
) -> AppResult<StoredResponse> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    let pool = PoolRef::load(conn, &proposal.pool())?;
    let mut errors = Vec::new();
    let amount = match parse_positive_amount(&input.amount, pool.currency) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(FieldError::new("amount", e.to_string()));
            None
        }
    };
    if input.payment_reference.trim().is_empty() || input.payment_reference.chars().count() > 200 {
        errors.push(FieldError::new("payment_reference", "must be 1–200 characters"));
    }
    if input.paid_on > now_micros().date() {
        errors.push(FieldError::new("paid_on", "must not be in the future"));
    }
    let (Some(amount), true) = (amount, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let ctx = actor.audit();
    let mut payer_approved = false;
    let outcome = idempotency::run(conn, idem, retention, |tx| {
        let mut locked = workflow::lock(tx, proposal_id, None)?;
        // Separation of duties, read under the proposal's lock: whoever decided an approval step on this
        // proposal does not pay it, even when their final approval committed a moment before this payment.
        if decided_a_step(tx, proposal_id, &actor.user_id)? {
            payer_approved = true;
            return Err(AppError::forbidden(PAYER_APPROVED));
        }
        let action = if locked.state() == State::Approved {
            Action::FirstDisbursement
        } else {
            Action::Disburse
        };
        locked.check(action)?;
        let tranches = repo::tranches_of(tx, proposal_id.as_str())?;
        let f = facts_with(tx, locked.row(), &tranches)?;
        let mut tranche = tranches
            .into_iter()
            .find(|t| t.number == number)
            .ok_or_else(|| AppError::not_found("This proposal has no tranche with this number."))?;
        if tranche.status != TrancheStatus::Scheduled {
            return Err(AppError::conflict(format!(
                "Tranche {number} is {}.",
                tranche.status
            )));
        }
        let remaining = tranche.amount_minor - tranche.paid_minor;
        if amount > remaining {
            return Err(AppError::invalid_field(
                "amount",
                format!(
                    "exceeds what remains of tranche {number}: {}",
                    format_amount(remaining, pool.currency)
                ),
            ));
        }
        let condition = tranche.condition;
        let payable = payable_now(condition, tranche.amount_minor, tranche.paid_minor, &f);
        if payable == 0 {
            return Err(AppError::conflict(format!(
                "Tranche {number} is not payable yet: its condition `{}` does not hold.",
                condition.as_str()
            ))
            .with_extension("condition", json!(condition)));
        }
        if amount > payable {
            return Err(AppError::invalid_field(
                "amount",
                format!(
                    "only {} is payable now against accepted reports",
                    format_amount(payable, pool.currency)
                ),
            ));
        }
        let details = PostingDetails {
            reference: Some(input.payment_reference.trim().to_owned()),
            memo: Some(format!("tranche {number}")),
            idempotency_key: Some(idem.ledger_key()),
            ..Default::default()
        };
        let posted = ledger::disburse(tx, &ctx, &pool, proposal_id, amount, details)?;
        let row = &posted.row;
        repo::insert_payment(
            tx,
            &PaymentRow {
                transaction_id: row.id.clone(),
                proposal_id: proposal_id.to_string(),
                tranche_number: number,
                amount_minor: amount,
                paid_on: input.paid_on,
                payment_reference: input.payment_reference.trim().to_owned(),
                paid_by: actor.user_id.clone(),
                created_at: now_micros(),
            },
        )?;
        tranche.paid_minor += amount;
        if tranche.paid_minor == tranche.amount_minor {
            tranche.status = TrancheStatus::Paid;
        }
        repo::save_tranche(tx, &tranche)?;
        workflow::apply(
            tx,
            &mut locked,
            action,
            By::Person(&ctx),
            AuditAction::ImplementationDisburse,
            |_, _, to| Record {
                after: Some(json!({
                    "tranche": number, "amount": format_amount(amount, pool.currency), "transaction_id": row.id, "state": to,
                })),
                ..Record::default()
            },
        )?;
        posted.stored()
    });
    if payer_approved {
        // The refusal rolled the payment back; the denial is recorded in its own transaction.
        return Err(deny(
            conn,
            actor,
            AuditAction::ImplementationDisburse,
            "proposal",
            proposal_id.as_str(),
            PAYER_APPROVED,
        ));
    }
    outcome
}

const PAYER_APPROVED: &str = "You decided an approval step of this proposal, so you cannot pay it.";

/// Whether `user_id` decided any approval step of the proposal (any version). Call under the proposal's lock.
fn decided_a_step(tx: &mut DbConn, proposal_id: &ProposalId, user_id: &str) -> AppResult<bool> {
    let deciders: Vec<String> = crate::features::approval::repo::steps_of(tx, proposal_id.as_str())?
        .into_iter()
        .filter_map(|s| s.decided_by)
        .collect();
    Ok(!crate::access::may_pay(user_id, &deciders))
}

/// `POST /proposals/{id}/refunds`: unspent money returned by the partner goes back to unallocated.
pub fn refund_request(
    conn: &mut DbConn,
    retention: Duration,
    actor: &Actor,
    proposal_id: &ProposalId,
    input: &NewRefund,
    idem: &IdempotentRequest,
) -> AppResult<StoredResponse> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    let pool = PoolRef::load(conn, &proposal.pool())?;
    let amount = parse_positive_amount(&input.amount, pool.currency)
        .map_err(|e| AppError::invalid_field("amount", e.to_string()))?;
    if input.reason.trim().len() < 5 {
        return Err(AppError::invalid_field(
            "reason",
            "must say what the refund is (at least 5 characters)",
        ));
    }
    let ctx = actor.audit();
    idempotency::run(conn, idem, retention, |tx| {
        db::lock_row(tx, "proposals", proposal_id.as_str())?;
        let details = PostingDetails {
            reference: input.reference.clone().filter(|r| !r.trim().is_empty()),
            memo: Some(input.reason.trim().to_owned()),
            idempotency_key: Some(idem.ledger_key()),
            ..Default::default()
        };
        let posted = ledger::refund(tx, &ctx, &pool, proposal_id, amount, details)?;
        let row = &posted.row;
        audit::append(
            tx,
            ctx.event(
                AuditAction::ImplementationRefund,
                "proposal",
                Some(proposal_id.as_str()),
            )
            .after(json!({"amount": format_amount(amount, pool.currency), "transaction_id": row.id})),
        )?;
        posted.stored()
    })
}

fn report_view(r: ReportRow, currency: Currency) -> Report {
    Report {
        id: r.id,
        proposal_id: r.proposal_id,
        kind: r.kind,
        content: serde_json::from_str(&r.content).unwrap_or_default(),
        expenditure_to_date: r.expenditure_minor.map(|m| format_amount(m, currency)),
        status: r.status,
        submitted_by: r.submitted_by,
        submitted_at: r.submitted_at.and_utc(),
        decided_by: r.decided_by,
        decided_at: r.decided_at.map(|t| t.and_utc()),
        decision_reason: r.decision_reason,
    }
}

/// A progress or completion report by the submitting organisation.
pub fn submit_report(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
    input: &NewReport,
) -> AppResult<Report> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    let pool = PoolRef::load(conn, &proposal.pool())?;
    let mut errors = Vec::new();
    let (kind, expenditure_text, content, allowed_in): (_, _, _, &[State]) = match input {
        NewReport::Progress {
            narrative,
            percent_complete,
            expenditure_to_date,
        } => {
            if narrative.trim().is_empty() {
                errors.push(FieldError::new("narrative", "is required"));
            }
            if *percent_complete > 100 {
                errors.push(FieldError::new("percent_complete", "must be between 0 and 100"));
            }
            (
                ReportKind::Progress,
                expenditure_to_date,
                json!({"narrative": narrative, "percent_complete": percent_complete}),
                &[State::Approved, State::InImplementation],
            )
        }
        NewReport::Completion {
            narrative,
            beneficiaries_reached,
            handover,
            expenditure_to_date,
        } => {
            if handover.local_authority.trim().is_empty() {
                errors.push(FieldError::new("handover.local_authority", "is required"));
            }
            if handover.maintenance.trim().is_empty() {
                errors.push(FieldError::new("handover.maintenance", "is required"));
            }
            (
                ReportKind::Completion,
                expenditure_to_date,
                json!({"narrative": narrative, "beneficiaries_reached": beneficiaries_reached,
                "handover": {"local_authority": handover.local_authority, "date": handover.date, "maintenance": handover.maintenance}}),
                &[State::InImplementation],
            )
        }
    };
    let expenditure = match parse_amount(expenditure_text, pool.currency) {
        Ok(v) if v >= 0 => Some(v),
        Ok(_) => {
            errors.push(FieldError::new("expenditure_to_date", "must not be negative"));
            None
        }
        Err(e) => {
            errors.push(FieldError::new("expenditure_to_date", e.to_string()));
            None
        }
    };
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        // The state is read under the proposal's lock.
        let state = workflow::lock(tx, proposal_id, None)?.state();
        if !allowed_in.contains(&state) {
            return Err(AppError::conflict(format!(
                "A {kind} report cannot be submitted while the proposal is `{state}`."
            ))
            .with_extension("state", json!(state)));
        }
        let row = ReportRow {
            id: uuid::Uuid::now_v7().to_string(),
            proposal_id: proposal_id.to_string(),
            kind,
            content: crate::domain::canonical_json::to_canonical_string(&content),
            expenditure_minor: expenditure,
            status: ReportStatus::Submitted,
            submitted_by: actor.user_id.clone(),
            submitted_at: now_micros(),
            decided_by: None,
            decided_at: None,
            decision_reason: None,
        };
        repo::insert_report(tx, &row)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ReportSubmit, "report", Some(&row.id))
                .after(json!({"proposal_id": proposal_id, "kind": kind})),
        )?;
        Ok(report_view(row, pool.currency))
    })
}

pub fn list_reports(conn: &mut DbConn, actor: &Actor, proposal_id: &ProposalId) -> AppResult<Vec<Report>> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    let pool = PoolRef::load(conn, &proposal.pool())?;
    Ok(repo::reports_of(conn, proposal_id.as_str())?
        .into_iter()
        .map(|r| report_view(r, pool.currency))
        .collect())
}

/// Accepts or returns a report (`qip_officer`). Accepting a completion report completes the proposal.
pub fn decide_report(
    conn: &mut DbConn,
    actor: &Actor,
    report_id: &ReportId,
    accept: bool,
    input: &ReportDecision,
) -> AppResult<Report> {
    let report_id = report_id.as_str();
    let reason = input.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if !accept && reason.is_none_or(|r| r.len() < 5) {
        return Err(AppError::invalid_field(
            "reason",
            "returning a report needs the reasons (at least 5 characters)",
        ));
    }
    let report =
        repo::find_report(conn, report_id)?.ok_or_else(|| AppError::not_found("No report with this id."))?;
    let proposal_id = ProposalId::from(report.proposal_id.as_str());
    load_visible(conn, actor, &proposal_id)?;
    let now = now_micros();
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock(tx, &proposal_id, None)?;
        let completes = accept && report.kind == ReportKind::Completion;
        if completes {
            locked.check(Action::AcceptCompletion)?;
        }
        let status = if accept {
            ReportStatus::Accepted
        } else {
            ReportStatus::Returned
        };
        if repo::decide_report(tx, report_id, status, &actor.user_id, now, reason)? != 1 {
            return Err(AppError::conflict("This report was decided already."));
        }
        let ctx = actor.audit();
        let audit_action = if accept {
            AuditAction::ReportAccept
        } else {
            AuditAction::ReportReturn
        };
        let detail = |state: State| json!({"proposal_id": report.proposal_id, "kind": report.kind, "reason": reason, "state": state});
        if completes {
            // Accepting the completion report completes the proposal; the change is audited on the report.
            workflow::apply(
                tx,
                &mut locked,
                Action::AcceptCompletion,
                By::Person(&ctx),
                audit_action,
                |_, _, to| Record {
                    entity: Some(("report", report_id.to_owned())),
                    after: Some(detail(to)),
                    ..Record::default()
                },
            )?;
        } else {
            audit::append(
                tx,
                ctx.event(audit_action, "report", Some(report_id))
                    .after(detail(locked.state())),
            )?;
        }
        let pool = PoolRef::load(tx, &locked.row().pool())?;
        let row = repo::find_report(tx, report_id)?.ok_or_else(|| AppError::internal("report vanished"))?;
        Ok(report_view(row, pool.currency))
    })
}

/// Cancels an approved proposal (`dsrsg`): the undisbursed commitment is released and unpaid tranches voided.
pub fn cancel(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
    expected: i64,
    reason: &str,
) -> AppResult<crate::features::proposals::dto::Proposal> {
    if reason.trim().len() < 5 {
        return Err(AppError::invalid_field(
            "reason",
            "must say why (at least 5 characters)",
        ));
    }
    load_visible(conn, actor, proposal_id)?;
    let ctx = actor.audit();
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock(tx, proposal_id, Some(expected))?;
        locked.check(Action::Cancel)?;
        let pool = PoolRef::load(tx, &locked.row().pool())?;
        let committed = ledger::proposal_balance(tx, &pool.pool_id(), AccountKind::Commitment, proposal_id)?;
        let mut released = 0;
        if committed > 0 {
            ledger::release_commitment(
                tx,
                &ctx,
                &pool,
                proposal_id,
                committed,
                PostingDetails {
                    memo: Some(format!("cancelled: {}", reason.trim())),
                    ..Default::default()
                },
            )?;
            released = committed;
        }
        for mut t in repo::tranches_of(tx, proposal_id.as_str())? {
            if t.status == TrancheStatus::Scheduled {
                t.status = TrancheStatus::Voided;
                repo::save_tranche(tx, &t)?;
            }
        }
        workflow::apply(
            tx,
            &mut locked,
            Action::Cancel,
            By::Person(&ctx),
            AuditAction::ProposalCancel,
            |_, _, _| Record {
                reason: Some(reason.trim().to_owned()),
                after: Some(json!({"released": format_amount(released, pool.currency)})),
                ..Record::default()
            },
        )?;
        crate::features::proposals::service::get_proposal(tx, actor, proposal_id)
    })
}

/// Closes a completed proposal (`qip_officer`): unpaid tranches need an explicit waiver, the commitment left
/// is released, and the evaluation is recorded.
pub fn close(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
    expected: i64,
    input: &CloseRequest,
) -> AppResult<crate::features::proposals::dto::Proposal> {
    let e = &input.evaluation;
    let mut errors = Vec::new();
    if e.confidence_building_effect.trim().is_empty() {
        errors.push(FieldError::new(
            "evaluation.confidence_building_effect",
            "is required",
        ));
    }
    if e.lessons.trim().is_empty() {
        errors.push(FieldError::new("evaluation.lessons", "is required"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    load_visible(conn, actor, proposal_id)?;
    let ctx = actor.audit();
    let waiver = input
        .waive_unpaid_tranches
        .as_deref()
        .map(str::trim)
        .filter(|w| w.len() >= 5);
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock(tx, proposal_id, Some(expected))?;
        locked.check(Action::Close)?;
        let pool = PoolRef::load(tx, &locked.row().pool())?;
        let unpaid: Vec<TrancheRow> = repo::tranches_of(tx, proposal_id.as_str())?
            .into_iter()
            .filter(|t| t.status == TrancheStatus::Scheduled)
            .collect();
        if !unpaid.is_empty() && waiver.is_none() {
            return Err(AppError::conflict(format!(
                "Tranche {} is not fully paid; pay it or close with `waive_unpaid_tranches` giving the reason.",
                unpaid
                    .iter()
                    .map(|t| t.number.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let committed = ledger::proposal_balance(tx, &pool.pool_id(), AccountKind::Commitment, proposal_id)?;
        if committed > 0 {
            ledger::release_commitment(
                tx,
                &ctx,
                &pool,
                proposal_id,
                committed,
                PostingDetails {
                    memo: Some("close-out".into()),
                    ..Default::default()
                },
            )?;
        }
        for mut t in unpaid {
            t.status = TrancheStatus::Waived;
            t.waive_reason = waiver.map(str::to_owned);
            repo::save_tranche(tx, &t)?;
        }
        let objectives = serde_json::to_value(e.objectives_met)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        repo::insert_closeout(
            tx,
            &CloseoutRow {
                proposal_id: proposal_id.to_string(),
                objectives_met: objectives.clone(),
                confidence_effect: e.confidence_building_effect.trim().to_owned(),
                lessons: e.lessons.trim().to_owned(),
                closed_by: actor.user_id.clone(),
                closed_at: now_micros(),
            },
        )?;
        workflow::apply(
            tx,
            &mut locked,
            Action::Close,
            By::Person(&ctx),
            AuditAction::ProposalClose,
            |_, _, _| Record {
                after: Some(json!({
                    "released": format_amount(committed, pool.currency), "objectives_met": objectives,
                    "waived_tranches": waiver,
                })),
                ..Record::default()
            },
        )?;
        crate::features::proposals::service::get_proposal(tx, actor, proposal_id)
    })
}

/// Proposals in implementation past their maximum duration (counted from the first payment).
pub fn overdue_implementations(
    conn: &mut DbConn,
    today: NaiveDate,
) -> AppResult<Vec<(ProposalRow, NaiveDate)>> {
    Ok(implementation_due_dates(conn)?
        .into_iter()
        .filter(|(_, due)| *due < today)
        .collect())
}

/// Every implementation with the date its completion report falls due (first payment + the pool's maximum
/// duration). Three statements for all of them (proposals, first payments, settings versions) plus one settings
/// read per pool and settings version in use: the sweeper runs this every minute on every instance.
pub fn implementation_due_dates(conn: &mut DbConn) -> AppResult<Vec<(ProposalRow, NaiveDate)>> {
    use std::collections::HashMap;
    let rows = proposals_repo::in_state(conn, State::InImplementation)?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let first_paid: HashMap<String, NaiveDate> = repo::first_payments_in_implementation(conn)?
        .into_iter()
        .collect();
    let settings_version: HashMap<String, i32> = repo::settings_versions_in_implementation(conn)?
        .into_iter()
        .collect();
    let mut max_days: HashMap<(String, Option<i32>), i64> = HashMap::new();
    let mut out = Vec::new();
    for p in rows {
        let Some(first) = first_paid.get(&p.id).copied() else {
            continue;
        };
        let sv = settings_version.get(&p.id).copied();
        let days = match max_days.get(&(p.pool_id.clone(), sv)) {
            Some(days) => *days,
            None => {
                let pool_row = crate::features::pools::repo::find_pool(conn, &p.pool_id)?
                    .ok_or_else(|| AppError::internal("pool missing"))?;
                let version = sv.unwrap_or(pool_row.settings_version);
                let pool = pools::load_version(conn, pool_row, version)?;
                let days = i64::from(pool.policy.max_duration_days);
                max_days.insert((p.pool_id.clone(), sv), days);
                days
            }
        };
        out.push((p, first + Duration::days(days)));
    }
    Ok(out)
}

/// Implementation tasks: reports to accept and overdue implementations (`qip_officer`), tranches payable
/// now (`finance_officer`).
pub fn tasks_for(conn: &mut DbConn, actor: &Actor, now: NaiveDateTime) -> AppResult<Vec<Task>> {
    let held: Vec<Hat> = actor.grants.iter().map(|g| g.hat).collect();
    let mut tasks = Vec::new();
    let title = |conn: &mut DbConn, id: &str| -> AppResult<ProposalRow> {
        proposals_repo::find_proposal(conn, id)?.ok_or_else(|| AppError::internal("proposal missing"))
    };
    if held.contains(&Hat::QipOfficer) {
        for r in repo::submitted_reports(conn)? {
            let p = title(conn, &r.proposal_id)?;
            tasks.push(Task {
                kind: crate::features::approval::dto::TaskKind::ReportToAccept,
                hat: Hat::QipOfficer,
                proposal_id: p.id.clone(),
                reference: p.reference.clone(),
                title: p.title.clone(),
                due_at: Some((r.submitted_at + Duration::days(5)).and_utc()),
                overdue: r.submitted_at + Duration::days(5) < now,
                link: format!("/api/v1/reports/{}/accept", r.id),
            });
        }
        for (p, due) in overdue_implementations(conn, now.date())? {
            tasks.push(Task {
                kind: crate::features::approval::dto::TaskKind::ImplementationOverdue,
                hat: Hat::QipOfficer,
                proposal_id: p.id.clone(),
                reference: p.reference.clone(),
                title: p.title.clone(),
                due_at: due.and_hms_opt(0, 0, 0).map(|d| d.and_utc()),
                overdue: true,
                link: format!("/api/v1/proposals/{}", p.id),
            });
        }
    }
    if held.contains(&Hat::FinanceOfficer) {
        let mut seen = std::collections::HashSet::new();
        for t in repo::open_tranches(conn)? {
            if !seen.insert((t.proposal_id.clone(), t.number)) {
                continue;
            }
            let p = title(conn, &t.proposal_id)?;
            let f = facts(conn, &p)?;
            let condition = t.condition;
            if payable_now(condition, t.amount_minor, t.paid_minor, &f) > 0 {
                tasks.push(Task {
                    kind: crate::features::approval::dto::TaskKind::TrancheToPay,
                    hat: Hat::FinanceOfficer,
                    proposal_id: p.id.clone(),
                    reference: p.reference.clone(),
                    title: p.title.clone(),
                    due_at: None,
                    overdue: false,
                    link: format!("/api/v1/proposals/{}/tranches/{}/disbursements", p.id, t.number),
                });
            }
        }
    }
    Ok(tasks)
}
