//! The served OpenAPI document is reviewed like code: it is compared with the committed `docs/openapi.json`
//! (`UPDATE_SNAPSHOTS=1 cargo test --test api openapi_snapshot` rewrites it), and checked for what clients
//! need from every operation.

use serde_json::Value;

use crate::support::{TestApp, problem_type};

fn served(app: &TestApp) -> Value {
    app.get("/api/v1/openapi.json").json().unwrap()
}

#[test]
fn the_document_matches_the_committed_snapshot() {
    let app = TestApp::spawn();
    let doc = served(&app);
    let text = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "the OpenAPI document changed; review the change and run `UPDATE_SNAPSHOTS=1 cargo test --test api \
         openapi_snapshot` to commit it to docs/openapi.json"
    );
}

#[test]
fn every_operation_states_its_security_responses_and_headers() {
    let app = TestApp::spawn();
    let doc = served(&app);
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"][0]["url"], "http://127.0.0.1:8080");
    let mut operations = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let name = format!("{method} {template}");
            assert!(
                op["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: description"
            );
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: security"));
            let public = security.is_empty();
            let responses = op["responses"].as_object().unwrap();
            for (status, response) in responses {
                assert!(
                    response["description"].as_str().is_some_and(|d| !d.is_empty()),
                    "{name} {status}"
                );
                if status == "201" {
                    assert!(
                        response["headers"].get("Location").is_some(),
                        "{name}: Location on 201"
                    );
                }
            }
            if !public {
                assert!(responses.contains_key("401"), "{name}: 401");
            }
            if template.starts_with("/api/v1/") && template != "/api/v1/openapi.json" {
                assert!(responses.contains_key("503"), "{name}: 503");
            }
            if template.contains('{') && template != "/problems/{slug}" {
                assert!(responses.contains_key("404"), "{name}: 404");
            }
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let header = |n: &str| {
                params
                    .iter()
                    .find(|p| p["in"] == "header" && p["name"] == n)
                    .cloned()
            };
            if let Some(limit) = params.iter().find(|p| p["name"] == "limit") {
                assert_eq!(limit["schema"]["minimum"], 1, "{name}");
                assert_eq!(limit["schema"]["maximum"], 200, "{name}");
            }
            if responses.contains_key("428") {
                let if_match = header("If-Match").unwrap_or_else(|| panic!("{name}: If-Match declared"));
                assert!(
                    if_match["description"].as_str().unwrap().starts_with("Required"),
                    "{name}"
                );
                assert!(responses.contains_key("412"), "{name}: 412");
            }
            if let Some(key) = header("Idempotency-Key") {
                assert_eq!(key["required"], true, "{name}");
                assert_eq!(key["schema"]["maxLength"], 255, "{name}");
                let created = &responses["201"]["headers"];
                assert!(created.get("Idempotent-Replayed").is_some(), "{name}");
            }
            if template.starts_with("/api/v1/") && !public && op["security"][0].get("bearer").is_some() {
                // Action routes take `Acting-Hat`, with the hats as an enum.
                if let Some(acting) = header("Acting-Hat") {
                    assert_eq!(acting["schema"]["enum"].as_array().unwrap().len(), 10, "{name}");
                }
            }
        }
    }
    assert!(operations > 70, "{operations} operations");
    let submit = &doc["paths"]["/api/v1/proposals/{id}/submit"]["post"];
    let names: Vec<&str> = submit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains(&"If-Match") && names.contains(&"Acting-Hat"),
        "{names:?}"
    );
}

#[test]
fn problem_types_are_absolute_and_resolve_to_a_page_saying_how_to_fix_it() {
    let app = TestApp::spawn();
    let res = app.get("/api/v1/nothing-here");
    let problem: Value = res.json().unwrap();
    assert_eq!(problem["type"], problem_type("not-found"));
    let page_path = problem["type"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://127.0.0.1:8080");
    let page = app.get(page_path);
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let text = page.text().unwrap();
    assert!(
        text.contains("Not found") && text.contains("How to fix it"),
        "{text}"
    );
    for slug in [
        "validation",
        "precondition-failed",
        "idempotency-key-reused",
        "service-unavailable",
    ] {
        let page = app.get(&format!("/problems/{slug}"));
        assert_eq!(page.status().as_u16(), 200, "{slug}");
    }
    let unknown = app.get("/problems/no-such-problem");
    crate::support::assert_problem(unknown, 404, "not-found");
}
