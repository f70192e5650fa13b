//! Request and response bodies of the ledger API.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::domain::ledger_rules::TransactionKind;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContribution {
    pub contributor_organization_id: String,
    /// In `currency`, with exactly its minor digits.
    pub amount: String,
    /// ISO 4217; when it is not the pool's currency, `exchange_rate` is required.
    pub currency: String,
    /// Units of the pool's currency per one unit of `currency` (decimal string, e.g. "1.0845"). The pool
    /// amount is rounded half-even to the pool currency's minor digits.
    pub exchange_rate: Option<String>,
    /// The contributor's or bank's reference.
    pub reference: Option<String>,
    pub memo: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseRequest {
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entry {
    pub account_id: String,
    /// `contributor`, `unallocated`, `commitment` or `disbursed`.
    pub account_kind: String,
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
