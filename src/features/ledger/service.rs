//! The posting function — the only writer of transactions, entries and balances — and the money operations
//! built on it. Every function here runs on the caller's transaction, so a posting commits or rolls back
//! together with the change that caused it (an approval, a payment) and its audit event.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::json;

use super::dto::{Entry, PoolBalancesView, Statement, StatementLine, Transaction};
use super::group_commit::{GroupCommit, Pending};
use super::repo::{self, EntryRow, TransactionRow};
use crate::db::DbConn;
use crate::domain::ids::{OrganisationId, PoolId, ProposalId, TransactionId};
use crate::domain::ledger_rules::{
    AccountKind, GuardError, TransactionKind, apply_leg, check_legs, may_reverse,
};
use crate::domain::money::{Currency, currency, format_amount};
use crate::error::{AppError, AppResult, ErrorKind};
use crate::features::audit::{self, AuditAction, AuditContext, now_micros};

/// One side of a posting: an account (by kind and owner) and a signed amount in minor units.
#[derive(Debug, Clone)]
pub struct Leg {
    pub kind: AccountKind,
    /// Contributor: organisation id; commitment/disbursed: proposal id; unallocated: empty.
    pub owner: String,
    pub amount: i64,
}

/// Everything a posting records besides its legs.
#[derive(Debug, Clone, Default)]
pub struct PostingDetails {
    pub proposal_id: Option<String>,
    pub reference: Option<String>,
    pub memo: Option<String>,
    pub contributor_id: Option<String>,
    pub original_currency: Option<String>,
    pub original_minor: Option<i64>,
    pub fx_rate: Option<String>,
    pub reversal_of: Option<String>,
    /// `user_id:key` of the request that caused it, when it came with an `Idempotency-Key`.
    pub idempotency_key: Option<String>,
}

/// The pool a posting belongs to, with its currency (for amounts in errors and views).
#[derive(Debug, Clone)]
pub struct PoolRef {
    pub id: String,
    pub currency: Currency,
}

impl PoolRef {
    pub fn load(conn: &mut DbConn, pool_id: &PoolId) -> AppResult<PoolRef> {
        let row = crate::features::pools::repo::find_pool(conn, pool_id.as_str())?
            .ok_or_else(|| AppError::not_found("No pool with this id."))?;
        let currency = currency(&row.currency).ok_or_else(|| AppError::internal("pool currency unknown"))?;
        Ok(PoolRef { id: row.id, currency })
    }

    /// The pool's id, typed (the posting path keeps the stored text in `id`).
    pub fn pool_id(&self) -> PoolId {
        PoolId::from(self.id.as_str())
    }
}

fn insufficient(kind: AccountKind, available: i64, needed: i64, currency: Currency) -> AppError {
    let what = match kind {
        AccountKind::Unallocated => "The pool's unallocated balance",
        AccountKind::Commitment => "The proposal's committed balance",
        AccountKind::Disbursed => "The proposal's disbursed balance",
        AccountKind::Contributor => "The contributor's balance",
    };
    AppError::new(
        ErrorKind::InsufficientFunds,
        format!(
            "{what} is {} {}; this needs {}.",
            format_amount(available, currency),
            currency.code(),
            format_amount(needed, currency)
        ),
    )
    .with_extension("account", json!(kind))
    .with_extension("available", json!(format_amount(available, currency)))
    .with_extension("needed", json!(format_amount(needed, currency)))
}

/// A posting as written: its transaction row and its entries with their accounts' kind and owner, enough to
/// answer with the transaction's view without reading it back.
#[derive(Debug, Clone)]
pub struct Posted {
    pub row: TransactionRow,
    pool: PoolRef,
    entries: Vec<(EntryRow, AccountKind, String)>,
}

impl Posted {
    /// The view of the new transaction (a posting just written has no reversal yet).
    pub fn view(self) -> AppResult<Transaction> {
        view_of(&self.pool, &self.row, self.entries, None)
    }

    /// The stored response of a money request that made this posting: 201 with its view, and its id.
    pub fn stored(self) -> AppResult<(u16, String, Option<String>)> {
        let id = self.row.id.clone();
        let body = serde_json::to_string(&self.view()?).map_err(|e| AppError::internal(e.to_string()))?;
        Ok((201, body, Some(id)))
    }
}

