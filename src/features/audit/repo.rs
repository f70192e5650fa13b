//! Queries on `audit_events` and `audit_head`. Events are inserted unsealed (no `seq`, `prev_hash`, `hash`)
//! and sealed later by the sealer under the head lock; the head lock is the one backend-specific piece.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::DbConn;
use crate::db::cached::{CachedSql, cached_sql};
use crate::db::schema::{audit_events, audit_head};

/// A stored audit event, as read back for verification and the audit API. `seq`, `prev_hash` and `hash` are
/// `None` until the sealer has chained it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    /// Number given when written: the stable order of reads, sealed or not.
    pub event_no: i64,
    /// Chain position, set when sealed.
    pub seq: Option<i64>,
    pub id: String,
    pub occurred_at: chrono::NaiveDateTime,
    pub actor_id: Option<String>,
    pub actor_username: Option<String>,
    pub organization_id: Option<String>,
    pub hat: Option<String>,
    pub acting: bool,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub request_id: Option<String>,
    pub client_addr: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub before_state: Option<String>,
    pub after_state: Option<String>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

impl AuditEventRow {
    pub fn is_sealed(&self) -> bool {
        self.seq.is_some() && self.hash.is_some()
    }

    /// The columns an append writes, borrowed from this row.
    pub fn insertable(&self) -> NewEventRow<'_> {
        NewEventRow {
            id: &self.id,
            occurred_at: self.occurred_at,
            actor_id: self.actor_id.as_deref(),
            actor_username: self.actor_username.as_deref(),
            organization_id: self.organization_id.as_deref(),
            hat: self.hat.as_deref(),
            acting: self.acting,
            action: &self.action,
            entity_type: &self.entity_type,
            entity_id: self.entity_id.as_deref(),
            request_id: self.request_id.as_deref(),
            client_addr: self.client_addr.as_deref(),
            outcome: &self.outcome,
            reason: self.reason.as_deref(),
            before_state: self.before_state.as_deref(),
            after_state: self.after_state.as_deref(),
        }
    }
}

/// The columns an append writes: everything but the chain fields (the sealer's) and `event_no` (the
/// database's).
#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewEventRow<'a> {
    pub id: &'a str,
    pub occurred_at: chrono::NaiveDateTime,
    pub actor_id: Option<&'a str>,
    pub actor_username: Option<&'a str>,
    pub organization_id: Option<&'a str>,
    pub hat: Option<&'a str>,
    pub acting: bool,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub client_addr: Option<&'a str>,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub before_state: Option<&'a str>,
    pub after_state: Option<&'a str>,
}

#[derive(Debug, QueryableByName)]
pub struct HeadRow {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub hash: String,
}

/// Reads the chain head for sealing and, on PostgreSQL, locks it until the transaction ends so sealers
/// serialize (only sealers take it: appends never do). With `skip_if_locked`, answers `None` at once while
/// another sealer holds it. On SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the database's
/// single write lock.
pub fn lock_head(conn: &mut DbConn, skip_if_locked: bool) -> QueryResult<Option<HeadRow>> {
    let sql = match (&*conn, skip_if_locked) {
        (DbConn::Pg(_), false) => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        (DbConn::Pg(_), true) => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE SKIP LOCKED",
        (DbConn::Sqlite(_), _) => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    diesel::sql_query(sql).get_result(conn).optional()
}

/// Reads the head without locking (verification reads it first, then only events up to it).
pub fn read_head(conn: &mut DbConn) -> QueryResult<HeadRow> {
    audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::seq, audit_head::hash))
        .first::<(i64, String)>(conn)
        .map(|(seq, hash)| HeadRow { seq, hash })
}

#[derive(QueryableByName)]
struct EventNo {
    #[diesel(sql_type = BigInt)]
    event_no: i64,
}

