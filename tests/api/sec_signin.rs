//! Issue 11 item 6, sign-in cannot be turned against users: wrong passwords from one address make only that
//! address wait (growing waits), a much higher account-wide ceiling spares addresses the account used
//! before, guessable passwords are refused with zxcvbn's reasons, a sign-in's refresh tokens end after an
//! absolute lifetime, and tokens issued in the future are refused.
//!
//! Requests over HTTP all come from 127.0.0.1 (the trusted-proxy setting is built separately), so other
//! client addresses are played by calling the sign-in use case with their `RequestMeta`, as the handler does.

use chrono::{Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use qip_pool::db::schema::{login_throttles, refresh_tokens, users};
use qip_pool::error::ErrorKind;
use qip_pool::features::identity::AuthRuntime;
use qip_pool::features::identity::dto::LoginRequest;
use qip_pool::features::identity::service;
use qip_pool::features::identity::tokens::AccessClaims;
use qip_pool::http::middleware::RequestMeta;
use serde_json::{Value, json};

use crate::support::{Session, TEST_JWT_SECRET, TestApp, USER_PASSWORD, assert_problem, test_settings};

fn runtime(app: &TestApp) -> AuthRuntime {
    AuthRuntime::new(&test_settings(&app.db.url()).auth).unwrap()
}

/// One sign-in from `addr`, through the use case the handler calls; the error kind when refused.
fn login_from(
    app: &TestApp,
    auth: &AuthRuntime,
    addr: &str,
    username: &str,
    password: &str,
) -> Result<(), ErrorKind> {
    let meta = RequestMeta {
        request_id: uuid::Uuid::now_v7().to_string(),
        client_addr: Some(addr.to_owned()),
    };
    let input = LoginRequest {
        username: username.to_owned(),
        password: password.to_owned(),
    };
    service::login(app.pool(), auth, &input, &meta)
        .map(|_| ())
        .map_err(|e| e.kind())
}

fn http_login(app: &TestApp, username: &str, password: &str) -> reqwest::blocking::Response {
    app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": username, "password": password}),
    )
}

fn retry_after(res: &reqwest::blocking::Response) -> i64 {
    res.headers()["retry-after"].to_str().unwrap().parse().unwrap()
}

/// A user "finance" in a fresh organisation, signed in once over HTTP (so 127.0.0.1 is a known address).
fn finance_user() -> (TestApp, Session, Session) {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "MISSION-FIN", "mission_office");
    let finance = app.user_with_hats(&admin, "finance", &org, &[]);
    (app, admin, finance)
}

fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

