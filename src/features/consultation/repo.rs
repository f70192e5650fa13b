//! Queries on activities, consultation rules, rounds, consultees, responses and flags.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{
    activities, consultation_responses, consultation_rounds, consultation_rules, consultees, flags,
};
use crate::domain::status::{
    ActivityStatus, ConsulteeStatus, FlagCategory, FlagStatus, ResponseKind, RoundClosedBy, RoundOutcome,
    Severity, UnknownStored,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = activities)]
pub struct ActivityRow {
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
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: ActivityStatus,
    pub version: i64,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The row's natural key within its organisation when it came from an import (see `activities::import_key`).
    pub import_key: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consultation_rules)]
pub struct RuleRow {
    pub id: String,
    pub organization_id: String,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub always_consult: bool,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consultation_rounds)]
pub struct RoundRow {
    pub id: String,
    pub proposal_id: String,
    pub version_number: i32,
    pub round_number: i32,
    pub opened_at: NaiveDateTime,
    pub deadline: NaiveDateTime,
    pub silence_is_consent: bool,
    pub closed_at: Option<NaiveDateTime>,
    pub closed_by: Option<String>,
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consultees)]
pub struct ConsulteeRow {
    pub round_id: String,
    pub organization_id: String,
    pub reasons: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: ConsulteeStatus,
    pub responded_by: Option<String>,
    pub responded_at: Option<NaiveDateTime>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consultation_responses)]
pub struct ResponseRow {
    pub id: String,
    pub round_id: String,
    pub organization_id: String,
    pub responded_by: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: ResponseKind,
    pub comment: Option<String>,
    pub unsolicited: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = flags)]
pub struct FlagRow {
    pub id: String,
    pub proposal_id: String,
    pub round_id: String,
    pub version_number: i32,
    pub organization_id: Option<String>,
    pub raised_by: Option<String>,
    pub system_raised: bool,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub category: FlagCategory,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub severity: Severity,
    pub description: String,
    pub confidential_note: Option<String>,
    pub activity_id: Option<String>,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: FlagStatus,
    pub ended_by: Option<String>,
    pub ended_at: Option<NaiveDateTime>,
    pub end_justification: Option<String>,
    pub created_at: NaiveDateTime,
    /// A system duplication flag's overlapping activities (JSON, nearest first, bounded) and their full count.
    pub matched_activities: Option<String>,
    pub matched_activities_total: Option<i32>,
}

impl RoundRow {
    /// What closed the round, read as an enum (an unknown stored value is an error).
    pub fn closed_by(&self) -> Result<Option<RoundClosedBy>, UnknownStored> {
        self.closed_by.as_deref().map(str::parse).transpose()
    }

    /// How the round closed, read as an enum (an unknown stored value is an error).
    pub fn outcome(&self) -> Result<Option<RoundOutcome>, UnknownStored> {
        self.outcome.as_deref().map(str::parse).transpose()
    }
}

// ---- activities

