//! Sign-in, tokens, lockout, rate limiting, passwords, users and hats — through the HTTP API, with the
//! database and the audit trail inspected where the effect matters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use qip_pool::db::schema::{login_throttles, users};
use qip_pool::features::identity::tokens::AccessClaims;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    ADMIN_PASSWORD, Session, TEST_JWT_SECRET, TestApp, USER_PASSWORD, assert_problem, test_settings,
};

fn claims(sub: &str) -> AccessClaims {
    let now = Utc::now().timestamp();
    AccessClaims {
        iss: "qip-pool".into(),
        aud: "qip-pool-api".into(),
        sub: sub.into(),
        iat: now,
        nbf: now,
        exp: now + 600,
        jti: "j".into(),
    }
}

fn sign(header: Header, claims: &AccessClaims, secret: &str) -> String {
    encode(
        &header,
        claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn header(alg: Algorithm, typ: &str, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.typ = Some(typ.into());
    h.kid = Some(kid.into());
    h
}

#[test]
fn a_well_formed_token_passes_and_every_forgery_is_a_401_problem() {
    let (app, admin) = TestApp::with_admin();
    let ok = sign(
        header(Algorithm::HS256, "at+jwt", "k1"),
        &claims(&admin.user_id),
        TEST_JWT_SECRET,
    );
    assert_eq!(app.get_as("/api/v1/me", &ok).status().as_u16(), 200);

    let mut forged: Vec<(&str, String)> = Vec::new();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(&admin.user_id)).unwrap());
    forged.push(("alg none", format!("{none_header}.{payload}.")));
    forged.push((
        "HS512",
        sign(
            header(Algorithm::HS512, "at+jwt", "k1"),
            &claims(&admin.user_id),
            TEST_JWT_SECRET,
        ),
    ));
    forged.push((
        "wrong key",
        sign(
            header(Algorithm::HS256, "at+jwt", "k1"),
            &claims(&admin.user_id),
            "another-secret-0123456789abcdef-xyz",
        ),
    ));
    let mut c = claims(&admin.user_id);
    c.iss = "someone-else".into();
    forged.push((
        "wrong iss",
        sign(header(Algorithm::HS256, "at+jwt", "k1"), &c, TEST_JWT_SECRET),
    ));
    let mut c = claims(&admin.user_id);
    c.aud = "another-api".into();
    forged.push((
        "wrong aud",
        sign(header(Algorithm::HS256, "at+jwt", "k1"), &c, TEST_JWT_SECRET),
    ));
    let mut c = claims(&admin.user_id);
    c.exp = Utc::now().timestamp() - 3600;
    forged.push((
        "expired",
        sign(header(Algorithm::HS256, "at+jwt", "k1"), &c, TEST_JWT_SECRET),
    ));
    let mut c = claims(&admin.user_id);
    c.nbf = Utc::now().timestamp() + 3600;
    c.exp = c.nbf + 600;
    forged.push((
        "not yet valid",
        sign(header(Algorithm::HS256, "at+jwt", "k1"), &c, TEST_JWT_SECRET),
    ));
    forged.push((
        "unknown kid",
        sign(
            header(Algorithm::HS256, "at+jwt", "k9"),
            &claims(&admin.user_id),
            TEST_JWT_SECRET,
        ),
    ));
    forged.push((
        "wrong typ",
        sign(
            header(Algorithm::HS256, "JWT", "k1"),
            &claims(&admin.user_id),
            TEST_JWT_SECRET,
        ),
    ));
    let mut parts: Vec<String> = ok.split('.').map(str::to_owned).collect();
    let mut c = claims(&admin.user_id);
    c.sub = "someone-else".into();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    forged.push(("tampered payload", parts.join(".")));
    forged.push(("refresh token as access token", admin.refresh.clone()));
    forged.push(("garbage", "not-a-token".into()));

    for (what, token) in forged {
        let body = assert_problem(app.get_as("/api/v1/me", &token), 401, "unauthorized");
        assert!(
            body["detail"].as_str().unwrap().contains("access token"),
            "{what}: {body}"
        );
    }
    let res = app.get("/api/v1/me");
    assert_eq!(res.headers().get("www-authenticate").unwrap(), "Bearer");
    assert_problem(res, 401, "unauthorized");
}

