//! Issue 11 item 5, every input is bounded: import files have a row cap and are refused whole beyond it,
//! re-importing a 3W file duplicates nothing, overlaps fold into one bounded duplication flag, the audit trail
//! never stores an outsider's 100,000-character username, and a file of bad rows gets a small answer.

use diesel::prelude::*;
use qip_pool::db::schema::{activities, areas, flags};
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::{Session, assert_problem};

/// `imports.max_rows` in config/default.toml.
const MAX_ROWS: usize = 5_000;
/// Field messages one problem lists (`crate::error::MAX_PROBLEM_ERRORS`).
const MAX_ERRORS: usize = 100;
/// Audit bounds (`features::audit::bounds`).
const AUDIT_IDENTIFIER_MAX: usize = 256;
const AUDIT_TEXT_MAX: usize = 2_000;

const HXL_HEADER: &str =
    "#org,#sector,#adm1+code,#adm2+code,#geo+lat,#geo+lon,#date+start,#date+end,#activity\n";

fn post_csv(m: &Mission, path: &str, who: &Session, body: String) -> reqwest::blocking::Response {
    m.app
        .client
        .post(m.app.url(path))
        .bearer_auth(&who.access)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .unwrap()
}

/// `n` UNICEF WASH activities in Kalma overlapping the fixture proposal's dates.
fn overlapping_rows(n: usize) -> String {
    let mut file = String::from(HXL_HEADER);
    for i in 0..n {
        file.push_str(&format!(
            "UNICEF,WSH,XY01,XY0101,12.1,24.9,2026-01-01,2027-12-31,Latrine block {i}\n"
        ));
    }
    file
}

fn activity_count(m: &Mission) -> i64 {
    activities::table.count().get_result(&mut *m.app.conn()).unwrap()
}

#[test]
fn an_import_over_the_row_cap_is_refused_whole_naming_the_limit() {
    let m = Mission::new();
    let res = post_csv(
        &m,
        "/api/v1/activities/import",
        &m.consultee,
        overlapping_rows(MAX_ROWS + 1),
    );
    let problem = assert_problem(res, 413, "payload-too-large");
    assert_eq!(problem["max_rows"], MAX_ROWS, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("5000"), "{problem}");
    assert_eq!(activity_count(&m), 0, "nothing of the file was written");

    let areas_before: i64 = areas::table.count().get_result(&mut *m.app.conn()).unwrap();
    let mut gazetteer = String::from("ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN\n");
    for i in 0..=MAX_ROWS {
        gazetteer.push_str(&format!("XY09,Far,XY09{i:05},Place {i}\n"));
    }
    let res = post_csv(&m, "/api/v1/areas/import", &m.qip, gazetteer);
    let problem = assert_problem(res, 413, "payload-too-large");
    assert_eq!(problem["max_rows"], MAX_ROWS, "{problem}");
    let areas_after: i64 = areas::table.count().get_result(&mut *m.app.conn()).unwrap();
    assert_eq!(areas_after, areas_before, "no area of the file was written");

    // At the cap exactly, the file is accepted.
    let res = post_csv(&m, "/api/v1/activities/import", &m.consultee, overlapping_rows(3));
    assert_eq!(res.status().as_u16(), 200);
}

