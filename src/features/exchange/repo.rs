//! Read-only queries of the exchange feature over other features' tables (proposals, ledger, reference data,
//! 3W). Sums are done by the database; pages are keyset pages on ids. Stored kinds, states and hats are read
//! as their enums here (raw-SQL rows through `read_stored`): an unknown stored value fails the query (a 500
//! with the cause logged), so no row is skipped or counted under a default.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};

use crate::access::Hat;
use crate::db::DbConn;
use crate::db::schema::{
    activities, areas, closeouts, organizations, proposal_versions, proposals, reports, sectors,
};
use crate::domain::approval_policy::StepReason;
use crate::domain::ledger_rules::TransactionKind;
use crate::domain::lifecycle::State;
use crate::domain::status::{FlagCategory, OrganizationKind, ReportKind, ReportStatus, RoundOutcome};
use crate::features::ledger::repo::read_stored;

/// An optional stored name (a nullable column in a raw-SQL row): absent stays absent, an unknown one fails the
/// query.
fn read_stored_opt<T, E>(text: Option<String>) -> QueryResult<Option<T>>
where
    T: TryFrom<String, Error = E>,
    E: std::error::Error + Send + Sync + 'static,
{
    text.map(read_stored).transpose()
}

/// A proposal with the content of its current version.
#[derive(Debug, Clone, Queryable)]
pub struct ProposalFacts {
    pub id: String,
    pub organization_id: String,
    pub reference: Option<String>,
    #[diesel(deserialize_as = String)]
    pub state: crate::domain::lifecycle::State,
    pub title: String,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub adm2_pcode: Option<String>,
    pub requested_minor: Option<i64>,
    pub updated_at: NaiveDateTime,
    pub content: String,
}

/// Proposals of a pool but drafts, by id after `after`, at most `limit`.
pub fn proposals_page(
    conn: &mut DbConn,
    pool_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ProposalFacts>> {
    let mut q = proposals::table
        .inner_join(
            proposal_versions::table.on(proposal_versions::proposal_id
                .eq(proposals::id)
                .and(proposal_versions::number.eq(proposals::current_version))),
        )
        .filter(proposals::pool_id.eq(pool_id.to_owned()))
        .filter(proposals::state.ne(State::Draft.as_str()))
        .select((
            proposals::id,
            proposals::organization_id,
            proposals::reference,
            proposals::state,
            proposals::title,
            proposals::sector_code,
            proposals::adm1_pcode,
            proposals::adm2_pcode,
            proposals::requested_minor,
            proposals::updated_at,
            proposal_versions::content,
        ))
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(proposals::id.gt(a.to_owned()));
    }
    q.order(proposals::id.asc()).limit(limit).load(conn)
}

/// Placeholders for raw SQL on either backend (`?` on SQLite, `$n` on PostgreSQL).
struct Params {
    pg: bool,
    n: usize,
}

impl Params {
    fn new(conn: &DbConn) -> Self {
        Params {
            pg: matches!(conn, DbConn::Pg(_)),
            n: 0,
        }
    }
    fn next(&mut self) -> String {
        self.n += 1;
        if self.pg {
            format!("${}", self.n)
        } else {
            "?".to_owned()
        }
    }
}

/// A ledger movement with the kind it counts as: a reversal counts as the kind it reverses, negated.
#[derive(Debug, Clone)]
pub struct MovementRow {
    pub id: String,
    pub kind: TransactionKind,
    /// The kind of the transaction this one reverses (a reversal's).
    pub original_kind: Option<TransactionKind>,
    pub proposal_id: Option<String>,
    pub proposal_reference: Option<String>,
    pub amount_minor: i64,
    pub contributor_code: Option<String>,
    pub contributor_name: Option<String>,
    pub reference: Option<String>,
    pub reversal_of: Option<String>,
    pub created_at: NaiveDateTime,
}

/// [`MovementRow`] as the database answers it, before its kinds are read.
#[derive(QueryableByName)]
struct StoredMovementRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    original_kind: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    proposal_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    proposal_reference: Option<String>,
    #[diesel(sql_type = BigInt)]
    amount_minor: i64,
    #[diesel(sql_type = Nullable<Text>)]
    contributor_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    contributor_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reference: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    reversal_of: Option<String>,
    #[diesel(sql_type = Timestamp)]
    created_at: NaiveDateTime,
}