/// Inserts an unsealed event; returns the `event_no` the database gave it. Every write use case runs this, so
/// it is a statement prepared once per connection (`db::cached`; diesel's insert of optional fields is not).
pub fn insert_event(conn: &mut DbConn, row: &NewEventRow<'_>) -> QueryResult<i64> {
    cached_sql("INSERT INTO audit_events (")
        .sql(EVENT_COLUMNS)
        .sql(") VALUES (")
        .append(event_fields(row))
        .sql(") RETURNING event_no")
        .get_result::<EventNo>(conn)
        .map(|r| r.event_no)
}

/// The columns an append writes, in the order of [`event_fields`]: the one writer of the table's rows, also
/// for a statement that writes events with the changes they record (the ledger's group commit).
pub const EVENT_COLUMNS: &str = "id, occurred_at, actor_id, actor_username, organization_id, hat, acting, action, \
     entity_type, entity_id, request_id, client_addr, outcome, reason, before_state, after_state";

/// One unsealed event's values for [`EVENT_COLUMNS`], bound and comma-separated (no parentheses).
pub fn event_fields(row: &NewEventRow<'_>) -> CachedSql<'static> {
    use diesel::sql_types::{Bool, Nullable, Timestamp};
    let text = |v: &str| v.to_owned();
    let opt = |v: Option<&str>| v.map(str::to_owned);
    cached_sql("")
        .bind::<Text, _>(text(row.id))
        .sql(", ")
        .bind::<Timestamp, _>(row.occurred_at)
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.actor_id))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.actor_username))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.organization_id))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.hat))
        .sql(", ")
        .bind::<Bool, _>(row.acting)
        .sql(", ")
        .bind::<Text, _>(text(row.action))
        .sql(", ")
        .bind::<Text, _>(text(row.entity_type))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.entity_id))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.request_id))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.client_addr))
        .sql(", ")
        .bind::<Text, _>(text(row.outcome))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.reason))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.before_state))
        .sql(", ")
        .bind::<Nullable<Text>, _>(opt(row.after_state))
}

pub fn move_head(conn: &mut DbConn, seq: i64, hash: &str) -> QueryResult<()> {
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set((audit_head::seq.eq(seq), audit_head::hash.eq(hash)))
        .execute(conn)
        .map(|_| ())
}

/// The oldest committed unsealed events, in the order they were written, at most `limit`.
pub fn unsealed(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<AuditEventRow>> {
    audit_events::table
        .filter(audit_events::seq.is_null())
        .order(audit_events::event_no.asc())
        .limit(limit)
        .select(AuditEventRow::as_select())
        .load(conn)
}

/// One event's chain fields, as the sealer computed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    pub event_no: i64,
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// Writes the chain fields of many events in one statement. Every value is an integer or a hex digest the
/// sealer computed (checked here), so they are written into the statement text as literals.
pub fn write_seals(conn: &mut DbConn, seals: &[Seal]) -> QueryResult<()> {
    use std::fmt::Write as _;
    if seals.is_empty() {
        return Ok(());
    }
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut values = String::with_capacity(seals.len() * 150);
    for (i, s) in seals.iter().enumerate() {
        if !hex(&s.prev_hash) || !hex(&s.hash) {
            return Err(diesel::result::Error::QueryBuilderError(
                "audit seal: a chain hash is not hex".into(),
            ));
        }
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            values,
            "{sep}({}, {}, '{}', '{}')",
            s.event_no, s.seq, s.prev_hash, s.hash
        );
    }
    let sql = format!(
        "WITH sealed (event_no, seq, prev_hash, hash) AS (VALUES {values}) \
         UPDATE audit_events SET seq = sealed.seq, prev_hash = sealed.prev_hash, hash = sealed.hash \
         FROM sealed WHERE audit_events.event_no = sealed.event_no AND audit_events.seq IS NULL"
    );
    let updated = diesel::sql_query(sql).execute(conn)?;
    if updated != seals.len() {
        // Another sealer got there first (impossible under the head lock): write nothing.
        return Err(diesel::result::Error::QueryBuilderError(
            "audit seal: an event was already sealed".into(),
        ));
    }
    Ok(())
}

