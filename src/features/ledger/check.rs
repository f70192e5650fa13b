//! The ledger invariant check (DESIGN.md §5), for `qip-pool ledger check` and `GET /ledger/check`: every
//! transaction sums to zero, every stored balance equals the sum of its entries, no account but a contributor's
//! is negative, per pool contributions = unallocated + committed + disbursed, no idempotency key made more
//! than one transaction, and every tranche's `paid` figure equals the disbursements posted for it (net of any
//! reversals), with no disbursement of a proposal outside its tranches. Read in one snapshot.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{
    ledger_accounts, ledger_balances, ledger_entries, ledger_transactions, tranche_payments, tranches,
};
use crate::db::{self, DbConn};
use crate::domain::ledger_rules::{AccountKind, TransactionKind};

/// What the check found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = LedgerProblemKind)]
pub enum ProblemKind {
    /// A transaction's entries do not sum to zero (or it has none).
    UnbalancedTransaction,
    /// A stored balance differs from the sum of its account's entries.
    BalanceMismatch,
    /// An account other than a contributor's is below zero.
    NegativeBalance,
    /// Contributions differ from unallocated + committed + disbursed.
    PoolDoesNotAddUp,
    /// The daily totals differ from the entries they summarise.
    DailyTotalsMismatch,
    /// The monthly totals differ from the entries they summarise.
    MonthlyTotalsMismatch,
    /// One idempotency key made more than one transaction.
    DuplicateIdempotencyKey,
    /// A tranche's `paid` differs from its disbursements.
    TranchePaidMismatch,
    /// A tranche payment points at no disbursement of its proposal.
    PaymentWithoutDisbursement,
    /// A proposal with tranches has a disbursement on none of them.
    DisbursementOutsideTranches,
}

