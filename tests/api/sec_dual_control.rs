//! Issue 11 item 3, dual control for power: a privileged hat takes effect only when a second administrator
//! (neither requester nor grantee) or the server's console confirms it; pending requests are listed, expire and
//! are audited; administrators never choose or learn a password (single-use, expiring setup tokens); a reset
//! ends the user's refresh AND access tokens at once.

use std::process::{Command, Output};

use chrono::{Duration, Utc};
use diesel::prelude::*;
use qip_pool::db::schema::{hat_grant_requests, hats, password_setup_tokens};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Session, TestApp, USER_PASSWORD, assert_problem};

const NEW_PASSWORD: &str = "chosen-by-the-user-2026-kalma";

fn pending_request(app: &TestApp, admin: &Session, user_id: &str, hat: &str) -> Value {
    let res = app.post_json(
        &format!("/api/v1/users/{user_id}/hats"),
        Some(&admin.access),
        &json!({"hat": hat}),
    );
    assert_eq!(
        res.status().as_u16(),
        202,
        "{hat} must wait for a second administrator"
    );
    let body: Value = res.json().unwrap();
    assert_eq!(body["status"], "pending", "{body}");
    assert_eq!(body["hat"], hat);
    assert_eq!(body["requested_by"], admin.user_id.as_str());
    body
}

fn hat_rows(app: &TestApp, user_id: &str) -> Vec<String> {
    hats::table
        .filter(hats::user_id.eq(user_id))
        .filter(hats::revoked_at.is_null())
        .select(hats::hat)
        .load(&mut *app.conn())
        .unwrap()
}

fn request_status(app: &TestApp, id: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    hat_grant_requests::table
        .find(id)
        .select((
            hat_grant_requests::status,
            hat_grant_requests::decided_by,
            hat_grant_requests::decided_via,
            hat_grant_requests::hat_id,
        ))
        .first(&mut *app.conn())
        .unwrap()
}

fn confirm(app: &TestApp, who: &Session, request_id: &str) -> reqwest::blocking::Response {
    app.post_json(
        &format!("/api/v1/hat-grant-requests/{request_id}/confirm"),
        Some(&who.access),
        &json!({}),
    )
}

fn pending_ids(app: &TestApp, who: &Session, query: &str) -> Vec<String> {
    let page: Value = app
        .get_as(&format!("/api/v1/hat-grant-requests{query}"), &who.access)
        .json()
        .unwrap();
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{page}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn one_administrator_alone_cannot_give_a_privileged_hat_to_anyone_or_to_themself() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "FINSEC", "mission_section");
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);

    for hat in ["admin", "finance_officer", "dsrsg", "hc", "rc", "head_of_office"] {
        let request = pending_request(&app, &admin, &bob.user_id, hat);
        let expires = chrono::DateTime::parse_from_rfc3339(request["expires_at"].as_str().unwrap()).unwrap();
        let requested =
            chrono::DateTime::parse_from_rfc3339(request["requested_at"].as_str().unwrap()).unwrap();
        assert_eq!(expires - requested, Duration::hours(72), "default expiry");
    }
    assert!(hat_rows(&app, &bob.user_id).is_empty(), "no hat in force");
    // Bob holds no power: the finance officer's ledger check and the admin's user list stay closed.
    assert_problem(app.get_as("/api/v1/ledger/check", &bob.access), 403, "forbidden");
    assert_problem(app.get_as("/api/v1/users", &bob.access), 403, "forbidden");

    // To themself: refused outright, and no request is even recorded.
    for hat in ["finance_officer", "dsrsg"] {
        let res = app.post_json(
            &format!("/api/v1/users/{}/hats", admin.user_id),
            Some(&admin.access),
            &json!({"hat": hat}),
        );
        assert_problem(res, 403, "forbidden");
    }
    let own_requests: i64 = hat_grant_requests::table
        .filter(hat_grant_requests::user_id.eq(&admin.user_id))
        .count()
        .get_result(&mut *app.conn())
        .unwrap();
    assert_eq!(own_requests, 0);
    assert_eq!(hat_rows(&app, &admin.user_id), ["admin"]);

    // Ordinary hats still take effect at once.
    let res = app.post_json(
        &format!("/api/v1/users/{}/hats", bob.user_id),
        Some(&admin.access),
        &json!({"hat": "auditor"}),
    );
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(hat_rows(&app, &bob.user_id), ["auditor"]);

    let rows = app.audit_rows();
    let requested = rows
        .iter()
        .filter(|e| e.action == "hat.grant_request" && e.outcome == "success")
        .count();
    assert_eq!(requested, 6, "each request audited");
}

