//! The web console, black-box over HTTP like a browser without JavaScript: a hardened cookie session from the
//! API's own sign-in, CSRF tokens on every form, "my tasks" from the API's read model, and decisions through
//! the form recorded with the same audit event and hat as through the API.

use std::collections::BTreeMap;

use reqwest::blocking::{Client, Response};
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

use crate::approval::desk;
use crate::support::{TestApp, USER_PASSWORD};

/// A browser: keeps cookies, never follows redirects (the tests read them).
pub struct Browser<'a> {
    app: &'a TestApp,
    client: Client,
    cookies: BTreeMap<String, String>,
    /// Every `Set-Cookie` header seen, verbatim.
    pub set_cookies: Vec<String>,
}

fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, res: &Response) {
        for v in res.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap().to_owned();
            let pair = v.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
            self.set_cookies.push(v);
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        let res = self
            .client
            .get(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .send()
            .unwrap();
        self.keep(&res);
        res
    }

    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let res = self
            .client
            .post(self.app.url(path))
            .header(COOKIE, self.cookie_header())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form_encode(fields))
            .send()
            .unwrap();
        self.keep(&res);
        res
    }

    /// Opens the sign-in page and signs in; panics unless the console answers with the tasks page.
    pub fn sign_in(&mut self, username: &str, password: &str) -> Response {
        let page = self.get("/console/sign-in").text().unwrap();
        let csrf = csrf_of(&page);
        self.post(
            "/console/sign-in",
            &[("csrf", &csrf), ("username", username), ("password", password)],
        )
    }
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    html[start..].split('"').next().unwrap().to_owned()
}

/// The value of `name`'s hidden input in the page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The decision form's action path.
fn decision_action(html: &str) -> String {
    let start = html
        .find(r#"action="/console/proposals/"#)
        .expect("a decision form")
        + 8;
    html[start..].split('"').next().unwrap().to_owned()
}

#[test]
fn signing_in_sets_a_hardened_cookie_session_and_the_console_stays_out_of_the_api_document() {
    let d = desk("50000.00");
    let app = &d.m.app;

    let mut anon = Browser::new(app);
    let root = anon.get("/");
    assert_eq!(root.status().as_u16(), 303);
    assert_eq!(root.headers()[LOCATION], "/console/tasks");
    let tasks = anon.get("/console/tasks");
    assert_eq!(tasks.status().as_u16(), 303);
    assert_eq!(tasks.headers()[LOCATION], "/console/sign-in");
    let root = anon.get("/console/sign-in");
    assert_eq!(root.status().as_u16(), 200);
    let csp = root.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'none'"),
        "{csp}"
    );
    let page = root.text().unwrap();
    assert!(page.contains(r#"<label for="username">"#) && page.contains(r#"<label for="password">"#));
    assert!(!page.contains("<script"), "no script on the console");
    assert!(page.len() < 100_000);

    let mut b = Browser::new(app);
    let wrong = b.sign_in("dsrsg", "not the password");
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.text().unwrap().contains("role=\"alert\""));
    assert!(!b.cookies.contains_key("qip_console"));

    let ok = b.sign_in("dsrsg", USER_PASSWORD);
    assert_eq!(ok.status().as_u16(), 303);
    assert_eq!(ok.headers()[LOCATION], "/console/tasks");
    let session = b
        .set_cookies
        .iter()
        .find(|c| c.starts_with("qip_console="))
        .expect("a session cookie")
        .clone();
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Strict"), "{session}");
    assert!(session.contains("Path=/"), "{session}");
    assert!(
        !session.contains("Secure"),
        "plain HTTP gets no Secure flag: {session}"
    );
    // The sign-in is the API's: audited as such, with a refresh token stored server-side.
    assert!(
        app.audit_rows().iter().any(|r| r.action == "auth.login"
            && r.actor_username.as_deref() == Some("dsrsg")
            && r.outcome == "success"),
        "{:?}",
        app.audit_rows()
            .iter()
            .map(|r| (&r.action, &r.outcome))
            .collect::<Vec<_>>()
    );
    let tasks = b.get("/console/tasks");
    assert_eq!(tasks.status().as_u16(), 200);
    assert!(
        tasks
            .text()
            .unwrap()
            .contains("Signed in as <strong>dsrsg</strong>")
    );

    // Behind TLS (as a proxy reports it) the cookie is Secure.
    let mut tls = Browser::new(app);
    let page = tls.get("/console/sign-in").text().unwrap();
    let res = tls
        .client
        .post(app.url("/console/sign-in"))
        .header(COOKIE, tls.cookie_header())
        .header("X-Forwarded-Proto", "https")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form_encode(&[
            ("csrf", &csrf_of(&page)),
            ("username", "dsrsg"),
            ("password", USER_PASSWORD),
        ]))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 303);
    assert!(
        res.headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| c.to_str().unwrap().contains("; Secure")),
    );

    // A bearer token alone does not open the console; signing out ends the API session too.
    let bearer = app
        .client
        .get(app.url("/console/tasks"))
        .bearer_auth(&d.dsrsg.access)
        .send()
        .unwrap();
    assert_eq!(bearer.status().as_u16(), 303);
    assert_eq!(bearer.headers()[LOCATION], "/console/sign-in");
    let page = b.get("/console/tasks").text().unwrap();
    let out = b.post("/console/sign-out", &[("csrf", &csrf_of(&page))]);
    assert_eq!(out.status().as_u16(), 303);
    assert_eq!(b.get("/console/tasks").headers()[LOCATION], "/console/sign-in");
    assert!(app.audit_rows().iter().any(|r| r.action == "auth.logout"));

    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(
        paths
            .keys()
            .all(|p| p.starts_with("/api/") || !p.contains("console"))
    );
    assert!(paths.keys().all(|p| !p.starts_with("/console")));
}