/// Posts one transaction: resolves (creating on first use) the accounts, checks the guards (legs non-zero and
/// balanced; no guarded account below zero), writes the transaction, its entries, the audit event and the new
/// balances. Must run inside the caller's write transaction; nothing else writes these tables.
pub fn post(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    kind: TransactionKind,
    legs: &[Leg],
    details: PostingDetails,
) -> AppResult<TransactionRow> {
    post_recorded(tx, ctx, pool, kind, legs, details).map(|posted| posted.row)
}

/// [`post`], returning what it wrote. The balance rows are locked last, in one statement with their update
/// and (PostgreSQL) with the transaction row and its entries, so a hot account or roll-up row is held only
/// for that statement and the commit; every posting locks balances in ascending account id, then roll-up
/// rows in key order, and a refusal by a guard rolls the whole transaction back.
pub fn post_recorded(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    kind: TransactionKind,
    legs: &[Leg],
    details: PostingDetails,
) -> AppResult<Posted> {
    let wanted: Vec<(AccountKind, &str)> = legs.iter().map(|leg| (leg.kind, leg.owner.as_str())).collect();
    let accounts = repo::accounts_of(tx, &pool.id, &wanted, pool.currency.code(), now_micros())?;
    let (prepared, event) = prepare_posting(ctx, pool, kind, legs, details, &accounts)?;
    audit::append(tx, event)?;
    // The transaction, its entries (whose roll-up rows, kept by the database as they go in, are as hot as
    // the balances) and the balances go in last, after the audit event, so the hot rows are held only from
    // that last statement to the commit.
    apply_posting(tx, &prepared, pool.currency)?;
    Ok(prepared.posted)
}

/// A posting worked out before anything is written: what [`post_recorded`] writes besides its audit event,
/// and its answer.
struct PreparedPosting {
    row: TransactionRow,
    entries: Vec<EntryRow>,
    /// Each touched account's net change, in ascending account id.
    by_account: BTreeMap<String, (AccountKind, i64)>,
    posted: Posted,
}

impl PreparedPosting {
    /// Each account's change as the balance statements take it (guarded: must not go below zero).
    fn balance_changes(&self) -> Vec<repo::BalanceChange> {
        self.by_account
            .iter()
            .map(|(id, (kind, delta))| repo::BalanceChange {
                account_id: id.clone(),
                delta: *delta,
                guarded: !kind.may_go_negative(),
            })
            .collect()
    }
}

/// Checks the legs (non-zero, balanced) and builds the transaction row, its entries on `accounts` (one per
/// leg, in order), each account's net change, and its audit event — no I/O.
fn prepare_posting(
    ctx: &AuditContext,
    pool: &PoolRef,
    kind: TransactionKind,
    legs: &[Leg],
    details: PostingDetails,
    accounts: &[String],
) -> AppResult<(PreparedPosting, audit::NewAuditEvent)> {
    let amounts: Vec<i64> = legs.iter().map(|l| l.amount).collect();
    check_legs(&amounts)
        .map_err(|e| AppError::internal(format!("posting refused by ledger guard: {e:?}")))?;
    if accounts.len() != legs.len() {
        return Err(AppError::internal("posting: one account per leg"));
    }
    let mut by_account: BTreeMap<String, (AccountKind, i64)> = BTreeMap::new();
    for (leg, account_id) in legs.iter().zip(accounts) {
        let entry = by_account.entry(account_id.clone()).or_insert((leg.kind, 0));
        entry.1 = entry
            .1
            .checked_add(leg.amount)
            .ok_or_else(|| AppError::invalid_field("amount", "is too large"))?;
    }
    let amount_minor = legs
        .iter()
        .filter(|l| l.amount > 0)
        .map(|l| l.amount)
        .sum::<i64>();
    let row = TransactionRow {
        id: uuid::Uuid::now_v7().to_string(),
        pool_id: pool.id.clone(),
        kind,
        proposal_id: details.proposal_id,
        amount_minor,
        reference: details.reference,
        memo: details.memo,
        contributor_id: details.contributor_id,
        original_currency: details.original_currency,
        original_minor: details.original_minor,
        fx_rate: details.fx_rate,
        reversal_of: details.reversal_of,
        idempotency_key: details.idempotency_key,
        created_by: ctx.actor_id.clone().unwrap_or_else(|| "system".into()),
        hat: ctx.hat.clone(),
        request_id: ctx.request_id.clone(),
        created_at: now_micros(),
    };
    let entries: Vec<EntryRow> = legs
        .iter()
        .zip(accounts)
        .enumerate()
        .map(|(i, (leg, account_id))| EntryRow {
            transaction_id: row.id.clone(),
            leg: i32::try_from(i).unwrap_or(i32::MAX),
            account_id: account_id.clone(),
            amount_minor: leg.amount,
        })
        .collect();
    let summary = json!({
        "transaction_id": row.id, "kind": row.kind, "amount": format_amount(amount_minor, pool.currency),
        "currency": pool.currency.code(), "proposal_id": row.proposal_id, "reversal_of": row.reversal_of,
        "legs": legs.iter().map(|l| json!({"account": l.kind, "owner": l.owner, "amount": format_amount(l.amount, pool.currency)})).collect::<Vec<_>>(),
    });
    let event = ctx
        .event(AuditAction::ledger(row.kind), "transaction", Some(&row.id))
        .after(summary);
    let posted = Posted {
        row: row.clone(),
        pool: pool.clone(),
        entries: entries
            .iter()
            .cloned()
            .zip(legs)
            .map(|(entry, leg)| (entry, leg.kind, leg.owner.clone()))
            .collect(),
    };
    Ok((
        PreparedPosting {
            row,
            entries,
            by_account,
            posted,
        },
        event,
    ))
}

