//! Queries on the ledger tables. Only `service::post` (and the idempotency module for its own table) writes.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::DbConn;
use crate::db::cached::{CachedSql, cached_sql};
use crate::db::schema::{ledger_accounts, ledger_balances, ledger_entries, ledger_transactions};
use crate::domain::ledger_rules::{AccountKind, TransactionKind};

/// A stored name read in a tuple or a raw-SQL row (where `deserialize_as` cannot apply): an unknown one
/// ([`crate::domain::status::UnknownStored`], or the lifecycle's `UnknownName` for a proposal state) fails the query like a row field
/// would.
pub fn read_stored<T, E>(text: String) -> QueryResult<T>
where
    T: TryFrom<String, Error = E>,
    E: std::error::Error + Send + Sync + 'static,
{
    T::try_from(text).map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_accounts)]
pub struct AccountRow {
    pub id: String,
    pub pool_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: AccountKind,
    pub owner_id: String,
    pub currency: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_transactions)]
pub struct TransactionRow {
    pub id: String,
    pub pool_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: TransactionKind,
    pub proposal_id: Option<String>,
    pub amount_minor: i64,
    pub reference: Option<String>,
    pub memo: Option<String>,
    pub contributor_id: Option<String>,
    pub original_currency: Option<String>,
    pub original_minor: Option<i64>,
    pub fx_rate: Option<String>,
    pub reversal_of: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_by: String,
    pub hat: Option<String>,
    pub request_id: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ledger_entries)]
pub struct EntryRow {
    pub transaction_id: String,
    pub leg: i32,
    pub account_id: String,
    pub amount_minor: i64,
}

/// The account of `(pool, kind, owner)`, created (with a zero balance row) on first use. Creation is
/// conflict-safe: a concurrent creator's row is found instead.
pub fn account(
    conn: &mut DbConn,
    pool_id: &str,
    kind: AccountKind,
    owner_id: &str,
    currency: &str,
    now: NaiveDateTime,
) -> QueryResult<AccountRow> {
    let kind = kind.as_str();
    let existing = ledger_accounts::table
        .filter(ledger_accounts::pool_id.eq(pool_id))
        .filter(ledger_accounts::kind.eq(kind))
        .filter(ledger_accounts::owner_id.eq(owner_id))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(found) = existing {
        return Ok(found);
    }
    let id = uuid::Uuid::now_v7().to_string();
    let insert = match conn {
        DbConn::Pg(_) => {
            "INSERT INTO ledger_accounts (id, pool_id, kind, owner_id, currency, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
        }
        DbConn::Sqlite(_) => {
            "INSERT INTO ledger_accounts (id, pool_id, kind, owner_id, currency, created_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
        }
    };
    let inserted = diesel::sql_query(insert)
        .bind::<Text, _>(&id)
        .bind::<Text, _>(pool_id)
        .bind::<Text, _>(kind)
        .bind::<Text, _>(owner_id)
        .bind::<Text, _>(currency)
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .execute(conn)?;
    if inserted == 1 {
        diesel::insert_into(ledger_balances::table)
            .values((
                ledger_balances::account_id.eq(&id),
                ledger_balances::pool_id.eq(pool_id),
                ledger_balances::kind.eq(kind),
                ledger_balances::balance_minor.eq(0_i64),
            ))
            .execute(conn)?;
    }
    ledger_accounts::table
        .filter(ledger_accounts::pool_id.eq(pool_id))
        .filter(ledger_accounts::kind.eq(kind))
        .filter(ledger_accounts::owner_id.eq(owner_id))
        .select(AccountRow::as_select())
        .first(conn)
}

#[derive(QueryableByName)]
struct Balance {
    #[diesel(sql_type = BigInt)]
    balance_minor: i64,
}

/// Locks one balance row until the transaction ends and returns the balance. Callers lock in ascending
/// account id so two postings never wait on each other in opposite orders. (SQLite: the write transaction
/// already holds the only write lock.)
pub fn lock_balance(conn: &mut DbConn, account_id: &str) -> QueryResult<i64> {
    let sql = match conn {
        DbConn::Pg(_) => "SELECT balance_minor FROM ledger_balances WHERE account_id = $1 FOR UPDATE",
        DbConn::Sqlite(_) => "SELECT balance_minor FROM ledger_balances WHERE account_id = ?",
    };
    diesel::sql_query(sql)
        .bind::<Text, _>(account_id)
        .get_result::<Balance>(conn)
        .map(|b| b.balance_minor)
}

pub fn set_balance(conn: &mut DbConn, account_id: &str, balance: i64) -> QueryResult<usize> {
    diesel::update(ledger_balances::table.find(account_id))
        .set(ledger_balances::balance_minor.eq(balance))
        .execute(conn)
}