#[test]
fn an_attacker_address_cannot_lock_the_user_out_from_another_address() {
    let (app, _admin, finance) = finance_user();
    let auth = runtime(&app);
    let attacker = "203.0.113.7";
    let mut answers = Vec::new();
    for _ in 0..20 {
        answers.push(login_from(
            &app,
            &auth,
            attacker,
            "finance",
            "guess-guess-guess-1",
        ));
    }
    assert!(
        answers[..5].iter().all(|a| *a == Err(ErrorKind::Unauthorized)),
        "{answers:?}"
    );
    assert!(
        answers[5..].iter().all(|a| *a == Err(ErrorKind::TooManyRequests)),
        "{answers:?}"
    );
    // Inside the wait even the right password is refused from the attacker's address…
    assert_eq!(
        login_from(&app, &auth, attacker, "finance", USER_PASSWORD),
        Err(ErrorKind::TooManyRequests)
    );
    // …while the user signs in from their own.
    let res = http_login(&app, "finance", USER_PASSWORD);
    assert_eq!(res.status().as_u16(), 200);
    let tokens: Value = res.json().unwrap();
    assert_eq!(
        app.get_as("/api/v1/me", tokens["access_token"].as_str().unwrap())
            .json::<Value>()
            .unwrap()["user"]["status"],
        "active"
    );
    let (status, locked_until): (String, Option<NaiveDateTime>) = users::table
        .filter(users::id.eq(&finance.user_id))
        .select((users::status, users::locked_until))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!((status.as_str(), locked_until), ("active", None));

    let rows: Vec<(String, i32, Option<NaiveDateTime>)> = login_throttles::table
        .filter(login_throttles::account.eq("finance"))
        .select((
            login_throttles::client_addr,
            login_throttles::failures,
            login_throttles::blocked_until,
        ))
        .order(login_throttles::client_addr.asc())
        .load(&mut *app.conn())
        .unwrap();
    let row = |addr: &str| rows.iter().find(|r| r.0 == addr).cloned().unwrap();
    assert_eq!(row(attacker).1, 5, "refused attempts are not counted again");
    assert!(row(attacker).2.is_some_and(|until| until > now()));
    assert_eq!(row("127.0.0.1").2, None);
    assert_eq!(row("*").1, 5, "the account-wide count saw the five failures");
    assert_eq!(row("*").2, None);

    let audit = app.audit_rows();
    let failures = audit
        .iter()
        .filter(|e| e.action == "auth.login" && e.outcome == "failure")
        .filter(|e| e.client_addr.as_deref() == Some(attacker))
        .count();
    assert_eq!(
        failures, 5,
        "the fifteen refused attempts are not audited one by one"
    );
    let waits: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "auth.login_throttled")
        .collect();
    assert_eq!(waits.len(), 1);
    assert_eq!(waits[0].client_addr.as_deref(), Some(attacker));
    assert_eq!(waits[0].actor_id.as_deref(), Some(finance.user_id.as_str()));
    assert_eq!(waits[0].outcome, "denied");
    assert!(
        waits[0].reason.as_deref().unwrap().contains("waits 60 s"),
        "{:?}",
        waits[0].reason
    );
}

#[test]
fn waits_of_one_address_grow_with_each_further_failure() {
    let (app, _admin, _finance) = finance_user();
    for _ in 0..5 {
        assert_eq!(
            http_login(&app, "finance", "wrong-wrong-wrong-1")
                .status()
                .as_u16(),
            401
        );
    }
    let mut waits = Vec::new();
    for round in 0..3 {
        let res = http_login(&app, "finance", "wrong-wrong-wrong-1");
        waits.push(retry_after(&res));
        let body = assert_problem(res, 429, "too-many-requests");
        assert!(body["detail"].as_str().unwrap().contains("Retry-After"), "{body}");
        // The wait is over (as if time had passed): the next failure counts and waits twice as long.
        diesel::update(
            login_throttles::table
                .filter(login_throttles::account.eq("finance"))
                .filter(login_throttles::client_addr.eq("127.0.0.1")),
        )
        .set(login_throttles::blocked_until.eq(now() - Duration::seconds(1)))
        .execute(&mut *app.conn())
        .unwrap();
        if round < 2 {
            assert_eq!(
                http_login(&app, "finance", "wrong-wrong-wrong-1")
                    .status()
                    .as_u16(),
                401
            );
        }
    }
    assert!((55..=60).contains(&waits[0]), "{waits:?}");
    assert!((115..=120).contains(&waits[1]), "{waits:?}");
    assert!((235..=240).contains(&waits[2]), "{waits:?}");

    let reasons: Vec<String> = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "auth.login_throttled")
        .filter_map(|e| e.reason)
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    for (reason, secs) in reasons.iter().zip([60, 120, 240]) {
        assert!(reason.contains(&format!("waits {secs} s")), "{reason}");
    }
    // The wait was over: the right password works and forgets the failures.
    assert_eq!(http_login(&app, "finance", USER_PASSWORD).status().as_u16(), 200);
    let failures: i32 = login_throttles::table
        .filter(login_throttles::account.eq("finance"))
        .filter(login_throttles::client_addr.eq("127.0.0.1"))
        .select(login_throttles::failures)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(failures, 0);
}