/// Writes the transaction and its entries and applies each account's net change to its balance row, refusing
/// (so rolling back) a guarded account that would go below zero. PostgreSQL does it all in one statement
/// (`repo::post_pg`: rows locked and updated there) and checks the balances it returns; SQLite (whose write
/// transaction already holds the only write lock) inserts, reads, checks and writes.
fn apply_posting(tx: &mut DbConn, prepared: &PreparedPosting, currency: Currency) -> AppResult<()> {
    let (row, entries, by_account) = (&prepared.row, &prepared.entries, &prepared.by_account);
    let refused = |e: GuardError| match e {
        GuardError::Insufficient {
            kind,
            available,
            needed,
        } => insufficient(kind, available, needed, currency),
        e => AppError::invalid_field("amount", format!("cannot be posted: {e:?}")),
    };
    if let DbConn::Pg(_) = tx {
        let before = repo::post_pg(tx, row, entries, &prepared.balance_changes()).map_err(|e| {
            if is_out_of_range(&e) {
                refused(GuardError::Overflow)
            } else {
                AppError::from(e)
            }
        })?;
        for ((kind, delta), (_, before)) in by_account.values().zip(before) {
            apply_leg(*kind, before, *delta).map_err(refused)?;
        }
        return Ok(());
    }
    repo::insert_posting(tx, row, entries)?;
    let locked = repo::lock_balances(tx, &by_account.keys().cloned().collect::<Vec<_>>())?;
    let mut new_balances = Vec::with_capacity(by_account.len());
    for ((account_id, (kind, delta)), (_, balance)) in by_account.iter().zip(locked) {
        new_balances.push((
            account_id.clone(),
            apply_leg(*kind, balance, *delta).map_err(refused)?,
        ));
    }
    repo::set_balances(tx, &new_balances)?;
    Ok(())
}

/// PostgreSQL refused an arithmetic result outside `bigint` (a balance that would overflow).
fn is_out_of_range(e: &diesel::result::Error) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message().contains("out of range"))
}

fn positive(amount: i64) -> AppResult<i64> {
    if amount > 0 {
        Ok(amount)
    } else {
        Err(AppError::invalid_field("amount", "must be greater than zero"))
    }
}

fn movement(kind: TransactionKind, from_owner: &str, to_owner: &str, amount: i64) -> AppResult<Vec<Leg>> {
    let (from, to) = kind
        .movement()
        .ok_or_else(|| AppError::internal("movement of a reversal"))?;
    Ok(vec![
        Leg {
            kind: from,
            owner: from_owner.to_owned(),
            amount: -amount,
        },
        Leg {
            kind: to,
            owner: to_owner.to_owned(),
            amount,
        },
    ])
}

/// Foreign-currency details of a contribution.
#[derive(Debug, Clone)]
pub struct ForeignAmount {
    pub currency: Currency,
    pub original_minor: i64,
    pub rate: Decimal,
}

