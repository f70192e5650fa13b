//! Request and response bodies of implementation.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::proposal::Beneficiaries;
use crate::domain::tranches::PayCondition;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tranche {
    pub number: i32,
    pub percent: i32,
    pub amount: String,
    pub condition: PayCondition,
    /// `scheduled`, `paid`, `voided` (cancellation) or `waived` (close-out).
    pub status: crate::domain::status::TrancheStatus,
    pub paid: String,
    pub remaining: String,
    /// What may be paid on it right now (its condition holds).
    pub payable_now: String,
    pub waive_reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDisbursement {
    pub amount: String,
    pub paid_on: NaiveDate,
    /// The bank or payment system's reference.
    pub payment_reference: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    pub amount: String,
    pub reason: String,
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    pub local_authority: String,
    pub date: NaiveDate,
    pub maintenance: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewReport {
    Progress {
        narrative: String,
        percent_complete: u32,
        expenditure_to_date: String,
    },
    Completion {
        narrative: Option<String>,
        beneficiaries_reached: Beneficiaries,
        handover: Handover,
        expenditure_to_date: String,
    },
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Report {
    pub id: String,
    pub proposal_id: String,
    /// `progress` or `completion`.
    pub kind: crate::domain::status::ReportKind,
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
    pub expenditure_to_date: Option<String>,
    /// `submitted`, `accepted` or `returned`.
    pub status: crate::domain::status::ReportStatus,
    pub submitted_by: String,
    pub submitted_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportDecision {
    /// Required to return a report.
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObjectivesMet {
    Yes,
    Partly,
    No,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    pub objectives_met: ObjectivesMet,
    pub confidence_building_effect: String,
    pub lessons: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    pub evaluation: Evaluation,
    /// Required when a tranche is unpaid: why it will not be paid.
    pub waive_unpaid_tranches: Option<String>,
}
