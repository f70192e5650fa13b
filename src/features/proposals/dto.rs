//! Response and query types of the proposals API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::lifecycle::{Action, State};
use crate::domain::pool_policy::LimitExceeded;
use crate::domain::proposal::ProposalContent;

/// Figures the server computes from the content (amounts as money strings of the pool's currency).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComputedFigures {
    /// Quantity × unit cost of each budget line, rounded half-even; `null` where a line cannot be computed.
    pub line_totals: Vec<Option<String>>,
    pub budget_total: Option<String>,
    pub overhead_total: Option<String>,
    pub duration_days: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Proposal {
    pub id: String,
    /// `QIP-<POOL>-<YEAR>-<NNNN>`, assigned at first submission.
    pub reference: Option<String>,
    pub pool_id: String,
    pub organization_id: String,
    pub state: State,
    /// IATI ActivityStatus code of the state.
    pub iati_activity_status: u8,
    /// Changes with every change; send it back in `If-Match`.
    pub version: i64,
    /// Number of the version shown (the current one).
    pub current_version: i32,
    pub content: ProposalContent,
    pub computed: ComputedFigures,
    /// The pool settings version the submitted content was checked against.
    pub pool_settings_version: Option<i32>,
    /// Pool limits exceeded under the waiver.
    pub waived_limits: Vec<LimitExceeded>,
    /// What you may do with the proposal now: the actions its state allows that your hats, the organisation
    /// you act for, your hats' scope and separation of duties permit you (`access::offered_actions`).
    pub allowed_actions: Vec<Action>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub first_submitted_at: Option<DateTime<Utc>>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub submitted_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProposalVersion {
    pub proposal_id: String,
    pub number: i32,
    /// `draft` (editable) or `submitted` (immutable).
    pub status: crate::domain::status::VersionStatus,
    pub content: ProposalContent,
    pub computed: ComputedFigures,
    pub pool_settings_version: Option<i32>,
    pub waived_limits: Vec<LimitExceeded>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<DateTime<Utc>>,
}

/// A row of the proposal list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProposalSummary {
    pub id: String,
    pub reference: Option<String>,
    pub title: String,
    pub state: State,
    pub pool_id: String,
    pub organization_id: String,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub adm2_pcode: Option<String>,
    pub requested_amount: Option<String>,
    pub version: i64,
    pub first_submitted_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProposalQuery {
    pub state: Option<State>,
    pub pool_id: Option<String>,
    pub organization_id: Option<String>,
    pub sector: Option<String>,
    pub adm1: Option<String>,
    pub adm2: Option<String>,
    /// Words that must all appear in the title or summary (case-insensitive).
    pub q: Option<String>,
    /// First submitted at or after (RFC 3339).
    pub submitted_from: Option<DateTime<Utc>>,
    /// First submitted before (RFC 3339).
    pub submitted_to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub reason: Option<String>,
}