#[test]
fn neither_requester_nor_grantee_may_confirm_but_a_second_administrator_does() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "MISSEC", "mission_section");
    // Two more administrators (their own admin hats confirmed at the console by the harness).
    let carla = app.user_with_hats(&admin, "carla", &office, &["admin"]);
    let dmitri = app.user_with_hats(&admin, "dmitri", &office, &["admin"]);
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);

    // The path: D asks for finance_officer for administrator C; C would confirm it for themself.
    let request = pending_request(&app, &dmitri, &carla.user_id, "finance_officer");
    let id = request["id"].as_str().unwrap();
    assert_problem(confirm(&app, &dmitri, id), 403, "forbidden");
    assert_problem(confirm(&app, &carla, id), 403, "forbidden");
    // A grantee without the admin hat is stopped by the policy table.
    let for_bob = pending_request(&app, &admin, &bob.user_id, "hc");
    assert_problem(
        confirm(&app, &bob, for_bob["id"].as_str().unwrap()),
        403,
        "forbidden",
    );
    assert!(!hat_rows(&app, &carla.user_id).contains(&"finance_officer".to_owned()));
    assert_eq!(request_status(&app, id).0, "pending");

    // Listed for every administrator (and auditors), oldest first.
    let listed = pending_ids(&app, &admin, "");
    assert_eq!(listed, [id, for_bob["id"].as_str().unwrap()]);
    let one: Value = app
        .get_as(&format!("/api/v1/hat-grant-requests/{id}"), &dmitri.access)
        .json()
        .unwrap();
    assert_eq!(one["user_id"], carla.user_id.as_str());

    // A third person confirms (the one who issued Carla's setup token, which is allowed: the requester did
    // not): the hat is in force on Carla's next request.
    let res = confirm(&app, &admin, id);
    assert_eq!(res.status().as_u16(), 201);
    let grant: Value = res.json().unwrap();
    assert_eq!(grant["hat"], "finance_officer");
    assert_eq!(grant["active"], true);
    assert_eq!(grant["granted_by"], dmitri.user_id.as_str());
    assert!(hat_rows(&app, &carla.user_id).contains(&"finance_officer".to_owned()));
    let (status, decided_by, via, hat_id) = request_status(&app, id);
    assert_eq!(status, "confirmed");
    assert_eq!(decided_by.as_deref(), Some(admin.user_id.as_str()));
    assert_eq!(via.as_deref(), Some("api"));
    assert_eq!(hat_id.as_deref(), grant["id"].as_str());
    let check = app
        .client
        .get(app.url("/api/v1/ledger/check"))
        .bearer_auth(&carla.access)
        .header("Acting-Hat", "finance_officer")
        .send()
        .unwrap();
    assert_eq!(check.status().as_u16(), 200);

    // Settled once: confirming again is a conflict, and it left the pending list.
    assert_problem(confirm(&app, &admin, id), 409, "conflict");
    assert_eq!(pending_ids(&app, &dmitri, ""), [for_bob["id"].as_str().unwrap()]);
    assert!(pending_ids(&app, &dmitri, "?status=confirmed").contains(&id.to_owned()));

    let rows = app.audit_rows();
    let confirms: Vec<_> = rows
        .iter()
        .filter(|e| e.action == "hat.grant_confirm" && e.entity_id.as_deref() == Some(id))
        .collect();
    let denied: Vec<Option<&str>> = confirms
        .iter()
        .filter(|e| e.outcome == "denied")
        .map(|e| e.actor_id.as_deref())
        .collect();
    assert_eq!(
        denied,
        [Some(dmitri.user_id.as_str()), Some(carla.user_id.as_str())]
    );
    let ok = confirms.iter().find(|e| e.outcome == "success").unwrap();
    assert_eq!(ok.actor_id.as_deref(), Some(admin.user_id.as_str()));
    assert_eq!(ok.hat.as_deref(), Some("admin"));
    let granted = rows
        .iter()
        .rfind(|e| e.action == "hat.grant" && e.entity_id.as_deref() == grant["id"].as_str())
        .unwrap();
    assert!(
        granted
            .reason
            .as_deref()
            .unwrap()
            .contains("second administrator admin"),
        "{granted:?}"
    );
}

