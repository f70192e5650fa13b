//! Consultation use cases, one transaction each: opening a round when a proposal is submitted (consultees from
//! rules, overlap screening and earlier objections), responses, manual additions, closing a round exactly once
//! (last answer or deadline), flag endings, and the consultation view with confidential notes only for the
//! hats that may read them, and never for the submitting organisation (`access::may_read_confidential_notes`).

use std::collections::BTreeMap;

use chrono::Duration;
use serde_json::json;

use super::dto::{
    AddConsultee, Consultation, Consultee, ConsulteeReason, Flag, FlagEnding, MatchedActivity, ResponseInput,
    ResponseKind, ResponseRecord, Round,
};
use super::repo::{self, ConsulteeRow, FlagRow, ResponseRow, RoundRow};
use crate::access::{Actor, acting_organization, may_read_confidential_notes};
use crate::db::{self, DbConn};
use crate::domain::ids::{FlagId, ProposalId, RoundId};
use crate::domain::lifecycle::{Action, State};
use crate::domain::pool_policy::PoolPolicy;
use crate::domain::proposal::ProposalContent;
use crate::domain::screening::{
    ActivityFootprint, MAX_LISTED_OVERLAPS, OverlapMatch, ProposalFootprint, fold_overlaps, overlap,
};
use crate::domain::status::{
    ConsulteeStatus, FlagCategory, FlagStatus, ReasonKind, RoundClosedBy, RoundOutcome, Severity,
};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, AuditAction, AuditContext, Automatic, deny, now_micros};
use crate::features::proposals::repo::ProposalRow;
use crate::features::proposals::service::load_visible;
use crate::features::proposals::workflow::{self, By, Locked, Record};

fn reason(kind: ReasonKind, detail: impl Into<String>) -> ConsulteeReason {
    ConsulteeReason {
        kind,
        detail: detail.into(),
    }
}

