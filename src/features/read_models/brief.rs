//! The decision brief: one page for a decider, combining the proposal, its consultation, the approval steps and
//! the pool's unallocated balance.

use crate::access::Actor;
use crate::db::DbConn;
use crate::domain::ids::ProposalId;
use crate::domain::lifecycle::State;
use crate::domain::money::format_amount;
use crate::domain::status::VersionStatus;
use crate::error::AppResult;
use crate::features::approval::dto::Brief;
use crate::features::approval::service::{current_version, steps_view};
use crate::features::ledger::service::{self as ledger, PoolRef};
use crate::features::proposals::repo as proposals_repo;
use crate::features::proposals::service::{load_visible, read_content, waived};

/// The decision brief.
pub fn brief(conn: &mut DbConn, actor: &Actor, proposal_id: &ProposalId) -> AppResult<Brief> {
    let proposal = load_visible(conn, actor, proposal_id)?;
    let version = current_version(conn, &proposal)?;
    // A draft after a return shows the submitted version the decisions were about.
    let shown = if version.status == VersionStatus::Draft && version.number > 1 {
        proposals_repo::find_version(conn, proposal_id.as_str(), version.number - 1)?.unwrap_or(version)
    } else {
        version
    };
    let content = read_content(&shown)?;
    let pool = PoolRef::load(conn, &proposal.pool())?;
    let unallocated = ledger::pool_totals(conn, &proposal.pool())?
        .get(&crate::domain::ledger_rules::AccountKind::Unallocated)
        .copied()
        .unwrap_or(0);
    let amount = shown.requested_minor.or(proposal.requested_minor);
    let consultation = crate::features::consultation::service::get_consultation(conn, actor, proposal_id)?;
    let latest = consultation.rounds.last();
    Ok(Brief {
        proposal_id: proposal.id.clone(),
        reference: proposal.reference.clone(),
        state: proposal.lifecycle_state()?,
        title: content.title.clone(),
        summary: content.summary.clone(),
        objectives: content.objectives.clone(),
        confidence_building_purpose: content.confidence_building_purpose.clone(),
        sector_code: content.sector_code.clone(),
        location: content.location.clone(),
        implementing_partner: content.implementing_partner.clone(),
        beneficiaries: content.beneficiaries.clone(),
        planned_start: content.planned_start,
        planned_end: content.planned_end,
        amount: amount.map(|a| format_amount(a, pool.currency)),
        currency: pool.currency.code().to_owned(),
        pool_unallocated_before: format_amount(unallocated, pool.currency),
        pool_unallocated_after: match proposal.lifecycle_state()? {
            State::Approved | State::InImplementation | State::Completed | State::Closed => None,
            _ => amount.map(|a| format_amount(unallocated - a, pool.currency)),
        },
        waiver: content.waiver.clone(),
        waived_limits: waived(&shown)?,
        screening: content.screening.clone(),
        consultation_deadline: latest.map(|r| r.deadline),
        consultation: latest.map(|r| r.consultees.clone()).unwrap_or_default(),
        flags: consultation.flags,
        flags_total: consultation.flags_total,
        steps: steps_view(conn, &proposal, false)?,
    })
}