pub fn insert_transaction(conn: &mut DbConn, row: &TransactionRow) -> QueryResult<()> {
    diesel::insert_into(ledger_transactions::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

/// The columns of a transaction row, in the order of [`transaction_fields`].
const TRANSACTION_COLUMNS: &str = "id, pool_id, kind, proposal_id, amount_minor, reference, memo, contributor_id, \
     original_currency, original_minor, fx_rate, reversal_of, idempotency_key, created_by, hat, request_id, created_at";

/// `INSERT INTO ledger_transactions (…) VALUES (…)` of one row, bound.
fn transaction_insert(row: &TransactionRow) -> CachedSql<'static> {
    cached_sql("INSERT INTO ledger_transactions (")
        .sql(TRANSACTION_COLUMNS)
        .sql(") VALUES (")
        .append(transaction_fields(row))
        .sql(")")
}

/// One transaction row's values for [`TRANSACTION_COLUMNS`], bound and comma-separated (no parentheses).
fn transaction_fields(row: &TransactionRow) -> CachedSql<'static> {
    use diesel::sql_types::{Nullable, Timestamp};
    cached_sql("")
        .bind::<Text, _>(row.id.clone())
        .sql(", ")
        .bind::<Text, _>(row.pool_id.clone())
        .sql(", ")
        .bind::<Text, _>(row.kind.as_str().to_owned())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.proposal_id.clone())
        .sql(", ")
        .bind::<BigInt, _>(row.amount_minor)
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.reference.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.memo.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.contributor_id.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.original_currency.clone())
        .sql(", ")
        .bind::<Nullable<BigInt>, _>(row.original_minor)
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.fx_rate.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.reversal_of.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.idempotency_key.clone())
        .sql(", ")
        .bind::<Text, _>(row.created_by.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.hat.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(row.request_id.clone())
        .sql(", ")
        .bind::<Timestamp, _>(row.created_at)
}

/// A posting's transaction row and its entries, in two statements prepared once per connection (SQLite, in
/// process; PostgreSQL writes a posting in one statement with [`post_pg`]).
pub fn insert_posting(conn: &mut DbConn, row: &TransactionRow, entries: &[EntryRow]) -> QueryResult<()> {
    transaction_insert(row).execute(conn)?;
    insert_entries(conn, entries)
}

/// PostgreSQL: a whole posting in one statement (one round trip, prepared once per connection and number of
/// legs) — the transaction row and its entries inserted in data-modifying `WITH`s, then each balance change
/// added as [`add_to_balances_pg`] does (rows locked in ascending account id, a guarded account's change
/// that would take it below zero left unapplied) — returning each balance as it was before, in account-id
/// order, for the caller's guards. The roll-ups' statement-level trigger runs at the end of the statement,
/// so every hot row of the posting (balances and roll-ups) is taken by this one statement and held only
/// until the commit that follows.
pub fn post_pg(
    conn: &mut DbConn,
    row: &TransactionRow,
    entries: &[EntryRow],
    changes: &[BalanceChange],
) -> QueryResult<Vec<(String, i64)>> {
    let mut query = cached_sql("WITH posted_transaction AS (")
        .append(transaction_insert(row))
        .sql("), posted_entries AS (INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES ");
    for (i, entry) in entries.iter().enumerate() {
        query = entry_values(query.sql(if i == 0 { "" } else { ", " }), entry);
    }
    query = query.sql("), ");
    let query = balance_changes(query, changes).sql(" SELECT account_id, before FROM moved");
    read_balances_before(query.load(conn)?, changes.len())
}

/// One money request of a [`post_batch_pg`]: its key, its stored idempotency record and audit event (values
/// bound by their owners, in the order of `idempotency::KEY_COLUMNS` and `audit::repo::EVENT_COLUMNS`), its
/// transaction, its entries and each of its accounts' net change.
pub struct BatchPosting<'a> {
    pub user_id: &'a str,
    pub key: &'a str,
    pub key_record: CachedSql<'static>,
    pub event: CachedSql<'static>,
    pub row: &'a TransactionRow,
    pub entries: &'a [EntryRow],
    pub changes: &'a [(String, i64)],
}

#[derive(QueryableByName)]
struct ClaimedKey {
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    idem_key: String,
    #[diesel(sql_type = BigInt)]
    moved: i64,
}

/// `, posted_x AS (INSERT INTO {table} ({columns}) SELECT v.… FROM (VALUES `: the start of a `WITH` item that
/// writes the rows of the claimed requests only (each row led by its request's key; [`claimed_rows_close`]).
fn claimed_rows_open(item: &str, table: &str, columns: &str) -> String {
    let selected: Vec<String> = columns.split(", ").map(|c| format!("v.{c}")).collect();
    format!(
        "), {item} AS (INSERT INTO {table} ({columns}) SELECT {} FROM (VALUES ",
        selected.join(", ")
    )
}

/// The end of [`claimed_rows_open`]'s item: the values named, and joined to the claimed keys.
fn claimed_rows_close(columns: &str) -> String {
    format!(
        ") AS v (k_user, k_key, {columns}) JOIN claimed ON claimed.user_id = v.k_user AND claimed.idem_key = v.k_key"
    )
}

/// `(user_id, key, ` — a row's leading key, bound.
fn keyed(user_id: &str, key: &str) -> CachedSql<'static> {
    cached_sql("(")
        .bind::<Text, _>(user_id.to_owned())
        .sql(", ")
        .bind::<Text, _>(key.to_owned())
        .sql(", ")
}

