//! Queries on `proposals`, `proposal_versions` and `reference_counters`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};

use crate::access::ProposalScope;
use crate::db::DbConn;
use crate::db::schema::{proposal_versions, proposals};
use crate::domain::ids::{PoolId, ProposalId};
use crate::domain::lifecycle::State;
use crate::domain::status::VersionStatus;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = proposals)]
pub struct ProposalRow {
    pub id: String,
    pub pool_id: String,
    pub organization_id: String,
    pub reference: Option<String>,
    /// Read it as [`ProposalRow::lifecycle_state`]; only `workflow` sets it.
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub(super) state: State,
    pub current_version: i32,
    pub version: i64,
    pub title: String,
    pub search_text: String,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub adm2_pcode: Option<String>,
    pub requested_minor: Option<i64>,
    pub pool_settings_version: Option<i32>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub first_submitted_at: Option<NaiveDateTime>,
    pub submitted_at: Option<NaiveDateTime>,
    pub submitted_by: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = proposal_versions)]
pub struct VersionRow {
    pub proposal_id: String,
    pub number: i32,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: VersionStatus,
    pub content: String,
    pub budget_total_minor: Option<i64>,
    pub requested_minor: Option<i64>,
    pub duration_days: Option<i32>,
    pub waiver_reasons: Option<String>,
    pub pool_settings_version: Option<i32>,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub submitted_by: Option<String>,
    pub submitted_at: Option<NaiveDateTime>,
}

impl ProposalRow {
    /// The lifecycle state. Read as a [`State`] at the repo boundary: a row with an unknown stored state fails
    /// its query (a 500 with the cause logged), so a row in hand always has a known state.
    pub fn lifecycle_state(&self) -> crate::error::AppResult<State> {
        Ok(self.state)
    }

    /// The row's id, typed (the row keeps the stored text).
    pub fn proposal_id(&self) -> ProposalId {
        ProposalId::from(self.id.as_str())
    }

    /// The pool the proposal asks money from, typed.
    pub fn pool(&self) -> PoolId {
        PoolId::from(self.pool_id.as_str())
    }
}