/// Money from a contributor into the pool's unallocated balance. A foreign-currency contribution keeps its
/// original amount and rate; the pool amount is converted half-even (`money::convert`).
pub fn contribute(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    contributor_id: &OrganisationId,
    amount: i64,
    foreign: Option<ForeignAmount>,
    details: PostingDetails,
) -> AppResult<Posted> {
    let (legs, details) = contribution_legs(contributor_id, amount, foreign, details)?;
    post_recorded(tx, ctx, pool, TransactionKind::Contribution, &legs, details)
}

/// A contribution's legs (contributor → unallocated, in that order) and its details.
fn contribution_legs(
    contributor_id: &OrganisationId,
    amount: i64,
    foreign: Option<ForeignAmount>,
    mut details: PostingDetails,
) -> AppResult<(Vec<Leg>, PostingDetails)> {
    positive(amount)?;
    details.contributor_id = Some(contributor_id.to_string());
    if let Some(f) = foreign {
        details.original_currency = Some(f.currency.code().to_owned());
        details.original_minor = Some(f.original_minor);
        details.fx_rate = Some(f.rate.normalize().to_string());
    }
    let legs = movement(TransactionKind::Contribution, contributor_id.as_str(), "", amount)?;
    Ok((legs, details))
}

/// Commits `amount` of the pool's unallocated money to a proposal (final approval). Refused with the
/// available amount when the pool cannot cover it.
pub fn commit_funds(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    proposal_id: &ProposalId,
    amount: i64,
    details: PostingDetails,
) -> AppResult<TransactionRow> {
    positive(amount)?;
    let legs = movement(TransactionKind::Commitment, "", proposal_id.as_str(), amount)?;
    post(
        tx,
        ctx,
        pool,
        TransactionKind::Commitment,
        &legs,
        PostingDetails {
            proposal_id: Some(proposal_id.to_string()),
            ..details
        },
    )
}

/// Returns committed money of a proposal to unallocated (cancellation, close-out).
pub fn release_commitment(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    proposal_id: &ProposalId,
    amount: i64,
    details: PostingDetails,
) -> AppResult<TransactionRow> {
    positive(amount)?;
    let legs = movement(TransactionKind::Release, proposal_id.as_str(), "", amount)?;
    post(
        tx,
        ctx,
        pool,
        TransactionKind::Release,
        &legs,
        PostingDetails {
            proposal_id: Some(proposal_id.to_string()),
            ..details
        },
    )
}

/// Pays committed money of a proposal (a tranche payment); returns what it wrote, to answer without reading back.
pub fn disburse(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    proposal_id: &ProposalId,
    amount: i64,
    details: PostingDetails,
) -> AppResult<Posted> {
    positive(amount)?;
    let legs = movement(
        TransactionKind::Disbursement,
        proposal_id.as_str(),
        proposal_id.as_str(),
        amount,
    )?;
    post_recorded(
        tx,
        ctx,
        pool,
        TransactionKind::Disbursement,
        &legs,
        PostingDetails {
            proposal_id: Some(proposal_id.to_string()),
            ..details
        },
    )
}

/// Unspent money returned by the partner goes back to unallocated (returns what it wrote, as [`disburse`]).
pub fn refund(
    tx: &mut DbConn,
    ctx: &AuditContext,
    pool: &PoolRef,
    proposal_id: &ProposalId,
    amount: i64,
    details: PostingDetails,
) -> AppResult<Posted> {
    positive(amount)?;
    let legs = movement(TransactionKind::Refund, proposal_id.as_str(), "", amount)?;
    post_recorded(
        tx,
        ctx,
        pool,
        TransactionKind::Refund,
        &legs,
        PostingDetails {
            proposal_id: Some(proposal_id.to_string()),
            ..details
        },
    )
}

