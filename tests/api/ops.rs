//! Operational endpoints: health, readiness (also when the database goes away and comes back), metrics,
//! the OpenAPI document, Swagger UI, request ids and security headers; metric labels stay a closed set; the
//! client address behind trusted proxies.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use qip_pool::config::{Settings, TrustedProxies};
use serde_json::Value;

use crate::support::{TestApp, TestDb, assert_problem};

#[test]
fn healthz_and_readyz_answer_on_a_fresh_database() {
    let app = TestApp::spawn();
    let res = app.get("/healthz");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["status"], "ok");
    let res = app.get("/readyz");
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().unwrap();
    assert_eq!(body["status"], "ready");
    let expected = if app.db.is_postgres() {
        "postgresql"
    } else {
        "sqlite"
    };
    assert_eq!(body["database"], expected);
}

/// Polls `/readyz` until it answers `status` (the pool may need a moment to notice), or fails.
fn wait_ready_status(app: &TestApp, status: u16) -> reqwest::blocking::Response {
    for _ in 0..40 {
        let res = app.get("/readyz");
        if res.status().as_u16() == status {
            return res;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("/readyz never answered {status}");
}

#[test]
fn readyz_goes_503_when_the_database_is_unreachable_and_recovers() {
    let app = TestApp::spawn_with(|s| s.database.connect_timeout_secs = 1, |_| {});
    assert_eq!(app.get("/readyz").status().as_u16(), 200);
    // The public body names the dependency and the kind of failure; hosts, ports and paths stay in the log.
    let (body, secrets) = match &app.db {
        TestDb::Sqlite { path, .. } => {
            let moved = path.with_extension("away");
            std::fs::rename(path, &moved).unwrap();
            let body = readyz_503(&app);
            std::fs::rename(&moved, path).unwrap();
            assert_eq!(body["detail"], "database: file missing", "{body}");
            (body, vec![path.display().to_string(), "qip-test".to_owned()])
        }
        TestDb::Postgres { name, url, .. } => {
            let mut admin = app.db.admin();
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {name} ALLOW_CONNECTIONS false; \
                     SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
                ))
                .unwrap();
            let body = readyz_503(&app);
            admin
                .batch_execute(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
                .unwrap();
            assert_eq!(body["detail"], "database: unreachable", "{body}");
            let port = url
                .rsplit(':')
                .next()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_owned();
            (
                body,
                vec![
                    name.clone(),
                    "127.0.0.1".to_owned(),
                    "localhost".to_owned(),
                    port,
                    "FATAL".to_owned(),
                ],
            )
        }
    };
    // `type` is the service's own configured public address (`server.public_url`), not a database detail.
    let mut body = body;
    body.as_object_mut().unwrap().remove("type");
    let text = body.to_string();
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret} leaked: {text}");
    }
    let body: Value = wait_ready_status(&app, 200).json().unwrap();
    assert_eq!(body["status"], "ready");
}

/// Waits for `/readyz` to answer 503 and returns its problem body, after checking `Retry-After`.
fn readyz_503(app: &TestApp) -> Value {
    let res = wait_ready_status(app, 503);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    assert_problem(res, 503, "service-unavailable")
}

#[test]
fn readyz_is_503_while_migrations_are_pending() {
    let app = TestApp::spawn();
    // Forget the newest migration: the binary now knows one the database has not applied.
    app.db
        .connect()
        .batch_execute(
            "DELETE FROM __diesel_schema_migrations WHERE version = \
             (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .unwrap();
    let body = assert_problem(app.get("/readyz"), 503, "service-unavailable");
    assert!(body["detail"].as_str().unwrap().contains("migrate"), "{body}");
}

#[test]
fn request_id_is_echoed_or_made_and_security_headers_are_set() {
    let app = TestApp::spawn();
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "field-7.abc")
        .send()
        .unwrap();
    assert_eq!(res.headers().get("x-request-id").unwrap(), "field-7.abc");
    assert_eq!(res.headers().get("x-content-type-options").unwrap(), "nosniff");
    assert_eq!(res.headers().get("x-frame-options").unwrap(), "DENY");
    assert!(res.headers().get("content-security-policy").is_some());
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-store");
    // An id with characters unsafe for logs is replaced by one of the server's (a UUIDv7).
    let res = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "bad id\"<>")
        .send()
        .unwrap();
    let id = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[test]
