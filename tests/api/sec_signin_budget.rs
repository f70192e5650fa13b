//! Issue 14 item 3, a sign-in flood costs little: the process-wide sign-in budget (`auth.sign_in_budget_*`)
//! refuses password-checking attempts over it with a 429 problem and Retry-After, from memory — nothing read,
//! hashed, counted or audited for a refused attempt — while an account signing in from an address it signed in
//! from before still gets in, and everyone does again once the budget refills.

use std::time::Duration;

use diesel::prelude::*;
use qip_pool::config::Settings;
use qip_pool::db::schema::login_throttles;
use qip_pool::features::identity::rate_limit::{Admission, SignInBudget};
use qip_pool::features::identity::service::learn_known_clients;
use serde_json::{Value, json};

use crate::support::{SecondServer, Session, TestApp, USER_PASSWORD, assert_problem};

/// One token a second, three at once; the known clients' reserve one a second, one at once.
fn small_budget(s: &mut Settings) {
    s.auth.sign_in_budget_per_second = 1;
    s.auth.sign_in_budget_burst = 3;
    s.auth.known_client_budget_per_second = 1;
    s.auth.known_client_budget_burst = 1;
}

fn app_with_a_small_budget() -> (TestApp, Session) {
    let app = TestApp::spawn_with(small_budget, |_| {});
    // The administrator signs in over HTTP from 127.0.0.1 (one token): a known client from now on.
    let admin = app.bootstrap_admin();
    (app, admin)
}

/// [`app_with_a_small_budget`] with a user `fielduser` (password set, never signed in; two tokens spent), and
/// the administrator's session and the user's id.
fn app_with_a_field_user() -> (TestApp, Session, String) {
    let (app, admin) = app_with_a_small_budget();
    let org = app.create_org(&admin, "FIELD", "mission_section");
    let (user_id, setup_token) = app.create_user(&admin, "fielduser", &org);
    assert_eq!(
        app.setup_password(&setup_token, USER_PASSWORD).status().as_u16(),
        204
    );
    (app, admin, user_id)
}

fn login(app: &TestApp, username: &str, password: &str) -> reqwest::blocking::Response {
    app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": username, "password": password}),
    )
}

fn login_on(server: &SecondServer, username: &str, password: &str) -> reqwest::blocking::Response {
    server
        .client
        .post(format!("{}/api/v1/auth/login", server.base_url))
        .json(&json!({"username": username, "password": password}))
        .send()
        .unwrap()
}

/// A second server on `app`'s database, as after a restart (its process state fresh), its sign-in budget then
/// spent by a flood of unknown names.
fn a_second_server_with_its_budget_spent(app: &TestApp) -> SecondServer {
    let second = app.spawn_on_with(small_budget);
    spend_the_budget(app, "nobody", || login_on(&second, "nobody", "wrong password"));
    second
}

/// Failures counted for `account` across its throttle rows.
fn failures_counted(app: &TestApp, account: &str) -> i64 {
    login_throttles::table
        .filter(login_throttles::account.eq(account))
        .select(login_throttles::failures)
        .load::<i32>(&mut app.conn())
        .unwrap()
        .into_iter()
        .map(i64::from)
        .sum()
}

/// Sends `attempt` until the first refusal (429, at most 40 times) and checks that it changed neither the audit trail
/// nor the failure counters of `account`, while every admitted attempt before it did; the refusal's problem body.
#[track_caller]
fn spend_the_budget(
    app: &TestApp,
    account: &str,
    attempt: impl Fn() -> reqwest::blocking::Response,
) -> Value {
    for n in 0..40 {
        let (events, failures) = (app.audit_rows().len(), failures_counted(app, account));
        let res = attempt();
        if res.status().as_u16() != 429 {
            assert_eq!(res.status().as_u16(), 401, "an admitted attempt is checked");
            assert!(app.audit_rows().len() > events, "an admitted attempt is audited");
            continue;
        }
        assert!(n >= 1, "the burst admits the first attempts");
        let retry_after: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert_eq!(retry_after, 1, "one token a second: retry in a second");
        let body = assert_problem(res, 429, "too-many-requests");
        assert!(
            body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("Too many sign-ins")),
            "{body}"
        );
        assert_eq!(
            app.audit_rows().len(),
            events,
            "a refused attempt writes no audit event"
        );
        assert_eq!(
            failures_counted(app, account),
            failures,
            "a refused attempt counts no failure"
        );
        return body;
    }
    panic!("40 attempts and the sign-in budget never refused one");
}