/// Reverses a transaction once: its entries negated, linked to it. Only contributions are reversed raw
/// (`ledger_rules::may_reverse`): a proposal's money is corrected through the proposal (cancel, refund), so a
/// proposal is never `approved` with nothing committed or a tranche `paid` with nothing disbursed. The
/// reversal passes the same guards (a contribution whose money is already committed cannot be reversed).
pub fn reverse(
    tx: &mut DbConn,
    ctx: &AuditContext,
    transaction_id: &TransactionId,
    reason: &str,
    mut details: PostingDetails,
) -> AppResult<Posted> {
    if reason.trim().len() < 5 {
        return Err(AppError::invalid_field(
            "reason",
            "must explain the reversal (at least 5 characters)",
        ));
    }
    let original = repo::find_transaction(tx, transaction_id.as_str())?
        .ok_or_else(|| AppError::not_found("No transaction with this id."))?;
    let kind = original.kind;
    if let Err(refused) = may_reverse(kind) {
        return Err(AppError::conflict(refused.message())
            .with_extension("transaction_kind", json!(kind))
            .with_extension("correction", json!(refused.correction())));
    }
    if let Some(existing) = repo::reversal_of(tx, transaction_id.as_str())? {
        return Err(
            AppError::conflict(format!("This transaction was reversed already by {existing}."))
                .with_extension("reversed_by", json!(existing)),
        );
    }
    let pool = PoolRef::load(tx, &PoolId::from(original.pool_id.as_str()))?;
    let legs: Vec<Leg> = repo::entries_of(tx, transaction_id.as_str())?
        .into_iter()
        .map(|(entry, kind, owner)| Leg {
            kind,
            owner,
            amount: -entry.amount_minor,
        })
        .collect();
    details.reversal_of = Some(original.id.clone());
    details.proposal_id = original.proposal_id.clone();
    details.contributor_id = original.contributor_id.clone();
    details.memo = Some(reason.trim().to_owned());
    post_recorded(tx, ctx, &pool, TransactionKind::Reversal, &legs, details)
}

// ---- reads

pub fn transaction_view(conn: &mut DbConn, row: &TransactionRow) -> AppResult<Transaction> {
    let pool = PoolRef::load(conn, &PoolId::from(row.pool_id.as_str()))?;
    let entries = repo::entries_of(conn, &row.id)?;
    let reversed_by = repo::reversal_of(conn, &row.id)?;
    view_of(&pool, row, entries, reversed_by)
}

/// Views of a page of transactions of one pool: one statement for all their entries and one for their
/// reversals, however many rows the page has.
fn transaction_views(
    conn: &mut DbConn,
    pool: &PoolRef,
    rows: &[TransactionRow],
) -> AppResult<Vec<Transaction>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut entries: std::collections::HashMap<String, Vec<_>> = std::collections::HashMap::new();
    for e in repo::entries_of_many(conn, &ids)? {
        entries.entry(e.0.transaction_id.clone()).or_default().push(e);
    }
    let mut reversals: std::collections::HashMap<String, String> =
        repo::reversals_of_many(conn, &ids)?.into_iter().collect();
    rows.iter()
        .map(|r| {
            let legs = entries.remove(&r.id).unwrap_or_default();
            view_of(pool, r, legs, reversals.remove(&r.id))
        })
        .collect()
}

fn view_of(
    pool: &PoolRef,
    row: &TransactionRow,
    entries: Vec<(repo::EntryRow, AccountKind, String)>,
    reversed_by: Option<String>,
) -> AppResult<Transaction> {
    let entries = entries
        .into_iter()
        .map(|(e, kind, owner)| Entry {
            account_id: e.account_id,
            account_kind: kind,
            owner_id: if owner.is_empty() { None } else { Some(owner) },
            amount: format_amount(e.amount_minor, pool.currency),
        })
        .collect();
    // A stored currency code this service does not know is an error, never an original amount left out.
    let original_currency = row
        .original_currency
        .as_deref()
        .map(|code| {
            currency(code).ok_or_else(|| AppError::internal(format!("stored currency `{code}` unknown")))
        })
        .transpose()?;
    let kind = row.kind;
    Ok(Transaction {
        id: row.id.clone(),
        pool_id: row.pool_id.clone(),
        kind,
        iati_transaction_type: kind.iati_transaction_type(),
        proposal_id: row.proposal_id.clone(),
        amount: format_amount(row.amount_minor, pool.currency),
        currency: pool.currency.code().to_owned(),
        reference: row.reference.clone(),
        memo: row.memo.clone(),
        contributor_organization_id: row.contributor_id.clone(),
        original_amount: match (row.original_minor, original_currency) {
            (Some(m), Some(c)) => Some(format_amount(m, c)),
            _ => None,
        },
        original_currency: row.original_currency.clone(),
        exchange_rate: row.fx_rate.clone(),
        reversal_of: row.reversal_of.clone(),
        reversed_by,
        created_by: row.created_by.clone(),
        hat: row.hat.clone(),
        request_id: row.request_id.clone(),
        created_at: row.created_at.and_utc(),
        entries,
    })
}