fn metrics_count_requests_by_route_pattern_and_status() {
    let app = TestApp::spawn();
    app.get("/healthz");
    app.get("/healthz");
    app.get("/no/such/route");
    let text = app.get("/metrics").text().unwrap();
    assert!(
        text.contains(r#"qip_http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404"} 1"#), "{text}");
    assert!(
        text.contains("qip_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"qip_db_pool_connections{state="idle"}"#),
        "{text}"
    );
}

#[test]
fn openapi_document_is_3_1_and_lists_every_route_and_the_problem_schema() {
    let app = TestApp::spawn();
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        assert!(
            doc["paths"][path]["get"].is_object(),
            "{path} missing from the document"
        );
    }
    let problem = &doc["components"]["schemas"]["Problem"];
    for member in ["type", "title", "status", "detail", "instance"] {
        assert!(
            problem["properties"][member].is_object(),
            "Problem.{member} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every operation documented is actually served (no 404 from the fallback for any GET path).
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_some() && !path.contains('{') {
            assert_ne!(
                app.get(path).status().as_u16(),
                404,
                "{path} documented but not served"
            );
        }
    }
}

#[test]
fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn();
    let res = app.get("/docs");
    assert_eq!(res.status().as_u16(), 308);
    let res = app.get("/docs/");
    assert_eq!(res.status().as_u16(), 200);
    let html = res.text().unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    let res = app.get("/docs/swagger-initializer.js");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().unwrap().contains("/api/v1/openapi.json"));
    assert_eq!(app.get("/docs/swagger-ui-bundle.js").status().as_u16(), 200);
}

#[test]
fn made_up_methods_and_paths_never_become_metric_labels() {
    let app = TestApp::spawn();
    for n in 1..=5 {
        let method = reqwest::Method::from_bytes(format!("FOO{n}").as_bytes()).unwrap();
        for path in ["/healthz", &format!("/api/v1/made-up-path-{n}")] {
            let res = app.client.request(method.clone(), app.url(path)).send().unwrap();
            assert!(res.status().is_client_error(), "{method} {path}");
        }
    }
    let text = app.get("/metrics").text().unwrap();
    for n in 1..=5 {
        assert!(!text.contains(&format!("FOO{n}")), "FOO{n} is a label: {text}");
        assert!(
            !text.contains(&format!("made-up-path-{n}")),
            "a raw path is a label: {text}"
        );
    }
    assert!(
        text.contains(r#"qip_http_requests_total{method="OTHER",route="/healthz",status="405"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"qip_http_requests_total{method="OTHER",route="unmatched",status="404"} 5"#),
        "{text}"
    );
}

/// Signs in (and fails) as an unknown user with the given forwarding header; the status.
fn login_forwarded_for(app: &TestApp, forwarded_for: &str) -> u16 {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&serde_json::json!({"username": "ghost", "password": "not-the-password-1"}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Client addresses of the audited sign-in attempts, oldest first.
fn login_addresses(app: &TestApp) -> Vec<Option<String>> {
    app.audit_rows()
        .into_iter()
        .filter(|r| r.action == "auth.login")
        .map(|r| r.client_addr)
        .collect()
}

#[test]
fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_sign_in_limit() {
    let app = TestApp::spawn_with(
        |s| {
            s.auth.auth_rate_limit_per_minute = 3;
            s.server.trusted_proxies = TrustedProxies::parse(["127.0.0.1".to_owned()]).unwrap();
        },
        |_| {},
    );
    for _ in 0..3 {
        assert_eq!(login_forwarded_for(&app, "203.0.113.1"), 401);
    }
    assert_eq!(login_forwarded_for(&app, "203.0.113.1"), 429);
    // Prepending another address does not make a new client: the proxy-written right-most one counts.
    assert_eq!(login_forwarded_for(&app, "198.51.100.77, 203.0.113.1"), 429);
    // A different client behind the same proxy has its own budget.
    assert_eq!(login_forwarded_for(&app, "203.0.113.2"), 401);
    // The audit trail names the clients, not the proxy.
    let mut expected = vec![Some("203.0.113.1".to_owned()); 3];
    expected.push(Some("203.0.113.2".to_owned()));
    assert_eq!(login_addresses(&app), expected);
}

#[test]
fn without_trusted_proxies_a_forwarding_header_changes_nothing() {
    let app = TestApp::spawn_with(|s| s.auth.auth_rate_limit_per_minute = 3, |_| {});
    for _ in 0..3 {
        assert_eq!(login_forwarded_for(&app, "203.0.113.1"), 401);
    }
    assert_eq!(login_forwarded_for(&app, "203.0.113.2"), 429);
    assert_eq!(login_forwarded_for(&app, "203.0.113.3"), 429);
    assert_eq!(login_addresses(&app), vec![Some("127.0.0.1".to_owned()); 3]);
}

#[test]
fn trusted_proxies_are_read_from_files_and_lists_in_one_variable_and_garbage_is_refused() {
    let s = Settings::load_from(None, Vec::<(String, String)>::new()).unwrap();
    assert!(s.server.trusted_proxies.is_empty(), "trust no one by default");
    let s = Settings::load_from(
        None,
        vec![(
            "QIP__SERVER__TRUSTED_PROXIES".to_owned(),
            "10.0.0.1, 192.168.0.0/16,2001:db8::/32".to_owned(),
        )],
    )
    .unwrap();
    let trusted = &s.server.trusted_proxies;
    for ip in ["10.0.0.1", "192.168.4.5", "2001:db8::7", "::ffff:10.0.0.1"] {
        assert!(trusted.contains(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["10.0.0.2", "172.16.0.1", "2001:db9::1"] {
        assert!(!trusted.contains(ip.parse().unwrap()), "{ip}");
    }
    let err = Settings::load_from(
        None,
        vec![(
            "QIP__SERVER__TRUSTED_PROXIES".to_owned(),
            "10.0.0.1,proxy.local".to_owned(),
        )],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("proxy.local"), "{err}");
}