#[test]
fn a_spent_sign_in_budget_refuses_with_429_before_any_database_work_and_admits_again_once_refilled() {
    let (app, ..) = app_with_a_field_user();

    spend_the_budget(&app, "nobody", || login(&app, "nobody", "wrong password"));
    // The real account, never signed in from here, waits like everyone else: no hash, no failure, no audit.
    let events = app.audit_rows().len();
    let res = login(&app, "fielduser", "wrong password");
    if res.status().as_u16() == 429 {
        assert_eq!(app.audit_rows().len(), events);
        assert_eq!(failures_counted(&app, "fielduser"), 0);
    }

    // A second later the budget has room again: the user signs in.
    std::thread::sleep(Duration::from_millis(1_100));
    let res = login(&app, "fielduser", USER_PASSWORD);
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    let signed_in = app
        .audit_rows()
        .into_iter()
        .filter(|e| e.action == "auth.login" && e.outcome == "success")
        .filter(|e| e.actor_username.as_deref() == Some("fielduser"))
        .count();
    assert_eq!(signed_in, 1);
}

#[test]
fn a_client_that_signed_in_before_gets_in_while_a_flood_spends_the_budget() {
    let (app, _admin) = app_with_a_small_budget();
    spend_the_budget(&app, "nobody", || login(&app, "nobody", "wrong password"));
    // The administrator signed in from this address before: the reserve lets them in.
    let res = login(&app, "admin", crate::support::ADMIN_PASSWORD);
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    let body: Value = res.json().unwrap();
    assert!(body["access_token"].as_str().is_some_and(|t| !t.is_empty()));
}

/// A restart, or another instance, knows the usual users too: a new process's budget learns from the database
/// the pairs whose last sign-in is within the known-address period and who have not failed since. Right after
/// the "restart" (a second server on the same database, a fresh process state) a flood spends the budget; the
/// administrator, who signed in from this address on the first server, gets in on the reserve, and a user who
/// failed a password from here after signing in does not. The periodic refresh learns the same way.
#[test]
fn a_client_known_before_a_restart_is_known_after_it_unless_it_failed_since() {
    let (app, ..) = app_with_a_field_user();
    let res = login(&app, "fielduser", USER_PASSWORD);
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(login(&app, "fielduser", "wrong password").status().as_u16(), 401);

    let second = a_second_server_with_its_budget_spent(&app);
    let login_there = |username: &str, password: &str| login_on(&second, username, password);
    let res = login_there("fielduser", USER_PASSWORD);
    assert_eq!(
        res.status().as_u16(),
        429,
        "failed since its sign-in: not known, {}",
        res.text().unwrap_or_default()
    );
    let res = login_there("admin", crate::support::ADMIN_PASSWORD);
    assert_eq!(
        res.status().as_u16(),
        200,
        "signed in from here on the first server: known on the second, {}",
        res.text().unwrap_or_default()
    );

    // The refresh every instance runs: what it learns from the last minutes.
    let budget = SignInBudget::new(1, 1, 1, 1);
    let since = qip_pool::features::audit::now_micros() - chrono::Duration::minutes(5);
    let learnt = learn_known_clients(&mut app.conn(), &budget, since).unwrap();
    assert_eq!(learnt, 1, "the administrator's pair; the user's failed since");
    let pairs: Vec<(String, String)> = login_throttles::table
        .filter(login_throttles::last_success_at.is_not_null())
        .select((login_throttles::account, login_throttles::client_addr))
        .order(login_throttles::account.asc())
        .load(&mut app.conn())
        .unwrap();
    assert_eq!(pairs.len(), 2, "{pairs:?}");
    let now = std::time::Instant::now();
    let (admin_pair, user_pair) = (&pairs[0], &pairs[1]);
    assert!(budget.admit("x", "10.0.0.1", now).is_ok(), "the shared token");
    assert!(budget.admit(&user_pair.0, &user_pair.1, now).is_err());
    assert_eq!(
        budget.admit(&admin_pair.0, &admin_pair.1, now),
        Ok(Admission::KnownClient)
    );
}

/// A sign-in refused because the account is disabled is the pair's last record, so no instance learns the pair
/// as a known client from its sign-in before: a second server whose budget a flood has spent refuses the
/// disabled account with 429 from memory, and never reaches its password (401).
#[test]
fn a_disabled_accounts_refused_sign_in_is_not_learnt_as_a_known_client() {
    let (app, admin, user_id) = app_with_a_field_user();
    let res = login(&app, "fielduser", USER_PASSWORD);
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    let res = app.post_json(
        &format!("/api/v1/users/{user_id}/disable"),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.json::<Value>().unwrap()["status"], "disabled");
    // Stamps are to the microsecond; the refusal must land after the sign-in's stamp.
    std::thread::sleep(Duration::from_millis(1_100));
    let res = login(&app, "fielduser", USER_PASSWORD);
    assert_problem(res, 401, "unauthorized");
    assert_eq!(failures_counted(&app, "fielduser"), 0, "the password was right");

    let second = a_second_server_with_its_budget_spent(&app);
    let res = login_on(&second, "fielduser", USER_PASSWORD);
    assert_eq!(
        res.status().as_u16(),
        429,
        "refused as disabled since its sign-in: not known, {}",
        res.text().unwrap_or_default()
    );
    let since = qip_pool::features::audit::now_micros() - chrono::Duration::minutes(5);
    let budget = SignInBudget::new(1, 1, 1, 1);
    assert_eq!(
        learn_known_clients(&mut app.conn(), &budget, since).unwrap(),
        1,
        "the administrator's pair only"
    );
}