#[test]
fn rotated_refresh_token_reused_revokes_the_whole_family() {
    let (app, admin) = TestApp::with_admin();
    let first = app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": admin.refresh}),
    );
    assert_eq!(first.status().as_u16(), 200);
    let first: Value = first.json().unwrap();
    let newest = first["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(newest, admin.refresh);
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    assert_eq!(
        app.get_as("/api/v1/me", first["access_token"].as_str().unwrap())
            .status()
            .as_u16(),
        200
    );

    // The spent token comes back: someone copied it.
    let body = assert_problem(
        app.post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": admin.refresh}),
        ),
        401,
        "unauthorized",
    );
    assert!(
        body["detail"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    // …and the newest token of the family is dead too.
    assert_problem(
        app.post_json("/api/v1/auth/refresh", None, &json!({"refresh_token": newest})),
        401,
        "unauthorized",
    );
    let reuse = app
        .audit_rows()
        .into_iter()
        .find(|e| e.action == "auth.refresh_reuse")
        .expect("security event");
    assert_eq!(reuse.outcome, "denied");
    assert_eq!(reuse.actor_id.as_deref(), Some(admin.user_id.as_str()));

    // A separate sign-in is a separate family and keeps working.
    let other = app.login("admin", ADMIN_PASSWORD);
    assert_eq!(
        app.post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": other.refresh})
        )
        .status()
        .as_u16(),
        200
    );
}

#[test]
fn logout_ends_the_family() {
    let (app, admin) = TestApp::with_admin();
    let res = app.post_json(
        "/api/v1/auth/logout",
        None,
        &json!({"refresh_token": admin.refresh}),
    );
    assert_eq!(res.status().as_u16(), 204);
    assert_problem(
        app.post_json(
            "/api/v1/auth/refresh",
            None,
            &json!({"refresh_token": admin.refresh}),
        ),
        401,
        "unauthorized",
    );
    assert!(app.audit_rows().iter().any(|e| e.action == "auth.logout"));
}

fn login_status(app: &TestApp, username: &str, password: &str) -> (u16, Value) {
    let res = app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": username, "password": password}),
    );
    let status = res.status().as_u16();
    (status, res.json().unwrap())
}

fn without_request_ids(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("request_id");
    v
}

#[test]
fn five_failures_make_this_address_wait_and_the_answer_reveals_nothing() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "UNIT", "military_unit");
    let cimic = app.user_with_hats(&admin, "cimic", &org, &["submitter"]);

    // An unknown name is throttled exactly like a real one, so a wait reveals nothing.
    let (_, unknown) = login_status(&app, "nobody-here", "whatever-password-123");
    for _ in 0..4 {
        assert_eq!(login_status(&app, "nobody-here", "whatever-password-123").0, 401);
    }
    let (status, unknown_wait) = login_status(&app, "nobody-here", "whatever-password-123");
    assert_eq!(status, 429);
    for _ in 0..5 {
        let (status, body) = login_status(&app, "cimic", "wrong-password-123456");
        assert_eq!(status, 401);
        assert_eq!(without_request_ids(body), without_request_ids(unknown.clone()));
    }
    // Waiting now: even the right password is refused from this address, as for an unknown name.
    let res = app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": "cimic", "password": USER_PASSWORD}),
    );
    let retry: i64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = assert_problem(res, 429, "too-many-requests");
    assert_eq!(without_request_ids(body), without_request_ids(unknown_wait));

    let (failures, blocked_until): (i32, Option<chrono::NaiveDateTime>) = login_throttles::table
        .filter(login_throttles::account.eq("cimic"))
        .filter(login_throttles::client_addr.eq("127.0.0.1"))
        .select((login_throttles::failures, login_throttles::blocked_until))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(failures, 5);
    let seconds = (blocked_until.expect("waiting") - Utc::now().naive_utc()).num_seconds();
    assert!((50..=60).contains(&seconds), "waits {seconds} s");

    let events: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action.starts_with("auth.login") && e.actor_username.as_deref() == Some("cimic"))
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with("wrong password")))
            .count(),
        5
    );
    let waits: Vec<_> = events
        .iter()
        .filter(|e| e.action == "auth.login_throttled")
        .collect();
    assert_eq!(waits.len(), 1, "one event per wait, none per refused attempt");
    assert_eq!(waits[0].outcome, "denied");
    assert!(waits[0].reason.as_deref().unwrap().contains("from 127.0.0.1"));
    assert!(
        events
            .iter()
            .all(|e| e.client_addr.as_deref() == Some("127.0.0.1"))
    );
    assert!(events.iter().any(|e| e.outcome == "success"));

    // An administrator re-enabling the account ends its waits.
    let res = app.post_json(
        &format!("/api/v1/users/{}/enable", cimic.user_id),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.json::<Value>().unwrap()["status"], "active");
    assert_eq!(login_status(&app, "cimic", USER_PASSWORD).0, 200);
}