#[test]
fn a_post_without_its_csrf_token_is_refused_and_changes_nothing() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let (id, _) = d.in_review("Well repair", "10000.00");
    let mut b = Browser::new(app);

    // The sign-in form itself needs the token.
    b.get("/console/sign-in");
    let res = b.post(
        "/console/sign-in",
        &[("username", "dsrsg"), ("password", USER_PASSWORD)],
    );
    assert_eq!(res.status().as_u16(), 403);
    assert!(!b.cookies.contains_key("qip_console"));

    assert_eq!(b.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);
    let page = b.get(&format!("/console/proposals/{id}?hat=hc")).text().unwrap();
    let action = decision_action(&page);
    let version = hidden(&page, "version");
    let fields = [
        ("hat", "hc"),
        ("decision", "approve"),
        ("version", version.as_str()),
        ("comment", "fine"),
    ];
    let missing = b.post(&action, &fields);
    assert_eq!(missing.status().as_u16(), 403);
    let mut wrong = fields.to_vec();
    wrong.push(("csrf", "00"));
    assert_eq!(b.post(&action, &wrong).status().as_u16(), 403);
    let approval = d.approval(&id);
    assert!(
        approval["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "pending")
    );
    assert!(!app.audit_rows().iter().any(|r| r.action == "approval.decide"));
}