#[test]
fn refused_and_cancelled_requests_are_final() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "MISSEC", "mission_section");
    let carla = app.user_with_hats(&admin, "carla", &office, &["admin"]);
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);

    let refused = pending_request(&app, &admin, &bob.user_id, "rc");
    let refused_id = refused["id"].as_str().unwrap();
    let res = app.post_json(
        &format!("/api/v1/hat-grant-requests/{refused_id}/refuse"),
        Some(&carla.access),
        &json!({"reason": "Bob is not the resident coordinator"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["status"], "refused");

    let cancelled = pending_request(&app, &admin, &bob.user_id, "head_of_office");
    let cancelled_id = cancelled["id"].as_str().unwrap();
    let res = app.post_json(
        &format!("/api/v1/hat-grant-requests/{cancelled_id}/refuse"),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.json::<Value>().unwrap()["status"], "cancelled");

    for id in [refused_id, cancelled_id] {
        assert_problem(confirm(&app, &carla, id), 409, "conflict");
    }
    assert!(hat_rows(&app, &bob.user_id).is_empty());
    let rows = app.audit_rows();
    let refusal = rows.iter().find(|e| e.action == "hat.grant_refuse").unwrap();
    assert_eq!(refusal.actor_id.as_deref(), Some(carla.user_id.as_str()));
    assert_eq!(
        refusal.reason.as_deref(),
        Some("Bob is not the resident coordinator")
    );
    assert!(
        rows.iter()
            .any(|e| e.action == "hat.grant_cancel" && e.actor_id.as_deref() == Some(admin.user_id.as_str()))
    );
}

#[test]
fn an_expired_request_cannot_be_confirmed_by_anyone() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "MISSEC", "mission_section");
    let carla = app.user_with_hats(&admin, "carla", &office, &["admin"]);
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);
    let request = pending_request(&app, &admin, &bob.user_id, "dsrsg");
    let id = request["id"].as_str().unwrap();
    diesel::update(hat_grant_requests::table.find(id))
        .set(hat_grant_requests::expires_at.eq((Utc::now() - Duration::minutes(1)).naive_utc()))
        .execute(&mut *app.conn())
        .unwrap();

    assert!(pending_ids(&app, &carla, "").is_empty(), "expired: not pending");
    assert_eq!(pending_ids(&app, &carla, "?status=expired"), [id]);
    let body = assert_problem(confirm(&app, &carla, id), 409, "conflict");
    assert!(body["detail"].as_str().unwrap().contains("expired"), "{body}");
    let console = qip_pool::features::identity::service::confirm_hat_grant_from_console(
        &mut app.conn(),
        id,
        Some("ops"),
    );
    assert!(console.is_err(), "the console cannot revive it either");
    assert!(hat_rows(&app, &bob.user_id).is_empty());
    assert_eq!(
        request_status(&app, id).0,
        "pending",
        "stored as asked; read as expired"
    );
    let failures = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "hat.grant_confirm" && e.outcome == "failure")
        .count();
    assert_eq!(failures, 2, "both refusals audited");
}

fn qip_pool_cli(args: &[&str], db_url: &str, host_user: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qip-pool"));
    cmd.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("QIP__")) {
        cmd.env_remove(key);
    }
    cmd.env_remove("SUDO_USER")
        .env("USER", host_user)
        .env("RUST_LOG", "error")
        .env("QIP__DATABASE__URL", db_url);
    crate::support::run_child(&mut cmd)
}

