//! Request and response bodies of approvals, the decision brief, tasks and turnaround.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Hat;
use crate::domain::approval_policy::StepReason;
use crate::domain::lifecycle::State;
pub use crate::domain::status::Decision;
use crate::domain::status::StepStatus;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub decision: Decision,
    /// Required to return or reject (the reasons go back to the submitter): at least 5 characters once
    /// trimmed.
    #[schema(example = "Cleared; keep the health committee in the handover")]
    pub comment: Option<String>,
    #[schema(example = "Solar installer certified by the health office")]
    pub conditions: Option<String>,
    /// Required from a person's second decision on the same proposal (in another hat).
    pub multi_hat_acknowledgement: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Step {
    pub id: String,
    pub version_number: i32,
    pub position: i32,
    /// The hat that decides this step.
    pub hat: Hat,
    pub reason: StepReason,
    pub financial: bool,
    pub sla_days: i32,
    pub status: StepStatus,
    /// The step that can be decided now.
    pub current: bool,
    pub opened_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub decided_by: Option<String>,
    /// The hat the decider decided in (the step's hat).
    pub decided_hat: Option<Hat>,
    pub acting: bool,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision: Option<Decision>,
    pub comment: Option<String>,
    pub conditions: Option<String>,
    pub multi_hat_acknowledgement: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Approval {
    pub proposal_id: String,
    pub state: State,
    /// The proposal's version: send it in `If-Match` with a decision.
    pub version: i64,
    pub steps: Vec<Step>,
}

/// What a task asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// Answer a consultation for your organisation.
    ConsultationResponse,
    /// Decide an open approval step.
    ApprovalStep,
    /// Accept or return a submitted report.
    ReportToAccept,
    /// An implementation whose report is overdue.
    ImplementationOverdue,
    /// An open flag on a proposal you submitted.
    FlagOnMyProposal,
    /// A tranche that is payable now.
    TrancheToPay,
}

impl TaskKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::ConsultationResponse => "consultation_response",
            TaskKind::ApprovalStep => "approval_step",
            TaskKind::ReportToAccept => "report_to_accept",
            TaskKind::ImplementationOverdue => "implementation_overdue",
            TaskKind::FlagOnMyProposal => "flag_on_my_proposal",
            TaskKind::TrancheToPay => "tranche_to_pay",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    pub kind: TaskKind,
    pub hat: Hat,
    pub proposal_id: String,
    pub reference: Option<String>,
    pub title: String,
    pub due_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    /// Where to act.
    pub link: String,
}

/// What a turnaround line groups decisions by (lines come grouped by hat first, then by step kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TurnaroundGroup {
    /// The hat that decides the steps.
    Hat,
    /// The step kind: the `kind` of the step's reason.
    StepKind,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TurnaroundLine {
    /// Per `group`: the step kind (`always`, `amount_at_least`, `sector_in`, `waiver`, `financial_band`) or the hat.
    pub key: String,
    pub group: TurnaroundGroup,
    pub decided: usize,
    pub median_days: Option<f64>,
    pub p90_days: Option<f64>,
    pub overdue_now: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Turnaround {
    pub pool_id: String,
    pub lines: Vec<TurnaroundLine>,
}

/// Everything a decider needs on one page.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Brief {
    pub proposal_id: String,
    pub reference: Option<String>,
    pub state: State,
    pub title: Option<String>,
    pub summary: Option<String>,
    pub objectives: Option<String>,
    pub confidence_building_purpose: Option<String>,
    pub sector_code: Option<String>,
    pub location: Option<crate::domain::proposal::Location>,
    pub implementing_partner: Option<crate::domain::proposal::ImplementingPartner>,
    pub beneficiaries: Option<crate::domain::proposal::Beneficiaries>,
    pub planned_start: Option<chrono::NaiveDate>,
    pub planned_end: Option<chrono::NaiveDate>,
    pub amount: Option<String>,
    pub currency: String,
    /// The pool's unallocated balance now, and after this proposal's commitment.
    pub pool_unallocated_before: String,
    pub pool_unallocated_after: Option<String>,
    pub waiver: Option<crate::domain::proposal::Waiver>,
    pub waived_limits: Vec<crate::domain::pool_policy::LimitExceeded>,
    pub screening: Option<crate::domain::proposal::Screening>,
    /// Who was asked in the latest round, and their answers (lapses included).
    pub consultation: Vec<crate::features::consultation::dto::Consultee>,
    pub consultation_deadline: Option<DateTime<Utc>>,
    /// The flags, open or ended, with override justifications (confidential notes only for callers who may see
    /// them); at most 100, open ones always listed first.
    pub flags: Vec<crate::features::consultation::dto::Flag>,
    /// How many flags the proposal has in all (the consultation view lists them).
    pub flags_total: usize,
    /// Every step of the current version: earlier decisions with their hats, and deadlines.
    pub steps: Vec<Step>,
}
