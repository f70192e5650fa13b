//! Authorization decides on the route that actually runs: for every route of the OpenAPI document, spellings
//! of its path that the server reads as the same path (percent-encoded letters, doubled slashes, dot segments,
//! a trailing slash) get exactly the canonical path's answer, for an anonymous caller and for each hat; the
//! sign-in rate limit cannot be dodged by spelling the login path differently; ambiguous paths are refused.

use qip_pool::access::Hat;
use serde_json::{Value, json};

use crate::support::{RawResponse, TestApp, assert_problem, raw_request};

/// An id nothing has: path parameters get it, so no request finds (or changes) anything.
const UNKNOWN_ID: &str = "01900000-0000-7000-8000-00000000dead";

/// The routes of the served document as `(method, template)`.
fn documented_routes(app: &TestApp) -> Vec<(String, String)> {
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    assert!(routes.len() > 40, "the document lists {} routes", routes.len());
    routes
}

/// The template with every `{param}` replaced: numbers where the route numbers things, else an unknown id.
fn concrete(template: &str) -> Vec<String> {
    template
        .split('/')
        .skip(1)
        .map(|segment| match segment {
            "{n}" => "99".to_owned(),
            s if s.starts_with('{') => UNKNOWN_ID.to_owned(),
            s => s.to_owned(),
        })
        .collect()
}

/// Spellings of the same path, each with a name for messages.
fn variants(template: &str) -> Vec<(&'static str, String)> {
    let segments = concrete(template);
    let static_index = template
        .split('/')
        .skip(1)
        .enumerate()
        .filter(|(_, s)| !s.starts_with('{') && s.bytes().any(|b| b.is_ascii_alphabetic()))
        .map(|(i, _)| i)
        .last()
        .unwrap();
    let mut encoded = segments.clone();
    let letter = encoded[static_index]
        .char_indices()
        .find(|(_, c)| c.is_ascii_alphabetic())
        .unwrap();
    encoded[static_index].replace_range(letter.0..letter.0 + 1, &format!("%{:02x}", u32::from(letter.1)));
    let (last, prefix) = segments.split_last().unwrap();
    let prefix = prefix.iter().map(|s| format!("/{s}")).collect::<String>();
    vec![
        ("percent-encoded", format!("/{}", encoded.join("/"))),
        ("double-slash", format!("//{}", segments.join("//"))),
        ("dot-segment", format!("{prefix}/./{last}")),
        ("dot-dot-segment", format!("{prefix}/x/../{last}")),
        ("trailing-slash", format!("/{}/", segments.join("/"))),
    ]
}

/// Status and problem `type` (absent for non-problem bodies): the answer that must not depend on spelling.
fn answer(res: &RawResponse) -> (u16, Value) {
    (res.status, res.json().get("type").cloned().unwrap_or(Value::Null))
}

#[test]
fn every_spelling_of_every_route_gets_the_canonical_answer_for_every_caller() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "PATHS", "mission_office");
    let mut callers: Vec<(String, Option<String>)> = vec![("anonymous".into(), None)];
    for hat in Hat::ALL {
        let session = app.user_with_hats(&admin, &format!("p-{hat}"), &org, &[hat.as_str()]);
        callers.push((hat.to_string(), Some(format!("Bearer {}", session.access))));
    }
    let routes = documented_routes(&app);
    // One thread per caller: the answers are independent, and nothing is changed by any of them.
    let checked: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = callers
            .iter()
            .map(|(caller, authorization)| {
                let (app, routes) = (&app, &routes);
                scope.spawn(move || check_spellings(app, routes, caller, authorization.as_deref()))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    assert_eq!(checked, routes.len() * 5 * callers.len(), "spellings checked");
}

/// Sends every route and every spelling of it as one caller; the number of spellings compared.
fn check_spellings(
    app: &TestApp,
    routes: &[(String, String)],
    caller: &str,
    authorization: Option<&str>,
) -> usize {
    let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("Authorization", *a)).collect();
    let mut checked = 0;
    for (method, template) in routes {
        let canonical = format!("/{}", concrete(template).join("/"));
        let body = (method != "GET").then_some("{}");
        let send = |target: &str| raw_request(&app.base_url, method, target, &headers, body);
        let expected = answer(&send(&canonical));
        assert!(expected.0 < 500, "{method} {canonical} as {caller}: {expected:?}");
        for (name, target) in variants(template) {
            let got = answer(&send(&target));
            assert_eq!(
                got, expected,
                "{method} {target} ({name}) as {caller} differs from {canonical}"
            );
            checked += 1;
        }
    }
    checked
}