/// PostgreSQL: several money requests in one statement (group commit). Each request's idempotency record is
/// inserted unless its key is already recorded (`ON CONFLICT DO NOTHING`: a first request with the key still
/// running is waited for); only the requests whose record went in are written — audit events, transactions,
/// entries, and balance changes summed per account (rows locked in ascending account id, as every posting
/// locks them). A guarded account taken below zero fails the statement on the table's check constraint, an
/// overflow on `bigint`; then nothing is written. Returns the `(user, key)` of the requests written; the
/// others wrote nothing and are the caller's to answer. The statement's text depends only on the number of
/// requests, entries and changes, so few shapes are prepared per connection.
pub fn post_batch_pg(
    conn: &mut DbConn,
    postings: Vec<BatchPosting<'_>>,
) -> QueryResult<Vec<(String, String)>> {
    use super::idempotency::KEY_COLUMNS;
    use crate::features::audit::repo::EVENT_COLUMNS;
    const ENTRY_COLUMNS: &str = "transaction_id, leg, account_id, amount_minor";
    let mut keys = cached_sql("WITH claimed AS (INSERT INTO idempotency_keys (")
        .sql(KEY_COLUMNS)
        .sql(") VALUES ");
    let mut events = cached_sql(claimed_rows_open("posted_events", "audit_events", EVENT_COLUMNS));
    let mut transactions = cached_sql(claimed_rows_open(
        "posted_transactions",
        "ledger_transactions",
        TRANSACTION_COLUMNS,
    ));
    let mut entries = cached_sql(claimed_rows_open(
        "posted_entries",
        "ledger_entries",
        ENTRY_COLUMNS,
    ));
    let mut changes =
        cached_sql("), change AS (SELECT v.account_id, CAST(sum(v.delta) AS BIGINT) AS delta FROM (VALUES ");
    let mut accounts: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let (mut first_entry, mut first_change) = (true, true);
    for (i, posting) in postings.into_iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        keys = keys.sql(comma).sql("(").append(posting.key_record).sql(")");
        events = events
            .sql(comma)
            .append(keyed(posting.user_id, posting.key))
            .append(posting.event)
            .sql(")");
        transactions = transactions
            .sql(comma)
            .append(keyed(posting.user_id, posting.key))
            .append(transaction_fields(posting.row))
            .sql(")");
        for entry in posting.entries {
            entries = entries
                .sql(if first_entry { "" } else { ", " })
                .append(keyed(posting.user_id, posting.key))
                .bind::<Text, _>(entry.transaction_id.clone())
                .sql(", ")
                .bind::<diesel::sql_types::Integer, _>(entry.leg)
                .sql(", ")
                .bind::<Text, _>(entry.account_id.clone())
                .sql(", ")
                .bind::<BigInt, _>(entry.amount_minor)
                .sql(")");
            first_entry = false;
        }
        for (account_id, delta) in posting.changes {
            changes = changes
                .sql(if first_change { "" } else { ", " })
                .append(keyed(posting.user_id, posting.key))
                .bind::<Text, _>(account_id.clone())
                .sql(", CAST(")
                .bind::<BigInt, _>(*delta)
                .sql(" AS BIGINT))");
            first_change = false;
        }
        accounts.insert(
            (posting.user_id.to_owned(), posting.key.to_owned()),
            posting.changes.iter().map(|(a, _)| a.clone()).collect(),
        );
    }
    let query = keys
        .sql(" ON CONFLICT (user_id, idem_key) DO NOTHING RETURNING user_id, idem_key")
        .append(events)
        .sql(claimed_rows_close(EVENT_COLUMNS))
        .append(transactions)
        .sql(claimed_rows_close(TRANSACTION_COLUMNS))
        .append(entries)
        .sql(claimed_rows_close(ENTRY_COLUMNS))
        .append(changes)
        .sql(claimed_rows_close("account_id, delta"))
        .sql(
            " GROUP BY v.account_id), \
             locked AS (SELECT account_id FROM ledger_balances WHERE account_id IN (SELECT account_id FROM change) \
             ORDER BY account_id FOR UPDATE), \
             moved AS (UPDATE ledger_balances AS b SET balance_minor = b.balance_minor + change.delta \
             FROM locked, change WHERE b.account_id = locked.account_id AND change.account_id = b.account_id \
             RETURNING b.account_id) \
             SELECT claimed.user_id, claimed.idem_key, (SELECT count(*) FROM moved) AS moved FROM claimed",
        );
    let claimed: Vec<ClaimedKey> = query.load(conn)?;
    let mut touched = std::collections::BTreeSet::new();
    let mut written = Vec::with_capacity(claimed.len());
    for c in &claimed {
        let key = (c.user_id.clone(), c.idem_key.clone());
        touched.extend(accounts.get(&key).into_iter().flatten().cloned());
        written.push(key);
    }
    match claimed.first() {
        Some(c) if usize::try_from(c.moved).ok() != Some(touched.len()) => {
            // A balance row missing (never: an account and its balance row are created together): the
            // caller's transaction rolls back.
            Err(diesel::result::Error::NotFound)
        }
        _ => Ok(written),
    }
}

/// `(transaction_id, leg, account_id, amount_minor)` of one entry, bound.
fn entry_values<'a>(query: CachedSql<'a>, entry: &EntryRow) -> CachedSql<'a> {
    query
        .sql("(")
        .bind::<Text, _>(entry.transaction_id.clone())
        .sql(", ")
        .bind::<diesel::sql_types::Integer, _>(entry.leg)
        .sql(", ")
        .bind::<Text, _>(entry.account_id.clone())
        .sql(", ")
        .bind::<BigInt, _>(entry.amount_minor)
        .sql(")")
}