#[test]
fn a_single_administrator_confirms_at_the_console_and_the_trail_says_so() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "FINSEC", "mission_section");
    let fatima = app.user_with_hats(&admin, "fatima", &office, &[]);
    let request = pending_request(&app, &admin, &fatima.user_id, "finance_officer");
    let id = request["id"].as_str().unwrap();
    let url = app.db.url();

    let out = qip_pool_cli(&["admin", "pending-grants"], &url, "ops.officer");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], id);

    let out = qip_pool_cli(&["admin", "confirm-grant", id], &url, "ops.officer");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(hat_rows(&app, &fatima.user_id), ["finance_officer"]);
    let (status, decided_by, via, _) = request_status(&app, id);
    assert_eq!(
        (status.as_str(), decided_by, via.as_deref()),
        ("confirmed", None, Some("console"))
    );
    let rows = app.audit_rows();
    let event = rows
        .iter()
        .find(|e| e.action == "hat.grant_confirm" && e.outcome == "success")
        .unwrap();
    assert_eq!(event.actor_username.as_deref(), Some("console:ops.officer"));
    assert_eq!(event.actor_id, None);
    assert_eq!(event.hat, None);
    assert!(event.reason.as_deref().unwrap().contains("console"));

    // Once only: a second run fails with one line and exit 1.
    let out = qip_pool_cli(&["admin", "confirm-grant", id], &url, "ops.officer");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("confirmed already"));
    let report = qip_pool::features::audit::verify_chain(&mut app.conn()).unwrap();
    assert!(report.intact, "{report:?}");
}

fn login_status(app: &TestApp, username: &str, password: &str) -> u16 {
    app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": username, "password": password}),
    )
    .status()
    .as_u16()
}

#[test]
fn a_created_user_signs_in_only_after_choosing_a_password_with_a_single_use_token() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "UNICEF", "un_agency");
    // The administrator cannot choose the password any more.
    let res = app.post_json(
        "/api/v1/users",
        Some(&admin.access),
        &json!({"username": "lena", "display_name": "Lena", "email": "lena@unicef.example",
                "organization_id": org, "password": USER_PASSWORD}),
    );
    assert_problem(res, 422, "validation");

    let res = app.post_json(
        "/api/v1/users",
        Some(&admin.access),
        &json!({"username": "lena", "display_name": "Lena", "email": "lena@unicef.example", "organization_id": org}),
    );
    assert_eq!(res.status().as_u16(), 201);
    let created: Value = res.json().unwrap();
    let lena_id = created["id"].as_str().unwrap();
    let token = created["setup_token"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(created["setup_token_expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    assert!(
        (expires - Utc::now() - Duration::hours(24)).num_minutes().abs() <= 1,
        "24 h by default"
    );

    // No password works yet, not even a guess at what an admin might have chosen.
    assert_eq!(login_status(&app, "lena", USER_PASSWORD), 401);
    assert_eq!(login_status(&app, "lena", ""), 401);

    // Stored only as a hash.
    let (stored_hash, used_at): (String, Option<chrono::NaiveDateTime>) = password_setup_tokens::table
        .filter(password_setup_tokens::user_id.eq(lena_id))
        .select((password_setup_tokens::token_hash, password_setup_tokens::used_at))
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(stored_hash, hex::encode(Sha256::digest(token.as_bytes())));
    assert!(used_at.is_none());

    // The usual strength check; a weak choice does not spend the token.
    let body = assert_problem(app.setup_password(token, "password"), 422, "validation");
    assert_eq!(body["errors"][0]["field"], "password");
    assert_eq!(app.setup_password(token, NEW_PASSWORD).status().as_u16(), 204);
    assert_eq!(login_status(&app, "lena", NEW_PASSWORD), 200);

    // Single use.
    assert_problem(
        app.setup_password(token, "another-long-passphrase-99"),
        401,
        "unauthorized",
    );
    assert_problem(
        app.setup_password("made-up-token", NEW_PASSWORD),
        401,
        "unauthorized",
    );
    assert_eq!(login_status(&app, "lena", "another-long-passphrase-99"), 401);

    let rows = app.audit_rows();
    let set = rows.iter().find(|e| e.action == "user.password_set").unwrap();
    assert_eq!(
        set.actor_id.as_deref(),
        Some(lena_id),
        "the user set it, not the admin"
    );
    assert!(set.reason.as_deref().unwrap().contains(&admin.user_id));
    let reuse = rows
        .iter()
        .filter(|e| e.action == "auth.setup_password" && e.outcome == "failure")
        .count();
    assert_eq!(reuse, 2);
}

#[test]
fn a_setup_token_expires() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "NRC", "ngo");
    let (id, token) = app.create_user(&admin, "omar", &org);
    diesel::update(password_setup_tokens::table.filter(password_setup_tokens::user_id.eq(&id)))
        .set(password_setup_tokens::expires_at.eq((Utc::now() - Duration::seconds(1)).naive_utc()))
        .execute(&mut *app.conn())
        .unwrap();
    assert_problem(app.setup_password(&token, NEW_PASSWORD), 401, "unauthorized");
    assert_eq!(login_status(&app, "omar", NEW_PASSWORD), 401);
    let expired = app
        .audit_rows()
        .into_iter()
        .rfind(|e| e.action == "auth.setup_password")
        .unwrap();
    assert_eq!(expired.reason.as_deref(), Some("setup token expired"));
}

