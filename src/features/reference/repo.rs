//! Queries on `areas` and `sectors`.

use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbConn;
use crate::db::schema::{areas, sectors};

/// One admin area: level 1 (adm1) or level 2 (adm2, with its adm1 as parent).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Serialize, ToSchema)]
#[diesel(table_name = areas)]
pub struct Area {
    pub pcode: String,
    pub level: i32,
    pub name: String,
    pub parent_pcode: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = sectors)]
pub struct Sector {
    /// IASC cluster code (IATI sector vocabulary 10) or a QIP sector code (`QIP-…`, vocabulary 99).
    pub code: String,
    pub name: String,
    /// IATI sector vocabulary: `10` humanitarian global clusters, `99` reporting organisation's own.
    pub vocabulary: String,
    pub humanitarian: bool,
}

pub fn find_area(conn: &mut DbConn, pcode: &str) -> QueryResult<Option<Area>> {
    areas::table
        .find(pcode)
        .select(Area::as_select())
        .first(conn)
        .optional()
}

pub fn upsert_area(conn: &mut DbConn, area: &Area) -> QueryResult<bool> {
    if find_area(conn, &area.pcode)?.is_some() {
        diesel::update(areas::table.find(&area.pcode))
            .set((
                areas::name.eq(&area.name),
                areas::level.eq(area.level),
                areas::parent_pcode.eq(&area.parent_pcode),
                areas::lat.eq(area.lat),
                areas::lon.eq(area.lon),
            ))
            .execute(conn)?;
        Ok(false)
    } else {
        diesel::insert_into(areas::table).values(area).execute(conn)?;
        Ok(true)
    }
}

pub fn list_areas(
    conn: &mut DbConn,
    adm1: Option<&str>,
    level: Option<i32>,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Area>> {
    let mut q = areas::table.select(Area::as_select()).into_boxed();
    if let Some(parent) = adm1 {
        q = q.filter(areas::parent_pcode.eq(parent.to_owned()));
    }
    if let Some(level) = level {
        q = q.filter(areas::level.eq(level));
    }
    if let Some(after) = after {
        q = q.filter(areas::pcode.gt(after.to_owned()));
    }
    q.order(areas::pcode.asc()).limit(limit).load(conn)
}

pub fn list_sectors(conn: &mut DbConn) -> QueryResult<Vec<Sector>> {
    sectors::table
        .order(sectors::code.asc())
        .select(Sector::as_select())
        .load(conn)
}

pub fn sector_exists(conn: &mut DbConn, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(sectors::table.find(code))).get_result(conn)
}