pub fn insert_activity(conn: &mut DbConn, row: &ActivityRow) -> QueryResult<()> {
    diesel::insert_into(activities::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_activity(conn: &mut DbConn, id: &str) -> QueryResult<Option<ActivityRow>> {
    activities::table
        .find(id)
        .select(ActivityRow::as_select())
        .first(conn)
        .optional()
}

pub fn save_activity(conn: &mut DbConn, row: &ActivityRow) -> QueryResult<usize> {
    diesel::update(activities::table.find(&row.id))
        .set((
            activities::title.eq(&row.title),
            activities::sector_code.eq(&row.sector_code),
            activities::adm1_pcode.eq(&row.adm1_pcode),
            activities::adm2_pcode.eq(&row.adm2_pcode),
            activities::lat.eq(row.lat),
            activities::lon.eq(row.lon),
            activities::start_date.eq(row.start_date),
            activities::end_date.eq(row.end_date),
            activities::status.eq(row.status.as_str()),
            activities::version.eq(row.version),
            activities::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
}

/// The activity an earlier import stored under this natural key, if any.
pub fn find_imported_activity(
    conn: &mut DbConn,
    organization_id: &str,
    import_key: &str,
) -> QueryResult<Option<ActivityRow>> {
    activities::table
        .filter(activities::organization_id.eq(organization_id))
        .filter(activities::import_key.eq(import_key))
        .select(ActivityRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_activities(
    conn: &mut DbConn,
    organization_id: Option<&str>,
    sector_code: Option<&str>,
    adm2_pcode: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ActivityRow>> {
    let mut q = activities::table.select(ActivityRow::as_select()).into_boxed();
    if let Some(v) = organization_id {
        q = q.filter(activities::organization_id.eq(v.to_owned()));
    }
    if let Some(v) = sector_code {
        q = q.filter(activities::sector_code.eq(v.to_owned()));
    }
    if let Some(v) = adm2_pcode {
        q = q.filter(activities::adm2_pcode.eq(v.to_owned()));
    }
    if let Some(v) = after {
        q = q.filter(activities::id.gt(v.to_owned()));
    }
    q.order(activities::id.asc()).limit(limit).load(conn)
}

/// Open activities of a sector (screening candidates).
pub fn open_activities_in_sector(conn: &mut DbConn, sector_code: &str) -> QueryResult<Vec<ActivityRow>> {
    activities::table
        .filter(activities::sector_code.eq(sector_code))
        .filter(activities::status.ne(ActivityStatus::Closed.as_str()))
        .select(ActivityRow::as_select())
        .load(conn)
}

// ---- rules

pub fn insert_rule(conn: &mut DbConn, row: &RuleRow) -> QueryResult<()> {
    diesel::insert_into(consultation_rules::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn list_rules(conn: &mut DbConn) -> QueryResult<Vec<RuleRow>> {
    consultation_rules::table
        .order(consultation_rules::id.asc())
        .select(RuleRow::as_select())
        .load(conn)
}

pub fn find_rule(conn: &mut DbConn, id: &str) -> QueryResult<Option<RuleRow>> {
    consultation_rules::table
        .find(id)
        .select(RuleRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete_rule(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(consultation_rules::table.find(id)).execute(conn)
}

// ---- rounds and consultees

pub fn insert_round(conn: &mut DbConn, row: &RoundRow) -> QueryResult<()> {
    diesel::insert_into(consultation_rounds::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn rounds_of(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Vec<RoundRow>> {
    consultation_rounds::table
        .filter(consultation_rounds::proposal_id.eq(proposal_id))
        .order(consultation_rounds::round_number.asc())
        .select(RoundRow::as_select())
        .load(conn)
}

pub fn open_round_of(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Option<RoundRow>> {
    consultation_rounds::table
        .filter(consultation_rounds::proposal_id.eq(proposal_id))
        .filter(consultation_rounds::closed_at.is_null())
        .select(RoundRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_round(conn: &mut DbConn, id: &str) -> QueryResult<Option<RoundRow>> {
    consultation_rounds::table
        .find(id)
        .select(RoundRow::as_select())
        .first(conn)
        .optional()
}

/// Ids of open rounds whose deadline has passed.
pub fn overdue_rounds(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    consultation_rounds::table
        .filter(consultation_rounds::closed_at.is_null())
        .filter(consultation_rounds::deadline.le(now))
        .order(consultation_rounds::deadline.asc())
        .limit(limit)
        .select(consultation_rounds::id)
        .load(conn)
}

/// Closes a round only if it is still open: the one conditional update that makes closing happen exactly
/// once, whoever (last response, sweeper on any instance) gets there first.
pub fn mark_round_closed(
    conn: &mut DbConn,
    id: &str,
    now: NaiveDateTime,
    closed_by: RoundClosedBy,
    outcome: RoundOutcome,
) -> QueryResult<bool> {
    diesel::update(
        consultation_rounds::table
            .find(id)
            .filter(consultation_rounds::closed_at.is_null()),
    )
    .set((
        consultation_rounds::closed_at.eq(now),
        consultation_rounds::closed_by.eq(closed_by.as_str()),
        consultation_rounds::outcome.eq(outcome.as_str()),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

pub fn insert_consultee(conn: &mut DbConn, row: &ConsulteeRow) -> QueryResult<()> {
    diesel::insert_into(consultees::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn consultees_of(conn: &mut DbConn, round_id: &str) -> QueryResult<Vec<ConsulteeRow>> {
    consultees::table
        .filter(consultees::round_id.eq(round_id))
        .order(consultees::organization_id.asc())
        .select(ConsulteeRow::as_select())
        .load(conn)
}

pub fn record_answer(
    conn: &mut DbConn,
    round_id: &str,
    organization_id: &str,
    status: ConsulteeStatus,
    by: &str,
    at: NaiveDateTime,
    comment: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(consultees::table.find((round_id, organization_id)))
        .set((
            consultees::status.eq(status.as_str()),
            consultees::responded_by.eq(by),
            consultees::responded_at.eq(at),
            consultees::comment.eq(comment),
        ))
        .execute(conn)
}

/// Pending consultees of a round become `lapsed`; returns their organisations.
pub fn lapse_pending(conn: &mut DbConn, round_id: &str) -> QueryResult<Vec<String>> {
    let pending: Vec<String> = consultees::table
        .filter(consultees::round_id.eq(round_id))
        .filter(consultees::status.eq(ConsulteeStatus::Pending.as_str()))
        .select(consultees::organization_id)
        .load(conn)?;
    diesel::update(
        consultees::table
            .filter(consultees::round_id.eq(round_id))
            .filter(consultees::status.eq(ConsulteeStatus::Pending.as_str())),
    )
    .set(consultees::status.eq(ConsulteeStatus::Lapsed.as_str()))
    .execute(conn)?;
    Ok(pending)
}

pub fn insert_response(conn: &mut DbConn, row: &ResponseRow) -> QueryResult<()> {
    diesel::insert_into(consultation_responses::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn responses_of(conn: &mut DbConn, round_id: &str) -> QueryResult<Vec<ResponseRow>> {
    consultation_responses::table
        .filter(consultation_responses::round_id.eq(round_id))
        .order(consultation_responses::created_at.asc())
        .select(ResponseRow::as_select())
        .load(conn)
}

// ---- flags

pub fn insert_flag(conn: &mut DbConn, row: &FlagRow) -> QueryResult<()> {
    diesel::insert_into(flags::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_flag(conn: &mut DbConn, id: &str) -> QueryResult<Option<FlagRow>> {
    flags::table
        .find(id)
        .select(FlagRow::as_select())
        .first(conn)
        .optional()
}

pub fn flags_of(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Vec<FlagRow>> {
    flags::table
        .filter(flags::proposal_id.eq(proposal_id))
        .order(flags::created_at.asc())
        .select(FlagRow::as_select())
        .load(conn)
}

pub fn open_blocking_flags(conn: &mut DbConn, proposal_id: &str) -> QueryResult<i64> {
    flags::table
        .filter(flags::proposal_id.eq(proposal_id))
        .filter(flags::status.eq(FlagStatus::Open.as_str()))
        .filter(flags::severity.eq(Severity::Blocking.as_str()))
        .count()
        .get_result(conn)
}

/// Ends an open flag; returns false when it was not open any more.
pub fn end_flag(
    conn: &mut DbConn,
    id: &str,
    status: FlagStatus,
    by: &str,
    at: NaiveDateTime,
    justification: Option<&str>,
) -> QueryResult<bool> {
    diesel::update(
        flags::table
            .find(id)
            .filter(flags::status.eq(FlagStatus::Open.as_str())),
    )
    .set((
        flags::status.eq(status.as_str()),
        flags::ended_by.eq(by),
        flags::ended_at.eq(at),
        flags::end_justification.eq(justification),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Open flags an organisation raised in a round (a changed response replaces them).
pub fn open_flags_of_org_in_round(
    conn: &mut DbConn,
    round_id: &str,
    organization_id: &str,
) -> QueryResult<Vec<String>> {
    flags::table
        .filter(flags::round_id.eq(round_id))
        .filter(flags::organization_id.eq(organization_id))
        .filter(flags::system_raised.eq(false))
        .filter(flags::status.eq(FlagStatus::Open.as_str()))
        .select(flags::id)
        .load(conn)
}

/// Organisations that raised flags on a proposal (re-consulted after a revision).
pub fn objecting_organizations(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Vec<String>> {
    let orgs: Vec<Option<String>> = flags::table
        .filter(flags::proposal_id.eq(proposal_id))
        .filter(flags::system_raised.eq(false))
        .select(flags::organization_id)
        .distinct()
        .load(conn)?;
    Ok(orgs.into_iter().flatten().collect())
}

/// The raising organisation of every open blocking flag on a proposal (`None` for a system flag without one),
/// one entry per flag.
pub fn open_blocking_flag_organizations(
    conn: &mut DbConn,
    proposal_id: &str,
) -> QueryResult<Vec<Option<String>>> {
    flags::table
        .filter(flags::proposal_id.eq(proposal_id))
        .filter(flags::status.eq(FlagStatus::Open.as_str()))
        .filter(flags::severity.eq(Severity::Blocking.as_str()))
        .select(flags::organization_id)
        .load(conn)
}