#[test]
fn a_reset_ends_access_and_refresh_tokens_at_once_and_the_user_chooses_the_new_password() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "OIOS", "mission_section");
    let finance = app.user_with_hats(&admin, "finance", &org, &["auditor"]);
    assert_eq!(
        app.get_as("/api/v1/audit/verify", &finance.access)
            .status()
            .as_u16(),
        200
    );

    let res = app.post_json(
        &format!("/api/v1/users/{}/reset-password", finance.user_id),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let reset: Value = res.json().unwrap();
    let token = reset["setup_token"].as_str().unwrap();
    assert_eq!(reset["id"], finance.user_id.as_str());

    // At once, not in 15 minutes: the old access token, the refresh token and the old password all fail.
    assert_problem(
        app.get_as("/api/v1/audit/verify", &finance.access),
        401,
        "unauthorized",
    );
    assert_problem(app.get_as("/api/v1/me", &finance.access), 401, "unauthorized");
    let res = app.post_json(
        "/api/v1/auth/refresh",
        None,
        &json!({"refresh_token": finance.refresh}),
    );
    assert_problem(res, 401, "unauthorized");
    assert_eq!(login_status(&app, "finance", USER_PASSWORD), 401);
    // Other people's sessions go on.
    assert_eq!(app.get_as("/api/v1/me", &admin.access).status().as_u16(), 200);

    // The user chooses the new password and signs in at once (same second as the reset or not).
    assert_eq!(app.setup_password(token, NEW_PASSWORD).status().as_u16(), 204);
    let again = app.login("finance", NEW_PASSWORD);
    assert_eq!(
        app.get_as("/api/v1/audit/verify", &again.access)
            .status()
            .as_u16(),
        200
    );
    assert_problem(app.get_as("/api/v1/me", &finance.access), 401, "unauthorized");

    let rows = app.audit_rows();
    let event = rows.iter().rfind(|e| e.action == "user.reset_password").unwrap();
    assert_eq!(event.actor_id.as_deref(), Some(admin.user_id.as_str()));
    assert!(
        event
            .reason
            .as_deref()
            .unwrap()
            .contains("every access token ended"),
        "{event:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|e| e.after_state.as_deref().unwrap_or("").contains(token)),
        "the token never reaches the audit trail"
    );
}

// ---- the setup token passes through an administrator: it counts as that administrator's part