/// Reads the kinds of movement rows: an unknown stored kind fails the query.
fn read_movements(rows: Vec<StoredMovementRow>) -> QueryResult<Vec<MovementRow>> {
    rows.into_iter()
        .map(|r| {
            Ok(MovementRow {
                id: r.id,
                kind: read_stored(r.kind)?,
                original_kind: read_stored_opt(r.original_kind)?,
                proposal_id: r.proposal_id,
                proposal_reference: r.proposal_reference,
                amount_minor: r.amount_minor,
                contributor_code: r.contributor_code,
                contributor_name: r.contributor_name,
                reference: r.reference,
                reversal_of: r.reversal_of,
                created_at: r.created_at,
            })
        })
        .collect()
}

const MOVEMENT_SELECT: &str = "SELECT t.id, t.kind, o.kind AS original_kind, \
     COALESCE(t.proposal_id, o.proposal_id) AS proposal_id, p.reference AS proposal_reference, t.amount_minor, \
     c.code AS contributor_code, c.name AS contributor_name, t.reference, t.reversal_of, t.created_at \
     FROM ledger_transactions t \
     LEFT JOIN ledger_transactions o ON o.id = t.reversal_of \
     LEFT JOIN proposals p ON p.id = COALESCE(t.proposal_id, o.proposal_id) \
     LEFT JOIN organizations c ON c.id = COALESCE(t.contributor_id, o.contributor_id) ";