/// All entries of a posting in one multi-row INSERT (one round trip, whatever the number of legs), prepared
/// once per connection and number of legs.
pub fn insert_entries(conn: &mut DbConn, rows: &[EntryRow]) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut query =
        cached_sql("INSERT INTO ledger_entries (transaction_id, leg, account_id, amount_minor) VALUES ");
    for (i, row) in rows.iter().enumerate() {
        query = entry_values(query.sql(if i == 0 { "" } else { ", " }), row);
    }
    query.execute(conn).map(|_| ())
}

#[derive(QueryableByName)]
struct LockedBalance {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = BigInt)]
    balance_minor: i64,
}

/// Locks the balance rows of `account_ids` (ascending, as given) in one statement and returns their
/// balances in that order. PostgreSQL takes the row locks after the sort, so in ascending account id like
/// one-at-a-time locking; SQLite's write transaction already holds the only write lock.
pub fn lock_balances(conn: &mut DbConn, account_ids: &[String]) -> QueryResult<Vec<(String, i64)>> {
    let pg = matches!(conn, DbConn::Pg(_));
    let mut query = cached_sql("SELECT account_id, balance_minor FROM ledger_balances WHERE account_id IN (");
    for (i, id) in account_ids.iter().enumerate() {
        query = query
            .sql(if i == 0 { "" } else { ", " })
            .bind::<Text, _>(id.clone());
    }
    let query = query.sql(if pg {
        ") ORDER BY account_id FOR UPDATE"
    } else {
        ") ORDER BY account_id"
    });
    let rows: Vec<LockedBalance> = query.load(conn)?;
    if rows.len() != account_ids.len() {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(rows
        .into_iter()
        .map(|r| (r.account_id, r.balance_minor))
        .collect())
}

/// Sets the balances of several accounts in one statement (`CASE account_id WHEN … THEN …`).
pub fn set_balances(conn: &mut DbConn, balances: &[(String, i64)]) -> QueryResult<usize> {
    if balances.is_empty() {
        return Ok(0);
    }
    let mut query = cached_sql("UPDATE ledger_balances SET balance_minor = CASE account_id");
    for (id, value) in balances {
        query = query
            .sql(" WHEN ")
            .bind::<Text, _>(id.clone())
            .sql(" THEN CAST(")
            .bind::<BigInt, _>(*value)
            .sql(" AS BIGINT)");
    }
    query = query.sql(" END WHERE account_id IN (");
    for (i, (id, _)) in balances.iter().enumerate() {
        query = query
            .sql(if i == 0 { "" } else { ", " })
            .bind::<Text, _>(id.clone());
    }
    let query = query.sql(")");
    query.execute(conn)
}

pub fn find_transaction(conn: &mut DbConn, id: &str) -> QueryResult<Option<TransactionRow>> {
    ledger_transactions::table
        .find(id)
        .select(TransactionRow::as_select())
        .first(conn)
        .optional()
}

pub fn reversal_of(conn: &mut DbConn, original_id: &str) -> QueryResult<Option<String>> {
    ledger_transactions::table
        .filter(ledger_transactions::reversal_of.eq(original_id))
        .select(ledger_transactions::id)
        .first(conn)
        .optional()
}

/// Entries of a transaction with their account's kind and owner.
pub fn entries_of(
    conn: &mut DbConn,
    transaction_id: &str,
) -> QueryResult<Vec<(EntryRow, AccountKind, String)>> {
    ledger_entries::table
        .inner_join(ledger_accounts::table)
        .filter(ledger_entries::transaction_id.eq(transaction_id))
        .order(ledger_entries::leg.asc())
        .select((
            EntryRow::as_select(),
            ledger_accounts::kind,
            ledger_accounts::owner_id,
        ))
        .load::<(EntryRow, String, String)>(conn)?
        .into_iter()
        .map(|(entry, kind, owner)| Ok((entry, read_stored(kind)?, owner)))
        .collect()
}

/// Entries of several transactions (a page) in one statement, in transaction then leg order.
pub fn entries_of_many(
    conn: &mut DbConn,
    transaction_ids: &[String],
) -> QueryResult<Vec<(EntryRow, AccountKind, String)>> {
    if transaction_ids.is_empty() {
        return Ok(Vec::new());
    }
    ledger_entries::table
        .inner_join(ledger_accounts::table)
        .filter(ledger_entries::transaction_id.eq_any(transaction_ids))
        .order((ledger_entries::transaction_id.asc(), ledger_entries::leg.asc()))
        .select((
            EntryRow::as_select(),
            ledger_accounts::kind,
            ledger_accounts::owner_id,
        ))
        .load::<(EntryRow, String, String)>(conn)?
        .into_iter()
        .map(|(entry, kind, owner)| Ok((entry, read_stored(kind)?, owner)))
        .collect()
}

/// (original, reversal) pairs for those of `original_ids` that were reversed, in one statement.
pub fn reversals_of_many(conn: &mut DbConn, original_ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    if original_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Option<String>, String)> = ledger_transactions::table
        .filter(ledger_transactions::reversal_of.eq_any(original_ids))
        .select((ledger_transactions::reversal_of, ledger_transactions::id))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(o, r)| o.map(|o| (o, r))).collect())
}

/// A total per account kind (pool balances) — summed by the database, so the answer is a handful of rows
/// however many accounts the pool has.
#[derive(Debug, Clone)]
pub struct KindTotal {
    pub kind: AccountKind,
    pub total: i64,
}