pub fn get_transaction(conn: &mut DbConn, id: &TransactionId) -> AppResult<Transaction> {
    let row = repo::find_transaction(conn, id.as_str())?
        .ok_or_else(|| AppError::not_found("No transaction with this id."))?;
    transaction_view(conn, &row)
}

/// The balance of a proposal's account of `kind` (its commitment or what was disbursed to it) in a pool; 0
/// before the account exists. The ledger's balances are read through here, not through its repo.
pub fn proposal_balance(
    conn: &mut DbConn,
    pool_id: &PoolId,
    kind: AccountKind,
    proposal_id: &ProposalId,
) -> AppResult<i64> {
    Ok(repo::balance_of(
        conn,
        pool_id.as_str(),
        kind,
        proposal_id.as_str(),
    )?)
}

/// The pool's totals from its balance rows: contributed (what contributors gave, net), unallocated,
/// committed and disbursed.
pub fn pool_totals(conn: &mut DbConn, pool_id: &PoolId) -> AppResult<BTreeMap<AccountKind, i64>> {
    let mut totals: BTreeMap<AccountKind, i64> = AccountKind::ALL.iter().map(|k| (*k, 0)).collect();
    for row in repo::pool_balance_totals(conn, pool_id.as_str())? {
        *totals.entry(row.kind).or_insert(0) += row.total;
    }
    Ok(totals)
}

pub fn pool_balances_view(
    conn: &mut DbConn,
    pool_id: &PoolId,
    currency: Currency,
) -> AppResult<PoolBalancesView> {
    let t = pool_totals(conn, pool_id)?;
    let get = |k: AccountKind| *t.get(&k).unwrap_or(&0);
    Ok(PoolBalancesView {
        contributed: format_amount(-get(AccountKind::Contributor), currency),
        unallocated: format_amount(get(AccountKind::Unallocated), currency),
        committed: format_amount(get(AccountKind::Commitment), currency),
        disbursed: format_amount(get(AccountKind::Disbursed), currency),
    })
}

fn sums_by_account(rows: &[repo::MovementTotal]) -> BTreeMap<AccountKind, i64> {
    let mut out: BTreeMap<AccountKind, i64> = AccountKind::ALL.iter().map(|k| (*k, 0)).collect();
    for row in rows {
        *out.entry(row.account_kind).or_insert(0) += row.total;
    }
    out
}

fn totals_line(sums: &BTreeMap<AccountKind, i64>, currency: Currency) -> PoolBalancesView {
    let get = |k: AccountKind| *sums.get(&k).unwrap_or(&0);
    PoolBalancesView {
        contributed: format_amount(-get(AccountKind::Contributor), currency),
        unallocated: format_amount(get(AccountKind::Unallocated), currency),
        committed: format_amount(get(AccountKind::Commitment), currency),
        disbursed: format_amount(get(AccountKind::Disbursed), currency),
    }
}