#[test]
fn the_account_ceiling_applies_across_many_addresses_but_spares_known_ones() {
    let (app, admin, finance) = finance_user();
    let auth = runtime(&app);
    // 25 addresses, 4 guesses each: no address reaches its own limit, together they reach 100.
    for host in 0..25 {
        let addr = format!("198.51.100.{host}");
        for _ in 0..4 {
            assert_eq!(
                login_from(&app, &auth, &addr, "finance", "distributed-guess-1"),
                Err(ErrorKind::Unauthorized)
            );
        }
    }
    // A new address now waits, whatever it sends…
    assert_eq!(
        login_from(&app, &auth, "192.0.2.55", "finance", USER_PASSWORD),
        Err(ErrorKind::TooManyRequests)
    );
    assert_eq!(
        login_from(&app, &auth, "198.51.100.3", "finance", "distributed-guess-1"),
        Err(ErrorKind::TooManyRequests)
    );
    // …but the address the user signed in from before is spared.
    assert_eq!(http_login(&app, "finance", USER_PASSWORD).status().as_u16(), 200);

    let (failures, blocked_until): (i32, Option<NaiveDateTime>) = login_throttles::table
        .filter(login_throttles::account.eq("finance"))
        .filter(login_throttles::client_addr.eq("*"))
        .select((login_throttles::failures, login_throttles::blocked_until))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(failures, 0, "the count starts afresh after a ceiling");
    let minutes = (blocked_until.unwrap() - now()).num_minutes();
    assert!((14..=15).contains(&minutes), "{minutes}");
    // Administrators see the account as locked until then.
    let user: Value = app
        .get_as(&format!("/api/v1/users/{}", finance.user_id), &admin.access)
        .json()
        .unwrap();
    assert_eq!(user["status"], "locked", "{user}");

    let waits: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "auth.login_throttled")
        .collect();
    assert_eq!(waits.len(), 1, "one event for the ceiling");
    assert_eq!(waits[0].outcome, "denied");
    assert_eq!(waits[0].actor_id.as_deref(), Some(finance.user_id.as_str()));
    let reason = waits[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("from all addresses") && reason.contains("wait 900 s"),
        "{reason}"
    );
}

#[test]
fn guessable_passwords_are_refused_naming_the_field_and_why() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "NRC", "ngo");
    let twelve_spaces = " ".repeat(12);
    // Administrators never choose passwords: the user chooses one with their setup token, and that choice is
    // held to the strength rule, judged against the names the user is known by.
    let created = app.post_json(
        "/api/v1/users",
        Some(&admin.access),
        &json!({"username": "amina", "display_name": "Amina Diallo", "email": "amina@nrc.example",
                "organization_id": org}),
    );
    assert_eq!(created.status().as_u16(), 201);
    let token = created.json::<Value>().unwrap()["setup_token"]
        .as_str()
        .unwrap()
        .to_owned();
    for weak in [
        "aaaaaaaaaaaa",
        twelve_spaces.as_str(),
        "123456789012",
        "Diallo-Diallo-2026",
    ] {
        let body = assert_problem(app.setup_password(&token, weak), 422, "validation");
        let errors = body["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == "password"
                && e["message"].as_str().unwrap().starts_with("is too easy to guess")),
            "{weak:?}: {body}"
        );
    }
    let body = assert_problem(app.setup_password(&token, "aaaaaaaaaaaa"), 422, "validation");
    assert!(
        body.to_string().contains("Repeats"),
        "zxcvbn's warning is passed on: {body}"
    );
    // Refused choices spend nothing: the token still sets a strong password once.
    assert_eq!(
        app.setup_password(&token, "Kestrel-orchard-Lantern-91")
            .status()
            .as_u16(),
        204
    );
    app.login("amina", "Kestrel-orchard-Lantern-91");
    // The first administrator, made from the command line, is held to the same rule.
    let refused = service::bootstrap_admin(&mut app.conn(), &runtime(&app), "chief", "123456789012");
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("too easy to guess")),
        "{refused:?}"
    );
}

/// The refresh tokens of the family `token` belongs to.
fn family_of(app: &TestApp, token_hash: &str) -> String {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(refresh_tokens::family_id)
        .first(&mut *app.conn())
        .unwrap()
}

fn refresh(app: &TestApp, token: &str) -> reqwest::blocking::Response {
    app.post_json("/api/v1/auth/refresh", None, &json!({"refresh_token": token}))
}