/// [`KindTotal`] as the database answers it, before its kind is read.
#[derive(QueryableByName)]
struct StoredKindTotal {
    #[diesel(sql_type = diesel::sql_types::Text)]
    kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
}

/// The pool's balances summed per account kind, from the monthly totals the database keeps as entries are
/// written (`ledger_monthly_totals`): a few rows per month of history, however many accounts the pool has.
/// Balances start at zero and move only by entries, so these are the sums of the balance rows (`ledger
/// check` verifies both roll-ups against the entries, and the balances against the entries).
pub fn pool_balance_totals(conn: &mut DbConn, pool_id: &str) -> QueryResult<Vec<KindTotal>> {
    let sql = match conn {
        DbConn::Pg(_) => {
            "SELECT account_kind AS kind, CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) AS total \
             FROM ledger_monthly_totals WHERE pool_id = $1 GROUP BY account_kind"
        }
        DbConn::Sqlite(_) => {
            "SELECT account_kind AS kind, CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) AS total \
             FROM ledger_monthly_totals WHERE pool_id = ? GROUP BY account_kind"
        }
    };
    diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(pool_id)
        .load::<StoredKindTotal>(conn)?
        .into_iter()
        .map(|r| {
            Ok(KindTotal {
                kind: read_stored(r.kind)?,
                total: r.total,
            })
        })
        .collect()
}

/// Movements of a pool per (account kind, transaction kind) for the days in `[from, to)` (either end open),
/// in one statement: whole months from the monthly roll-up (`ledger_monthly_totals`), the loose days at the
/// ends from the daily totals — a bounded number of rows per month of history and at most ~60 daily rows,
/// however many days the period spans (`domain::periods::split_days`).
pub fn pool_period_totals(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<chrono::NaiveDate>,
    to: Option<chrono::NaiveDate>,
) -> QueryResult<Vec<MovementTotal>> {
    use diesel::sql_types::{Date, Text};
    let split = crate::domain::periods::split_days(from, to);
    let pg = matches!(conn, DbConn::Pg(_));
    let mut n = 0;
    let mut param = || {
        n += 1;
        if pg { format!("${n}") } else { "?".to_owned() }
    };
    let mut parts: Vec<String> = Vec::new();
    // Each part binds the pool first, then its dates, in the order of the placeholders.
    let mut ordered: Vec<Option<chrono::NaiveDate>> = Vec::new();
    if let Some((lo, hi)) = split.months {
        ordered.push(None);
        let mut part = format!(
            "SELECT account_kind, transaction_kind, total_minor, entries FROM ledger_monthly_totals WHERE pool_id = {}",
            param()
        );
        if let Some(lo) = lo {
            part.push_str(&format!(" AND month >= {}", param()));
            ordered.push(Some(lo));
        }
        if let Some(hi) = hi {
            part.push_str(&format!(" AND month < {}", param()));
            ordered.push(Some(hi));
        }
        parts.push(part);
    }
    for (lo, hi) in &split.days {
        parts.push(format!(
            "SELECT account_kind, transaction_kind, total_minor, entries FROM ledger_daily_totals \
             WHERE pool_id = {} AND day >= {} AND day < {}",
            param(),
            param(),
            param()
        ));
        ordered.extend([None, Some(*lo), Some(*hi)]);
    }
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT account_kind, transaction_kind, CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) AS total, \
         CAST(COALESCE(SUM(entries), 0) AS BIGINT) AS entries FROM ({}) periods GROUP BY account_kind, transaction_kind",
        parts.join(" UNION ALL ")
    );
    let mut query = diesel::sql_query(sql).into_boxed();
    for bind in ordered {
        query = match bind {
            None => query.bind::<Text, _>(pool_id.to_owned()),
            Some(day) => query.bind::<Date, _>(day),
        };
    }
    read_movement_totals(query.load(conn)?)
}

/// Folds the roll-up stripes of days before `day` (and of months before `day`'s month) into stripe 0, one
/// row per key again, so reads sum a bounded number of rows (PostgreSQL only; SQLite has no stripes: its one
/// writer never waits on a roll-up row). Each fold is one statement: the stripes it deletes are the ones it
/// adds, so the totals are the same before, during and after, and two instances folding at once add each row
/// once. Returns how many keys received folded stripes.
pub fn fold_total_stripes(conn: &mut DbConn, day: chrono::NaiveDate) -> QueryResult<usize> {
    if !matches!(conn, DbConn::Pg(_)) {
        return Ok(0);
    }
    let mut folded = 0;
    for (table, period, before) in [
        ("ledger_daily_totals", "day", "$1"),
        (
            "ledger_monthly_totals",
            "month",
            "CAST(date_trunc('month', CAST($1 AS DATE)) AS DATE)",
        ),
    ] {
        // Constants only, never input.
        let sql = format!(
            "WITH gone AS (DELETE FROM {table} WHERE stripe <> 0 AND {period} < {before} \
             RETURNING pool_id, {period}, account_kind, transaction_kind, total_minor, entries) \
             INSERT INTO {table} (pool_id, {period}, account_kind, transaction_kind, stripe, total_minor, entries) \
             SELECT pool_id, {period}, account_kind, transaction_kind, 0, SUM(total_minor), SUM(entries) FROM gone \
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 \
             ON CONFLICT (pool_id, {period}, account_kind, transaction_kind, stripe) DO UPDATE \
             SET total_minor = {table}.total_minor + EXCLUDED.total_minor, entries = {table}.entries + EXCLUDED.entries"
        );
        folded += diesel::sql_query(sql)
            .bind::<diesel::sql_types::Date, _>(day)
            .execute(conn)?;
    }
    Ok(folded)
}