/// Opening balances at `from`, movements by transaction kind in `[from, to)`, closing balances at `to`; the
/// statement reconciles by construction and says so (`reconciles`), checked against the entries themselves.
pub fn statement(
    conn: &mut DbConn,
    pool_id: &PoolId,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<Statement> {
    let pool = PoolRef::load(conn, pool_id)?;
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(AppError::invalid_field("to", "must not be before from"));
        }
    }
    // `to` is inclusive as a date: up to the start of the next day.
    let end_day: Option<NaiveDate> = to.and_then(|d| d.succ_opt());
    crate::db::snapshot_tx(conn, |tx| {
        // Dates are whole UTC days, so the daily totals answer exactly.
        let before = match from {
            Some(f) => repo::pool_period_totals(tx, pool_id.as_str(), None, Some(f))?,
            None => Vec::new(),
        };
        let within = repo::pool_period_totals(tx, pool_id.as_str(), from, end_day)?;
        let opening = sums_by_account(&before);
        let moved = sums_by_account(&within);
        let mut closing = opening.clone();
        for (k, v) in &moved {
            *closing.entry(*k).or_insert(0) += v;
        }
        // Lines in the order of the kinds' names.
        let mut lines: BTreeMap<&str, (TransactionKind, u64, BTreeMap<AccountKind, i64>)> = BTreeMap::new();
        for row in &within {
            let entry = lines
                .entry(row.transaction_kind.as_str())
                .or_insert_with(|| (row.transaction_kind, 0, BTreeMap::new()));
            *entry.2.entry(row.account_kind).or_insert(0) += row.total;
            entry.1 += u64::try_from(row.entries).unwrap_or(0);
        }
        let movements = lines
            .into_values()
            .map(|(kind, legs, sums)| StatementLine {
                kind,
                entries: legs,
                effect: totals_line(&sums, pool.currency),
            })
            .collect();
        let check_closing = sums_by_account(&repo::pool_period_totals(tx, pool_id.as_str(), None, end_day)?);
        let balanced = |m: &BTreeMap<AccountKind, i64>| m.values().sum::<i64>() == 0;
        Ok(Statement {
            pool_id: pool_id.to_string(),
            currency: pool.currency.code().to_owned(),
            from,
            to,
            opening: totals_line(&opening, pool.currency),
            movements,
            closing: totals_line(&closing, pool.currency),
            reconciles: check_closing == closing && balanced(&opening) && balanced(&closing),
        })
    })
}

// ---- requests (validation first — never stored — then the idempotent posting)

use super::dto::NewContribution;
use super::idempotency::{self, IdempotentRequest, StoredResponse};
use crate::access::Actor;
use crate::error::FieldError;

fn optional_text(value: &Option<String>, field: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if v.chars().count() > 500 => {
            errors.push(FieldError::new(field, "must be at most 500 characters"));
            None
        }
        Some("") | None => None,
        Some(v) => Some(v.to_owned()),
    }
}