#[test]
fn a_sign_in_older_than_the_family_lifetime_cannot_be_refreshed_and_rotation_does_not_extend_it() {
    let (app, _admin, finance) = finance_user();
    let hash = qip_pool::features::identity::tokens::refresh_token_hash;
    let family = family_of(&app, &hash(&finance.refresh));
    // The sign-in was 29 days ago: one more rotation is allowed, but the new token ends with the family.
    diesel::update(refresh_tokens::table.filter(refresh_tokens::family_id.eq(&family)))
        .set(refresh_tokens::issued_at.eq(now() - Duration::days(29)))
        .execute(&mut *app.conn())
        .unwrap();
    let res = refresh(&app, &finance.refresh);
    assert_eq!(res.status().as_u16(), 200);
    let rotated = res.json::<Value>().unwrap()["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let expires_at: NaiveDateTime = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash(&rotated)))
        .select(refresh_tokens::expires_at)
        .first(&mut *app.conn())
        .unwrap();
    let hours = (expires_at - now()).num_hours();
    assert!(
        (23..=24).contains(&hours),
        "the rotated token lives {hours} h, not 14 days"
    );

    // A day later the family is 30 days old: the fresh-looking rotated token is refused.
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(&family))
            .filter(refresh_tokens::token_hash.ne(hash(&rotated))),
    )
    .set(refresh_tokens::issued_at.eq(now() - Duration::days(30) - Duration::minutes(1)))
    .execute(&mut *app.conn())
    .unwrap();
    diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(hash(&rotated))))
        .set(refresh_tokens::expires_at.eq(now() + Duration::days(10)))
        .execute(&mut *app.conn())
        .unwrap();
    assert_problem(refresh(&app, &rotated), 401, "unauthorized");
    let live: i64 = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(&family))
        .filter(refresh_tokens::revoked_at.is_null())
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(live, 0, "the family is revoked");
    let denied: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "auth.refresh" && e.outcome == "denied")
        .collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].entity_id.as_deref(), Some(family.as_str()));
    assert!(
        denied[0].reason.as_deref().unwrap().contains("30-day limit"),
        "{:?}",
        denied[0].reason
    );
    // Signing in again starts a new family.
    let again = app.login("finance", USER_PASSWORD);
    assert_eq!(refresh(&app, &again.refresh).status().as_u16(), 200);
}