/// All movements of a pool as the daily totals alone record them (for `ledger check`, which compares both
/// roll-ups with the entries).
pub fn pool_daily_totals(conn: &mut DbConn, pool_id: &str) -> QueryResult<Vec<MovementTotal>> {
    let sql = match conn {
        DbConn::Pg(_) => {
            "SELECT account_kind, transaction_kind, CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) AS total, \
             CAST(COALESCE(SUM(entries), 0) AS BIGINT) AS entries FROM ledger_daily_totals WHERE pool_id = $1 \
             GROUP BY account_kind, transaction_kind"
        }
        DbConn::Sqlite(_) => {
            "SELECT account_kind, transaction_kind, CAST(COALESCE(SUM(total_minor), 0) AS BIGINT) AS total, \
             CAST(COALESCE(SUM(entries), 0) AS BIGINT) AS entries FROM ledger_daily_totals WHERE pool_id = ? \
             GROUP BY account_kind, transaction_kind"
        }
    };
    read_movement_totals(
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::Text, _>(pool_id)
            .load(conn)?,
    )
}

/// A month's movements per (account kind, transaction kind), as a monthly-roll-up row would hold them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthTotal {
    pub month: String,
    pub account_kind: AccountKind,
    pub transaction_kind: TransactionKind,
    pub total: i64,
    pub entries: i64,
}

/// [`MonthTotal`] as the database answers it, before its kinds are read.
#[derive(QueryableByName)]
struct StoredMonthTotal {
    #[diesel(sql_type = diesel::sql_types::Text)]
    month: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    account_kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    transaction_kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    entries: i64,
}

/// Reads the kinds of month totals (an unknown stored kind fails the query), in the order given.
fn read_month_totals(rows: Vec<StoredMonthTotal>) -> QueryResult<Vec<MonthTotal>> {
    rows.into_iter()
        .map(|r| {
            Ok(MonthTotal {
                month: r.month,
                account_kind: read_stored(r.account_kind)?,
                transaction_kind: read_stored(r.transaction_kind)?,
                total: r.total,
                entries: r.entries,
            })
        })
        .collect()
}