/// `POST /pools/{id}/contributions`: checks the request, then posts it once per idempotency key.
pub fn contribution_request(
    conn: &mut DbConn,
    group: &GroupCommit,
    retention: chrono::Duration,
    actor: &Actor,
    pool_id: &PoolId,
    input: &NewContribution,
    idem: &IdempotentRequest,
) -> AppResult<StoredResponse> {
    let reads = repo::contribution_reads(conn, pool_id.as_str(), &input.contributor_organization_id)?
        .ok_or_else(|| AppError::not_found("No pool with this id."))?;
    let pool = PoolRef {
        id: pool_id.to_string(),
        currency: currency(&reads.currency).ok_or_else(|| AppError::internal("pool currency unknown"))?,
    };
    let mut errors = Vec::new();
    if !reads.contributor_exists {
        errors.push(FieldError::new(
            "contributor_organization_id",
            "no organisation has this id",
        ));
    }
    let reference = optional_text(&input.reference, "reference", &mut errors);
    let memo = optional_text(&input.memo, "memo", &mut errors);
    let mut amount = None;
    let mut foreign = None;
    match currency(&input.currency) {
        None => errors.push(FieldError::new(
            "currency",
            "is not an ISO 4217 currency code this service knows",
        )),
        Some(c) => match crate::domain::money::parse_positive_amount(&input.amount, c) {
            Err(e) => errors.push(FieldError::new("amount", e.to_string())),
            Ok(original) if c == pool.currency => {
                if input.exchange_rate.is_some() {
                    errors.push(FieldError::new(
                        "exchange_rate",
                        "must not be sent when the contribution is in the pool's currency",
                    ));
                }
                amount = Some(original);
            }
            Ok(original) => match input.exchange_rate.as_deref().map(str::parse::<Decimal>) {
                None => errors.push(FieldError::new(
                    "exchange_rate",
                    format!(
                        "is required: the contribution is in {} and the pool in {}",
                        c.code(),
                        pool.currency.code()
                    ),
                )),
                Some(Err(_)) => errors.push(FieldError::new(
                    "exchange_rate",
                    "must be a decimal number like 1.0845",
                )),
                Some(Ok(rate)) if rate <= Decimal::ZERO || rate.scale() > 10 => errors.push(FieldError::new(
                    "exchange_rate",
                    "must be greater than zero, with at most 10 decimals",
                )),
                Some(Ok(rate)) => match crate::domain::money::convert(original, c, rate, pool.currency) {
                    Ok(converted) if converted > 0 => {
                        amount = Some(converted);
                        foreign = Some(ForeignAmount {
                            currency: c,
                            original_minor: original,
                            rate,
                        });
                    }
                    Ok(_) => errors.push(FieldError::new(
                        "amount",
                        "converts to nothing in the pool's currency",
                    )),
                    Err(e) => errors.push(FieldError::new("amount", e.to_string())),
                },
            },
        },
    }
    let (Some(amount), true) = (amount, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let ctx = actor.audit();
    let contributor = OrganisationId::from(input.contributor_organization_id.as_str());
    let details = || PostingDetails {
        reference: reference.clone(),
        memo: memo.clone(),
        idempotency_key: Some(idem.ledger_key()),
        ..Default::default()
    };
    if let (DbConn::Pg(_), Some(accounts)) = (&*conn, &reads.accounts) {
        let (legs, details) = contribution_legs(&contributor, amount, foreign.clone(), details())?;
        let (prepared, event) = prepare_posting(
            &ctx,
            &pool,
            TransactionKind::Contribution,
            &legs,
            details,
            accounts,
        )?;
        if let Some(done) = post_grouped(conn, group, idem, retention, prepared, event)? {
            return Ok(done);
        }
    }
    idempotency::run(conn, idem, retention, |tx| {
        contribute(tx, &ctx, &pool, &contributor, amount, foreign.clone(), details())?.stored()
    })
}

/// PostgreSQL, a posting whose accounts exist: the request's whole write — key claim, audit event,
/// transaction, entries, balances, stored response — in one statement, grouped with the money requests that
/// arrive meanwhile ([`group_commit`]). `None`: nothing was written for it (its key was already recorded, a
/// guard refused, or the batch met contention) and the general path ([`idempotency::run`]) answers: a replay,
/// a 422, the refusal with its figures, or the posting.
fn post_grouped(
    conn: &mut DbConn,
    group: &GroupCommit,
    idem: &IdempotentRequest,
    retention: chrono::Duration,
    prepared: PreparedPosting,
    event: audit::NewAuditEvent,
) -> AppResult<Option<StoredResponse>> {
    let changes = prepared
        .by_account
        .iter()
        .map(|(account, (_, delta))| (account.clone(), *delta))
        .collect();
    let (status, body, _) = prepared.posted.stored()?;
    let response = StoredResponse {
        status,
        body,
        replayed: false,
    };
    let pending = Pending {
        request: idem.clone(),
        response: response.clone(),
        retention,
        event: audit::event_row(event),
        row: prepared.row,
        entries: prepared.entries,
        changes,
    };
    Ok(group.write(conn, pending).then_some(response))
}

/// `POST /transactions/{id}/reverse`.
pub fn reversal_request(
    conn: &mut DbConn,
    retention: chrono::Duration,
    actor: &Actor,
    transaction_id: &TransactionId,
    reason: &str,
    idem: &IdempotentRequest,
) -> AppResult<StoredResponse> {
    if repo::find_transaction(conn, transaction_id.as_str())?.is_none() {
        return Err(AppError::not_found("No transaction with this id."));
    }
    if reason.trim().len() < 5 {
        return Err(AppError::invalid_field(
            "reason",
            "must explain the reversal (at least 5 characters)",
        ));
    }
    let ctx = actor.audit();
    idempotency::run(conn, idem, retention, |tx| {
        let details = PostingDetails {
            idempotency_key: Some(idem.ledger_key()),
            ..Default::default()
        };
        reverse(tx, &ctx, transaction_id, reason, details)?.stored()
    })
}

pub fn list_transactions(
    conn: &mut DbConn,
    pool_id: &PoolId,
    query: &super::dto::TransactionQuery,
    before: Option<&TransactionId>,
    limit: u32,
) -> AppResult<Vec<Transaction>> {
    let pool = PoolRef::load(conn, pool_id)?;
    let filter = repo::TransactionFilter {
        kind: query.kind,
        proposal_id: query.proposal_id.clone(),
        from: query.from.map(|t| t.naive_utc()),
        to: query.to.map(|t| t.naive_utc()),
    };
    let rows = repo::list_transactions(
        conn,
        pool_id.as_str(),
        &filter,
        before.map(TransactionId::as_str),
        i64::from(limit) + 1,
    )?;
    transaction_views(conn, &pool, &rows)
}
