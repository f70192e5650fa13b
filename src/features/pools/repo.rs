//! Queries on `pools` and `pool_settings`.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{pool_settings, pools};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pools)]
pub struct PoolRow {
    pub id: String,
    pub code: String,
    pub name: String,
    pub currency: String,
    pub funding_start: NaiveDate,
    pub funding_end: NaiveDate,
    pub settings_version: i32,
    pub version: i64,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pool_settings)]
pub struct PoolSettingsRow {
    pub pool_id: String,
    pub version: i32,
    pub settings: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

pub fn insert_pool(conn: &mut DbConn, row: &PoolRow) -> QueryResult<()> {
    diesel::insert_into(pools::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn insert_settings(conn: &mut DbConn, row: &PoolSettingsRow) -> QueryResult<()> {
    diesel::insert_into(pool_settings::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_pool(conn: &mut DbConn, id: &str) -> QueryResult<Option<PoolRow>> {
    pools::table
        .find(id)
        .select(PoolRow::as_select())
        .first(conn)
        .optional()
}

pub fn code_taken(conn: &mut DbConn, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(pools::table.filter(pools::code.eq(code)))).get_result(conn)
}

pub fn settings(conn: &mut DbConn, pool_id: &str, version: i32) -> QueryResult<Option<PoolSettingsRow>> {
    pool_settings::table
        .find((pool_id, version))
        .select(PoolSettingsRow::as_select())
        .first(conn)
        .optional()
}

pub fn list_pools(conn: &mut DbConn, after: Option<&str>, limit: i64) -> QueryResult<Vec<PoolRow>> {
    let mut q = pools::table.select(PoolRow::as_select()).into_boxed();
    if let Some(after) = after {
        q = q.filter(pools::id.gt(after.to_owned()));
    }
    q.order(pools::id.asc()).limit(limit).load(conn)
}

pub fn update_pool(
    conn: &mut DbConn,
    id: &str,
    name: &str,
    settings_version: i32,
    version: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(pools::table.find(id))
        .set((
            pools::name.eq(name),
            pools::settings_version.eq(settings_version),
            pools::version.eq(version),
            pools::updated_at.eq(now),
        ))
        .execute(conn)
}
