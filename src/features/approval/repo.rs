//! Queries on `approval_steps`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::access::Hat;
use crate::db::DbConn;
use crate::db::schema::approval_steps;
use crate::domain::approval_policy::StepReason;
use crate::domain::status::{Decision, StepStatus, UnknownStored};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = approval_steps)]
pub struct StepRow {
    pub id: String,
    pub proposal_id: String,
    pub version_number: i32,
    pub position: i32,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub hat: Hat,
    /// The policy rule that asked for the step (`StepReason` as JSON; read with [`StepRow::reason`]).
    pub reason: String,
    pub financial: bool,
    pub sla_days: i32,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: StepStatus,
    pub opened_at: Option<NaiveDateTime>,
    pub due_at: Option<NaiveDateTime>,
    pub overdue: bool,
    pub decided_by: Option<String>,
    /// Read and written as the stored name (`crate::db::stored`): an unknown stored hat fails the query.
    pub decided_hat: Option<Hat>,
    pub acting: bool,
    pub decided_at: Option<NaiveDateTime>,
    pub decision: Option<Decision>,
    pub comment: Option<String>,
    pub conditions: Option<String>,
    pub multi_hat_acknowledgement: Option<String>,
    pub created_at: NaiveDateTime,
}

impl StepRow {
    /// The policy rule that asked for the step: stored JSON this code wrote, so one it cannot read is an error
    /// (a 500 with the cause logged), never a default reason.
    pub fn reason(&self) -> Result<StepReason, UnknownStored> {
        serde_json::from_str(&self.reason).map_err(|_| UnknownStored {
            kind: "approval step reason",
            given: self.reason.clone(),
        })
    }
}

pub fn insert_step(conn: &mut DbConn, row: &StepRow) -> QueryResult<()> {
    diesel::insert_into(approval_steps::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

/// Every step of a proposal, all versions, in order.
pub fn steps_of(conn: &mut DbConn, proposal_id: &str) -> QueryResult<Vec<StepRow>> {
    approval_steps::table
        .filter(approval_steps::proposal_id.eq(proposal_id))
        .order((
            approval_steps::version_number.asc(),
            approval_steps::position.asc(),
        ))
        .select(StepRow::as_select())
        .load(conn)
}

pub fn save_step(conn: &mut DbConn, row: &StepRow) -> QueryResult<usize> {
    diesel::update(approval_steps::table.find(&row.id))
        .set((
            approval_steps::status.eq(row.status.as_str()),
            approval_steps::opened_at.eq(row.opened_at),
            approval_steps::due_at.eq(row.due_at),
            approval_steps::decided_by.eq(&row.decided_by),
            approval_steps::decided_hat.eq(row.decided_hat),
            approval_steps::acting.eq(row.acting),
            approval_steps::decided_at.eq(row.decided_at),
            approval_steps::decision.eq(row.decision),
            approval_steps::comment.eq(&row.comment),
            approval_steps::conditions.eq(&row.conditions),
            approval_steps::multi_hat_acknowledgement.eq(&row.multi_hat_acknowledgement),
        ))
        .execute(conn)
}

/// Marks opened, undecided steps past their due date as overdue (the sweeper; idempotent).
pub fn mark_overdue(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        approval_steps::table
            .filter(approval_steps::status.eq(StepStatus::Pending.as_str()))
            .filter(approval_steps::overdue.eq(false))
            .filter(approval_steps::due_at.lt(now)),
    )
    .set(approval_steps::overdue.eq(true))
    .execute(conn)
}

/// Opened, undecided steps deciding in one of `hats` (my tasks).
pub fn open_steps_for_hats(conn: &mut DbConn, hats: &[Hat]) -> QueryResult<Vec<StepRow>> {
    approval_steps::table
        .filter(approval_steps::status.eq(StepStatus::Pending.as_str()))
        .filter(approval_steps::opened_at.is_not_null())
        .filter(approval_steps::hat.eq_any(hats.iter().map(|h| h.as_str())))
        .select(StepRow::as_select())
        .load(conn)
}

/// Steps of the proposals of a pool (turnaround).
pub fn steps_of_pool(conn: &mut DbConn, pool_id: &str) -> QueryResult<Vec<StepRow>> {
    use crate::db::schema::proposals;
    approval_steps::table
        .inner_join(proposals::table.on(proposals::id.eq(approval_steps::proposal_id)))
        .filter(proposals::pool_id.eq(pool_id))
        .select(StepRow::as_select())
        .load(conn)
}
