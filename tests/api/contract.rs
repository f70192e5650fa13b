//! HTTP semantics clients and their tools rely on: strong `If-Match`, `If-None-Match` → 304, compression on
//! request, `Location` on 201, static routes that shadow parameter routes (with `Allow`), reads without
//! `Acting-Hat`, and a 503 (not a 500) while migrations are pending.

use diesel::connection::SimpleConnection;
use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::{assert_problem, raw_request};

#[test]
fn if_match_compares_strongly_so_a_weak_tag_never_matches() {
    let m = Mission::new();
    let (id, version) = m.draft("Borehole at Kalma school", "12000.00");
    let path = format!("/api/v1/proposals/{id}");
    let edit = json!({"title": "Borehole and latrines at Kalma school"});
    let weak = m
        .app
        .client
        .patch(m.app.url(&path))
        .bearer_auth(&m.unit.access)
        .header("If-Match", format!("W/\"{version}\""))
        .json(&edit)
        .send()
        .unwrap();
    let body = assert_problem(weak, 412, "precondition-failed");
    assert!(body["detail"].as_str().unwrap().contains("weak"), "{body}");
    let unchanged: Value = m.app.get_as(&path, &m.unit.access).json().unwrap();
    assert_eq!(unchanged["content"]["title"], "Borehole at Kalma school");
    assert_eq!(unchanged["version"], version);

    let strong = m.with_if_match(Method::PATCH, &path, &m.unit, version, Some(&edit));
    assert_eq!(strong.status().as_u16(), 200);
    assert_eq!(
        strong.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", version + 1)
    );
    let changed: Value = m.app.get_as(&path, &m.unit.access).json().unwrap();
    assert_eq!(
        changed["content"]["title"],
        "Borehole and latrines at Kalma school"
    );
}

