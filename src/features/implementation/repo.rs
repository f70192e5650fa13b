//! Queries on tranches, reports, tranche payments and close-outs.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{closeouts, reports, tranche_payments, tranches};
use crate::domain::status::{ReportKind, ReportStatus, TrancheStatus};
use crate::domain::tranches::PayCondition;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tranches)]
pub struct TrancheRow {
    pub id: String,
    pub proposal_id: String,
    pub number: i32,
    pub percent: i32,
    pub amount_minor: i64,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub condition: PayCondition,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: TrancheStatus,
    pub paid_minor: i64,
    pub waive_reason: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reports)]
pub struct ReportRow {
    pub id: String,
    pub proposal_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: ReportKind,
    pub content: String,
    pub expenditure_minor: Option<i64>,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: ReportStatus,
    pub submitted_by: String,
    pub submitted_at: NaiveDateTime,
    pub decided_by: Option<String>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_reason: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tranche_payments)]
pub struct PaymentRow {
    pub transaction_id: String,
    pub proposal_id: String,
    pub tranche_number: i32,
    pub amount_minor: i64,
    pub paid_on: NaiveDate,
    pub payment_reference: String,
    pub paid_by: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = closeouts)]
pub struct CloseoutRow {
    pub proposal_id: String,
    pub objectives_met: String,
    pub confidence_effect: String,
    pub lessons: String,
    pub closed_by: String,
    pub closed_at: NaiveDateTime,
}

pub fn insert_tranche(conn: &mut DbConn, row: &TrancheRow) -> QueryResult<()> {
    diesel::insert_into(tranches::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn tranches_of(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Vec<TrancheRow>> {
    tranches::table
        .filter(tranches::proposal_id.eq(proposal_id))
        .order(tranches::number.asc())
        .select(TrancheRow::as_select())
        .load(conn)
}

pub fn save_tranche(conn: &mut DbConn, row: &TrancheRow) -> QueryResult<usize> {
    diesel::update(tranches::table.find(&row.id))
        .set((
            tranches::status.eq(row.status.as_str()),
            tranches::paid_minor.eq(row.paid_minor),
            tranches::waive_reason.eq(&row.waive_reason),
        ))
        .execute(conn)
}

pub fn insert_report(conn: &mut DbConn, row: &ReportRow) -> QueryResult<()> {
    diesel::insert_into(reports::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_report(conn: &mut DbConn, id: &str) -> QueryResult<Option<ReportRow>> {
    reports::table
        .find(id)
        .select(ReportRow::as_select())
        .first(conn)
        .optional()
}

pub fn reports_of(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Vec<ReportRow>> {
    reports::table
        .filter(reports::proposal_id.eq(proposal_id))
        .order(reports::submitted_at.asc())
        .select(ReportRow::as_select())
        .load(conn)
}

/// Reports waiting for the QIP secretariat (my tasks).
pub fn submitted_reports(conn: &mut DbConn) -> QueryResult<Vec<ReportRow>> {
    reports::table
        .filter(reports::status.eq(ReportStatus::Submitted.as_str()))
        .select(ReportRow::as_select())
        .load(conn)
}

pub fn decide_report(
    conn: &mut DbConn,
    id: &str,
    status: ReportStatus,
    by: &str,
    at: NaiveDateTime,
    reason: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(
        reports::table
            .find(id)
            .filter(reports::status.eq(ReportStatus::Submitted.as_str())),
    )
    .set((
        reports::status.eq(status.as_str()),
        reports::decided_by.eq(by),
        reports::decided_at.eq(at),
        reports::decision_reason.eq(reason),
    ))
    .execute(conn)
}

pub fn insert_payment(conn: &mut DbConn, row: &PaymentRow) -> QueryResult<()> {
    diesel::insert_into(tranche_payments::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The first payment date of every proposal in implementation that has one, in one grouped statement (the
/// deadline sweeper and reminders read them all each run; one statement per proposal grew with the work).
pub fn first_payments_in_implementation(conn: &mut DbConn) -> QueryResult<Vec<(String, NaiveDate)>> {
    use crate::db::schema::proposals;
    let rows: Vec<(String, Option<NaiveDate>)> = tranche_payments::table
        .inner_join(proposals::table.on(proposals::id.eq(tranche_payments::proposal_id)))
        .filter(proposals::state.eq(crate::domain::lifecycle::State::InImplementation.as_str()))
        .group_by(tranche_payments::proposal_id)
        .select((
            tranche_payments::proposal_id,
            diesel::dsl::min(tranche_payments::paid_on),
        ))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(p, d)| d.map(|d| (p, d))).collect())
}

/// The pool settings version each proposal in implementation was submitted under (its current version's), in
/// one statement; a proposal whose current version records none is absent.
pub fn settings_versions_in_implementation(conn: &mut DbConn) -> QueryResult<Vec<(String, i32)>> {
    use crate::db::schema::{proposal_versions, proposals};
    let rows: Vec<(String, Option<i32>)> = proposals::table
        .inner_join(
            proposal_versions::table.on(proposal_versions::proposal_id
                .eq(proposals::id)
                .and(proposal_versions::number.eq(proposals::current_version))),
        )
        .filter(proposals::state.eq(crate::domain::lifecycle::State::InImplementation.as_str()))
        .select((proposals::id, proposal_versions::pool_settings_version))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(p, v)| v.map(|v| (p, v))).collect())
}

pub fn insert_closeout(conn: &mut DbConn, row: &CloseoutRow) -> QueryResult<()> {
    diesel::insert_into(closeouts::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// Proposals with a tranche not fully paid nor voided or waived (my tasks for finance).
pub fn open_tranches(conn: &mut DbConn) -> QueryResult<Vec<TrancheRow>> {
    tranches::table
        .filter(tranches::status.eq(TrancheStatus::Scheduled.as_str()))
        .select(TrancheRow::as_select())
        .load(conn)
}
