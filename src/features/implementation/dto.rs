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
    /// Money string in the pool's currency, greater than zero.
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "3900.00"
    )]
    pub amount: String,
    /// Not in the future.
    #[schema(example = "2026-11-29")]
    pub paid_on: NaiveDate,
    /// The bank or payment system's reference; 1–200 characters, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S", example = "BANK-0001")]
    pub payment_reference: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRefund {
    /// Money string in the pool's currency, greater than zero.
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "250.00"
    )]
    pub amount: String,
    /// What the refund is: at least 5 characters once trimmed.
    #[schema(
        min_length = 5,
        pattern = "\\S[\\s\\S]{3,}\\S",
        example = "Unspent balance returned by the health office"
    )]
    pub reason: String,
    pub reference: Option<String>,
}

/// The handover a completion report records (the proposal's `Handover` plus its date).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CompletionHandover)]
pub struct Handover {
    #[schema(min_length = 1, pattern = "\\S", example = "Tawila health office")]
    pub local_authority: String,
    pub date: NaiveDate,
    #[schema(
        min_length = 1,
        pattern = "\\S",
        example = "Health committee, quarterly check"
    )]
    pub maintenance: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NewReport {
    Progress {
        #[schema(
            min_length = 1,
            pattern = "\\S",
            example = "Panels installed; fridge delivered"
        )]
        narrative: String,
        #[schema(minimum = 0, maximum = 100, example = 60)]
        #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
        percent_complete: u32,
        /// Money string in the pool's currency, zero or more.
        #[schema(pattern = "^[0-9]+(?:\\.[0-9]{1,2})?$", max_length = 16, example = "3900.00")]
        expenditure_to_date: String,
    },
    Completion {
        narrative: Option<String>,
        beneficiaries_reached: Beneficiaries,
        handover: Handover,
        /// Money string in the pool's currency, zero or more.
        #[schema(pattern = "^[0-9]+(?:\\.[0-9]{1,2})?$", max_length = 16, example = "6450.00")]
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
    /// Why: at least 5 characters once trimmed.
    #[schema(
        min_length = 5,
        pattern = "\\S[\\s\\S]{3,}\\S",
        example = "The health post was relocated by the authorities"
    )]
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
    #[schema(
        min_length = 1,
        pattern = "\\S",
        example = "Health committee meets the battalion monthly"
    )]
    pub confidence_building_effect: String,
    #[schema(min_length = 1, pattern = "\\S", example = "Order panels early")]
    pub lessons: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseRequest {
    pub evaluation: Evaluation,
    /// Required when a tranche is unpaid: why it will not be paid.
    pub waive_unpaid_tranches: Option<String>,
}