/// Opens the consultation round for the version just submitted (an automatic step after the submission).
/// After a revision, the organisations holding open blocking flags are asked to confirm that the revision
/// resolves them (`confirm_resolution`); other earlier objectors are consulted again. Returns the proposal's
/// state afterwards.
pub fn open_round(
    tx: &mut DbConn,
    ctx: &Automatic,
    proposal: &ProposalRow,
    content: &ProposalContent,
    policy: &PoolPolicy,
) -> AppResult<State> {
    let now = now_micros();
    let rounds = repo::rounds_of(tx, &proposal.id)?;
    let round_number = i32::try_from(rounds.len()).unwrap_or(0) + 1;
    let mut wanted: BTreeMap<String, Vec<ConsulteeReason>> = BTreeMap::new();
    let sector = content.sector_code.clone().unwrap_or_default();
    let adm1 = content.location.as_ref().map(|l| l.adm1_pcode.clone());
    if round_number == 1 {
        for rule in repo::list_rules(tx)? {
            if rule.always_consult {
                wanted
                    .entry(rule.organization_id)
                    .or_default()
                    .push(reason(ReasonKind::AlwaysConsult, "consulted on every proposal"));
            } else if rule.sector_code.as_deref() == Some(sector.as_str())
                && (rule.adm1_pcode.is_none() || rule.adm1_pcode == adm1)
            {
                let detail = match &rule.adm1_pcode {
                    Some(a) => format!("consultation rule for sector {sector} in {a}"),
                    None => format!("consultation rule for sector {sector}"),
                };
                wanted
                    .entry(rule.organization_id)
                    .or_default()
                    .push(reason(ReasonKind::Rule, detail));
            }
        }
    } else {
        let still_blocking: Vec<String> = repo::open_blocking_flag_organizations(tx, &proposal.id)?
            .into_iter()
            .flatten()
            .collect();
        for org in &still_blocking {
            let reasons = wanted.entry(org.clone()).or_default();
            if reasons.is_empty() {
                reasons.push(reason(
                    ReasonKind::ConfirmResolution,
                    "holds open blocking flags on an earlier version: confirm that this revision resolves them \
                     (resolve or withdraw them), or answer",
                ));
            }
        }
        for org in repo::objecting_organizations(tx, &proposal.id)? {
            if !still_blocking.contains(&org) {
                wanted.entry(org).or_default().push(reason(
                    ReasonKind::EarlierObjection,
                    "raised a flag on an earlier version",
                ));
            }
        }
    }
    let round_id = uuid::Uuid::now_v7().to_string();
    // Every overlap folds into one advisory flag and one reason per organisation: a registry of 60,000 rows
    // must not become 60,000 flags.
    let mut duplication_flag = None;
    if let (Some(loc), Some(start), Some(end)) =
        (&content.location, content.planned_start, content.planned_end)
    {
        let footprint = ProposalFootprint {
            sector_code: sector.clone(),
            adm2_pcode: loc.adm2_pcode.clone(),
            lat: loc.lat,
            lon: loc.lon,
            start,
            end,
        };
        let mut matches = Vec::new();
        for a in repo::open_activities_in_sector(tx, &sector)? {
            let activity = ActivityFootprint {
                id: a.id.clone(),
                organization_id: a.organization_id.clone(),
                sector_code: a.sector_code.clone(),
                adm2_pcode: a.adm2_pcode.clone(),
                lat: a.lat,
                lon: a.lon,
                start: a.start_date,
                end: a.end_date,
                closed: a.status == crate::domain::status::ActivityStatus::Closed,
            };
            if let Some(basis) = overlap(&footprint, &activity, policy.overlap_radius_km) {
                matches.push(OverlapMatch {
                    activity_id: a.id,
                    organization_id: a.organization_id,
                    title: a.title,
                    basis,
                });
            }
        }
        if let Some(finding) = fold_overlaps(matches, MAX_LISTED_OVERLAPS) {
            for (org, found) in &finding.by_organization {
                wanted
                    .entry(org.clone())
                    .or_default()
                    .push(reason(ReasonKind::Overlap, found.describe()));
            }
            let listed: Vec<MatchedActivity> = finding.listed.iter().map(MatchedActivity::from).collect();
            duplication_flag = Some(FlagRow {
                id: uuid::Uuid::now_v7().to_string(),
                proposal_id: proposal.id.clone(),
                round_id: round_id.clone(),
                version_number: proposal.current_version,
                organization_id: finding.sole_organization().map(str::to_owned),
                raised_by: None,
                system_raised: true,
                category: FlagCategory::Duplication,
                severity: Severity::Advisory,
                description: finding.description(),
                confidential_note: None,
                activity_id: listed.first().map(|m| m.activity_id.clone()),
                status: FlagStatus::Open,
                ended_by: None,
                ended_at: None,
                end_justification: None,
                created_at: now,
                matched_activities: Some(serde_json::to_string(&listed).unwrap_or_else(|_| "[]".into())),
                matched_activities_total: Some(i32::try_from(finding.total).unwrap_or(i32::MAX)),
            });
        }
    }
    // The submitting organisation is never its own consultee.
    wanted.remove(&proposal.organization_id);
    let round = RoundRow {
        id: round_id.clone(),
        proposal_id: proposal.id.clone(),
        version_number: proposal.current_version,
        round_number,
        opened_at: now,
        deadline: now + Duration::days(i64::from(policy.consultation_window_days)),
        silence_is_consent: policy.silence_is_consent,
        closed_at: None,
        closed_by: None,
        outcome: None,
    };
    repo::insert_round(tx, &round)?;
    for (org, reasons) in &wanted {
        repo::insert_consultee(
            tx,
            &ConsulteeRow {
                round_id: round_id.clone(),
                organization_id: org.clone(),
                reasons: serde_json::to_string(reasons).unwrap_or_else(|_| "[]".into()),
                status: ConsulteeStatus::Pending,
                responded_by: None,
                responded_at: None,
                comment: None,
            },
        )?;
    }
    if let Some(flag) = &duplication_flag {
        repo::insert_flag(tx, flag)?;
    }
    audit::append(
        tx,
        ctx.event(AuditAction::ConsultationOpen, "proposal", Some(&proposal.id)).after(json!({
            "round": round_number, "version": proposal.current_version, "deadline": round.deadline.and_utc(),
            "consultees": wanted.iter().map(|(org, r)| json!({"organization_id": org, "reasons": r})).collect::<Vec<_>>(),
            "duplication_flags": usize::from(duplication_flag.is_some()),
            "overlapping_activities": duplication_flag.as_ref().and_then(|f| f.matched_activities_total).unwrap_or(0),
        })),
    )?;
    // A round with nobody to ask stays open until its deadline: the QIP secretariat can still add consultees.
    proposal.lifecycle_state()
}