#[test]
fn password_setup_with_made_up_tokens_is_refused_by_the_same_budget_without_an_audit_event() {
    let (app, _admin) = app_with_a_small_budget();
    let attempt = || {
        app.post_json(
            "/api/v1/auth/setup-password",
            None,
            &json!({"token": "made-up-token-0123456789abcdef", "password": "a long enough passphrase 42"}),
        )
    };
    spend_the_budget(&app, "", attempt);
}

/// Refusals of `/api/v1/auth/*` are held (`auth.refusal_hold_ms`) before they are sent, so a client that asks
/// again as soon as it is answered cannot turn cheap refusals into a storm of requests; admitted attempts are not
/// held.
#[test]
fn a_refused_sign_in_is_answered_after_the_hold_and_an_admitted_one_without_it() {
    let app = TestApp::spawn_with(
        |s| {
            s.auth.sign_in_budget_per_second = 1;
            s.auth.sign_in_budget_burst = 2;
            // Long enough that an admitted attempt (a hash and a write) on a machine busy with the parallel
            // suite still answers well within it (it took 1.3 s once at 600 ms).
            s.auth.refusal_hold_ms = 2_000;
        },
        |_| {},
    );
    let started = std::time::Instant::now();
    let res = login(&app, "nobody", "wrong password");
    assert_eq!(res.status().as_u16(), 401);
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "an admitted attempt is not held: {:?}",
        started.elapsed()
    );
    let mut refused = None;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let res = login(&app, "nobody", "wrong password");
        if res.status().as_u16() == 429 {
            refused = Some((started.elapsed(), res));
            break;
        }
    }
    let (waited, res) = refused.expect("the budget of two refused within ten attempts");
    assert!(
        waited >= Duration::from_millis(2_000),
        "the refusal was sent after {waited:?}, before the 2 s hold"
    );
    assert_problem(res, 429, "too-many-requests");
}

/// The scheduling policy (field 41 of `stat`: 0 SCHED_OTHER, 5 SCHED_IDLE) of each live thread of this process
/// whose name starts with `prefix` (the app under test runs in this process).
fn thread_policies(prefix: &str) -> Vec<(String, u32)> {
    let mut found = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        // A thread may end between the listing and the reads: skip it.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(task.path().join("comm")),
            std::fs::read_to_string(task.path().join("stat")),
        ) else {
            continue;
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        let policy = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(38))
            .and_then(|v| v.parse().ok())
            .unwrap();
        found.push((comm.trim().to_owned(), policy));
    }
    found
}

/// Password hashes run in the idle scheduling class (`auth.hash_threads_low_priority`, on by default): a flood's
/// admitted hashes take a core only when no other thread wants it, and any request that wakes takes the core back
/// at once (docs/BENCHMARKS.md, sign-in flood). Sign-in and password setup still work through those threads.
#[test]
fn password_hashes_run_in_the_idle_scheduling_class_and_sign_in_still_works() {
    // The shipped default (the other tests hash in the normal class: see `support::test_settings`).
    let app = TestApp::spawn_with(
        |s| {
            s.auth.hash_threads_low_priority = true;
            s.auth.max_concurrent_hashes = 2;
        },
        |_| {},
    );
    let admin = app.bootstrap_admin();
    let org = app.create_org(&admin, "IDLEHASH", "mission_section");
    let (_, setup_token) = app.create_user(&admin, "idlehasher", &org);
    assert_eq!(
        app.setup_password(&setup_token, USER_PASSWORD).status().as_u16(),
        204
    );
    let res = login(&app, "idlehasher", USER_PASSWORD);
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().unwrap();
    assert!(
        body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );
    let wrong = login(&app, "idlehasher", "not the password");
    assert_problem(wrong, 401, "unauthorized");

    // Other tests' apps in this process hash in the normal class, so the idle ones are this app's two.
    let hashing = thread_policies("qip-hash-");
    let idle = hashing.iter().filter(|(_, policy)| *policy == 5).count();
    assert!(
        idle >= 2,
        "this app's hashing threads are SCHED_IDLE: {hashing:?}"
    );
    // The threads that answer requests stay in the normal class.
    let workers = thread_policies("actix-rt");
    assert!(!workers.is_empty());
    assert!(workers.iter().all(|(_, policy)| *policy == 0), "{workers:?}");
}
