//! Stored statuses and kinds outside the proposal lifecycle are read as enums at the repo boundary: a value
//! this code never writes, found in the database, is an opaque 500 (cause logged), never a default.

use diesel::RunQueryDsl;
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::assert_problem;

/// Writes a value this code never writes straight into the database (ids are UUIDs: safe to inline).
fn corrupt(m: &Mission, sql: &str) {
    let mut conn = m.app.conn();
    let changed = diesel::sql_query(sql).execute(&mut *conn).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

fn assert_opaque(body: &Value, secret: &str) {
    let text = body.to_string();
    assert!(!text.contains(secret), "the cause leaked: {text}");
}

#[test]
fn an_unknown_stored_activity_status_is_an_opaque_500_not_a_default() {
    let m = Mission::new();
    let res = m.app.post_json("/api/v1/activities", Some(&m.consultee.access), &json!({
        "title": "School WASH rehabilitation", "sector_code": "WSH", "adm1_pcode": "XY01", "adm2_pcode": "XY0102",
        "start_date": "2026-10-01"}));
    assert_eq!(res.status().as_u16(), 201);
    let activity: Value = res.json().unwrap();
    assert_eq!(activity["status"], "planned");
    let id = activity["id"].as_str().unwrap();
    corrupt(
        &m,
        &format!("UPDATE activities SET status = 'dormant' WHERE id = '{id}'"),
    );
    let body = assert_problem(
        m.app
            .get_as(&format!("/api/v1/activities/{id}"), &m.consultee.access),
        500,
        "internal",
    );
    assert_opaque(&body, "dormant");
    let body = assert_problem(
        m.app.get_as("/api/v1/activities", &m.consultee.access),
        500,
        "internal",
    );
    assert_opaque(&body, "dormant");
    // Closing it refuses too, rather than guessing it was open.
    let res = m.app.post_json(
        &format!("/api/v1/activities/{id}/close"),
        Some(&m.consultee.access),
        &json!({}),
    );
    assert_opaque(&assert_problem(res, 500, "internal"), "dormant");
}