/// Closes a round (once: the conditional update decides) and moves the proposal on: `flagged` with an open
/// blocking flag, else `in_review` (where the workflow instantiates the approval steps). An automatic step:
/// audited as the system after its trigger.
fn close_round(
    tx: &mut DbConn,
    ctx: &Automatic,
    proposal: &mut Locked,
    round: &RoundRow,
    closed_by: RoundClosedBy,
) -> AppResult<bool> {
    let now = now_micros();
    let blocking = repo::open_blocking_flags(tx, proposal.id())?;
    let (outcome, action) = if blocking > 0 {
        (RoundOutcome::Flagged, Action::FlagConsultation)
    } else {
        (RoundOutcome::Clear, Action::CloseConsultation)
    };
    if !repo::mark_round_closed(tx, &round.id, now, closed_by, outcome)? {
        return Ok(false);
    }
    workflow::apply(
        tx,
        proposal,
        action,
        By::System(ctx),
        AuditAction::ConsultationClose,
        |_, _, to| Record {
            after: Some(json!({
                "round": round.round_number, "closed_by": closed_by, "outcome": outcome,
                "open_blocking_flags": blocking, "state": to,
            })),
            ..Record::default()
        },
    )?;
    Ok(true)
}

fn consultation_not_open(state: State) -> AppError {
    AppError::conflict(format!(
        "The proposal is `{state}`; consultation responses are taken only while it is `in_consultation`."
    ))
    .with_extension("state", json!(state))
}

/// Most flags one objection raises.
const MAX_FLAGS_PER_RESPONSE: usize = 20;
/// Most responses a round lists in the consultation view (the latest; `responses_total` counts them all).
pub const MAX_LISTED_RESPONSES: usize = 50;
/// Most flags the consultation view lists (open ones first kept, then the latest ended; `flags_total` counts all).
pub const MAX_LISTED_FLAGS: usize = 100;

/// The last `cap` of `items` (oldest first, as listed), and how many there were.
fn keep_latest<T>(mut items: Vec<T>, cap: usize) -> (Vec<T>, usize) {
    let total = items.len();
    items.drain(..total.saturating_sub(cap));
    (items, total)
}

/// At most `cap` flags in their order: every open flag (up to the cap) and the latest ended ones; and the total.
fn bound_flags(flags: Vec<Flag>, cap: usize) -> (Vec<Flag>, usize) {
    let total = flags.len();
    if total <= cap {
        return (flags, total);
    }
    let open = flags
        .iter()
        .filter(|f| f.status == FlagStatus::Open)
        .count()
        .min(cap);
    let mut ended_room = cap - open;
    let mut open_room = open;
    let mut kept: Vec<Flag> = flags
        .into_iter()
        .rev()
        .filter(|f| {
            let room = if f.status == FlagStatus::Open {
                &mut open_room
            } else {
                &mut ended_room
            };
            let keep = *room > 0;
            *room = room.saturating_sub(1);
            keep
        })
        .collect();
    kept.reverse();
    (kept, total)
}

fn check_text(value: Option<&str>, field: &str, max: usize, required: bool, errors: &mut Vec<FieldError>) {
    match value.map(str::trim) {
        None | Some("") if required => errors.push(FieldError::new(field, "is required")),
        Some(v) if v.chars().count() > max => errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        )),
        _ => {}
    }
}