fn reset(app: &TestApp, admin: &Session, user_id: &str) -> Value {
    let res = app.post_json(
        &format!("/api/v1/users/{user_id}/reset-password"),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    res.json().unwrap()
}

fn me_hats(app: &TestApp, access: &str) -> Vec<String> {
    let me: Value = app.get_as("/api/v1/me", access).json().unwrap();
    me["hats"]
        .as_array()
        .unwrap_or_else(|| panic!("{me}"))
        .iter()
        .map(|h| h["hat"].as_str().unwrap().to_owned())
        .collect()
}

fn ledger_check_as_finance(app: &TestApp, access: &str) -> reqwest::blocking::Response {
    app.client
        .get(app.url("/api/v1/ledger/check"))
        .bearer_auth(access)
        .header("Acting-Hat", "finance_officer")
        .send()
        .unwrap()
}

fn requests_for(app: &TestApp, user_id: &str) -> Vec<(String, String, String)> {
    hat_grant_requests::table
        .filter(hat_grant_requests::user_id.eq(user_id))
        .order(hat_grant_requests::id.asc())
        .select((
            hat_grant_requests::hat,
            hat_grant_requests::requested_by,
            hat_grant_requests::status,
        ))
        .load(&mut *app.conn())
        .unwrap()
}

const TAKEN_OVER: &str = "the-administrator-keeps-it-9931";

#[test]
fn an_administrator_who_resets_a_finance_officer_and_keeps_the_token_holds_no_money_power() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "FINSEC", "mission_section");
    let bea = app.user_with_hats(&admin, "bea", &office, &["admin"]);
    let finance = app.user_with_hats(&admin, "finance", &office, &["finance_officer", "auditor"]);
    let fo_grant: String = hats::table
        .filter(hats::user_id.eq(&finance.user_id))
        .filter(hats::hat.eq("finance_officer"))
        .select(hats::id)
        .first(&mut *app.conn())
        .unwrap();
    diesel::update(hats::table.find(&fo_grant))
        .set(hats::scope_adm1.eq("XY01"))
        .execute(&mut *app.conn())
        .unwrap();
    assert_eq!(
        ledger_check_as_finance(&app, &finance.access).status().as_u16(),
        200
    );

    // Admin A resets finance: the privileged hat stops in the same transaction and waits again, the ordinary
    // one stays; the answer says so.
    let reset_a = reset(&app, &admin, &finance.user_id);
    let pending = reset_a["privileged_hats_pending"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{reset_a}");
    assert_eq!(pending[0]["hat"], "finance_officer");
    assert_eq!(pending[0]["status"], "pending");
    assert_eq!(pending[0]["requested_by"], admin.user_id.as_str());
    assert_eq!(pending[0]["scope_adm1"], "XY01", "same scope");
    let request_id = pending[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(hat_rows(&app, &finance.user_id), ["auditor"]);
    let revoked_by: Option<String> = hats::table
        .find(&fo_grant)
        .select(hats::revoked_by)
        .first(&mut *app.conn())
        .unwrap();
    assert_eq!(revoked_by.as_deref(), Some(admin.user_id.as_str()));

    // A uses the token himself and signs in as finance: no finance_officer hat, no money.
    let token_a = reset_a["setup_token"].as_str().unwrap();
    assert_eq!(app.setup_password(token_a, TAKEN_OVER).status().as_u16(), 204);
    let as_finance = app.login("finance", TAKEN_OVER);
    assert_eq!(me_hats(&app, &as_finance.access), ["auditor"]);
    assert_problem(
        ledger_check_as_finance(&app, &as_finance.access),
        403,
        "forbidden",
    );

    // A cannot confirm his own request; B is refused because A issued the token the password was set with.
    assert_problem(confirm(&app, &admin, &request_id), 403, "forbidden");
    let body = assert_problem(confirm(&app, &bea, &request_id), 409, "dual-control");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("setup token issued by the administrator who asked")
            && detail.contains("Reset the grantee's password yourself"),
        "{body}"
    );
    assert_eq!(request_status(&app, &request_id).0, "pending");
    assert_eq!(hat_rows(&app, &finance.user_id), ["auditor"]);

    // B issues a token of their own: no new request (the hat is pending already), A's session as finance ends.
    let reset_b = reset(&app, &bea, &finance.user_id);
    assert_eq!(reset_b["privileged_hats_pending"], json!([]));
    let still_pending: Vec<_> = requests_for(&app, &finance.user_id)
        .into_iter()
        .filter(|(_, _, status)| status == "pending")
        .collect();
    assert_eq!(
        still_pending,
        [(
            "finance_officer".to_owned(),
            admin.user_id.clone(),
            "pending".to_owned()
        )]
    );
    assert_problem(app.get_as("/api/v1/me", &as_finance.access), 401, "unauthorized");

    // The person sets their password with B's token; now B's confirmation takes effect.
    let token_b = reset_b["setup_token"].as_str().unwrap();
    assert_eq!(app.setup_password(token_b, NEW_PASSWORD).status().as_u16(), 204);
    let res = confirm(&app, &bea, &request_id);
    assert_eq!(res.status().as_u16(), 201);
    let grant: Value = res.json().unwrap();
    assert_eq!(grant["hat"], "finance_officer");
    assert_eq!(grant["scope_adm1"], "XY01");
    let again = app.login("finance", NEW_PASSWORD);
    let mut now_hats = me_hats(&app, &again.access);
    now_hats.sort();
    assert_eq!(now_hats, ["auditor", "finance_officer"]);
    assert_eq!(
        ledger_check_as_finance(&app, &again.access).status().as_u16(),
        200
    );
    assert_eq!(login_status(&app, "finance", TAKEN_OVER), 401);

    let rows = app.audit_rows();
    let suspended = rows
        .iter()
        .find(|e| e.action == "hat.revoke" && e.entity_id.as_deref() == Some(fo_grant.as_str()))
        .unwrap();
    assert!(
        suspended.reason.as_deref().unwrap().contains("password reset"),
        "{suspended:?}"
    );
    assert!(rows.iter().any(|e| e.action == "hat.grant_request"
        && e.entity_id.as_deref() == Some(request_id.as_str())
        && e.actor_id.as_deref() == Some(admin.user_id.as_str())));
    let reset_event = rows.iter().find(|e| e.action == "user.reset_password").unwrap();
    assert!(
        reset_event.reason.as_deref().unwrap().contains("finance_officer"),
        "{reset_event:?}"
    );
    let refusal = rows
        .iter()
        .find(|e| e.action == "hat.grant_confirm" && e.outcome == "failure")
        .unwrap();
    assert_eq!(refusal.actor_id.as_deref(), Some(bea.user_id.as_str()));
}