#[test]
fn auth_routes_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(|s| s.auth.auth_rate_limit_per_minute = 3, |_| {});
    for _ in 0..3 {
        assert_eq!(login_status(&app, "x-user", "some-password-1234").0, 401);
    }
    let res = app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": "x-user", "password": "p"}),
    );
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_problem(res, 429, "too-many-requests");
    // Other routes are not limited.
    assert_eq!(app.get("/healthz").status().as_u16(), 200);
}

#[test]
fn stored_hash_is_argon2id_at_the_production_cost() {
    let app = TestApp::spawn_with(
        |s| {
            let defaults = test_settings("sqlite://unused");
            let production =
                qip_pool::config::Settings::load_from(None, Vec::<(String, String)>::new()).unwrap();
            s.auth.argon2_memory_kib = production.auth.argon2_memory_kib;
            s.auth.argon2_iterations = production.auth.argon2_iterations;
            s.auth.argon2_parallelism = production.auth.argon2_parallelism;
            assert_ne!(defaults.auth.argon2_memory_kib, s.auth.argon2_memory_kib);
        },
        |_| {},
    );
    let admin = app.bootstrap_admin();
    let org = app.create_org(&admin, "OCHA", "coordination");
    app.user_with_hats(&admin, "amina", &org, &["consultee"]);
    let hash: String = users::table
        .filter(users::username.eq("amina"))
        .select(users::password_hash)
        .first(&mut *app.conn())
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
}

#[test]
fn revoking_a_hat_denies_the_next_request_with_the_same_token() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "OIOS", "mission_section");
    let auditor = app.user_with_hats(&admin, "auditor1", &org, &[]);
    let grant = app.grant(&admin, &auditor.user_id, &json!({"hat": "auditor"}));
    assert_eq!(
        app.get_as("/api/v1/audit/verify", &auditor.access)
            .status()
            .as_u16(),
        200
    );
    let res = app.send(
        Method::DELETE,
        &format!("/api/v1/users/{}/hats/{grant}", auditor.user_id),
        Some(&admin.access),
        None,
    );
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.json::<Value>().unwrap()["revoked_at"].is_string());
    assert_problem(
        app.get_as("/api/v1/audit/verify", &auditor.access),
        403,
        "forbidden",
    );
    // Revoking again is a conflict, not a silent success.
    let res = app.send(
        Method::DELETE,
        &format!("/api/v1/users/{}/hats/{grant}", auditor.user_id),
        Some(&admin.access),
        None,
    );
    assert_problem(res, 409, "conflict");
}

#[test]
fn hats_outside_their_validity_period_give_no_power() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "OFFICE", "mission_office");
    let oic = app.user_with_hats(&admin, "oic", &org, &[]);
    let later = Utc::now() + Duration::days(2);
    app.grant(&admin, &oic.user_id, &json!({"hat": "auditor", "valid_from": later, "valid_until": later + Duration::days(5), "acting": true}));
    assert_problem(app.get_as("/api/v1/audit/verify", &oic.access), 403, "forbidden");
    let me: Value = app.get_as("/api/v1/me", &oic.access).json().unwrap();
    assert_eq!(me["hats"], json!([]));

    app.grant(&admin, &oic.user_id, &json!({"hat": "auditor", "valid_from": Utc::now() - Duration::days(1), "valid_until": Utc::now() + Duration::days(1), "acting": true}));
    assert_eq!(
        app.get_as("/api/v1/audit/verify", &oic.access).status().as_u16(),
        200
    );
    let me: Value = app.get_as("/api/v1/me", &oic.access).json().unwrap();
    assert_eq!(me["hats"].as_array().unwrap().len(), 1);
    assert_eq!(me["hats"][0]["acting"], true);
    assert_eq!(me["organization"]["code"], "OFFICE");
    // The audit marks the verification as taken by an acting officer.
    let verify = app
        .audit_rows()
        .into_iter()
        .rfind(|e| e.action == "audit.verify")
        .unwrap();
    assert!(verify.acting);
    assert_eq!(verify.hat.as_deref(), Some("auditor"));
}