/// A page of a pool's ledger transactions, oldest id first (UUIDv7: creation order), after `after`.
pub fn movements_page(
    conn: &mut DbConn,
    pool_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<MovementRow>> {
    let mut p = Params::new(conn);
    let mut sql = format!("{MOVEMENT_SELECT} WHERE t.pool_id = {}", p.next());
    if after.is_some() {
        sql.push_str(&format!(" AND t.id > {}", p.next()));
    }
    sql.push_str(&format!(" ORDER BY t.id LIMIT {}", p.next()));
    let q = diesel::sql_query(sql).bind::<Text, _>(pool_id).into_boxed();
    let q = match after {
        Some(a) => q.bind::<Text, _>(a),
        None => q,
    };
    read_movements(q.bind::<BigInt, _>(limit).load(conn)?)
}

/// Every movement of the pool, oldest first, for the IATI file (contributions on the fund, the rest on their
/// projects).
pub fn movements_for_publication(conn: &mut DbConn, pool_id: &str) -> QueryResult<Vec<MovementRow>> {
    let mut p = Params::new(conn);
    let sql = format!(
        "{MOVEMENT_SELECT} WHERE t.pool_id = {} ORDER BY t.created_at, t.id",
        p.next()
    );
    read_movements(diesel::sql_query(sql).bind::<Text, _>(pool_id).load(conn)?)
}

/// Net money per proposal and kind (reversals counted as their original kind, negated).
#[derive(Debug, Clone)]
pub struct ProposalMoney {
    pub proposal_id: String,
    pub kind: TransactionKind,
    pub total: i64,
}

/// [`ProposalMoney`] as the database answers it, before its kind is read.
#[derive(QueryableByName)]
struct StoredProposalMoney {
    #[diesel(sql_type = Text)]
    proposal_id: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

pub fn money_of_proposals(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<ProposalMoney>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut p = Params::new(conn);
    let list: Vec<String> = ids.iter().map(|_| p.next()).collect();
    let sql = format!(
        "SELECT COALESCE(t.proposal_id, o.proposal_id) AS proposal_id, COALESCE(o.kind, t.kind) AS kind, \
         CAST(SUM(CASE WHEN t.reversal_of IS NULL THEN t.amount_minor ELSE -t.amount_minor END) AS BIGINT) AS total \
         FROM ledger_transactions t LEFT JOIN ledger_transactions o ON o.id = t.reversal_of \
         WHERE COALESCE(t.proposal_id, o.proposal_id) IN ({}) \
         GROUP BY COALESCE(t.proposal_id, o.proposal_id), COALESCE(o.kind, t.kind)",
        list.join(", ")
    );
    let mut q = diesel::sql_query(sql).into_boxed();
    for id in ids {
        q = q.bind::<Text, _>(id.clone());
    }
    q.load::<StoredProposalMoney>(conn)?
        .into_iter()
        .map(|r| {
            Ok(ProposalMoney {
                proposal_id: r.proposal_id,
                kind: read_stored(r.kind)?,
                total: r.total,
            })
        })
        .collect()
}

/// Net money of a pool's movements in `[from, to)` per kind and proposal dimension, summed by the database.
/// `state` and the other dimensions are absent for money of no proposal (contributions).
#[derive(Debug, Clone)]
pub struct DimensionMoney {
    pub kind: TransactionKind,
    pub state: Option<State>,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub organization_id: Option<String>,
    pub total: i64,
}

/// [`DimensionMoney`] as the database answers it, before its kind and state are read.
#[derive(QueryableByName)]
struct StoredDimensionMoney {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    sector_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    adm1_pcode: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    organization_id: Option<String>,
    #[diesel(sql_type = BigInt)]
    total: i64,
}

pub fn money_by_dimension(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<DimensionMoney>> {
    let mut p = Params::new(conn);
    let mut sql = format!(
        "SELECT COALESCE(o.kind, t.kind) AS kind, pr.state, pr.sector_code, pr.adm1_pcode, pr.organization_id, \
         CAST(SUM(CASE WHEN t.reversal_of IS NULL THEN t.amount_minor ELSE -t.amount_minor END) AS BIGINT) AS total \
         FROM ledger_transactions t LEFT JOIN ledger_transactions o ON o.id = t.reversal_of \
         LEFT JOIN proposals pr ON pr.id = COALESCE(t.proposal_id, o.proposal_id) \
         WHERE t.pool_id = {}",
        p.next()
    );
    if from.is_some() {
        sql.push_str(&format!(" AND t.created_at >= {}", p.next()));
    }
    if to.is_some() {
        sql.push_str(&format!(" AND t.created_at < {}", p.next()));
    }
    sql.push_str(
        " GROUP BY COALESCE(o.kind, t.kind), pr.state, pr.sector_code, pr.adm1_pcode, pr.organization_id",
    );
    let q = diesel::sql_query(sql).bind::<Text, _>(pool_id).into_boxed();
    let q = bind_period(q, from, to);
    q.load::<StoredDimensionMoney>(conn)?
        .into_iter()
        .map(|r| {
            Ok(DimensionMoney {
                kind: read_stored(r.kind)?,
                state: read_stored_opt(r.state)?,
                sector_code: r.sector_code,
                adm1_pcode: r.adm1_pcode,
                organization_id: r.organization_id,
                total: r.total,
            })
        })
        .collect()
}

/// `(id, code, name, kind)` of the organisations with these ids.
pub fn organizations_by_id(
    conn: &mut DbConn,
    ids: &[String],
) -> QueryResult<Vec<(String, String, String, OrganizationKind)>> {
    organizations::table
        .filter(organizations::id.eq_any(ids.to_vec()))
        .select((
            organizations::id,
            organizations::code,
            organizations::name,
            organizations::kind,
        ))
        .load::<(String, String, String, String)>(conn)?
        .into_iter()
        .map(|(id, code, name, kind)| Ok((id, code, name, read_stored(kind)?)))
        .collect()
}

/// `(pcode, name)` of these areas.
pub fn area_names(conn: &mut DbConn, pcodes: &[String]) -> QueryResult<Vec<(String, String)>> {
    areas::table
        .filter(areas::pcode.eq_any(pcodes.to_vec()))
        .select((areas::pcode, areas::name))
        .load(conn)
}

/// `(code, name, vocabulary, humanitarian)` of every sector.
pub fn all_sectors(conn: &mut DbConn) -> QueryResult<Vec<(String, String, String, bool)>> {
    sectors::table
        .select((
            sectors::code,
            sectors::name,
            sectors::vocabulary,
            sectors::humanitarian,
        ))
        .load(conn)
}

/// When each of these proposals was closed.
pub fn closed_on(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    closeouts::table
        .filter(closeouts::proposal_id.eq_any(ids.to_vec()))
        .select((closeouts::proposal_id, closeouts::closed_at))
        .load(conn)
}

/// `(proposal, content)` of the accepted completion reports of these proposals.
pub fn accepted_completions(conn: &mut DbConn, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    reports::table
        .filter(reports::proposal_id.eq_any(ids.to_vec()))
        .filter(reports::kind.eq(ReportKind::Completion.as_str()))
        .filter(reports::status.eq(ReportStatus::Accepted.as_str()))
        .select((reports::proposal_id, reports::content))
        .load(conn)
}

/// A 3W row for export.
#[derive(Debug, Clone, Queryable)]
pub struct ActivityFacts {
    pub id: String,
    pub organization_id: String,
    pub title: String,
    pub sector_code: String,
    pub adm1_pcode: String,
    pub adm2_pcode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    #[diesel(deserialize_as = String)]
    pub status: crate::domain::status::ActivityStatus,
    pub import_key: Option<String>,
}

pub fn activities_page(
    conn: &mut DbConn,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ActivityFacts>> {
    let mut q = activities::table
        .select((
            activities::id,
            activities::organization_id,
            activities::title,
            activities::sector_code,
            activities::adm1_pcode,
            activities::adm2_pcode,
            activities::lat,
            activities::lon,
            activities::start_date,
            activities::end_date,
            activities::status,
            activities::import_key,
        ))
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(activities::id.gt(a.to_owned()));
    }
    q.order(activities::id.asc()).limit(limit).load(conn)
}

/// Proposals of the pool first submitted in `[from, to)` (all non-drafts when open): `(state, sector, adm1,
/// organisation, requested, count)`, counted and summed by the database.
#[derive(Debug, Clone)]
pub struct ProposalCount {
    pub state: State,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub organization_id: String,
    pub requested: i64,
    pub proposals: i64,
}

/// [`ProposalCount`] as the database answers it, before its state is read.
#[derive(QueryableByName)]
struct StoredProposalCount {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Nullable<Text>)]
    sector_code: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    adm1_pcode: Option<String>,
    #[diesel(sql_type = Text)]
    organization_id: String,
    #[diesel(sql_type = BigInt)]
    requested: i64,
    #[diesel(sql_type = BigInt)]
    proposals: i64,
}

pub fn proposal_counts(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<ProposalCount>> {
    let mut p = Params::new(conn);
    let mut sql = format!(
        "SELECT state, sector_code, adm1_pcode, organization_id, \
         CAST(COALESCE(SUM(requested_minor), 0) AS BIGINT) AS requested, CAST(COUNT(*) AS BIGINT) AS proposals \
         FROM proposals WHERE pool_id = {} AND state <> 'draft' AND first_submitted_at IS NOT NULL",
        p.next()
    );
    if from.is_some() {
        sql.push_str(&format!(" AND first_submitted_at >= {}", p.next()));
    }
    if to.is_some() {
        sql.push_str(&format!(" AND first_submitted_at < {}", p.next()));
    }
    sql.push_str(" GROUP BY state, sector_code, adm1_pcode, organization_id");
    let q = diesel::sql_query(sql).bind::<Text, _>(pool_id).into_boxed();
    let q = bind_period(q, from, to);
    q.load::<StoredProposalCount>(conn)?
        .into_iter()
        .map(|r| {
            Ok(ProposalCount {
                state: read_stored(r.state)?,
                sector_code: r.sector_code,
                adm1_pcode: r.adm1_pcode,
                organization_id: r.organization_id,
                requested: r.requested,
                proposals: r.proposals,
            })
        })
        .collect()
}

/// Counts of consultation outcomes or flag categories of the pool's proposals in `[from, to)`, by their
/// stored name (absent: a round still open), before the name is read.
#[derive(QueryableByName)]
struct KeyCount {
    #[diesel(sql_type = Nullable<Text>)]
    key: Option<String>,
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn key_counts(
    conn: &mut DbConn,
    select: &str,
    time_column: &str,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
    group: &str,
) -> QueryResult<Vec<KeyCount>> {
    let mut p = Params::new(conn);
    let mut sql = format!("{select} WHERE pr.pool_id = {}", p.next());
    if from.is_some() {
        sql.push_str(&format!(" AND {time_column} >= {}", p.next()));
    }
    if to.is_some() {
        sql.push_str(&format!(" AND {time_column} < {}", p.next()));
    }
    sql.push_str(&format!(" GROUP BY {group}"));
    let q = diesel::sql_query(sql).bind::<Text, _>(pool_id).into_boxed();
    let q = bind_period(q, from, to);
    q.load(conn)
}

/// Consultation rounds by outcome (`None`: still open), with their number.
pub fn round_outcomes(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<(Option<RoundOutcome>, i64)>> {
    key_counts(
        conn,
        "SELECT r.outcome AS key, CAST(COUNT(*) AS BIGINT) AS count \
         FROM consultation_rounds r JOIN proposals pr ON pr.id = r.proposal_id",
        "r.opened_at",
        pool_id,
        from,
        to,
        "r.outcome",
    )?
    .into_iter()
    .map(|k| Ok((read_stored_opt(k.key)?, k.count)))
    .collect()
}

/// Flags raised, by category, with their number (their texts are never read here).
pub fn flag_categories(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<(FlagCategory, i64)>> {
    key_counts(
        conn,
        "SELECT f.category AS key, CAST(COUNT(*) AS BIGINT) AS count \
         FROM flags f JOIN proposals pr ON pr.id = f.proposal_id",
        "f.created_at",
        pool_id,
        from,
        to,
        "f.category",
    )?
    .into_iter()
    .map(|k| {
        let category = k.key.ok_or(diesel::result::Error::DeserializationError(
            "flag category is null".into(),
        ))?;
        Ok((read_stored(category)?, k.count))
    })
    .collect()
}

/// Decided approval steps: `(position, hat, reason, opened, decided)`.
#[derive(Debug, Clone)]
pub struct DecidedStep {
    pub position: i32,
    pub hat: Hat,
    pub reason: StepReason,
    pub opened_at: NaiveDateTime,
    pub decided_at: NaiveDateTime,
}

/// [`DecidedStep`] as the database answers it, before its hat and reason are read.
#[derive(QueryableByName)]
struct StoredDecidedStep {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    position: i32,
    #[diesel(sql_type = Text)]
    hat: String,
    /// The step's reason as stored (JSON).
    #[diesel(sql_type = Text)]
    reason: String,
    #[diesel(sql_type = Timestamp)]
    opened_at: NaiveDateTime,
    #[diesel(sql_type = Timestamp)]
    decided_at: NaiveDateTime,
}

pub fn decided_steps(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<DecidedStep>> {
    let mut p = Params::new(conn);
    let mut sql = format!(
        "SELECT s.position, s.hat, s.reason, s.opened_at, s.decided_at FROM approval_steps s \
         JOIN proposals pr ON pr.id = s.proposal_id \
         WHERE pr.pool_id = {} AND s.opened_at IS NOT NULL AND s.decided_at IS NOT NULL",
        p.next()
    );
    if from.is_some() {
        sql.push_str(&format!(" AND s.decided_at >= {}", p.next()));
    }
    if to.is_some() {
        sql.push_str(&format!(" AND s.decided_at < {}", p.next()));
    }
    let q = diesel::sql_query(sql).bind::<Text, _>(pool_id).into_boxed();
    let q = bind_period(q, from, to);
    q.load::<StoredDecidedStep>(conn)?
        .into_iter()
        .map(|s| {
            Ok(DecidedStep {
                position: s.position,
                hat: read_stored(s.hat)?,
                // A reason this code cannot read fails the query like an unknown stored name.
                reason: serde_json::from_str(&s.reason)
                    .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?,
                opened_at: s.opened_at,
                decided_at: s.decided_at,
            })
        })
        .collect()
}

/// `(content)` of the pool's non-draft proposals first submitted in `[from, to)`, and the accepted completion
/// reports' content of the same proposals: for beneficiaries targeted and reached.
pub fn beneficiary_sources(
    conn: &mut DbConn,
    pool_id: &str,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<(Vec<String>, Vec<String>)> {
    let mut q = proposals::table
        .inner_join(
            proposal_versions::table.on(proposal_versions::proposal_id
                .eq(proposals::id)
                .and(proposal_versions::number.eq(proposals::current_version))),
        )
        .filter(proposals::pool_id.eq(pool_id.to_owned()))
        .filter(proposals::state.ne(State::Draft.as_str()))
        .filter(proposals::first_submitted_at.is_not_null())
        .select((proposals::id, proposal_versions::content))
        .into_boxed();
    if let Some(f) = from {
        q = q.filter(proposals::first_submitted_at.ge(f));
    }
    if let Some(t) = to {
        q = q.filter(proposals::first_submitted_at.lt(t));
    }
    let rows: Vec<(String, String)> = q.load(conn)?;
    let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    let mut reached = Vec::new();
    for chunk in ids.chunks(500) {
        reached.extend(accepted_completions(conn, chunk)?.into_iter().map(|(_, c)| c));
    }
    Ok((rows.into_iter().map(|(_, c)| c).collect(), reached))
}

/// Binds the optional period bounds `from` (inclusive) and `to` (exclusive), in the order the report queries push
/// their placeholders: after the pool id, `from` then `to`, each only when given.
fn bind_period<'f, DB, Query>(
    q: diesel::query_builder::BoxedSqlQuery<'f, DB, Query>,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> diesel::query_builder::BoxedSqlQuery<'f, DB, Query>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<Timestamp>,
    NaiveDateTime: diesel::serialize::ToSql<Timestamp, DB>,
{
    let q = match from {
        Some(f) => q.bind::<Timestamp, _>(f),
        None => q,
    };
    match to {
        Some(t) => q.bind::<Timestamp, _>(t),
        None => q,
    }
}