#[test]
fn the_tasks_page_lists_a_waiting_decision_and_the_form_decides_it_like_the_api() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let (id, _) = d.in_review("Market latrines", "20000.00");
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);

    let tasks = b.get("/console/tasks").text().unwrap();
    assert!(tasks.contains("Market latrines"), "{tasks}");
    assert!(
        tasks.contains(&format!("/console/proposals/{id}?hat=hc")),
        "{tasks}"
    );
    assert!(tasks.contains("Decision to take"));

    // Reads need no hat (as on the API): the multi-hatted reader is served the brief in a hat that may read it,
    // and the decision form still makes the deciding hat explicit.
    let unnamed = b.get(&format!("/console/proposals/{id}")).text().unwrap();
    assert!(unnamed.contains("read as"), "{unnamed}");
    assert!(unnamed.contains(r#"<select id="hat" name="hat">"#), "{unnamed}");

    let page = b.get(&format!("/console/proposals/{id}?hat=hc"));
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().unwrap();
    assert!(page.len() < 100_000);
    assert!(
        page.contains("20000.00") && page.contains("30000.00"),
        "amount and pool after"
    );
    assert!(page.contains(r#"<option value="hc" selected>"#), "{page}");
    assert!(page.contains(r#"name="acknowledge""#));
    let action = decision_action(&page);
    let csrf = csrf_of(&page);
    let version = hidden(&page, "version");
    let res = b.post(
        &action,
        &[
            ("csrf", &csrf),
            ("hat", "hc"),
            ("decision", "approve"),
            ("version", &version),
            ("comment", "Cleared"),
        ],
    );
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let after = b.get(res.headers()[LOCATION].to_str().unwrap()).text().unwrap();
    assert!(after.contains("Your approval is recorded."));

    let approval = d.approval(&id);
    let first = &approval["steps"][0];
    assert_eq!(first["status"], "approved");
    assert_eq!(first["decided_hat"], "hc");
    assert_eq!(first["decided_by"], d.dsrsg.user_id);

    // The next step, again in another hat: without the acknowledgement the service refuses (422) ...
    let page = b
        .get(&format!("/console/proposals/{id}?hat=dsrsg"))
        .text()
        .unwrap();
    let action = decision_action(&page);
    let version = hidden(&page, "version");
    let next_hat = approval["steps"][1]["hat"].as_str().unwrap().to_owned();
    let base = [
        ("csrf", csrf.as_str()),
        ("hat", next_hat.as_str()),
        ("decision", "approve"),
        ("version", version.as_str()),
    ];
    let refused = b.post(&action, &base);
    assert_eq!(refused.status().as_u16(), 422);
    assert!(refused.text().unwrap().contains("multi_hat_acknowledgement"));
    // ... and with it the decision goes through, acknowledged.
    let mut acknowledged = base.to_vec();
    acknowledged.push(("acknowledge", "yes"));
    assert_eq!(b.post(&action, &acknowledged).status().as_u16(), 303);
    let approval = d.approval(&id);
    assert_eq!(approval["steps"][1]["decided_hat"], next_hat);
    assert!(
        approval["steps"][1]["multi_hat_acknowledgement"]
            .as_str()
            .unwrap()
            .len()
            >= 10
    );

    // The same audit event as the API records, with the hat the decision was taken in.
    let decisions: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "approval.decide" && r.outcome == "success")
        .collect();
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0].hat.as_deref(), Some("hc"));
    assert_eq!(decisions[1].hat.as_deref(), Some(next_hat.as_str()));
    assert_eq!(decisions[0].actor_id.as_deref(), Some(d.dsrsg.user_id.as_str()));
    assert_eq!(decisions[0].entity_type, "proposal");
    assert_eq!(decisions[0].entity_id.as_deref(), Some(id.as_str()));

    // Compared with a decision through the API: same action, entity and shape of the recorded change.
    let (other, version) = d.in_review("Bridge", "5000.00");
    let step = d.step_ids(&other)[0].clone();
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &other,
        &step,
        version,
        json!({"decision": "approve"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let rows = app.audit_rows();
    let api = rows
        .iter()
        .rfind(|r| r.action == "approval.decide" && r.entity_id.as_deref() == Some(other.as_str()))
        .unwrap();
    assert_eq!(api.hat.as_deref(), Some("hc"));
    let keys = |s: &Option<String>| -> Vec<String> {
        let v: Value = serde_json::from_str(s.as_deref().unwrap_or("{}")).unwrap();
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    assert_eq!(keys(&api.after_state), keys(&decisions[0].after_state));
}

#[test]
fn the_console_refuses_what_the_policy_refuses() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let (id, _) = d.in_review("Clinic roof", "8000.00");
    // The finance officer holds no hat that may decide approval steps (nor read the brief as a decider).
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in("finance", USER_PASSWORD).status().as_u16(), 303);
    let page = b.get("/console/tasks").text().unwrap();
    let csrf = csrf_of(&page);
    let res = b.post(
        &format!("/console/proposals/{id}/steps/{}/decision", d.step_ids(&id)[0]),
        &[
            ("csrf", &csrf),
            ("hat", "finance_officer"),
            ("decision", "approve"),
            ("version", "1"),
        ],
    );
    assert_eq!(res.status().as_u16(), 403);
    assert!(
        res.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        d.approval(&id)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "pending")
    );
    // The refusal is audited like the API's.
    assert!(app.audit_rows().iter().any(|r| r.action == "access.denied"
        && r.outcome == "denied"
        && r.actor_username.as_deref() == Some("finance")));
    // Without a session: to the sign-in page, never a page of data.
    let mut anon = Browser::new(app);
    let res = anon.get(&format!("/console/proposals/{id}?hat=hc"));
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()[LOCATION], "/console/sign-in");
    // Pages go compressed to a browser that asks.
    let res = app
        .client
        .get(app.url("/console/sign-in"))
        .header("Accept-Encoding", "gzip")
        .send()
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let css = anon.get("/console/static/console.css");
    assert_eq!(css.status().as_u16(), 200);
    assert!(
        css.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

/// The console sessions in the database: (user id, family id, version).
fn session_rows(app: &TestApp) -> Vec<(String, String, i64)> {
    use diesel::prelude::*;
    use qip_pool::db::schema::console_sessions as cs;
    cs::table
        .select((cs::user_id, cs::family_id, cs::version))
        .order(cs::created_at)
        .load(&mut *app.conn())
        .unwrap()
}

/// Runs `sql` on the app's database (arranging time: expiries, idleness).
fn exec(app: &TestApp, sql: &str) -> usize {
    use diesel::RunQueryDsl;
    diesel::sql_query(sql).execute(&mut *app.conn()).unwrap()
}

#[test]
fn parallel_requests_with_an_expired_access_token_refresh_once_and_the_sign_in_survives() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);
    // The cookie is an opaque secret: no token, nothing the API would take.
    let cookie = b.cookies["qip_console"].clone();
    assert!(
        cookie.len() == 64 && cookie.bytes().all(|c| c.is_ascii_hexdigit()),
        "{cookie}"
    );
    assert_eq!(
        app.client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&cookie)
            .send()
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let rows = session_rows(app);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, d.dsrsg.user_id);
    assert_eq!(rows[0].2, 1);
    let refreshes = |app: &TestApp| {
        app.audit_rows()
            .iter()
            .filter(|r| r.action == "auth.refresh" && r.outcome == "success")
            .count()
    };
    assert_eq!(refreshes(app), 0);

    // The access token expires; several tabs ask at the same moment.
    assert_eq!(
        exec(app, "UPDATE console_sessions SET access_expires_at = created_at"),
        1
    );
    let header = b.cookie_header();
    let start = std::sync::Barrier::new(4);
    let pages: Vec<(u16, String)> = std::thread::scope(|scope| {
        let tabs: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    let res = b
                        .client
                        .get(app.url("/console/tasks"))
                        .header(COOKIE, &header)
                        .send()
                        .unwrap();
                    (res.status().as_u16(), res.text().unwrap())
                })
            })
            .collect();
        tabs.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (status, page) in &pages {
        assert_eq!(*status, 200, "{page}");
        assert!(page.contains("Signed in as <strong>dsrsg</strong>"));
    }
    // One refresh, under the session row; no reuse detected; the sign-in goes on.
    assert_eq!(refreshes(app), 1);
    assert!(!app.audit_rows().iter().any(|r| r.action == "auth.refresh_reuse"));
    let rows = session_rows(app);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].2, 2, "refreshed once");
    assert_eq!(b.get("/console/tasks").status().as_u16(), 200);
    assert_eq!(b.cookies["qip_console"], cookie, "the cookie never changes");
}