#[test]
fn a_read_needs_no_acting_hat_and_a_wrong_one_is_refused() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "HQ", "mission_office");
    let both = app.user_with_hats(&admin, "both", &org, &["admin", "auditor"]);
    // Reads are served when any held hat permits them; only writes ask which hat.
    let res = app.get_as("/api/v1/audit/verify", &both.access);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["intact"], true);
    let ok = app
        .client
        .get(app.url("/api/v1/audit/verify"))
        .bearer_auth(&both.access)
        .header("Acting-Hat", "auditor")
        .send()
        .unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let res = app
        .client
        .get(app.url("/api/v1/audit/verify"))
        .bearer_auth(&both.access)
        .header("Acting-Hat", "hc")
        .send()
        .unwrap();
    let body = assert_problem(res, 403, "forbidden");
    assert!(body["detail"].as_str().unwrap().contains("hc"));
    let res = app
        .client
        .get(app.url("/api/v1/users"))
        .bearer_auth(&both.access)
        .header("Acting-Hat", "emperor")
        .send()
        .unwrap();
    assert_problem(res, 400, "bad-request");
}

#[test]
fn an_admin_cannot_grant_or_revoke_their_own_hats_and_the_attempt_is_audited() {
    let (app, admin) = TestApp::with_admin();
    let res = app.post_json(
        &format!("/api/v1/users/{}/hats", admin.user_id),
        Some(&admin.access),
        &json!({"hat": "dsrsg"}),
    );
    assert_problem(res, 403, "forbidden");
    let hats: Value = app
        .get_as(&format!("/api/v1/users/{}/hats", admin.user_id), &admin.access)
        .json()
        .unwrap();
    assert_eq!(hats.as_array().unwrap().len(), 1, "only the bootstrap admin hat");
    let denied = app
        .audit_rows()
        .into_iter()
        .rfind(|e| e.action == "hat.grant")
        .unwrap();
    assert_eq!(denied.outcome, "denied");
    assert_eq!(denied.actor_id.as_deref(), Some(admin.user_id.as_str()));
    assert_eq!(denied.hat.as_deref(), Some("admin"));
}

#[test]
fn admin_changes_and_denied_attempts_are_audited_with_actor_hat_outcome_and_request_id() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "UNICEF", "un_agency");
    let res = app.client.post(app.url("/api/v1/users")).bearer_auth(&admin.access).header("X-Request-Id", "req-create-user-1")
        .json(&json!({"username": "lena", "display_name": "Lena", "email": "lena@unicef.example", "organization_id": org}))
        .send().unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let lena: Value = res.json().unwrap();
    let lena_id = lena["id"].as_str().unwrap().to_owned();
    assert_eq!(lena["status"], "active");
    assert!(lena.get("password_hash").is_none());
    assert!(
        lena["setup_token"].as_str().is_some_and(|t| t.len() >= 43),
        "{lena}"
    );
    app.grant(
        &admin,
        &lena_id,
        &json!({"hat": "consultee", "scope_organization_id": org}),
    );
    let res = app.post_json(
        &format!("/api/v1/users/{lena_id}/disable"),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.json::<Value>().unwrap()["status"], "disabled");
    let res = app.post_json(
        &format!("/api/v1/users/{lena_id}/reset-password"),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let reset: Value = res.json().unwrap();
    let reset_token = reset["setup_token"].as_str().unwrap().to_owned();

    // A consultee tries an admin action: denied, and recorded.
    let other = app.user_with_hats(&admin, "omar", &org, &["consultee"]);
    let res = app
        .client
        .post(app.url("/api/v1/organizations"))
        .bearer_auth(&other.access)
        .header("X-Request-Id", "req-denied-1")
        .json(&json!({"code": "X", "name": "x", "kind": "ngo"}))
        .send()
        .unwrap();
    assert_problem(res, 403, "forbidden");

    let rows = app.audit_rows();
    let find = |action: &str| {
        rows.iter()
            .rev()
            .find(|e| e.action == action)
            .unwrap_or_else(|| panic!("{action} missing"))
    };
    let created = rows
        .iter()
        .find(|e| e.action == "user.create" && e.entity_id.as_deref() == Some(lena_id.as_str()))
        .unwrap();
    assert_eq!(created.request_id.as_deref(), Some("req-create-user-1"));
    assert_eq!(created.hat.as_deref(), Some("admin"));
    assert_eq!(created.outcome, "success");
    assert!(
        !created.after_state.as_deref().unwrap().contains("argon2"),
        "no hash in the audit"
    );
    for action in [
        "organization.create",
        "hat.grant",
        "user.disable",
        "user.reset_password",
    ] {
        let e = find(action);
        assert_eq!(e.actor_id.as_deref(), Some(admin.user_id.as_str()), "{action}");
        assert_eq!(e.hat.as_deref(), Some("admin"), "{action}");
    }
    let denied = find("access.denied");
    assert_eq!(denied.outcome, "denied");
    assert_eq!(denied.request_id.as_deref(), Some("req-denied-1"));
    assert_eq!(denied.actor_id.as_deref(), Some(other.user_id.as_str()));
    assert_eq!(denied.entity_id.as_deref(), Some("POST /api/v1/organizations"));

    // Disabled: the setup token cannot be used and signing in is refused.
    assert_problem(
        app.setup_password(&reset_token, "a-new-long-passphrase-2026"),
        401,
        "unauthorized",
    );
    let lena_login = login_status(&app, "lena", "a-new-long-passphrase-2026");
    assert_eq!(lena_login.0, 401);
    let report = qip_pool::features::audit::verify_chain(&mut app.conn()).unwrap();
    assert!(report.intact, "{report:?}");
}