pub fn insert_proposal(conn: &mut DbConn, row: &ProposalRow) -> QueryResult<()> {
    diesel::insert_into(proposals::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_proposal(conn: &mut DbConn, id: &str) -> QueryResult<Option<ProposalRow>> {
    proposals::table
        .find(id)
        .select(ProposalRow::as_select())
        .first(conn)
        .optional()
}

/// [`find_proposal`], locking the row until the transaction ends (`FOR UPDATE` on PostgreSQL, in the same
/// statement; on SQLite the write transaction already holds the database's only write lock).
pub fn find_proposal_for_update(conn: &mut DbConn, id: &str) -> QueryResult<Option<ProposalRow>> {
    match conn {
        DbConn::Pg(pg) => proposals::table
            .find(id)
            .select(ProposalRow::as_select())
            .for_update()
            .first(pg)
            .optional(),
        DbConn::Sqlite(_) => find_proposal(conn, id),
    }
}

/// Every proposal in `state` (for the jobs; few rows: one state of the running projects).
pub fn in_state(conn: &mut DbConn, state: State) -> QueryResult<Vec<ProposalRow>> {
    proposals::table
        .filter(proposals::state.eq(state.as_str()))
        .select(ProposalRow::as_select())
        .load(conn)
}

pub fn insert_version(conn: &mut DbConn, row: &VersionRow) -> QueryResult<()> {
    diesel::insert_into(proposal_versions::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_version(conn: &mut DbConn, id: &str, number: i32) -> QueryResult<Option<VersionRow>> {
    proposal_versions::table
        .find((id, number))
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_versions(conn: &mut DbConn, id: &str) -> QueryResult<Vec<VersionRow>> {
    proposal_versions::table
        .filter(proposal_versions::proposal_id.eq(id))
        .order(proposal_versions::number.asc())
        .select(VersionRow::as_select())
        .load(conn)
}

/// Saves a version; only a draft version may change (submitted versions are immutable).
pub fn save_draft_version(conn: &mut DbConn, row: &VersionRow) -> QueryResult<usize> {
    diesel::update(
        proposal_versions::table
            .find((&row.proposal_id, row.number))
            .filter(proposal_versions::status.eq(VersionStatus::Draft.as_str())),
    )
    .set((
        proposal_versions::status.eq(row.status.as_str()),
        proposal_versions::content.eq(&row.content),
        proposal_versions::budget_total_minor.eq(row.budget_total_minor),
        proposal_versions::requested_minor.eq(row.requested_minor),
        proposal_versions::duration_days.eq(row.duration_days),
        proposal_versions::waiver_reasons.eq(&row.waiver_reasons),
        proposal_versions::pool_settings_version.eq(row.pool_settings_version),
        proposal_versions::submitted_by.eq(&row.submitted_by),
        proposal_versions::submitted_at.eq(row.submitted_at),
    ))
    .execute(conn)
}

#[derive(QueryableByName)]
struct Counter {
    #[diesel(sql_type = Integer)]
    last: i32,
}

/// The next reference number of a pool and year. The counter row is created if missing and incremented
/// in the caller's transaction: the row lock serializes concurrent submitters, and a rollback returns the
/// number, so the sequence has no gaps.
pub fn next_reference_number(conn: &mut DbConn, pool_id: &str, year: i32) -> QueryResult<i32> {
    let (insert, update) = match conn {
        DbConn::Pg(_) => (
            "INSERT INTO reference_counters (pool_id, year, last) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
            "UPDATE reference_counters SET last = last + 1 WHERE pool_id = $1 AND year = $2 RETURNING last",
        ),
        DbConn::Sqlite(_) => (
            "INSERT INTO reference_counters (pool_id, year, last) VALUES (?, ?, 0) ON CONFLICT DO NOTHING",
            "UPDATE reference_counters SET last = last + 1 WHERE pool_id = ? AND year = ? RETURNING last",
        ),
    };
    diesel::sql_query(insert)
        .bind::<Text, _>(pool_id)
        .bind::<Integer, _>(year)
        .execute(conn)?;
    diesel::sql_query(update)
        .bind::<Text, _>(pool_id)
        .bind::<Integer, _>(year)
        .get_result::<Counter>(conn)
        .map(|c| c.last)
}

/// Filters of the proposal list; all optional and combined with AND.
#[derive(Debug, Clone, Default)]
pub struct ProposalFilter {
    pub state: Option<String>,
    pub pool_id: Option<String>,
    pub organization_id: Option<String>,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub adm2_pcode: Option<String>,
    /// Lower-cased words that must all appear in title or summary.
    pub words: Vec<String>,
    pub submitted_from: Option<NaiveDateTime>,
    pub submitted_to: Option<NaiveDateTime>,
}

fn like_pattern(word: &str) -> String {
    // `%` and `_` in the user's text match literally as far as they can: they are dropped.
    format!("%{}%", word.replace(['%', '_', '\\'], ""))
}

/// Newest first, keyset-paged on id (UUIDv7, so creation order), within what `scope` admits.
pub fn list_proposals(
    conn: &mut DbConn,
    scope: &ProposalScope,
    filter: &ProposalFilter,
    before_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ProposalRow>> {
    let mut q = proposals::table.select(ProposalRow::as_select()).into_boxed();
    match scope {
        ProposalScope::All => {}
        ProposalScope::Organization(org) => q = q.filter(proposals::organization_id.eq(org.clone())),
        ProposalScope::Submitted => q = q.filter(proposals::state.ne(State::Draft.as_str())),
    }
    if let Some(v) = &filter.state {
        q = q.filter(proposals::state.eq(v.clone()));
    }
    if let Some(v) = &filter.pool_id {
        q = q.filter(proposals::pool_id.eq(v.clone()));
    }
    if let Some(v) = &filter.organization_id {
        q = q.filter(proposals::organization_id.eq(v.clone()));
    }
    if let Some(v) = &filter.sector_code {
        q = q.filter(proposals::sector_code.eq(v.clone()));
    }
    if let Some(v) = &filter.adm1_pcode {
        q = q.filter(proposals::adm1_pcode.eq(v.clone()));
    }
    if let Some(v) = &filter.adm2_pcode {
        q = q.filter(proposals::adm2_pcode.eq(v.clone()));
    }
    for word in &filter.words {
        q = q.filter(proposals::search_text.like(like_pattern(word)));
    }
    if let Some(v) = filter.submitted_from {
        q = q.filter(proposals::first_submitted_at.ge(v));
    }
    if let Some(v) = filter.submitted_to {
        q = q.filter(proposals::first_submitted_at.lt(v));
    }
    if let Some(before) = before_id {
        q = q.filter(proposals::id.lt(before.to_owned()));
    }
    q.order(proposals::id.desc()).limit(limit).load(conn)
}