#[test]
fn a_csrf_token_of_another_session_is_refused_and_changes_nothing() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let (id, _) = d.in_review("Well repair", "10000.00");
    let mut victim = Browser::new(app);
    assert_eq!(victim.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);
    assert!(
        !victim.cookies.contains_key("qip_csrf"),
        "the sign-in form's token is dropped at sign-in"
    );
    let page = victim
        .get(&format!("/console/proposals/{id}?hat=hc"))
        .text()
        .unwrap();
    let own = csrf_of(&page);
    let action = decision_action(&page);
    let version = hidden(&page, "version");

    // The attacker's own session (the same person in another browser, or anyone) has a token of its own ...
    let mut attacker = Browser::new(app);
    assert_eq!(attacker.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);
    let theirs = csrf_of(&attacker.get("/console/tasks").text().unwrap());
    assert_ne!(theirs, own);
    // ... and a token that is not the session's (another session's, the pre-sign-in form's, made up) is refused.
    let sign_in_token = csrf_of(&Browser::new(app).get("/console/sign-in").text().unwrap());
    for forged in [theirs.as_str(), sign_in_token.as_str(), "", &"0".repeat(64)] {
        let res = victim.post(
            &action,
            &[
                ("csrf", forged),
                ("hat", "hc"),
                ("decision", "approve"),
                ("version", &version),
            ],
        );
        assert_eq!(res.status().as_u16(), 403, "token {forged:?}");
        assert!(res.text().unwrap().contains("Form expired"));
    }
    // The victim's token without the victim's cookie (stolen from the page) is refused too.
    let res = attacker.post(
        &action,
        &[
            ("csrf", own.as_str()),
            ("hat", "hc"),
            ("decision", "approve"),
            ("version", &version),
        ],
    );
    assert_eq!(res.status().as_u16(), 403);
    // Sign-out is a form like any other.
    assert_eq!(
        victim
            .post("/console/sign-out", &[("csrf", theirs.as_str())])
            .status()
            .as_u16(),
        403
    );
    assert_eq!(session_rows(app).len(), 2);
    assert!(
        d.approval(&id)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "pending")
    );
    assert!(!app.audit_rows().iter().any(|r| r.action == "approval.decide"));

    // With its own token the same form goes through.
    let res = victim.post(
        &action,
        &[
            ("csrf", own.as_str()),
            ("hat", "hc"),
            ("decision", "approve"),
            ("version", &version),
        ],
    );
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    assert_eq!(d.approval(&id)["steps"][0]["status"], "approved");
}