fn access_token(sub: &str, iat_offset_secs: i64) -> String {
    let now = Utc::now().timestamp();
    let claims = AccessClaims {
        iss: "qip-pool".into(),
        aud: "qip-pool-api".into(),
        sub: sub.into(),
        iat: now + iat_offset_secs,
        nbf: now,
        exp: now + iat_offset_secs + 600,
        jti: uuid::Uuid::now_v7().to_string(),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k1".into());
    encode(
        &header,
        &claims,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[test]
fn tokens_issued_in_the_future_are_refused() {
    let (app, _admin, finance) = finance_user();
    // A few seconds of clock difference between instances is tolerated…
    let skewed = access_token(&finance.user_id, 30);
    assert_eq!(app.get_as("/api/v1/me", &skewed).status().as_u16(), 200);
    // …an hour is not: such a token was not issued when it claims.
    let future = access_token(&finance.user_id, 3600);
    assert_problem(app.get_as("/api/v1/me", &future), 401, "unauthorized");

    let hash = qip_pool::features::identity::tokens::refresh_token_hash(&finance.refresh);
    diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(&hash)))
        .set(refresh_tokens::issued_at.eq(now() + Duration::hours(1)))
        .execute(&mut *app.conn())
        .unwrap();
    assert_problem(refresh(&app, &finance.refresh), 401, "unauthorized");
    let denied = app
        .audit_rows()
        .into_iter()
        .find(|e| e.action == "auth.refresh" && e.outcome == "denied")
        .expect("audited");
    assert!(
        denied.reason.as_deref().unwrap().contains("issued in the future"),
        "{:?}",
        denied.reason
    );
}

/// A sign-in flood cannot take the server's memory and cores: password hashes run behind a global gate, and a
/// sign-in that finds no free slot in time is a retryable 503, never a 500, while the gate's bound holds.
#[test]
fn a_sign_in_flood_waits_behind_the_hashing_gate_and_overflow_is_a_retryable_503() {
    let app = TestApp::spawn_with(
        |s| {
            // The production cost, so hashes are slow enough to overlap; one slot and no waiting.
            s.auth.argon2_memory_kib = 19_456;
            s.auth.argon2_iterations = 2;
            s.auth.max_concurrent_hashes = 1;
            s.auth.hash_wait_ms = 0;
            s.auth.auth_rate_limit_per_minute = 10_000;
        },
        |_| {},
    );
    let start = std::sync::Barrier::new(12);
    let answers: Vec<(u16, Option<String>, Value)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..12)
            .map(|n| {
                let (app, start) = (&app, &start);
                s.spawn(move || {
                    start.wait();
                    let res = http_login(app, &format!("nobody-{n}"), "wrong-password-for-sure");
                    let status = res.status().as_u16();
                    let retry = res
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    (status, retry, res.json().unwrap())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert!(statuses.iter().all(|s| *s == 401 || *s == 503), "{statuses:?}");
    assert!(
        statuses.contains(&401),
        "the first sign-in is checked: {statuses:?}"
    );
    let busy = answers
        .iter()
        .find(|a| a.0 == 503)
        .unwrap_or_else(|| panic!("twelve at once behind one slot: some must be turned away: {statuses:?}"));
    assert_eq!(busy.1.as_deref(), Some("1"));
    assert_eq!(
        busy.2["type"],
        crate::support::problem_type("service-unavailable")
    );
}

/// A password hash stored at another argon2 cost (the settings changed since it was set) is hashed again at the
/// configured cost at the account's next successful sign-in, in the sign-in's transaction, and the sign-in's
/// audit event says so. A wrong password changes nothing, and a hash already at the cost is left alone.
#[test]
fn a_hash_stored_at_another_cost_is_rehashed_at_the_next_successful_sign_in() {
    use argon2::password_hash::PasswordHasher;
    let (app, _admin, _finance) = finance_user();
    let stored = |app: &TestApp| -> String {
        users::table
            .filter(users::username.eq("finance"))
            .select(users::password_hash)
            .first(&mut app.conn())
            .unwrap()
    };
    let configured = stored(&app);
    assert!(configured.contains("$m=1024,t=1,p=1$"), "{configured}");
    let older = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(512, 2, 1, None).unwrap(),
    )
    .hash_password(USER_PASSWORD.as_bytes())
    .unwrap()
    .to_string();
    diesel::update(users::table.filter(users::username.eq("finance")))
        .set(users::password_hash.eq(&older))
        .execute(&mut app.conn())
        .unwrap();

    assert_eq!(
        http_login(&app, "finance", "not-the-password-at-all")
            .status()
            .as_u16(),
        401
    );
    assert_eq!(stored(&app), older, "a wrong password rehashes nothing");

    assert_eq!(http_login(&app, "finance", USER_PASSWORD).status().as_u16(), 200);
    let rehashed = stored(&app);
    assert!(rehashed.contains("$m=1024,t=1,p=1$"), "{rehashed}");
    assert_ne!(rehashed, configured, "a fresh salt");
    let last_sign_in = |app: &TestApp| -> String {
        let reasons: Vec<String> = app
            .audit_rows()
            .into_iter()
            .filter(|e| e.action == "auth.login" && e.actor_username.as_deref() == Some("finance"))
            .filter_map(|e| e.reason)
            .collect();
        reasons.last().unwrap().clone()
    };
    let reason = last_sign_in(&app);
    assert!(
        reason.ends_with("; password hash moved to the configured argon2 cost"),
        "{reason}"
    );

    // The new hash holds the same password; at the configured cost it is not hashed again.
    assert_eq!(http_login(&app, "finance", USER_PASSWORD).status().as_u16(), 200);
    assert_eq!(stored(&app), rehashed);
    let reason = last_sign_in(&app);
    assert!(
        reason.starts_with("session family ") && !reason.contains("password hash"),
        "{reason}"
    );
}
