//! Request and response bodies of the ledger API.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ledger_rules::TransactionKind;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContribution {
    #[schema(example = "0195a3c8-5b1e-7c4d-9f00-3a2b1c0d9e8f")]
    pub contributor_organization_id: String,
    /// In `currency`, with at most its minor digits; greater than zero.
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "250000.00"
    )]
    pub amount: String,
    /// ISO 4217; when it is not the pool's currency, `exchange_rate` is required.
    #[schema(example = "USD")]
    pub currency: String,
    /// Units of the pool's currency per one unit of `currency` (decimal string, e.g. "1.0845", greater than
    /// zero, at most 10 decimals). The pool amount is rounded half-even to the pool currency's minor digits.
    #[schema(
        pattern = "^(?:[1-9][0-9]{0,7}(?:\\.[0-9]{1,10})?|0\\.[0-9]{0,9}[1-9])$",
        example = "1.0845"
    )]
    pub exchange_rate: Option<String>,
    /// The contributor's or bank's reference (at most 500 characters).
    #[schema(max_length = 500, example = "NOR-QIP-2026-01")]
    pub reference: Option<String>,
    /// At most 500 characters.
    #[schema(max_length = 500, example = "First tranche of the 2026 pledge")]
    pub memo: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    /// Why: at least 5 characters once trimmed.
    #[schema(
        min_length = 5,
        pattern = "\\S[\\s\\S]{3,}\\S",
        example = "Entered twice by mistake"
    )]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entry {
    pub account_id: String,
    /// `contributor`, `unallocated`, `commitment` or `disbursed`.
    pub account_kind: crate::domain::ledger_rules::AccountKind,
    /// Organisation (contributor) or proposal (commitment, disbursed).
    pub owner_id: Option<String>,
    /// Signed, in the pool's currency.
    pub amount: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Transaction {
    pub id: String,
    pub pool_id: String,
    pub kind: TransactionKind,
    /// IATI TransactionType code where one applies (1 incoming funds, 2 commitment, 3 disbursement); a refund is
    /// reported as a negative disbursement (3) and a release as a negative commitment (2), never as 7.
    pub iati_transaction_type: Option<u8>,
    pub proposal_id: Option<String>,
    pub amount: String,
    pub currency: String,
    pub reference: Option<String>,
    pub memo: Option<String>,
    pub contributor_organization_id: Option<String>,
    pub original_amount: Option<String>,
    pub original_currency: Option<String>,
    pub exchange_rate: Option<String>,
    pub reversal_of: Option<String>,
    pub reversed_by: Option<String>,
    pub created_by: String,
    pub hat: Option<String>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub entries: Vec<Entry>,
}

/// Pool totals: `contributed` = `unallocated` + `committed` + `disbursed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PoolBalancesView {
    pub contributed: String,
    pub unallocated: String,
    pub committed: String,
    pub disbursed: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementLine {
    pub kind: TransactionKind,
    /// Number of entries of this kind in the period.
    pub entries: u64,
    /// Net effect on each total.
    pub effect: PoolBalancesView,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statement {
    pub pool_id: String,
    pub currency: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub opening: PoolBalancesView,
    pub movements: Vec<StatementLine>,
    pub closing: PoolBalancesView,
    /// Opening + movements = closing, and both sides of the books agree, recomputed from the entries.
    pub reconciles: bool,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// First day (inclusive); absent: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last day (inclusive); absent: up to now.
    pub to: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionQuery {
    pub kind: Option<TransactionKind>,
    pub proposal_id: Option<String>,
    /// Created at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    pub to: Option<DateTime<Utc>>,
}