#[test]
fn if_none_match_answers_304_while_the_copy_is_current() {
    let m = Mission::new();
    let path = format!("/api/v1/pools/{}", m.pool_id);
    let first = m.app.get_as(&path, &m.qip.access);
    assert_eq!(first.status().as_u16(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let get_if_none_match = |tag: &str| {
        m.app
            .client
            .get(m.app.url(&path))
            .bearer_auth(&m.qip.access)
            .header("If-None-Match", tag)
            .send()
            .unwrap()
    };
    let cached = get_if_none_match(&etag);
    assert_eq!(cached.status().as_u16(), 304);
    assert_eq!(cached.headers()["etag"].to_str().unwrap(), etag);
    assert!(cached.bytes().unwrap().is_empty());
    // Weak comparison for If-None-Match: W/"1" names the same version.
    assert_eq!(get_if_none_match(&format!("W/{etag}")).status().as_u16(), 304);
    let stale = get_if_none_match("\"999\"");
    assert_eq!(stale.status().as_u16(), 200);
    assert_eq!(stale.json::<Value>().unwrap()["id"], m.pool_id.as_str());
}

#[test]
fn responses_are_compressed_when_the_client_asks() {
    let m = Mission::new();
    let raw = |encoding: &str| {
        raw_request(
            &m.app.base_url,
            "GET",
            "/api/v1/openapi.json",
            &[("Accept-Encoding", encoding)],
            None,
        )
    };
    let header = |res: &crate::support::RawResponse, name: &str| {
        res.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let plain = raw("identity");
    assert_eq!(plain.status, 200);
    assert_eq!(header(&plain, "content-encoding"), None);
    let gzip = raw("gzip");
    assert_eq!(gzip.status, 200);
    assert_eq!(header(&gzip, "content-encoding").as_deref(), Some("gzip"));
    assert!(gzip.body.len() * 3 < plain.body.len(), "gzip saves most of it");
    assert_eq!(&gzip.body[..2], &[0x1f, 0x8b], "a gzip stream");
    let brotli = raw("br");
    assert_eq!(header(&brotli, "content-encoding").as_deref(), Some("br"));
    // Problems are compressed too, and stay problems.
    let res = raw_request(
        &m.app.base_url,
        "GET",
        "/api/v1/pools",
        &[("Accept-Encoding", "gzip")],
        None,
    );
    assert_eq!(res.status, 401);
    assert_eq!(
        header(&res, "content-type").as_deref(),
        Some("application/problem+json")
    );
}

#[test]
fn every_201_says_where_the_new_resource_lives() {
    let m = Mission::new();
    let res = m.create(&m.unit, &m.complete_content("Footbridge at Tawila", "9000.00"));
    assert_eq!(res.status().as_u16(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().unwrap();
    assert_eq!(
        location,
        format!("/api/v1/proposals/{}", created["id"].as_str().unwrap())
    );
    let fetched: Value = m.app.get_as(&location, &m.unit.access).json().unwrap();
    assert_eq!(fetched["content"]["title"], "Footbridge at Tawila");

    let res = m.app.post_json(
        "/api/v1/pools",
        Some(&m.qip.access),
        &json!({"code": "NFP", "name": "North pool", "currency": "USD", "funding_start": "2026-01-01", "funding_end": "2027-12-31"}),
    );
    assert_eq!(res.status().as_u16(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let fetched: Value = m.app.get_as(&location, &m.qip.access).json().unwrap();
    assert_eq!(fetched["code"], "NFP");
}

#[test]
fn a_static_route_owns_its_path_for_every_method() {
    let m = Mission::new();
    let res = m.app.get_as("/api/v1/activities/import", &m.consultee.access);
    assert_eq!(res.headers()["allow"].to_str().unwrap(), "POST");
    let body = assert_problem(res, 405, "method-not-allowed");
    assert_eq!(body["allowed_methods"], json!(["POST"]));
    // The parameter route still serves real ids, with its own methods.
    let res = m.app.send(
        Method::DELETE,
        "/api/v1/activities/0195a3c8-0000-7000-8000-000000000000",
        Some(&m.consultee.access),
        None,
    );
    assert_eq!(res.headers()["allow"].to_str().unwrap(), "GET, PATCH");
    assert_problem(res, 405, "method-not-allowed");
}

#[test]
fn a_multi_hat_user_reads_without_naming_a_hat() {
    let m = Mission::new();
    let admin = &m._admin;
    let office = m.app.create_org(admin, "DSRSG", "mission_office");
    let dsrsg = m
        .app
        .user_with_hats(admin, "dsrsg", &office, &["hc", "rc", "dsrsg"]);
    let sectors = m.app.get_as("/api/v1/sectors", &dsrsg.access);
    assert_eq!(sectors.status().as_u16(), 200);
    let sectors: Value = sectors.json().unwrap();
    assert!(sectors.as_array().is_some_and(|s| !s.is_empty()), "{sectors}");
    let pool: Value = m
        .app
        .get_as(&format!("/api/v1/pools/{}", m.pool_id), &dsrsg.access)
        .json()
        .unwrap();
    assert_eq!(pool["code"], "DFP");
    // The exports and the pool report are reads too: served in the first held hat that permits them.
    for path in [
        format!("/api/v1/pools/{}/report", m.pool_id),
        format!("/api/v1/pools/{}/exports/proposals.csv", m.pool_id),
        format!("/api/v1/pools/{}/exports/transactions.csv", m.pool_id),
        format!("/api/v1/pools/{}/exports/iati-activities.xml", m.pool_id),
    ] {
        let res = m.app.get_as(&path, &dsrsg.access);
        let status = res.status().as_u16();
        assert_eq!(status, 200, "{path}: {}", res.text().unwrap_or_default());
    }
    // A write more than one held hat could perform still asks which.
    let both = m
        .app
        .user_with_hats(admin, "both", &office, &["consultee", "qip_officer"]);
    let import = |hat: Option<&str>| {
        let mut req = m
            .app
            .client
            .post(m.app.url("/api/v1/activities/import"))
            .bearer_auth(&both.access)
            .header("content-type", "text/csv")
            .body("organization_code,sector_code,adm2_pcode,title\n");
        if let Some(hat) = hat {
            req = req.header("Acting-Hat", hat);
        }
        req.send().unwrap()
    };
    let body = assert_problem(import(None), 400, "bad-request");
    assert_eq!(body["candidate_hats"], json!(["qip_officer", "consultee"]));
    assert_ne!(import(Some("consultee")).status().as_u16(), 400);
}

#[test]
fn pending_migrations_answer_503_until_migrated() {
    let m = Mission::new();
    let version: String = {
        use diesel::prelude::*;
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations ORDER BY version DESC LIMIT 1")
            .load::<VersionRow>(&mut *m.app.conn())
            .unwrap()
            .remove(0)
            .version
    };
    // The schema now looks one migration behind, as after `serve --no-migrate` on an old database.
    m.app
        .conn()
        .batch_execute(&format!(
            "DELETE FROM __diesel_schema_migrations WHERE version = '{version}'"
        ))
        .unwrap();
    let fresh = m.app.spawn_on();
    let res = fresh.get_as("/api/v1/sectors", &m.qip.access);
    assert_eq!(res.headers()["retry-after"].to_str().unwrap(), "1");
    let body = assert_problem(res, 503, "service-unavailable");
    assert!(
        body["detail"].as_str().unwrap().contains("qip-pool migrate"),
        "{body}"
    );
    assert_eq!(fresh.get("/readyz").status().as_u16(), 503);
    assert_eq!(fresh.get("/healthz").status().as_u16(), 200);
    m.app
        .conn()
        .batch_execute(&format!(
            "INSERT INTO __diesel_schema_migrations (version) VALUES ('{version}')"
        ))
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let res = fresh.get_as("/api/v1/sectors", &m.qip.access);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(fresh.get("/readyz").status().as_u16(), 200);
}

#[derive(diesel::QueryableByName)]
struct VersionRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    version: String,
}

#[test]
fn an_unknown_database_scheme_is_a_clear_error_that_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli::qip_pool(
        &["ledger", "check"],
        &[("QIP__DATABASE__URL", "postgress://qip:hunter2@localhost/qip")],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`postgress:`") && stderr.contains("not supported"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Read-only commands never create a database.
    let path = dir.path().join("none.sqlite3");
    let url = format!("sqlite://{}", path.display());
    let out = crate::cli::qip_pool(&["audit", "verify"], &[("QIP__DATABASE__URL", url.as_str())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!path.exists());
}

#[test]
fn help_names_the_config_file_and_environment_variables() {
    let out = crate::cli::qip_pool(&["--help"], &[]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("--config FILE") && help.contains("QIP__DATABASE__URL"),
        "{help}"
    );
}