#[test]
fn an_administrator_cannot_create_an_account_set_its_password_and_have_it_made_admin() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "MISSEC", "mission_section");
    let bea = app.user_with_hats(&admin, "bea", &office, &["admin"]);

    // A creates X and sets X's password with the token A received, then asks for admin for X.
    let (x_id, token_a) = app.create_user(&admin, "xavier", &office);
    assert_eq!(app.setup_password(&token_a, TAKEN_OVER).status().as_u16(), 204);
    let request = pending_request(&app, &admin, &x_id, "admin");
    let request_id = request["id"].as_str().unwrap();
    // B confirms in good faith: refused, and nothing takes effect.
    assert_problem(confirm(&app, &bea, request_id), 409, "dual-control");
    assert!(hat_rows(&app, &x_id).is_empty());

    // Also while A's token is still unused: A could set the password after the confirmation.
    let (y_id, token_y) = app.create_user(&admin, "yolanda", &office);
    let for_y = pending_request(&app, &admin, &y_id, "finance_officer");
    assert_problem(
        confirm(&app, &bea, for_y["id"].as_str().unwrap()),
        409,
        "dual-control",
    );
    assert_eq!(app.setup_password(&token_y, TAKEN_OVER).status().as_u16(), 204);
    assert!(hat_rows(&app, &y_id).is_empty());

    // B issues X a fresh token (no new request), X sets it, and B's confirmation works.
    let reset_b = reset(&app, &bea, &x_id);
    assert_eq!(reset_b["privileged_hats_pending"], json!([]));
    assert_eq!(
        login_status(&app, "xavier", TAKEN_OVER),
        401,
        "A's password is gone"
    );
    assert_eq!(
        app.setup_password(reset_b["setup_token"].as_str().unwrap(), NEW_PASSWORD)
            .status()
            .as_u16(),
        204
    );
    assert_eq!(confirm(&app, &bea, request_id).status().as_u16(), 201);
    let x = app.login("xavier", NEW_PASSWORD);
    assert_eq!(me_hats(&app, &x.access), ["admin"]);
    assert_eq!(app.get_as("/api/v1/users", &x.access).status().as_u16(), 200);

    // And if A resets X now, the admin hat stops again until a second administrator steps in.
    let reset_a = reset(&app, &admin, &x_id);
    assert_eq!(reset_a["privileged_hats_pending"][0]["hat"], "admin");
    assert!(hat_rows(&app, &x_id).is_empty());

    // The console stays exempt: it confirms even though A issued the token (console access is full control).
    let console = qip_pool::features::identity::service::confirm_hat_grant_from_console(
        &mut app.conn(),
        for_y["id"].as_str().unwrap(),
        Some("ops"),
    );
    assert!(console.is_ok(), "{console:?}");
    assert_eq!(hat_rows(&app, &y_id), ["finance_officer"]);
}