impl ProblemKind {
    /// The serde (API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::UnbalancedTransaction => "unbalanced_transaction",
            ProblemKind::BalanceMismatch => "balance_mismatch",
            ProblemKind::NegativeBalance => "negative_balance",
            ProblemKind::PoolDoesNotAddUp => "pool_does_not_add_up",
            ProblemKind::DailyTotalsMismatch => "daily_totals_mismatch",
            ProblemKind::MonthlyTotalsMismatch => "monthly_totals_mismatch",
            ProblemKind::DuplicateIdempotencyKey => "duplicate_idempotency_key",
            ProblemKind::TranchePaidMismatch => "tranche_paid_mismatch",
            ProblemKind::PaymentWithoutDisbursement => "payment_without_disbursement",
            ProblemKind::DisbursementOutsideTranches => "disbursement_outside_tranches",
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerProblem {
    pub kind: ProblemKind,
    /// The transaction, account or pool concerned.
    pub subject: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerReport {
    pub ok: bool,
    pub transactions_checked: u64,
    pub accounts_checked: u64,
    pub pools_checked: u64,
    pub tranches_checked: u64,
    pub problems: Vec<LedgerProblem>,
}

pub fn check(conn: &mut DbConn) -> QueryResult<LedgerReport> {
    db::snapshot_tx(conn, check_in_snapshot)
}

fn check_in_snapshot(conn: &mut DbConn) -> QueryResult<LedgerReport> {
    let mut problems = Vec::new();
    let mut problem = |kind: ProblemKind, subject: &str, detail: String| {
        problems.push(LedgerProblem {
            kind,
            subject: subject.into(),
            detail,
        })
    };
    let entries: Vec<(String, String, i64)> = ledger_entries::table
        .select((
            ledger_entries::transaction_id,
            ledger_entries::account_id,
            ledger_entries::amount_minor,
        ))
        .load(conn)?;
    let mut per_tx: HashMap<String, i128> = HashMap::new();
    let mut per_account: HashMap<String, i128> = HashMap::new();
    for (tx, account, amount) in &entries {
        *per_tx.entry(tx.clone()).or_insert(0) += i128::from(*amount);
        *per_account.entry(account.clone()).or_insert(0) += i128::from(*amount);
    }
    let transactions: Vec<String> = ledger_transactions::table
        .select(ledger_transactions::id)
        .load(conn)?;
    for tx in &transactions {
        match per_tx.get(tx) {
            Some(0) => {}
            Some(sum) => problem(
                ProblemKind::UnbalancedTransaction,
                tx,
                format!("entries sum to {sum}, not 0"),
            ),
            None => problem(ProblemKind::UnbalancedTransaction, tx, "has no entries".into()),
        }
    }
    let balances: Vec<(String, String, String, i64)> = ledger_balances::table
        .inner_join(ledger_accounts::table)
        .select((
            ledger_balances::account_id,
            ledger_accounts::pool_id,
            ledger_accounts::kind,
            ledger_balances::balance_minor,
        ))
        .load(conn)?;
    let mut per_pool: BTreeMap<String, BTreeMap<AccountKind, i128>> = BTreeMap::new();
    for (account, pool, kind, balance) in &balances {
        let from_entries = per_account.get(account).copied().unwrap_or(0);
        if i128::from(*balance) != from_entries {
            problem(
                ProblemKind::BalanceMismatch,
                account,
                format!("stored balance {balance}, entries sum to {from_entries}"),
            );
        }
        let kind: AccountKind = super::repo::read_stored(kind.clone())?;
        if *balance < 0 && !kind.may_go_negative() {
            problem(
                ProblemKind::NegativeBalance,
                account,
                format!("{} account at {balance}", kind.as_str()),
            );
        }
        *per_pool.entry(pool.clone()).or_default().entry(kind).or_insert(0) += i128::from(*balance);
    }
    for (pool, totals) in &per_pool {
        let get = |k: AccountKind| totals.get(&k).copied().unwrap_or(0);
        let contributed = -get(AccountKind::Contributor);
        let held = get(AccountKind::Unallocated) + get(AccountKind::Commitment) + get(AccountKind::Disbursed);
        if contributed != held {
            problem(
                ProblemKind::PoolDoesNotAddUp,
                pool,
                format!("contributions {contributed} ≠ unallocated + committed + disbursed {held}"),
            );
        }
    }
    // The daily and monthly totals the database keeps (statements, pool balances) must equal the entries they
    // summarise.
    for pool in per_pool.keys() {
        let totals =
            |rows: Vec<super::repo::MovementTotal>| -> BTreeMap<(AccountKind, TransactionKind), (i64, i64)> {
                rows.into_iter()
                    .map(|r| ((r.account_kind, r.transaction_kind), (r.total, r.entries)))
                    .collect()
            };
        let from_entries = totals(super::repo::pool_movement_totals(conn, pool, None, None)?);
        let kept = totals(super::repo::pool_daily_totals(conn, pool)?);
        if from_entries != kept {
            problem(
                ProblemKind::DailyTotalsMismatch,
                pool,
                format!("entries give {from_entries:?}, daily totals say {kept:?}"),
            );
        }
        // And the monthly roll-up (opening balances, pool balances), month by month.
        let (kept, from_entries) = super::repo::pool_monthly_totals_both_ways(conn, pool)?;
        if from_entries != kept {
            problem(
                ProblemKind::MonthlyTotalsMismatch,
                pool,
                format!("entries give {from_entries:?}, monthly totals say {kept:?}"),
            );
        }
    }
    let keys: Vec<Option<String>> = ledger_transactions::table
        .select(ledger_transactions::idempotency_key)
        .load(conn)?;
    let mut seen: HashMap<String, u32> = HashMap::new();
    for key in keys.into_iter().flatten() {
        *seen.entry(key).or_insert(0) += 1;
    }
    for (key, count) in seen.into_iter().filter(|(_, c)| *c > 1) {
        problem(
            ProblemKind::DuplicateIdempotencyKey,
            &key,
            format!("{count} transactions"),
        );
    }
    let tranches_checked = check_tranches(conn, &mut problem)?;
    Ok(LedgerReport {
        ok: problems.is_empty(),
        transactions_checked: transactions.len() as u64,
        accounts_checked: balances.len() as u64,
        pools_checked: per_pool.len() as u64,
        tranches_checked,
        problems,
    })
}

/// Every tranche's `paid` equals the disbursements its payments posted, less those reversed (raw reversals of
/// disbursements are refused now; older ones still count). A payment must point at a disbursement of its
/// proposal, and a proposal with tranches has no disbursement outside them. Returns the tranches checked.
fn check_tranches(
    conn: &mut DbConn,
    problem: &mut impl FnMut(ProblemKind, &str, String),
) -> QueryResult<u64> {
    let tranche_rows: Vec<(String, i32, i64)> = tranches::table
        .select((tranches::proposal_id, tranches::number, tranches::paid_minor))
        .load(conn)?;
    let payments: Vec<(String, String, i32)> = tranche_payments::table
        .select((
            tranche_payments::transaction_id,
            tranche_payments::proposal_id,
            tranche_payments::tranche_number,
        ))
        .load(conn)?;
    let disbursements: HashMap<String, (Option<String>, i64)> = ledger_transactions::table
        .filter(ledger_transactions::kind.eq(TransactionKind::Disbursement.as_str()))
        .select((
            ledger_transactions::id,
            ledger_transactions::proposal_id,
            ledger_transactions::amount_minor,
        ))
        .load::<(String, Option<String>, i64)>(conn)?
        .into_iter()
        .map(|(id, proposal, amount)| (id, (proposal, amount)))
        .collect();
    let reversed: HashSet<String> = ledger_transactions::table
        .filter(ledger_transactions::reversal_of.is_not_null())
        .select(ledger_transactions::reversal_of)
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    let mut posted: HashMap<(String, i32), i128> = HashMap::new();
    let mut on_a_tranche: HashSet<&str> = HashSet::new();
    for (transaction, proposal, number) in &payments {
        match disbursements.get(transaction) {
            Some((Some(p), amount)) if p == proposal => {
                on_a_tranche.insert(transaction.as_str());
                if !reversed.contains(transaction) {
                    *posted.entry((proposal.clone(), *number)).or_insert(0) += i128::from(*amount);
                }
            }
            _ => problem(
                ProblemKind::PaymentWithoutDisbursement,
                transaction,
                format!(
                    "payment on tranche {number} of proposal {proposal} has no disbursement of that proposal"
                ),
            ),
        }
    }
    let mut with_tranches: HashSet<&str> = HashSet::new();
    for (proposal, number, paid) in &tranche_rows {
        with_tranches.insert(proposal.as_str());
        let from_ledger = posted.get(&(proposal.clone(), *number)).copied().unwrap_or(0);
        if i128::from(*paid) != from_ledger {
            problem(
                ProblemKind::TranchePaidMismatch,
                &format!("{proposal}/tranches/{number}"),
                format!("tranche says {paid} paid, its disbursements net to {from_ledger}"),
            );
        }
    }
    for (transaction, (proposal, _)) in &disbursements {
        if let Some(p) = proposal.as_deref().filter(|p| with_tranches.contains(p)) {
            if !on_a_tranche.contains(transaction.as_str()) && !reversed.contains(transaction) {
                problem(
                    ProblemKind::DisbursementOutsideTranches,
                    transaction,
                    format!("disbursement of proposal {p} is on none of its tranches"),
                );
            }
        }
    }
    Ok(tranche_rows.len() as u64)
}