/// A consultee answers for its organisation. An organisation that was not asked is recorded as unsolicited
/// and cannot block (its flags become advisory). Changing an answer before the round closes replaces the
/// organisation's earlier flags of the round. The last awaited answer closes the round.
pub fn respond(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
    input: &ResponseInput,
) -> AppResult<Consultation> {
    let mut errors = Vec::new();
    check_text(input.comment.as_deref(), "comment", 4_000, false, &mut errors);
    match input.kind {
        ResponseKind::Objection if input.flags.is_empty() => {
            errors.push(FieldError::new("flags", "an objection needs at least one flag"))
        }
        ResponseKind::NoObjection | ResponseKind::Comment if !input.flags.is_empty() => {
            errors.push(FieldError::new("flags", "only an objection raises flags"))
        }
        _ => {}
    }
    if input.flags.len() > MAX_FLAGS_PER_RESPONSE {
        errors.push(FieldError::new(
            "flags",
            format!("an objection raises at most {MAX_FLAGS_PER_RESPONSE} flags"),
        ));
    }
    for (i, flag) in input.flags.iter().enumerate() {
        check_text(
            Some(&flag.description),
            &format!("flags[{i}].description"),
            2_000,
            true,
            &mut errors,
        );
        check_text(
            flag.confidential_note.as_deref(),
            &format!("flags[{i}].confidential_note"),
            4_000,
            false,
            &mut errors,
        );
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let org = acting_organization(actor);
    let now = now_micros();
    db::write_tx(conn, |tx| {
        let mut proposal = workflow::lock_visible(tx, actor, proposal_id, None)?;
        let state = proposal.state();
        if state != State::InConsultation {
            return Err(consultation_not_open(state));
        }
        let round =
            repo::open_round_of(tx, proposal_id.as_str())?.ok_or_else(|| consultation_not_open(state))?;
        let consultees = repo::consultees_of(tx, &round.id)?;
        let unsolicited = !consultees.iter().any(|c| c.organization_id == org);
        let replaced = if unsolicited {
            Vec::new()
        } else {
            let earlier = repo::open_flags_of_org_in_round(tx, &round.id, &org)?;
            for id in &earlier {
                repo::end_flag(
                    tx,
                    id,
                    FlagStatus::Withdrawn,
                    &actor.user_id,
                    now,
                    Some("superseded by a changed response"),
                )?;
            }
            repo::record_answer(
                tx,
                &round.id,
                &org,
                ConsulteeStatus::from(input.kind),
                &actor.user_id,
                now,
                input.comment.as_deref(),
            )?;
            earlier
        };
        repo::insert_response(
            tx,
            &ResponseRow {
                id: uuid::Uuid::now_v7().to_string(),
                round_id: round.id.clone(),
                organization_id: org.clone(),
                responded_by: actor.user_id.clone(),
                kind: input.kind,
                comment: input.comment.clone(),
                unsolicited,
                created_at: now,
            },
        )?;
        for flag in &input.flags {
            let severity = if unsolicited {
                Severity::Advisory
            } else {
                flag.severity
            };
            repo::insert_flag(
                tx,
                &FlagRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    proposal_id: proposal_id.to_string(),
                    round_id: round.id.clone(),
                    version_number: round.version_number,
                    organization_id: Some(org.clone()),
                    raised_by: Some(actor.user_id.clone()),
                    system_raised: false,
                    category: flag.category,
                    severity,
                    description: flag.description.trim().to_owned(),
                    confidential_note: flag.confidential_note.clone().filter(|n| !n.trim().is_empty()),
                    activity_id: None,
                    status: FlagStatus::Open,
                    ended_by: None,
                    ended_at: None,
                    end_justification: None,
                    created_at: now,
                    matched_activities: None,
                    matched_activities_total: None,
                },
            )?;
        }
        let ctx = actor.audit();
        // The audit records that a confidential note exists, never its text.
        let responded = audit::append(
            tx,
            ctx.event(AuditAction::ConsultationRespond, "proposal", Some(proposal_id.as_str())).after(json!({
                "organization_id": org, "kind": input.kind, "unsolicited": unsolicited,
                "replaced_flags": replaced.len(),
                "flags": input.flags.iter().map(|f| json!({"category": f.category, "severity": if unsolicited { Severity::Advisory } else { f.severity },
                    "confidential_note": f.confidential_note.as_ref().is_some_and(|n| !n.trim().is_empty())})).collect::<Vec<_>>(),
            })),
        )?;
        if !unsolicited {
            close_if_all_answered(tx, &Automatic::after(&responded), &mut proposal, &round)?;
        }
        view(tx, actor, proposal.row())
    })
}