#[test]
fn signing_out_removes_the_session_and_a_revoked_or_idle_sign_in_ends_it() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);
    let family = session_rows(app)[0].1.clone();
    let csrf = csrf_of(&b.get("/console/tasks").text().unwrap());
    let out = b.post("/console/sign-out", &[("csrf", csrf.as_str())]);
    assert_eq!(out.status().as_u16(), 303);
    assert!(session_rows(app).is_empty(), "sign-out removes the row");
    assert!(
        app.audit_rows()
            .iter()
            .any(|r| r.action == "auth.logout" && r.entity_id.as_deref() == Some(family.as_str())),
        "and ends the API sign-in (its refresh-token family)"
    );
    assert_eq!(b.get("/console/tasks").headers()[LOCATION], "/console/sign-in");

    // The sign-in is revoked behind the console's back (the account is disabled): the session ends at once,
    // although its access token would still verify for minutes.
    let mut ocha = Browser::new(app);
    assert_eq!(ocha.sign_in("ocha", USER_PASSWORD).status().as_u16(), 303);
    assert_eq!(ocha.get("/console/tasks").status().as_u16(), 200);
    let res = app.post_json(
        &format!("/api/v1/users/{}/disable", d.ocha.user_id),
        Some(&d.m._admin.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap());
    let res = ocha.get("/console/tasks");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()[LOCATION], "/console/sign-in");
    assert!(session_rows(app).is_empty(), "the revoked session's row is gone");

    // A session left unused longer than console.session_idle_minutes ends too.
    let mut idle = Browser::new(app);
    assert_eq!(idle.sign_in("dsrsg", USER_PASSWORD).status().as_u16(), 303);
    exec(
        app,
        "UPDATE console_sessions SET last_seen_at = '2000-01-01 00:00:00', created_at = '2000-01-01 00:00:00'",
    );
    assert_eq!(idle.get("/console/tasks").headers()[LOCATION], "/console/sign-in");
    assert!(session_rows(app).is_empty());
}

#[test]
fn a_consultee_answers_with_a_flag_and_a_confidential_note_through_the_form() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let (id, _, _) = d.m.submitted("School roof", "12000.00");
    let mut b = Browser::new(app);
    assert_eq!(b.sign_in("ocha", USER_PASSWORD).status().as_u16(), 303);
    let tasks = b.get("/console/tasks").text().unwrap();
    assert!(tasks.contains("Consultation to answer"), "{tasks}");
    assert!(tasks.contains(&format!("/console/proposals/{id}?hat=consultee")));

    let page = b
        .get(&format!("/console/proposals/{id}?hat=consultee"))
        .text()
        .unwrap();
    assert!(page.contains(r#"<label for="flag_note">"#), "{page}");
    assert!(!page.contains(r#"id="decide""#) || page.contains("None of your hats decides"));
    let csrf = csrf_of(&page);
    let action = format!("/console/proposals/{id}/consultation");
    let answer = [
        ("kind", "objection"),
        ("comment", "Local capacity exists"),
        ("flag_category", "local_capacity"),
        ("flag_severity", "advisory"),
        ("flag_description", "Local masons are available"),
        (
            "flag_note",
            "The masons' cooperative is run by the district chief",
        ),
    ];
    assert_eq!(b.post(&action, &answer).status().as_u16(), 403, "no CSRF token");
    let mut with_token = answer.to_vec();
    with_token.push(("csrf", &csrf));
    let res = b.post(&action, &with_token);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let after = b.get(res.headers()[LOCATION].to_str().unwrap()).text().unwrap();
    assert!(after.contains("Your consultation answer is recorded."));
    assert!(!after.contains(r#"id="answer""#), "answered: no second form");
    assert!(after.contains("The masons&#39; cooperative") || after.contains("The masons' cooperative"));

    // Recorded like an API answer: the flag, its note (readable by the consultee, never by the unit) and the event.
    let consultation: Value = app
        .get_as(&format!("/api/v1/proposals/{id}/consultation"), &d.ocha.access)
        .json()
        .unwrap();
    let flag = &consultation["flags"][0];
    assert_eq!(flag["category"], "local_capacity");
    assert_eq!(flag["severity"], "advisory");
    assert_eq!(
        flag["confidential_note"],
        "The masons' cooperative is run by the district chief"
    );
    let unit_view: Value = app
        .get_as(&format!("/api/v1/proposals/{id}/consultation"), &d.m.unit.access)
        .json()
        .unwrap();
    assert!(unit_view["flags"][0].get("confidential_note").is_none());
    let events: Vec<_> = app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == "consultation.respond")
        .collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].hat.as_deref(), Some("consultee"));
    assert_eq!(events[0].actor_username.as_deref(), Some("ocha"));
}
