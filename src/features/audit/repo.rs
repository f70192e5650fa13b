//! Queries on `audit_events` and `audit_head`. The head lock is the one backend-specific piece.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::DbConn;
use crate::db::schema::{audit_events, audit_head};

/// A stored audit event, as read back for verification and the audit API.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditEventRow {
    pub seq: i64,
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
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, QueryableByName)]
pub struct HeadRow {
    #[diesel(sql_type = BigInt)]
    pub seq: i64,
    #[diesel(sql_type = Text)]
    pub hash: String,
}

/// Reads the chain head and, on PostgreSQL, locks it until the transaction ends so appends serialize.
/// On SQLite the write transaction (`BEGIN IMMEDIATE`) already holds the database's single write lock.
pub fn lock_head(conn: &mut DbConn) -> QueryResult<HeadRow> {
    let sql = match conn {
        DbConn::Pg(_) => "SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE",
        DbConn::Sqlite(_) => "SELECT seq, hash FROM audit_head WHERE id = 1",
    };
    diesel::sql_query(sql).get_result(conn)
}

/// Reads the head without locking (verification reads it first, then only events up to it).
pub fn read_head(conn: &mut DbConn) -> QueryResult<HeadRow> {
    audit_head::table
        .filter(audit_head::id.eq(1))
        .select((audit_head::seq, audit_head::hash))
        .first::<(i64, String)>(conn)
        .map(|(seq, hash)| HeadRow { seq, hash })
}

pub fn insert_event(conn: &mut DbConn, row: &AuditEventRow) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn move_head(conn: &mut DbConn, seq: i64, hash: &str) -> QueryResult<()> {
    diesel::update(audit_head::table.filter(audit_head::id.eq(1)))
        .set((audit_head::seq.eq(seq), audit_head::hash.eq(hash)))
        .execute(conn)
        .map(|_| ())
}

/// Events with `after < seq <= up_to`, in order, at most `limit`.
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

/// Highest stored sequence number (0 when empty).
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
}

/// Newest first, keyset-paged on `seq`.
pub fn list_events(
    conn: &mut DbConn,
    filter: &EventFilter,
    before_seq: Option<i64>,
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
    if let Some(before) = before_seq {
        q = q.filter(audit_events::seq.lt(before));
    }
    q.order(audit_events::seq.desc()).limit(limit).load(conn)
}

pub fn find_event(conn: &mut DbConn, seq: i64) -> QueryResult<Option<AuditEventRow>> {
    audit_events::table
        .find(seq)
        .select(AuditEventRow::as_select())
        .first(conn)
        .optional()
}

/// The hash of event `seq`, if it exists.
pub fn hash_at(conn: &mut DbConn, seq: i64) -> QueryResult<Option<String>> {
    audit_events::table
        .find(seq)
        .select(audit_events::hash)
        .first(conn)
        .optional()
}