/// The QIP secretariat adds a consultee to the open round, with a reason.
pub fn add_consultee(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
    input: &AddConsultee,
) -> AppResult<Consultation> {
    if input.reason.trim().len() < 5 {
        return Err(AppError::invalid_field(
            "reason",
            "must say why (at least 5 characters)",
        ));
    }
    let mut errors = Vec::new();
    check_text(Some(&input.reason), "reason", 2_000, true, &mut errors);
    check_text(
        Some(&input.organization_id),
        "organization_id",
        64,
        true,
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        let locked = workflow::lock_visible(tx, actor, proposal_id, None)?;
        let (proposal, state) = (locked.row(), locked.state());
        let round =
            repo::open_round_of(tx, proposal_id.as_str())?.ok_or_else(|| consultation_not_open(state))?;
        if crate::features::identity::repo::find_organization(tx, &input.organization_id)?.is_none() {
            return Err(AppError::invalid_field(
                "organization_id",
                "no organisation has this id",
            ));
        }
        if input.organization_id == proposal.organization_id {
            return Err(AppError::invalid_field(
                "organization_id",
                "the submitting organisation is not consulted on its own proposal",
            ));
        }
        if repo::consultees_of(tx, &round.id)?
            .iter()
            .any(|c| c.organization_id == input.organization_id)
        {
            return Err(AppError::conflict(
                "This organisation is consulted in this round already.",
            ));
        }
        repo::insert_consultee(
            tx,
            &ConsulteeRow {
                round_id: round.id.clone(),
                organization_id: input.organization_id.clone(),
                reasons: serde_json::to_string(&[reason(ReasonKind::Manual, input.reason.trim())])
                    .unwrap_or_default(),
                status: ConsulteeStatus::Pending,
                responded_by: None,
                responded_at: None,
                comment: None,
            },
        )?;
        audit::append(
            tx,
            actor
                .audit()
                .event(
                    AuditAction::ConsultationAddConsultee,
                    "proposal",
                    Some(proposal_id.as_str()),
                )
                .after(json!({"organization_id": input.organization_id, "reason": input.reason.trim()})),
        )?;
        view(tx, actor, proposal)
    })
}

/// Closes one overdue round: pending consultees lapse; where silence is not consent each lapse becomes a
/// blocking flag. Safe to run from any number of instances: the round closes once.
pub fn close_overdue_round(conn: &mut DbConn, round_id: &RoundId) -> AppResult<bool> {
    let now = now_micros();
    let ctx = AuditContext::system(None);
    db::write_tx(conn, |tx| {
        let Some(round) = repo::find_round(tx, round_id.as_str())? else {
            return Ok(false);
        };
        let mut proposal = workflow::lock(tx, &ProposalId::from(round.proposal_id.as_str()), None)?;
        let Some(round) =
            repo::find_round(tx, round_id.as_str())?.filter(|r| r.closed_at.is_none() && r.deadline <= now)
        else {
            return Ok(false);
        };
        if proposal.state() != State::InConsultation {
            return Ok(false);
        }
        let lapsed = repo::lapse_pending(tx, &round.id)?;
        if !round.silence_is_consent {
            for org in &lapsed {
                repo::insert_flag(
                    tx,
                    &FlagRow {
                        id: uuid::Uuid::now_v7().to_string(),
                        proposal_id: proposal.id().to_owned(),
                        round_id: round.id.clone(),
                        version_number: round.version_number,
                        organization_id: Some(org.clone()),
                        raised_by: None,
                        system_raised: true,
                        category: FlagCategory::Other,
                        severity: Severity::Blocking,
                        description: "No answer by the deadline, and in this pool silence is not consent."
                            .into(),
                        confidential_note: None,
                        activity_id: None,
                        status: FlagStatus::Open,
                        ended_by: None,
                        ended_at: None,
                        end_justification: None,
                        created_at: now,
                        matched_activities: None,
                        matched_activities_total: None,
                    },
                )?;
            }
        }
        let lapse = audit::append(
            tx,
            ctx.event(AuditAction::ConsultationLapse, "proposal", Some(proposal.id()))
                .after(json!({"round": round.round_number, "lapsed": lapsed, "silence_is_consent": round.silence_is_consent})),
        )?;
        close_round(
            tx,
            &Automatic::after(&lapse),
            &mut proposal,
            &round,
            RoundClosedBy::Deadline,
        )
    })
}

/// Closes the round when nobody is awaited any more (the answer just recorded was the last one).
fn close_if_all_answered(
    tx: &mut DbConn,
    ctx: &Automatic,
    proposal: &mut Locked,
    round: &RoundRow,
) -> AppResult<bool> {
    let still_pending = repo::consultees_of(tx, &round.id)?
        .iter()
        .any(|c| c.status == ConsulteeStatus::Pending);
    if still_pending {
        return Ok(false);
    }
    close_round(tx, ctx, proposal, round, RoundClosedBy::AllAnswered)
}