/// How many events wait to be sealed, and when the oldest of them was written.
pub fn unsealed_tail(conn: &mut DbConn) -> QueryResult<(i64, Option<chrono::NaiveDateTime>)> {
    audit_events::table
        .filter(audit_events::seq.is_null())
        .select((
            diesel::dsl::count_star(),
            diesel::dsl::min(audit_events::occurred_at),
        ))
        .first(conn)
}

/// Sealed events with `after < seq <= up_to`, in chain order, at most `limit`.
pub fn events_after(
    conn: &mut DbConn,
    after: i64,
    up_to: i64,
    limit: i64,
) -> QueryResult<Vec<AuditEventRow>> {
    audit_events::table
        .filter(audit_events::seq.gt(after))
        .filter(audit_events::seq.le(up_to))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditEventRow::as_select())
        .load(conn)
}

/// Every event, sealed or not, in the order written (tests and tools; the API pages [`list_events`]).
pub fn all_events(conn: &mut DbConn) -> QueryResult<Vec<AuditEventRow>> {
    audit_events::table
        .order(audit_events::event_no.asc())
        .select(AuditEventRow::as_select())
        .load(conn)
}

/// Highest sealed sequence number (0 when none).
pub fn max_seq(conn: &mut DbConn) -> QueryResult<i64> {
    audit_events::table
        .select(diesel::dsl::max(audit_events::seq))
        .first::<Option<i64>>(conn)
        .map(|m| m.unwrap_or(0))
}

/// Filters of the audit API; all optional, combined with AND.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    pub hat: Option<String>,
    pub action: Option<String>,
    pub from: Option<chrono::NaiveDateTime>,
    pub to: Option<chrono::NaiveDateTime>,
    /// Restrict to these entity types (an admin's own domain).
    pub entity_types: Option<Vec<String>>,
    /// Restrict to events on any of these entities (a proposal and its flags and reports: the console's history).
    pub entity_ids: Option<Vec<String>>,
}

/// Newest first, keyset-paged on `event_no` (stable whether or not the events are sealed yet).
pub fn list_events(
    conn: &mut DbConn,
    filter: &EventFilter,
    before_event_no: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditEventRow>> {
    let mut q = audit_events::table
        .select(AuditEventRow::as_select())
        .into_boxed();
    if let Some(v) = &filter.entity_type {
        q = q.filter(audit_events::entity_type.eq(v.clone()));
    }
    if let Some(v) = &filter.entity_id {
        q = q.filter(audit_events::entity_id.eq(v.clone()));
    }
    if let Some(v) = &filter.actor_id {
        q = q.filter(audit_events::actor_id.eq(v.clone()));
    }
    if let Some(v) = &filter.hat {
        q = q.filter(audit_events::hat.eq(v.clone()));
    }
    if let Some(v) = &filter.action {
        q = q.filter(audit_events::action.eq(v.clone()));
    }
    if let Some(v) = filter.from {
        q = q.filter(audit_events::occurred_at.ge(v));
    }
    if let Some(v) = filter.to {
        q = q.filter(audit_events::occurred_at.lt(v));
    }
    if let Some(types) = &filter.entity_types {
        q = q.filter(audit_events::entity_type.eq_any(types.clone()));
    }
    if let Some(ids) = &filter.entity_ids {
        q = q.filter(audit_events::entity_id.eq_any(ids.clone()));
    }
    if let Some(before) = before_event_no {
        q = q.filter(audit_events::event_no.lt(before));
    }
    q.order(audit_events::event_no.desc()).limit(limit).load(conn)
}

/// The sealed event at chain position `seq`.
pub fn find_event(conn: &mut DbConn, seq: i64) -> QueryResult<Option<AuditEventRow>> {
    audit_events::table
        .filter(audit_events::seq.eq(seq))
        .select(AuditEventRow::as_select())
        .first(conn)
        .optional()
}

/// The hash of the sealed event at chain position `seq`, if it exists.
pub fn hash_at(conn: &mut DbConn, seq: i64) -> QueryResult<Option<String>> {
    audit_events::table
        .filter(audit_events::seq.eq(seq))
        .select(audit_events::hash)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}