#[test]
fn a_guarded_route_spelled_with_an_escape_asks_for_sign_in_and_its_holder_gets_in() {
    let (app, admin) = TestApp::with_admin();
    // Before the fix this reached the handler with no caller: a 500.
    let res = raw_request(&app.base_url, "GET", "/api/v1/%75sers", &[], None);
    assert_eq!(res.status, 401, "{:?}", res.json());
    assert_eq!(res.json()["type"], crate::support::problem_type("unauthorized"));
    let bearer = format!("Bearer {}", admin.access);
    let res = raw_request(
        &app.base_url,
        "GET",
        "/api/v1/%75sers/?limit=1",
        &[("Authorization", &bearer)],
        None,
    );
    assert_eq!(res.status, 200);
    let page = res.json();
    assert_eq!(page["items"][0]["username"], "admin", "{page}");
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        1,
        "the query string survives"
    );
}

#[test]
fn the_sign_in_rate_limit_counts_every_spelling_of_the_login_path() {
    let app = TestApp::spawn_with(|s| s.auth.auth_rate_limit_per_minute = 3, |_| {});
    let credentials = json!({"username": "nobody-here", "password": "not-the-password-1"}).to_string();
    let login = |target: &str| raw_request(&app.base_url, "POST", target, &[], Some(&credentials));
    for target in [
        "/api/v1/auth/%6cogin",
        "/api/v1/auth/%6Cogin",
        "/api/v1/auth/%6cogin",
    ] {
        let res = login(target);
        assert_eq!(res.status, 401, "{target} signs in (and fails): {:?}", res.json());
    }
    for target in [
        "/api/v1/auth/login",
        "/api/v1/auth/%6cogin",
        "//api/v1/auth/./login/",
        "/api/v1/x/../auth/login",
    ] {
        let res = login(target);
        assert_eq!(res.status, 429, "{target} is over the limit: {:?}", res.json());
        assert_eq!(
            res.json()["type"],
            crate::support::problem_type("too-many-requests")
        );
        assert!(res.headers.iter().any(|(k, _)| k == "retry-after"));
    }
    // The three attempts that got through were sign-ins, audited as such; the refused ones never ran.
    let failures = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "auth.login")
        .count();
    assert_eq!(failures, 3);
}

#[test]
fn ambiguous_paths_are_refused_as_bad_requests() {
    let app = TestApp::spawn();
    for target in [
        "/api/v1%2Fusers",
        "/api/v1/users%2f",
        "/api/v1/%2575sers",
        "/api/v1/%zzsers",
        "/api/v1/users%00",
        "/api/v1/%FF",
        "/../api/v1/users",
        "/api/v1/../../../etc/passwd",
    ] {
        let res = raw_request(&app.base_url, "GET", target, &[], None);
        assert_eq!(res.status, 400, "{target}: {:?}", res.json());
        let body = res.json();
        assert_eq!(
            body["type"],
            crate::support::problem_type("bad-request"),
            "{target}: {body}"
        );
        assert!(
            body["detail"].as_str().unwrap().contains("path is refused"),
            "{body}"
        );
    }
    // Plain paths and the docs directory are untouched.
    assert_problem(app.get("/api/v1/users"), 401, "unauthorized");
    assert_eq!(app.get("/docs/").status().as_u16(), 200);
}

/// Routes outside the policy table, as a future handler might be registered by mistake.
fn unlisted_routes(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::{HttpResponse, web};
    use qip_pool::access::Actor;
    cfg.route(
        "/probe/caller",
        web::get().to(|actor: Actor| async move { HttpResponse::Ok().body(actor.user_id) }),
    )
    .route(
        "/api/v2/unlisted",
        web::get().to(|| async { HttpResponse::Ok().body("open door") }),
    );
}

#[test]
fn a_handler_outside_the_policy_table_never_runs_with_or_without_a_caller() {
    let app = TestApp::spawn_with(|_| {}, unlisted_routes);
    let admin = app.bootstrap_admin();
    for token in [None, Some(admin.access.as_str())] {
        // Asking for the caller where no authorization decision was taken is refused, not a 500, not a pass.
        let mut req = app.client.get(app.url("/probe/caller"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_problem(req.send().unwrap(), 403, "forbidden");
        // An API route the OpenAPI document (and so the policy table) does not list is closed.
        let mut req = app.client.get(app.url("/api/v2/unlisted"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_problem(req.send().unwrap(), 403, "forbidden");
    }
}