/// During a round after a revision: an organisation asked to confirm the resolution of its blocking flags has
/// answered once none of them is open any more (resolved or withdrawn by it). Its consultee entry is recorded
/// as `resolved`, and the round closes when nobody else is awaited. An automatic step after the flag's end.
fn answer_by_resolution(
    tx: &mut DbConn,
    ctx: &Automatic,
    proposal: &mut Locked,
    organization_id: &str,
    ended_by: &str,
) -> AppResult<()> {
    let Some(round) = repo::open_round_of(tx, proposal.id())? else {
        return Ok(());
    };
    let asked = repo::consultees_of(tx, &round.id)?.into_iter().any(|c| {
        c.organization_id == organization_id
            && c.status == ConsulteeStatus::Pending
            && serde_json::from_str::<Vec<ConsulteeReason>>(&c.reasons)
                .unwrap_or_default()
                .iter()
                .any(|r| r.kind == ReasonKind::ConfirmResolution)
    });
    let still_blocking = repo::open_blocking_flag_organizations(tx, proposal.id())?
        .iter()
        .any(|org| org.as_deref() == Some(organization_id));
    if !asked || still_blocking {
        return Ok(());
    }
    let now = now_micros();
    repo::record_answer(
        tx,
        &round.id,
        organization_id,
        ConsulteeStatus::Resolved,
        ended_by,
        now,
        Some("Confirmed that the revision resolves its blocking flags."),
    )?;
    audit::append(
        tx,
        ctx.event(AuditAction::ConsultationResolutionConfirmed, "proposal", Some(proposal.id()))
            .after(json!({"round": round.round_number, "organization_id": organization_id, "confirmed_by": ended_by})),
    )?;
    close_if_all_answered(tx, ctx, proposal, &round)?;
    Ok(())
}

/// After a flag ends: a `flagged` proposal whose last blocking flag ended moves to `in_review` (an automatic
/// step after the flag's end; the workflow instantiates the approval steps).
fn after_flag_end(tx: &mut DbConn, ctx: &Automatic, proposal: &mut Locked, action: Action) -> AppResult<()> {
    if proposal.state() == State::Flagged && repo::open_blocking_flags(tx, proposal.id())? == 0 {
        workflow::apply(
            tx,
            proposal,
            action,
            By::System(ctx),
            AuditAction::ProposalFlagsCleared,
            |_, _, to| Record {
                after: Some(json!({"state": to})),
                ..Record::default()
            },
        )?;
    }
    Ok(())
}

/// How a flag ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagEnd {
    /// The raising organisation withdraws it.
    Withdraw,
    /// The raising organisation confirms a revision answered it.
    Resolve,
    /// The HC overrides it with a written justification.
    Override,
}