#[test]
fn bad_user_input_is_refused_with_every_fault_listed_and_server_fields_rejected() {
    let (app, admin) = TestApp::with_admin();
    let res = app.post_json(
        "/api/v1/users",
        Some(&admin.access),
        &json!({"username": "Bad Name!", "display_name": "", "email": "nope", "organization_id": "missing"}),
    );
    let body = assert_problem(res, 422, "validation");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for f in ["username", "display_name", "email", "organization_id"] {
        assert!(fields.contains(&f), "{f} not listed in {body}");
    }
    // Server-owned fields cannot be sent.
    let org = app.create_org(&admin, "NRC", "ngo");
    let res = app.post_json(
        "/api/v1/users",
        Some(&admin.access),
        &json!({"username": "sam", "display_name": "Sam", "email": "s@nrc.example", "organization_id": org, "status": "active"}),
    );
    let body = assert_problem(res, 422, "validation");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("status"),
        "{body}"
    );
    // Duplicates are conflicts.
    let res = app.post_json(
        "/api/v1/organizations",
        Some(&admin.access),
        &json!({"code": "NRC", "name": "again", "kind": "ngo"}),
    );
    assert_problem(res, 409, "conflict");
    let res = app.post_json(
        "/api/v1/organizations",
        Some(&admin.access),
        &json!({"code": "NRC2", "name": "x", "kind": "army"}),
    );
    assert_problem(res, 422, "validation");
}

#[test]
fn lists_page_through_every_row_once() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "PAGES", "ngo");
    for i in 0..7 {
        app.user_with_hats(&admin, &format!("pager{i}"), &org, &[]);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/users?organization_id={org}&limit=3&cursor={c}"),
            None => format!("/api/v1/users?organization_id={org}&limit=3"),
        };
        let page: Value = app.get_as(&path, &admin.access).json().unwrap();
        for item in page["items"].as_array().unwrap() {
            seen.push(item["username"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("pager{i}")).collect();
    assert_eq!(seen, expected);
    assert_problem(
        app.get_as("/api/v1/users?limit=500", &admin.access),
        422,
        "validation",
    );
    assert_problem(
        app.get_as("/api/v1/users?cursor=%%%", &admin.access),
        422,
        "validation",
    );
}

#[test]
fn me_shows_the_caller_and_their_hats() {
    let (app, admin) = TestApp::with_admin();
    let me: Value = app.get_as("/api/v1/me", &admin.access).json().unwrap();
    assert_eq!(me["user"]["username"], "admin");
    assert_eq!(me["organization"]["kind"], "mission_office");
    assert_eq!(me["hats"][0]["hat"], "admin");
    assert_eq!(me["hats"][0]["active"], true);
    let session: Option<Session> = Some(admin.clone());
    assert_eq!(
        session.map(|s| s.organization_id),
        me["organization"]["id"].as_str().map(str::to_owned)
    );
}

#[test]
fn racing_creations_of_one_username_make_one_user_and_clean_conflicts() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "RACE", "ngo");
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (app, admin, org) = (&app, &admin, &org);
                s.spawn(move || {
                    app.post_json(
                        "/api/v1/users",
                        Some(&admin.access),
                        &json!({"username": "same.name", "display_name": "Same", "email": "same@ngo.example",
                                "organization_id": org}),
                    )
                    .status()
                    .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "never a 500: {statuses:?}"
    );
    let stored: i64 = users::table
        .filter(users::username.eq("same.name"))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(stored, 1);
    let created = app
        .audit_rows()
        .iter()
        .filter(|e| e.action == "user.create" && e.after_state.as_deref().unwrap_or("").contains("same.name"))
        .count();
    assert_eq!(created, 1, "one user, one audit event");
}