/// A pool's monthly roll-up (`kept`, its stripes summed) and the same figures summed from its entries
/// (`from_entries`), both ordered, for `ledger check`.
pub fn pool_monthly_totals_both_ways(
    conn: &mut DbConn,
    pool_id: &str,
) -> QueryResult<(Vec<MonthTotal>, Vec<MonthTotal>)> {
    let (kept, from_entries) = match conn {
        DbConn::Pg(_) => (
            "SELECT CAST(month AS TEXT) AS month, account_kind, transaction_kind, CAST(SUM(total_minor) AS BIGINT) AS total, \
             CAST(SUM(entries) AS BIGINT) AS entries FROM ledger_monthly_totals WHERE pool_id = $1 \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "SELECT CAST(CAST(date_trunc('month', t.created_at) AS DATE) AS TEXT) AS month, a.kind AS account_kind, \
             t.kind AS transaction_kind, CAST(SUM(e.amount_minor) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS entries \
             FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id \
             JOIN ledger_accounts a ON a.id = e.account_id WHERE t.pool_id = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        ),
        DbConn::Sqlite(_) => (
            "SELECT CAST(month AS TEXT) AS month, account_kind, transaction_kind, CAST(SUM(total_minor) AS BIGINT) AS total, \
             CAST(SUM(entries) AS BIGINT) AS entries FROM ledger_monthly_totals WHERE pool_id = ? \
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            "SELECT date(t.created_at, 'start of month') AS month, a.kind AS account_kind, \
             t.kind AS transaction_kind, CAST(SUM(e.amount_minor) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS entries \
             FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id \
             JOIN ledger_accounts a ON a.id = e.account_id WHERE t.pool_id = ? GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        ),
    };
    let kept = read_month_totals(
        diesel::sql_query(kept)
            .bind::<diesel::sql_types::Text, _>(pool_id)
            .load(conn)?,
    )?;
    let from_entries = read_month_totals(
        diesel::sql_query(from_entries)
            .bind::<diesel::sql_types::Text, _>(pool_id)
            .load(conn)?,
    )?;
    Ok((kept, from_entries))
}

/// The balance of one account kind of a pool for one owner (0 when the account does not exist yet).
pub fn balance_of(conn: &mut DbConn, pool_id: &str, kind: AccountKind, owner_id: &str) -> QueryResult<i64> {
    ledger_balances::table
        .inner_join(ledger_accounts::table)
        .filter(ledger_accounts::pool_id.eq(pool_id))
        .filter(ledger_accounts::kind.eq(kind.as_str()))
        .filter(ledger_accounts::owner_id.eq(owner_id))
        .select(ledger_balances::balance_minor)
        .first(conn)
        .optional()
        .map(|b| b.unwrap_or(0))
}

#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub kind: Option<TransactionKind>,
    pub proposal_id: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub to: Option<NaiveDateTime>,
}

/// Newest first, keyset on id (UUIDv7).
pub fn list_transactions(
    conn: &mut DbConn,
    pool_id: &str,
    filter: &TransactionFilter,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<TransactionRow>> {
    let mut q = ledger_transactions::table
        .filter(ledger_transactions::pool_id.eq(pool_id.to_owned()))
        .select(TransactionRow::as_select())
        .into_boxed();
    if let Some(v) = &filter.kind {
        q = q.filter(ledger_transactions::kind.eq(v.as_str()));
    }
    if let Some(v) = &filter.proposal_id {
        q = q.filter(ledger_transactions::proposal_id.eq(v.clone()));
    }
    if let Some(v) = filter.from {
        q = q.filter(ledger_transactions::created_at.ge(v));
    }
    if let Some(v) = filter.to {
        q = q.filter(ledger_transactions::created_at.lt(v));
    }
    if let Some(b) = before {
        q = q.filter(ledger_transactions::id.lt(b.to_owned()));
    }
    q.order(ledger_transactions::id.desc()).limit(limit).load(conn)
}

/// Ledger movements of a pool summed per (account kind, transaction kind), with the number of entries, for
/// transactions created in `[from, to)` (either end open). The database does the sums over the
/// `(pool_id, created_at)` index range, so memory is bounded by the number of kinds, not of entries.
#[derive(Debug, Clone)]
pub struct MovementTotal {
    pub account_kind: AccountKind,
    pub transaction_kind: TransactionKind,
    pub total: i64,
    pub entries: i64,
}

/// [`MovementTotal`] as the database answers it, before its kinds are read.
#[derive(QueryableByName)]
struct StoredMovementTotal {
    #[diesel(sql_type = diesel::sql_types::Text)]
    account_kind: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    transaction_kind: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    total: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    entries: i64,
}

/// Reads the kinds of movement totals: an unknown stored kind fails the query.
fn read_movement_totals(rows: Vec<StoredMovementTotal>) -> QueryResult<Vec<MovementTotal>> {
    rows.into_iter()
        .map(|r| {
            Ok(MovementTotal {
                account_kind: read_stored(r.account_kind)?,
                transaction_kind: read_stored(r.transaction_kind)?,
                total: r.total,
                entries: r.entries,
            })
        })
        .collect()
}

pub fn pool_movement_totals(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<MovementTotal>> {
    use diesel::sql_types::{Text, Timestamp};
    let pg = matches!(conn, DbConn::Pg(_));
    let mut n = 1;
    let mut param = || {
        let p = if pg { format!("${n}") } else { "?".to_owned() };
        n += 1;
        p
    };
    let mut sql = format!(
        "SELECT a.kind AS account_kind, t.kind AS transaction_kind, \
         CAST(COALESCE(SUM(e.amount_minor), 0) AS BIGINT) AS total, CAST(COUNT(*) AS BIGINT) AS entries \
         FROM ledger_entries e \
         JOIN ledger_transactions t ON t.id = e.transaction_id \
         JOIN ledger_accounts a ON a.id = e.account_id \
         WHERE t.pool_id = {}",
        param()
    );
    if from.is_some() {
        sql.push_str(&format!(" AND t.created_at >= {}", param()));
    }
    if to.is_some() {
        sql.push_str(&format!(" AND t.created_at < {}", param()));
    }
    sql.push_str(" GROUP BY a.kind, t.kind");
    let query = diesel::sql_query(sql).bind::<Text, _>(pool_id).into_boxed();
    let query = match from {
        Some(f) => query.bind::<Timestamp, _>(f),
        None => query,
    };
    let query = match to {
        Some(t) => query.bind::<Timestamp, _>(t),
        None => query,
    };
    read_movement_totals(query.load(conn)?)
}

#[derive(QueryableByName)]
struct FoundAccount {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Text)]
    owner_id: String,
}

/// The account ids of several `(kind, owner)` accounts of one pool in one statement, in the order asked;
/// accounts not yet created are created (with a zero balance row) by [`account`]. The posting path's lookup:
/// one round trip however many legs, none extra once the accounts exist.
pub fn accounts_of(
    conn: &mut DbConn,
    pool_id: &str,
    wanted: &[(AccountKind, &str)],
    currency: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    let mut query = cached_sql("SELECT id, kind, owner_id FROM ledger_accounts WHERE pool_id = ")
        .bind::<Text, _>(pool_id.to_owned())
        .sql(" AND (");
    for (i, (kind, owner)) in wanted.iter().enumerate() {
        query = query
            .sql(if i == 0 { "(kind = " } else { " OR (kind = " })
            .bind::<Text, _>(kind.as_str().to_owned())
            .sql(" AND owner_id = ")
            .bind::<Text, _>((*owner).to_owned())
            .sql(")");
    }
    let query = query.sql(")");
    let found: Vec<FoundAccount> = query.load(conn)?;
    wanted
        .iter()
        .map(|(kind, owner)| {
            match found
                .iter()
                .find(|a| a.kind == kind.as_str() && a.owner_id == *owner)
            {
                Some(a) => Ok(a.id.clone()),
                None => account(conn, pool_id, *kind, owner, currency, now).map(|a| a.id),
            }
        })
        .collect()
}

#[derive(QueryableByName)]
struct BalanceBefore {
    #[diesel(sql_type = Text)]
    account_id: String,
    #[diesel(sql_type = BigInt)]
    before: i64,
}

/// One account's change for [`add_to_balances_pg`]: the account, the amount to add, and whether the account
/// must not go below zero (then a change that would take it there is not applied; the caller refuses it).
pub struct BalanceChange {
    pub account_id: String,
    pub delta: i64,
    pub guarded: bool,
}

/// PostgreSQL: adds each change to its account's balance in one statement — the rows locked `FOR UPDATE` in
/// ascending account id first (the order every posting locks in), then updated — and returns each balance as
/// it was before, in account-id order, for the caller to check against the guards (a refusal rolls the
/// transaction back). A change that would take a guarded account below zero leaves that row as it was, so the
/// table's check constraint never fires and the caller can answer with the available amount. Holding the hot
/// rows for one statement and the commit is what lets postings to one pool follow each other quickly.
pub fn add_to_balances_pg(conn: &mut DbConn, changes: &[BalanceChange]) -> QueryResult<Vec<(String, i64)>> {
    let query = balance_changes(cached_sql("WITH "), changes).sql(" SELECT account_id, before FROM moved");
    read_balances_before(query.load(conn)?, changes.len())
}

/// `locked AS (…), change (…) AS (VALUES …), moved AS (UPDATE … RETURNING account_id, before)`: the `WITH`
/// items that lock the changed balance rows in ascending account id and add each change, appended to `query`.
fn balance_changes<'a>(mut query: CachedSql<'a>, changes: &[BalanceChange]) -> CachedSql<'a> {
    query =
        query.sql("locked AS (SELECT account_id, balance_minor FROM ledger_balances WHERE account_id IN (");
    for (i, change) in changes.iter().enumerate() {
        query = query
            .sql(if i == 0 { "" } else { ", " })
            .bind::<Text, _>(change.account_id.clone());
    }
    query = query.sql(") ORDER BY account_id FOR UPDATE), change (account_id, delta, guarded) AS (VALUES ");
    for (i, change) in changes.iter().enumerate() {
        query = query
            .sql(if i == 0 { "(" } else { ", (" })
            .bind::<Text, _>(change.account_id.clone())
            .sql(", CAST(")
            .bind::<BigInt, _>(change.delta)
            .sql(" AS BIGINT), CAST(")
            .bind::<diesel::sql_types::Bool, _>(change.guarded)
            .sql(" AS BOOLEAN))");
    }
    query.sql(
        "), moved AS (UPDATE ledger_balances AS b SET balance_minor = CASE \
         WHEN change.guarded AND b.balance_minor + change.delta < 0 THEN b.balance_minor \
         ELSE b.balance_minor + change.delta END \
         FROM locked, change WHERE b.account_id = locked.account_id AND change.account_id = b.account_id \
         RETURNING b.account_id, locked.balance_minor AS before)",
    )
}