pub fn end_flag(
    conn: &mut DbConn,
    actor: &Actor,
    flag_id: &FlagId,
    how: FlagEnd,
    input: &FlagEnding,
) -> AppResult<Flag> {
    let flag_id = flag_id.as_str();
    let justification = input
        .justification
        .as_deref()
        .map(str::trim)
        .filter(|j| !j.is_empty());
    if how == FlagEnd::Override && justification.is_none_or(|j| j.len() < 20) {
        return Err(AppError::invalid_field(
            "justification",
            "an override needs a written justification of at least 20 characters",
        ));
    }
    if justification.is_some_and(|j| j.chars().count() > 4_000) {
        return Err(AppError::invalid_field(
            "justification",
            "must be at most 4000 characters",
        ));
    }
    let Some(flag) = repo::find_flag(conn, flag_id)? else {
        return Err(AppError::not_found("No flag with this id is visible to you."));
    };
    // The flag is visible only with its proposal.
    let proposal_id = ProposalId::from(flag.proposal_id.as_str());
    load_visible(conn, actor, &proposal_id)
        .map_err(|_| AppError::not_found("No flag with this id is visible to you."))?;
    let audit_action = match how {
        FlagEnd::Withdraw => AuditAction::FlagWithdraw,
        FlagEnd::Resolve => AuditAction::FlagResolve,
        FlagEnd::Override => AuditAction::FlagOverride,
    };
    let now = now_micros();
    // A refusal by an object-level rule, decided under the proposal's lock; audited after the rollback.
    let mut refused: Option<&'static str> = None;
    let outcome = db::write_tx(conn, |tx| {
        let mut proposal = workflow::lock(tx, &proposal_id, None)?;
        // Overriding humanitarian objections is a decision on the proposal: never by its own organisation or by
        // whoever drafted or submitted it (the same separation of duties as approval steps).
        let row = proposal.row();
        if how == FlagEnd::Override
            && !crate::access::may_decide_on(
                &actor.user_id,
                &actor.organization_id,
                &row.organization_id,
                &row.created_by,
                row.submitted_by.as_deref(),
            )
        {
            refused = Some(
                "Nobody overrides flags on a proposal of their own organisation, or one they drafted or submitted.",
            );
        }
        if how != FlagEnd::Override
            && flag.organization_id.as_deref() != Some(acting_organization(actor).as_str())
        {
            refused = Some("Only the organisation that raised a flag can withdraw or resolve it.");
        }
        if let Some(message) = refused {
            return Err(AppError::forbidden(message));
        }
        let current =
            repo::find_flag(tx, flag_id)?.ok_or_else(|| AppError::not_found("No flag with this id."))?;
        if current.status != FlagStatus::Open {
            return Err(AppError::conflict(format!(
                "This flag has ended already ({}).",
                current.status
            )));
        }
        if how == FlagEnd::Resolve && proposal.row().current_version <= current.version_number {
            return Err(AppError::conflict(
                "Resolving confirms that a revision answered the flag, and there is no revision yet; withdraw it instead.",
            ));
        }
        let (status, lifecycle_action) = match how {
            FlagEnd::Withdraw => (FlagStatus::Withdrawn, Action::EndLastFlag),
            FlagEnd::Resolve => (FlagStatus::Resolved, Action::EndLastFlag),
            FlagEnd::Override => (FlagStatus::Overridden, Action::OverrideFlags),
        };
        repo::end_flag(tx, flag_id, status, &actor.user_id, now, justification)?;
        let ended = audit::append(
            tx,
            actor
                .audit()
                .event(audit_action, "flag", Some(flag_id))
                .after(json!({
                    "proposal_id": proposal.id(), "status": status, "justification": justification,
                })),
        )?;
        let automatic = Automatic::after(&ended);
        after_flag_end(tx, &automatic, &mut proposal, lifecycle_action)?;
        if how != FlagEnd::Override && proposal.state() == State::InConsultation {
            if let Some(org) = current.organization_id.as_deref() {
                answer_by_resolution(tx, &automatic, &mut proposal, org, &actor.user_id)?;
            }
        }
        let row = repo::find_flag(tx, flag_id)?.ok_or_else(|| AppError::internal("flag vanished"))?;
        Ok(Flag::from_row(
            row,
            may_read_confidential_notes(actor, &proposal.row().organization_id),
        ))
    });
    if let Some(message) = refused {
        return Err(deny(conn, actor, audit_action, "flag", flag_id, message));
    }
    outcome
}

