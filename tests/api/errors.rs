//! Every error kind of the HTTP plumbing comes back as problem+json with the right status and a useful body.

use actix_web::{HttpResponse, web};
use qip_pool::error::AppError;
use qip_pool::http::extract;
use serde::Deserialize;
use serde_json::json;

use crate::support::{TestApp, assert_problem};

#[derive(Deserialize)]
struct ProbeBody {
    #[expect(
        dead_code,
        reason = "only its presence and type are checked by deserialization"
    )]
    name: String,
}

#[derive(Deserialize)]
struct ProbeQuery {
    #[expect(dead_code, reason = "only its type is checked by deserialization")]
    count: u32,
}

/// Test-only routes that use the real extractors, configs and middleware.
fn probes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/probe/json",
        web::post().to(|_: extract::Json<ProbeBody>| async { HttpResponse::NoContent().finish() }),
    )
    .route(
        "/probe/query",
        web::get().to(|_: extract::Query<ProbeQuery>| async { HttpResponse::NoContent().finish() }),
    )
    .route(
        "/probe/internal",
        web::get().to(|| async {
            Err::<HttpResponse, _>(AppError::internal("SELECT secret FROM vault failed at db.rs:42"))
        }),
    );
}

fn app() -> TestApp {
    TestApp::spawn_with(|s| s.server.json_limit_bytes = 1024, probes)
}

#[test]
fn unknown_route_is_404_problem_with_instance() {
    let app = app();
    let body = assert_problem(app.get("/api/v1/no-such-thing"), 404, "not-found");
    assert_eq!(body["instance"], "/api/v1/no-such-thing");
    assert!(body["detail"].as_str().unwrap().contains("/api/v1/no-such-thing"));
}

#[test]
fn wrong_method_is_405_with_allow_header() {
    let app = app();
    let res = app.client.delete(app.url("/healthz")).send().unwrap();
    assert_eq!(res.headers().get("allow").unwrap(), "GET");
    let body = assert_problem(res, 405, "method-not-allowed");
    assert_eq!(body["allowed_methods"], json!(["GET"]));
}

#[test]
fn malformed_json_is_400_with_position() {
    let app = app();
    let res = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",,}")
        .send()
        .unwrap();
    let body = assert_problem(res, 400, "malformed-json");
    assert_eq!(body["line"], 1);
    assert_eq!(body["column"], 14);
    assert!(
        body["detail"].as_str().unwrap().contains("line 1 column 14"),
        "{body}"
    );
}

#[test]
fn well_formed_json_of_the_wrong_shape_is_422() {
    let app = app();
    let res = app
        .client
        .post(app.url("/probe/json"))
        .json(&json!({"name": 5}))
        .send()
        .unwrap();
    let body = assert_problem(res, 422, "validation");
    assert_eq!(body["errors"][0]["field"], "body");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("invalid type"),
        "{body}"
    );
}

#[test]
fn wrong_content_type_is_415() {
    let app = app();
    let res = app
        .client
        .post(app.url("/probe/json"))
        .header("content-type", "text/plain")
        .body("{\"name\":\"x\"}")
        .send()
        .unwrap();
    let body = assert_problem(res, 415, "unsupported-media-type");
    assert!(body["detail"].as_str().unwrap().contains("application/json"));
}

#[test]
fn body_over_the_limit_is_413() {
    let app = app();
    let big = json!({"name": "x".repeat(5000)});
    let res = app.client.post(app.url("/probe/json")).json(&big).send().unwrap();
    let body = assert_problem(res, 413, "payload-too-large");
    assert_eq!(body["limit_bytes"], 1024);
}

#[test]
fn query_parse_error_is_400() {
    let app = app();
    let body = assert_problem(app.get("/probe/query?count=many"), 400, "bad-request");
    assert_eq!(body["errors"][0]["field"], "query");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("query string is invalid"),
        "{body}"
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("invalid digit"),
        "{body}"
    );
}

#[test]
fn server_errors_are_opaque() {
    let app = app();
    let body = assert_problem(app.get("/probe/internal"), 500, "internal");
    let text = body.to_string();
    assert!(!text.contains("vault"), "cause leaked: {text}");
    assert!(!text.contains("db.rs"), "cause leaked: {text}");
}

#[test]
fn valid_probe_passes_through_untouched() {
    let app = app();
    let res = app
        .client
        .post(app.url("/probe/json"))
        .json(&json!({"name": "ok"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
}

#[test]
fn every_error_kind_has_a_distinct_documented_type() {
    use qip_pool::error::ErrorKind;
    let api_doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.md")).unwrap();
    let mut slugs: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.slug()).collect();
    for kind in ErrorKind::ALL {
        assert!(
            api_doc.contains(&kind.type_uri()),
            "docs/API.md does not document {}",
            kind.type_uri()
        );
        assert_eq!(ErrorKind::from_status(kind.status()).status(), kind.status());
    }
    slugs.sort_unstable();
    slugs.dedup();
    assert_eq!(slugs.len(), ErrorKind::ALL.len());
}