#[test]
fn importing_the_same_3w_file_twice_adds_no_rows() {
    let m = Mission::new();
    let file = format!(
        "Organisation,Sector,Admin 1,Admin 2,Lat,Lon,Start,End,Activity\n{HXL_HEADER}\
         UNICEF,WSH,XY01,XY0101,12.1,24.9,2026-01-01,2027-06-30,Latrines\n\
         UNICEF,EDU,XY02,XY0201,,,2026-03-01,,Classrooms\n\
         UNICEF,WSH,XY01,XY0102,,,2026-03-01,,Water trucking\n"
    );
    let first: Value = post_csv(&m, "/api/v1/activities/import", &m.consultee, file.clone())
        .json()
        .unwrap();
    assert_eq!(first["imported"], 3, "{first}");
    assert_eq!(activity_count(&m), 3);
    let res = post_csv(&m, "/api/v1/activities/import", &m.consultee, file);
    assert_eq!(res.status().as_u16(), 200);
    let second: Value = res.json().unwrap();
    assert_eq!(
        activity_count(&m),
        3,
        "the second import duplicated rows: {second}"
    );
    assert_eq!(
        (
            &second["imported"],
            &second["created"],
            &second["updated"],
            &second["unchanged"]
        ),
        (&json!(3), &json!(0), &json!(0), &json!(3)),
        "{second}"
    );

    // With the file's own activity ids, an edited row is updated in place.
    let with_ids = |title: &str| {
        format!(
            "#org,#activity+code,#sector,#adm1+code,#adm2+code,#date+start,#activity\n\
             UNICEF,W-17,WSH,XY01,XY0101,2026-05-01,{title}\n\
             UNICEF,W-18,WSH,XY01,XY0101,2026-05-01,Hand pumps\n"
        )
    };
    let res = post_csv(
        &m,
        "/api/v1/activities/import",
        &m.consultee,
        with_ids("Borehole"),
    );
    assert_eq!(res.json::<Value>().unwrap()["created"], 2);
    let res = post_csv(
        &m,
        "/api/v1/activities/import",
        &m.consultee,
        with_ids("Borehole deepened"),
    );
    let third: Value = res.json().unwrap();
    assert_eq!(
        (&third["updated"], &third["unchanged"]),
        (&json!(1), &json!(1)),
        "{third}"
    );
    assert_eq!(activity_count(&m), 5);
    let titles: Vec<String> = activities::table
        .filter(activities::title.like("Borehole%"))
        .select(activities::title)
        .load(&mut *m.app.conn())
        .unwrap();
    assert_eq!(titles, ["Borehole deepened"]);

    // The same row twice in one file is named, and nothing is written.
    let twice = format!(
        "{HXL_HEADER}UNICEF,WSH,XY01,XY0101,,,2026-01-01,,Twin\nUNICEF,WSH,XY01,XY0101,,,2026-01-01,,Twin\n"
    );
    let problem = assert_problem(
        post_csv(&m, "/api/v1/activities/import", &m.consultee, twice),
        422,
        "validation",
    );
    assert_eq!(problem["errors"][0]["field"], "line 3", "{problem}");
    assert_eq!(activity_count(&m), 5);
}