fn view(conn: &mut DbConn, actor: &Actor, proposal: &ProposalRow) -> AppResult<Consultation> {
    let mut rounds = Vec::new();
    for r in repo::rounds_of(conn, &proposal.id)? {
        let consultees = repo::consultees_of(conn, &r.id)?
            .into_iter()
            .map(|c| {
                Ok(Consultee {
                    reasons: serde_json::from_str(&c.reasons).map_err(|e| {
                        AppError::internal(format!("stored consultee reasons unreadable: {e}"))
                    })?,
                    organization_id: c.organization_id,
                    status: c.status,
                    responded_by: c.responded_by,
                    responded_at: c.responded_at.map(|t| t.and_utc()),
                    comment: c.comment,
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        let responses = repo::responses_of(conn, &r.id)?
            .into_iter()
            .map(|x| ResponseRecord {
                organization_id: x.organization_id,
                responded_by: x.responded_by,
                kind: x.kind,
                comment: x.comment,
                unsolicited: x.unsolicited,
                created_at: x.created_at.and_utc(),
            })
            .collect();
        let (responses, responses_total) = keep_latest(responses, MAX_LISTED_RESPONSES);
        let (closed_by, outcome) = (r.closed_by()?, r.outcome()?);
        rounds.push(Round {
            id: r.id,
            round_number: r.round_number,
            version_number: r.version_number,
            opened_at: r.opened_at.and_utc(),
            deadline: r.deadline.and_utc(),
            silence_is_consent: r.silence_is_consent,
            closed_at: r.closed_at.map(|t| t.and_utc()),
            closed_by,
            outcome,
            consultees,
            responses,
            responses_total,
        });
    }
    let show = may_read_confidential_notes(actor, &proposal.organization_id);
    let flags = repo::flags_of(conn, &proposal.id)?
        .into_iter()
        .map(|f| Flag::from_row(f, show))
        .collect();
    let (flags, flags_total) = bound_flags(flags, MAX_LISTED_FLAGS);
    Ok(Consultation {
        proposal_id: proposal.id.clone(),
        state: proposal.lifecycle_state()?,
        rounds,
        flags,
        flags_total,
    })
}

pub fn get_consultation(
    conn: &mut DbConn,
    actor: &Actor,
    proposal_id: &ProposalId,
) -> AppResult<Consultation> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    view(conn, actor, &proposal)
}

// ---- consultation rules

pub fn create_rule(
    conn: &mut DbConn,
    actor: &Actor,
    input: &super::dto::NewRule,
) -> AppResult<super::dto::Rule> {
    let mut errors = Vec::new();
    if crate::features::identity::repo::find_organization(conn, &input.organization_id)?.is_none() {
        errors.push(FieldError::new("organization_id", "no organisation has this id"));
    }
    match (&input.sector_code, input.always_consult) {
        (None, false) => errors.push(FieldError::new(
            "sector_code",
            "is required unless always_consult is true",
        )),
        (Some(_), true) => errors.push(FieldError::new(
            "sector_code",
            "must be absent when always_consult is true",
        )),
        (Some(code), false) if !crate::features::reference::repo::sector_exists(conn, code)? => {
            errors.push(FieldError::new("sector_code", "is not a sector of the code list"))
        }
        _ => {}
    }
    if let Some(a) = &input.adm1_pcode {
        if crate::features::reference::repo::find_area(conn, a)?.is_none_or(|x| x.level != 1) {
            errors.push(FieldError::new("adm1_pcode", "is not an adm1 P-code"));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        let row = repo::RuleRow {
            id: uuid::Uuid::now_v7().to_string(),
            organization_id: input.organization_id.clone(),
            sector_code: input.sector_code.clone(),
            adm1_pcode: input.adm1_pcode.clone(),
            always_consult: input.always_consult,
            created_by: actor.user_id.clone(),
            created_at: now_micros(),
        };
        repo::insert_rule(tx, &row)?;
        let rule = super::dto::Rule::from(row);
        audit::append(
            tx,
            actor
                .audit()
                .event(
                    AuditAction::ConsultationRuleCreate,
                    "consultation_rule",
                    Some(&rule.id),
                )
                .after(json!(rule)),
        )?;
        Ok(rule)
    })
}

pub fn list_rules(conn: &mut DbConn) -> AppResult<Vec<super::dto::Rule>> {
    Ok(repo::list_rules(conn)?
        .into_iter()
        .map(super::dto::Rule::from)
        .collect())
}

pub fn delete_rule(conn: &mut DbConn, actor: &Actor, id: &str) -> AppResult<()> {
    db::write_tx(conn, |tx| {
        let rule = repo::find_rule(tx, id)?
            .ok_or_else(|| AppError::not_found("No consultation rule with this id."))?;
        repo::delete_rule(tx, id)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ConsultationRuleDelete, "consultation_rule", Some(id))
                .before(json!(super::dto::Rule::from(rule))),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(id: usize, status: FlagStatus) -> Flag {
        Flag {
            id: format!("f{id:03}"),
            proposal_id: "p".into(),
            round_id: "r".into(),
            version_number: 1,
            organization_id: None,
            system_raised: false,
            category: FlagCategory::Other,
            severity: Severity::Advisory,
            description: String::new(),
            confidential_note: None,
            activity_id: None,
            matched_activities: None,
            matched_activities_total: None,
            status,
            ended_by: None,
            ended_at: None,
            end_justification: None,
            created_at: chrono::DateTime::default(),
        }
    }

    #[test]
    fn keep_latest_keeps_the_tail_and_counts_all() {
        assert_eq!(keep_latest(vec![1, 2, 3], 5), (vec![1, 2, 3], 3));
        assert_eq!(keep_latest((1..=10).collect(), 3), (vec![8, 9, 10], 10));
    }

    #[test]
    fn bounded_flags_keep_open_ones_and_the_latest_ended_in_order() {
        let flags: Vec<Flag> = (0..300)
            .map(|i| {
                flag(
                    i,
                    if i % 100 == 7 {
                        FlagStatus::Open
                    } else {
                        FlagStatus::Withdrawn
                    },
                )
            })
            .collect();
        let (kept, total) = bound_flags(flags, 10);
        assert_eq!(total, 300);
        let ids: Vec<&str> = kept.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "f007", "f107", "f207", "f293", "f294", "f295", "f296", "f297", "f298", "f299"
            ]
        );
        let few: Vec<Flag> = (0..3).map(|i| flag(i, FlagStatus::Open)).collect();
        assert_eq!(bound_flags(few, 10).0.len(), 3);
    }
}
