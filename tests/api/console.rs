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

#[test]
fn an_unusable_access_token_is_refreshed_under_the_api_rules_and_a_replayed_refresh_token_ends_the_sign_in() {
    let d = desk("50000.00");
    let app = &d.m.app;
    let api = app.login("dsrsg", USER_PASSWORD);
    let mut b = Browser::new(app);
    // An expired (here: unusable) access token with a live refresh token: the console refreshes it.
    b.cookies
        .insert("qip_console".into(), format!("expired~{}", api.refresh));
    let res = b.get("/console/tasks");
    assert_eq!(res.status().as_u16(), 200);
    let renewed = b.cookies["qip_console"].clone();
    let (access, refresh) = renewed.split_once('~').unwrap();
    assert_ne!(refresh, api.refresh, "the refresh token is rotated");
    assert_eq!(access.split('.').count(), 3, "a fresh access token");
    assert!(
        app.audit_rows()
            .iter()
            .any(|r| r.action == "auth.refresh" && r.outcome == "success")
    );

    // Replaying the spent refresh token is reuse: the whole sign-in ends, for the console as for the API.
    let mut replay = Browser::new(app);
    replay
        .cookies
        .insert("qip_console".into(), format!("expired~{}", api.refresh));
    let res = replay.get("/console/tasks");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()[LOCATION], "/console/sign-in");
    assert!(app.audit_rows().iter().any(|r| r.action == "auth.refresh_reuse"));
    b.cookies
        .insert("qip_console".into(), format!("expired~{refresh}"));
    assert_eq!(b.get("/console/tasks").status().as_u16(), 303);
    let res = app.post_json("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh}));
    assert_eq!(res.status().as_u16(), 401);
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