/// The balances before, in account-id order; every changed account must have answered.
fn read_balances_before(mut rows: Vec<BalanceBefore>, expected: usize) -> QueryResult<Vec<(String, i64)>> {
    if rows.len() != expected {
        return Err(diesel::result::Error::NotFound);
    }
    rows.sort_by(|a, b| a.account_id.cmp(&b.account_id));
    Ok(rows.into_iter().map(|r| (r.account_id, r.before)).collect())
}

#[derive(QueryableByName)]
struct PoolAndContributor {
    #[diesel(sql_type = Text)]
    currency: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    contributor_exists: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    contributor_account: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    unallocated_account: Option<String>,
}

/// What a contribution request reads before it posts, in one statement.
#[derive(Debug)]
pub struct ContributionReads {
    pub currency: String,
    pub contributor_exists: bool,
    /// The contributor's and the pool's unallocated account, when both exist with their balance rows (the
    /// legs' order of a contribution); `None` before the first contribution from this contributor.
    pub accounts: Option<[String; 2]>,
}

/// A contribution's reads in one statement: the pool's currency (`None`: no such pool), whether the
/// contributing organisation exists, and its two accounts if they exist.
pub fn contribution_reads(
    conn: &mut DbConn,
    pool_id: &str,
    organization_id: &str,
) -> QueryResult<Option<ContributionReads>> {
    let account = |kind: AccountKind, owner: &str| {
        cached_sql(
            "(SELECT a.id FROM ledger_accounts AS a JOIN ledger_balances AS b ON b.account_id = a.id \
             WHERE a.pool_id = p.id AND a.kind = ",
        )
        .bind::<Text, _>(kind.as_str().to_owned())
        .sql(" AND a.owner_id = ")
        .bind::<Text, _>(owner.to_owned())
        .sql(")")
    };
    let found: Option<PoolAndContributor> =
        cached_sql("SELECT p.currency, EXISTS (SELECT 1 FROM organizations WHERE id = ")
            .bind::<Text, _>(organization_id.to_owned())
            .sql(") AS contributor_exists, ")
            .append(account(AccountKind::Contributor, organization_id))
            .sql(" AS contributor_account, ")
            .append(account(AccountKind::Unallocated, ""))
            .sql(" AS unallocated_account FROM pools AS p WHERE p.id = ")
            .bind::<Text, _>(pool_id.to_owned())
            .get_result(conn)
            .optional()?;
    Ok(found.map(|f| ContributionReads {
        currency: f.currency,
        contributor_exists: f.contributor_exists,
        accounts: f
            .contributor_account
            .zip(f.unallocated_account)
            .map(|(c, u)| [c, u]),
    }))
}