#[test]
fn many_overlapping_activities_raise_one_bounded_duplication_flag() {
    let m = Mission::new();
    let res = post_csv(
        &m,
        "/api/v1/activities/import",
        &m.consultee,
        overlapping_rows(45),
    );
    assert_eq!(res.status().as_u16(), 200);
    let (id, _, _) = m.submitted("Kalma borehole", "9000.00");

    let stored: i64 = flags::table
        .filter(flags::proposal_id.eq(&id))
        .filter(flags::system_raised.eq(true))
        .filter(flags::category.eq("duplication"))
        .count()
        .get_result(&mut *m.app.conn())
        .unwrap();
    assert_eq!(stored, 1, "one system duplication flag, not one per activity");

    let res = m
        .app
        .get_as(&format!("/api/v1/proposals/{id}/consultation"), &m.qip.access);
    assert_eq!(res.status().as_u16(), 200);
    let text = res.text().unwrap();
    assert!(
        text.len() < 64 * 1024,
        "consultation view of {} bytes",
        text.len()
    );
    let c: Value = serde_json::from_str(&text).unwrap();
    let duplication: Vec<&Value> = c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["category"] == "duplication")
        .collect();
    assert_eq!(duplication.len(), 1, "{c}");
    let flag = duplication[0];
    assert_eq!(flag["severity"], "advisory");
    assert_eq!(flag["system_raised"], true);
    assert_eq!(flag["matched_activities_total"], 45, "{flag}");
    let listed = flag["matched_activities"].as_array().unwrap();
    assert_eq!(listed.len(), 20, "{flag}");
    assert!(listed.iter().all(|a| a["basis"] == "same_adm2"));
    assert_eq!(flag["activity_id"], listed[0]["activity_id"]);
    assert!(
        flag["description"].as_str().unwrap().contains("45 overlapping"),
        "{flag}"
    );
    assert_eq!(c["flags_total"], 1);

    // The organisation is consulted once, with one overlap reason that counts its activities.
    let consultees = c["rounds"][0]["consultees"].as_array().unwrap();
    let unicef = consultees
        .iter()
        .find(|x| x["organization_id"] == m.consultee.organization_id)
        .unwrap();
    let overlap: Vec<&Value> = unicef["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "overlap")
        .collect();
    assert_eq!(overlap.len(), 1, "{unicef}");
    assert!(
        overlap[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("45 overlapping")
    );
}

#[test]
fn a_huge_login_username_never_reaches_the_audit_trail_in_full() {
    let m = Mission::new();
    let huge = "u".repeat(100_000);
    let res = m.app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": huge, "password": "whatever-it-is"}),
    );
    let problem = assert_problem(res, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "username", "{problem}");

    // A username at the bound is refused as any unknown one, and audited in full.
    let longest = "v".repeat(128);
    let res = m.app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": longest, "password": "whatever-it-is"}),
    );
    assert_problem(res, 401, "unauthorized");

    let rows = m.app.audit_rows();
    assert!(
        rows.iter()
            .any(|r| r.actor_username.as_deref() == Some(longest.as_str()))
    );
    for r in &rows {
        for (name, value) in [
            ("actor_id", &r.actor_id),
            ("actor_username", &r.actor_username),
            ("organization_id", &r.organization_id),
            ("hat", &r.hat),
            ("entity_id", &r.entity_id),
            ("request_id", &r.request_id),
            ("client_addr", &r.client_addr),
        ] {
            let chars = value.as_deref().map_or(0, |v| v.chars().count());
            assert!(
                chars <= AUDIT_IDENTIFIER_MAX,
                "{} {name} of {chars} characters",
                r.action
            );
        }
        assert!(r.action.chars().count() <= AUDIT_IDENTIFIER_MAX);
        let reason = r.reason.as_deref().map_or(0, |v| v.chars().count());
        assert!(
            reason <= AUDIT_TEXT_MAX,
            "{} reason of {reason} characters",
            r.action
        );
        for state in [&r.before_state, &r.after_state].into_iter().flatten() {
            assert!(
                !state.contains(&"u".repeat(300)),
                "{} stores the username",
                r.action
            );
        }
    }
}

#[test]
fn a_file_of_many_bad_rows_gets_the_first_errors_and_the_total_in_a_small_body() {
    let m = Mission::new();
    let mut gazetteer = String::from("ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN\n");
    for i in 0..3_000 {
        gazetteer.push_str(&format!("XY01,North,bad code {i}!,Place {i}\n"));
    }
    let res = post_csv(&m, "/api/v1/areas/import", &m.qip, gazetteer);
    assert_eq!(res.status().as_u16(), 422);
    let text = res.text().unwrap();
    assert!(text.len() < 32 * 1024, "an error body of {} bytes", text.len());
    let problem: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(problem["type"], crate::support::problem_type("validation"));
    assert_eq!(problem["errors"].as_array().unwrap().len(), MAX_ERRORS);
    assert_eq!(problem["errors_total"], 3_000, "{}", problem["errors_total"]);
    assert_eq!(problem["errors"][0]["field"], "line 2");

    // The 3W import is capped the same way, and a small list comes back whole with its total.
    let mut file = String::from(HXL_HEADER);
    for i in 0..150 {
        file.push_str(&format!("UNICEF,NOPE,XY01,XY0101,,,2026-01-01,,Bad sector {i}\n"));
    }
    let problem = assert_problem(
        post_csv(&m, "/api/v1/activities/import", &m.consultee, file),
        422,
        "validation",
    );
    assert_eq!(problem["errors"].as_array().unwrap().len(), MAX_ERRORS);
    assert_eq!(problem["errors_total"], 150);
    let one = format!("{HXL_HEADER}UNICEF,NOPE,XY01,XY0101,,,2026-01-01,,Bad sector\n");
    let problem = assert_problem(
        post_csv(&m, "/api/v1/activities/import", &m.consultee, one),
        422,
        "validation",
    );
    assert_eq!(problem["errors"].as_array().unwrap().len(), 1);
    assert_eq!(problem["errors_total"], 1);
    assert_eq!(activity_count(&m), 0);
}
