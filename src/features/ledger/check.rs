//! The ledger invariant check (DESIGN.md §5), for `qip-pool ledger check` and `GET /ledger/check`: every
//! transaction sums to zero, every stored balance equals the sum of its entries, no account but a contributor's
//! is negative, per pool contributions = unallocated + committed + disbursed, and no idempotency key made more
//! than one transaction. Read in one snapshot.

use std::collections::{BTreeMap, HashMap};

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::{ledger_accounts, ledger_balances, ledger_entries, ledger_transactions};
use crate::db::{self, DbConn};
use crate::domain::ledger_rules::AccountKind;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LedgerProblem {
    /// `unbalanced_transaction`, `balance_mismatch`, `negative_balance`, `pool_does_not_add_up`, `duplicate_idempotency_key`.
    pub kind: String,
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
    pub problems: Vec<LedgerProblem>,
}

pub fn check(conn: &mut DbConn) -> QueryResult<LedgerReport> {
    db::snapshot_tx(conn, check_in_snapshot)
}

fn check_in_snapshot(conn: &mut DbConn) -> QueryResult<LedgerReport> {
    let mut problems = Vec::new();
    let mut problem = |kind: &str, subject: &str, detail: String| {
        problems.push(LedgerProblem {
            kind: kind.into(),
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
                "unbalanced_transaction",
                tx,
                format!("entries sum to {sum}, not 0"),
            ),
            None => problem("unbalanced_transaction", tx, "has no entries".into()),
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
                "balance_mismatch",
                account,
                format!("stored balance {balance}, entries sum to {from_entries}"),
            );
        }
        let kind = AccountKind::parse(kind);
        if *balance < 0 && !kind.is_some_and(AccountKind::may_go_negative) {
            problem(
                "negative_balance",
                account,
                format!("{kind:?} account at {balance}"),
            );
        }
        if let Some(k) = kind {
            *per_pool.entry(pool.clone()).or_default().entry(k).or_insert(0) += i128::from(*balance);
        }
    }
    for (pool, totals) in &per_pool {
        let get = |k: AccountKind| totals.get(&k).copied().unwrap_or(0);
        let contributed = -get(AccountKind::Contributor);
        let held = get(AccountKind::Unallocated) + get(AccountKind::Commitment) + get(AccountKind::Disbursed);
        if contributed != held {
            problem(
                "pool_does_not_add_up",
                pool,
                format!("contributions {contributed} ≠ unallocated + committed + disbursed {held}"),
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
        problem("duplicate_idempotency_key", &key, format!("{count} transactions"));
    }
    Ok(LedgerReport {
        ok: problems.is_empty(),
        transactions_checked: transactions.len() as u64,
        accounts_checked: balances.len() as u64,
        pools_checked: per_pool.len() as u64,
        problems,
    })
}
