//! The console's further pages, black-box over HTTP like a browser without JavaScript: the pool at a glance
//! (figures equal to the ledger's, charts drawn on the server), the proposal's history from the audit trail,
//! reports, flag endings, and the unit's submit and revise — every form changing state through the same
//! service as the API, with the same audit events, refused without its CSRF token, and refused (with an
//! `access.denied` event) to a hat the policy does not allow.

use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::console::{Browser, csrf_of};
use crate::support::{Session, USER_PASSWORD};

/// The value of `name`'s hidden input in the page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = html.find(&marker).unwrap_or_else(|| panic!("no field {name}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

fn signed_in<'a>(d: &'a Desk, username: &str) -> Browser<'a> {
    let mut b = Browser::new(&d.m.app);
    assert_eq!(b.sign_in(username, USER_PASSWORD).status().as_u16(), 303);
    b
}

/// A page that must render: 200, HTML, small, no script.
fn page(b: &mut Browser<'_>, path: &str) -> String {
    let res = b.get(path);
    assert_eq!(res.status().as_u16(), 200, "{path}");
    assert!(
        res.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().unwrap();
    assert!(html.len() < 100_000, "{path} is {} bytes", html.len());
    assert!(!html.contains("<script"), "no script on {path}");
    html
}

fn denied_for(d: &Desk, username: &str, route: &str) -> bool {
    d.m.app.audit_rows().iter().any(|r| {
        r.action == "access.denied"
            && r.outcome == "denied"
            && r.actor_username.as_deref() == Some(username)
            && r.entity_id.as_deref().is_some_and(|e| e.contains(route))
    })
}

fn events(d: &Desk, action: &str) -> Vec<qip_pool::features::audit::repo::AuditEventRow> {
    d.m.app
        .audit_rows()
        .into_iter()
        .filter(|r| r.action == action && r.outcome == "success")
        .collect()
}

fn api_get(d: &Desk, who: &Session, path: &str) -> Value {
    let res = d.m.app.get_as(path, &who.access);
    assert_eq!(res.status().as_u16(), 200, "{path}");
    res.json().unwrap()
}

fn state_of(d: &Desk, id: &str) -> String {
    api_get(d, &d.m.qip, &format!("/api/v1/proposals/{id}"))["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn pay(d: &Desk, id: &str, amount: &str) {
    let res = d
        .m
        .app
        .client
        .post(d.m.app.url(&format!("/api/v1/proposals/{id}/tranches/1/disbursements")))
        .bearer_auth(&d.finance.access)
        .header("Idempotency-Key", format!("pay-{id}"))
        .json(&json!({"amount": amount, "paid_on": chrono::Utc::now().date_naive(), "payment_reference": "PAY-1"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap_or_default());
}

fn approved(d: &Desk, title: &str, amount: &str) -> String {
    let (id, _) = d.in_review(title, amount);
    assert_eq!(d.approve_all(&id)["state"], "approved");
    id
}

#[test]
fn the_pool_page_shows_the_ledger_balances_and_charts_drawn_on_the_server() {
    let d = desk("100000.00");
    let paid = approved(&d, "Kalma borehole", "10000.00");
    pay(&d, &paid, "6000.00");
    approved(&d, "School latrines", "20000.00");
    d.in_review("Market shade", "3000.00");
    let pool = d.m.pool_id.clone();

    let mut b = signed_in(&d, "finance");
    let list = page(&mut b, "/console/pools");
    assert!(list.contains(&format!("/console/pools/{pool}")), "{list}");
    let html = page(&mut b, &format!("/console/pools/{pool}"));

    // The figures are the ledger's: the statement's closing balances, as the API gives them.
    let statement = api_get(&d, &d.finance, &format!("/api/v1/pools/{pool}/statement"));
    assert_eq!(statement["reconciles"], true);
    for figure in ["contributed", "unallocated", "committed", "disbursed"] {
        let value = statement["closing"][figure].as_str().unwrap();
        let shown = format!(r#"data-figure="{figure}">{value} USD<"#);
        assert!(html.contains(&shown), "{figure} = {value}: {html}");
    }
    assert_eq!(statement["closing"]["disbursed"], "6000.00");
    assert_eq!(statement["closing"]["committed"], "24000.00");
    assert_eq!(statement["closing"]["unallocated"], "70000.00");

    // Five charts, each an accessible image with a title and a table of its figures; no inline style.
    assert_eq!(html.matches(r#"<svg role="img""#).count(), 5, "{html}");
    assert_eq!(html.matches("<title>").count(), 6, "the page's and one per chart");
    assert_eq!(html.matches("Figures as a table").count(), 5);
    assert!(!html.contains("style="));
    assert!(html.contains(r#"aria-label="Balances over time""#));
    assert!(html.contains(r#"aria-label="Proposals by state""#));
    // Proposals by state: two approved (one in implementation now), one in review.
    assert!(
        html.contains(r#"<th scope="row">in review</th><td>1</td>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<th scope="row">approved</th><td>1</td>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<th scope="row">in implementation</th><td>1</td>"#),
        "{html}"
    );
    // Committed and disbursed by sector and by adm1 (every proposal: WSH in XY01).
    assert!(
        html.contains(r#"<th scope="row">WSH</th><td>30000.00</td><td>6000.00</td>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<th scope="row">XY01</th><td>30000.00</td><td>6000.00</td>"#),
        "{html}"
    );
    // Turnaround of the decided steps.
    assert!(html.contains("days on average"), "{html}");
    // Balances over time end at today's balances.
    assert!(html.contains("<td>70000.00</td>"));

    // A unit's submitter reads no ledger: refused like the API, and audited.
    let mut unit = signed_in(&d, "cimic");
    let res = unit.get(&format!("/console/pools/{pool}"));
    assert_eq!(res.status().as_u16(), 403);
    assert!(!res.text().unwrap().contains("data-figure"));
    assert!(denied_for(&d, "cimic", "/api/v1/pools/{id}/report"));
    let res = Browser::new(&d.m.app).get(&format!("/console/pools/{pool}"));
    assert_eq!(res.headers()[LOCATION], "/console/sign-in");
}

#[test]
fn the_history_page_shows_the_audit_trail_to_those_who_may_read_it() {
    let d = desk("50000.00");
    let (id, _) = d.in_review("Clinic roof", "8000.00");

    let mut b = signed_in(&d, "oios");
    let brief = page(&mut b, &format!("/console/proposals/{id}"));
    let link = format!("/console/proposals/{id}/history");
    assert!(brief.contains(&link), "the brief links to the history");
    let reads_before = events(&d, "audit.read").len();
    let html = page(&mut b, &link);
    for (action, who, hat) in [
        ("proposal.create", "cimic", "submitter"),
        ("proposal.submit", "cimic", "submitter"),
        ("consultation.respond", "ocha", "consultee"),
    ] {
        let row = html
            .split("<tr>")
            .find(|r| r.contains(&format!("<code>{action}</code>")))
            .unwrap_or_else(|| panic!("{action} in the history: {html}"));
        assert!(row.contains(&format!("<td>{who}</td>")), "{row}");
        assert!(row.contains(&format!(">{hat}")), "{row}");
    }
    assert!(html.contains("Submitted") && html.contains("Consultation answered"));
    // Reading the trail is itself recorded, as on the API.
    let reads = events(&d, "audit.read");
    assert_eq!(reads.len(), reads_before + 1);
    assert_eq!(reads.last().unwrap().actor_username.as_deref(), Some("oios"));

    // The unit may not read the audit trail: a 403 page and an access.denied event; nothing of it shown.
    let mut unit = signed_in(&d, "cimic");
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    assert!(!brief.contains(&link), "no link for those who may not follow it");
    let res = unit.get(&link);
    assert_eq!(res.status().as_u16(), 403);
    assert!(!res.text().unwrap().contains("proposal.submit"));
    assert!(denied_for(&d, "cimic", "/api/v1/audit/events"));
}

#[test]
fn a_unit_submits_and_revises_and_the_raiser_ends_its_flags_from_the_brief_page() {
    let d = desk("100000.00");
    let (id, _) = d.m.draft("Water point", "9000.00");

    // The unit submits its draft from the proposal page.
    let mut unit = signed_in(&d, "cimic");
    let list = page(&mut unit, "/console/proposals");
    assert!(
        list.contains(&format!(
            r#"href="/console/proposals/{id}">(draft) — Water point"#
        )),
        "{list}"
    );
    let other = signed_in(&d, "sapper").get("/console/proposals").text().unwrap();
    assert!(!other.contains(&id), "another unit does not see it");
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    assert!(brief.contains("Submit this proposal"), "{brief}");
    assert!(brief.contains("Type of assistance"), "human labels: {brief}");
    assert!(!brief.contains("assistance type"));
    let csrf = csrf_of(&brief);
    let version = hidden(&brief, "version");
    let submit = format!("/console/proposals/{id}/submit");
    assert_eq!(
        unit.post(&submit, &[("version", &version)]).status().as_u16(),
        403,
        "no CSRF token"
    );
    assert_eq!(state_of(&d, &id), "draft");
    assert!(events(&d, "proposal.submit").is_empty());
    let res = unit.post(&submit, &[("csrf", &csrf), ("version", &version)]);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let after = page(&mut unit, res.headers()[LOCATION].to_str().unwrap());
    assert!(after.contains("The proposal is submitted."));
    assert_eq!(state_of(&d, &id), "in_consultation");
    let submitted = events(&d, "proposal.submit");
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].hat.as_deref(), Some("submitter"));
    assert_eq!(submitted[0].actor_id.as_deref(), Some(d.m.unit.user_id.as_str()));

    // OCHA objects with two flags in one answer (the API takes several).
    let mut ocha = signed_in(&d, "ocha");
    let brief = page(&mut ocha, &format!("/console/proposals/{id}?hat=consultee"));
    assert!(brief.contains(r#"<label for="flag2_category">"#), "{brief}");
    let res = ocha.post(
        &format!("/console/proposals/{id}/consultation"),
        &[
            ("csrf", &csrf_of(&brief)),
            ("kind", "objection"),
            ("flag_category", "do_no_harm"),
            ("flag_severity", "blocking"),
            ("flag_description", "Next to the camp's only water point"),
            ("flag2_category", "local_capacity"),
            ("flag2_severity", "advisory"),
            ("flag2_description", "Local masons are available"),
            ("flag2_note", "Run by the district chief"),
        ],
    );
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let c = api_get(&d, &d.ocha, &format!("/api/v1/proposals/{id}/consultation"));
    let flags = c["flags"].as_array().unwrap();
    assert_eq!(flags.len(), 2, "{c}");
    let flag_id = |category: &str| {
        flags.iter().find(|f| f["category"] == category).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (blocking, advisory) = (flag_id("do_no_harm"), flag_id("local_capacity"));
    assert_eq!(state_of(&d, &id), "flagged");

    // The unit revises from `flagged`, then submits the new version.
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    assert!(brief.contains("Revise this proposal"), "{brief}");
    let res = unit.post(
        &format!("/console/proposals/{id}/revise"),
        &[
            ("csrf", &csrf_of(&brief)),
            ("version", &hidden(&brief, "version")),
        ],
    );
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    assert_eq!(state_of(&d, &id), "draft");
    let revised = events(&d, "proposal.revise");
    assert_eq!(revised.len(), 1);
    assert_eq!(revised[0].hat.as_deref(), Some("submitter"));
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    let res = unit.post(
        &submit,
        &[
            ("csrf", &csrf_of(&brief)),
            ("version", &hidden(&brief, "version")),
        ],
    );
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    assert_eq!(state_of(&d, &id), "in_consultation");
    // The unit sees no button to end a flag (it did not raise them).
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    assert!(!brief.contains("/withdraw\"") && !brief.contains("/resolve\""));

    // The raiser withdraws the advisory flag and confirms the revision resolves the blocking one.
    let brief = page(&mut ocha, &format!("/console/proposals/{id}?hat=consultee"));
    let withdraw = format!("/console/flags/{advisory}/withdraw");
    let resolve = format!("/console/flags/{blocking}/resolve");
    assert!(brief.contains(&withdraw) && brief.contains(&resolve), "{brief}");
    assert_eq!(ocha.post(&withdraw, &[]).status().as_u16(), 403, "no CSRF token");
    assert!(events(&d, "flag.withdraw").is_empty());
    let csrf = csrf_of(&brief);
    let res = ocha.post(&withdraw, &[("csrf", &csrf)]);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let res = ocha.post(&resolve, &[("csrf", &csrf)]);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let c = api_get(&d, &d.ocha, &format!("/api/v1/proposals/{id}/consultation"));
    let status = |fid: &str| {
        c["flags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == fid)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(status(&advisory), "withdrawn");
    assert_eq!(status(&blocking), "resolved");
    assert_eq!(state_of(&d, &id), "in_review");
    for action in ["flag.withdraw", "flag.resolve"] {
        let e = events(&d, action);
        assert_eq!(e.len(), 1, "{action}");
        assert_eq!(e[0].hat.as_deref(), Some("consultee"));
        assert_eq!(e[0].actor_username.as_deref(), Some("ocha"));
        assert_eq!(e[0].entity_type, "flag");
    }
    // The proposal's history shows the events of its flags too (recorded on the flags, not the proposal).
    let mut auditor = signed_in(&d, "oios");
    let history = page(&mut auditor, &format!("/console/proposals/{id}/history"));
    for action in ["proposal.revise", "flag.withdraw", "flag.resolve"] {
        assert!(
            history.contains(&format!("<code>{action}</code>")),
            "{action} in the history: {history}"
        );
    }
}

#[test]
fn the_hc_overrides_a_flag_from_the_brief_page_and_other_hats_are_refused() {
    let d = desk("100000.00");
    let (id, _, _) = d.m.submitted("Police post", "9000.00");
    let res = d.m.app.post_json(
        &format!("/api/v1/proposals/{id}/consultation/responses"),
        Some(&d.ocha.access),
        &json!({"kind": "objection", "flags": [{"category": "do_no_harm", "severity": "blocking",
            "description": "Too close to the camp"}]}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let c: Value = res.json().unwrap();
    let flag = c["flags"][0]["id"].as_str().unwrap().to_owned();
    let action = format!("/console/flags/{flag}/override");
    let justification = "The district council moved the site 500 m away; the risk is gone.";

    // The unit holds no hat that overrides: a 403 page, an access.denied event, the flag still open.
    let mut unit = signed_in(&d, "cimic");
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    assert!(!brief.contains(&action));
    let res = unit.post(
        &action,
        &[("csrf", &csrf_of(&brief)), ("justification", justification)],
    );
    assert_eq!(res.status().as_u16(), 403);
    assert!(denied_for(&d, "cimic", "/api/v1/flags/{id}/override"));

    // The DSRSG overrides in the HC hat, with a justification (too short: refused, as by the API).
    let mut dsrsg = signed_in(&d, "dsrsg");
    let brief = page(&mut dsrsg, &format!("/console/proposals/{id}?hat=hc"));
    assert!(brief.contains(&action), "{brief}");
    let csrf = csrf_of(&brief);
    assert_eq!(
        dsrsg
            .post(&action, &[("justification", justification)])
            .status()
            .as_u16(),
        403,
        "no CSRF token"
    );
    assert_eq!(
        dsrsg
            .post(&action, &[("csrf", &csrf), ("justification", "fine")])
            .status()
            .as_u16(),
        422
    );
    assert!(events(&d, "flag.override").is_empty());
    let res = dsrsg.post(&action, &[("csrf", &csrf), ("justification", justification)]);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let after = page(&mut dsrsg, res.headers()[LOCATION].to_str().unwrap());
    assert!(after.contains("The flag is ended."));
    let c = api_get(&d, &d.m.qip, &format!("/api/v1/proposals/{id}/consultation"));
    assert_eq!(c["flags"][0]["status"], "overridden");
    let e = events(&d, "flag.override");
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].hat.as_deref(), Some("hc"));
    assert_eq!(e[0].actor_id.as_deref(), Some(d.dsrsg.user_id.as_str()));
    assert_eq!(e[0].entity_id.as_deref(), Some(flag.as_str()));
}

#[test]
fn the_unit_submits_reports_and_the_qip_officer_accepts_or_returns_them() {
    let d = desk("100000.00");
    let id = approved(&d, "Kalma borehole", "10000.00");
    let reports = format!("/console/proposals/{id}/reports");

    let mut unit = signed_in(&d, "cimic");
    let brief = page(&mut unit, &format!("/console/proposals/{id}"));
    assert!(brief.contains(&reports), "the brief links to the reports");
    let html = page(&mut unit, &reports);
    assert!(html.contains(r#"<label for="narrative">"#), "{html}");
    assert!(!html.contains("Accept the report"));
    let progress = [
        ("kind", "progress"),
        ("narrative", "Drilling done"),
        ("percent_complete", "60"),
        ("expenditure_to_date", "6000.00"),
    ];
    assert_eq!(
        unit.post(&reports, &progress).status().as_u16(),
        403,
        "no CSRF token"
    );
    assert!(events(&d, "report.submit").is_empty());
    let mut with_token = progress.to_vec();
    let csrf = csrf_of(&html);
    with_token.push(("csrf", &csrf));
    let res = unit.post(&reports, &with_token);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let after = page(&mut unit, res.headers()[LOCATION].to_str().unwrap());
    assert!(after.contains("Your report is submitted.") && after.contains("Drilling done"));
    // A completion report before implementation started: refused by the service, as by the API.
    let res = unit.post(
        &reports,
        &[
            ("csrf", &csrf),
            ("kind", "completion"),
            ("expenditure_to_date", "9000.00"),
            ("women", "5"),
            ("local_authority", "Kalma council"),
            ("handover_date", "2027-04-01"),
            ("maintenance", "Water committee"),
        ],
    );
    assert_eq!(res.status().as_u16(), 409);
    let listed = api_get(&d, &d.m.unit, &format!("/api/v1/proposals/{id}/reports"));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["content"]["percent_complete"], 60);
    let report_id = listed[0]["id"].as_str().unwrap().to_owned();
    let submitted = events(&d, "report.submit");
    assert_eq!(submitted.len(), 1);
    assert_eq!(submitted[0].hat.as_deref(), Some("submitter"));
    assert_eq!(submitted[0].entity_id.as_deref(), Some(report_id.as_str()));

    // Finance may read the reports but not decide them.
    let mut finance = signed_in(&d, "finance");
    let html = page(&mut finance, &reports);
    assert!(!html.contains("Accept the report"));
    let decision = format!("/console/reports/{report_id}/decision");
    let res = finance.post(&decision, &[("csrf", &csrf_of(&html)), ("decision", "accept")]);
    assert_eq!(res.status().as_u16(), 403);
    assert!(denied_for(&d, "finance", "/api/v1/reports/{id}/accept"));

    // The QIP officer returns it (reasons required), the unit sends another, the officer accepts that one.
    let mut qip = signed_in(&d, "qip");
    let html = page(&mut qip, &reports);
    assert!(
        html.contains(&decision) && html.contains("Accept the report"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    assert_eq!(
        qip.post(&decision, &[("decision", "return")]).status().as_u16(),
        403
    );
    assert_eq!(
        qip.post(&decision, &[("csrf", &csrf), ("decision", "return")])
            .status()
            .as_u16(),
        422
    );
    let res = qip.post(
        &decision,
        &[
            ("csrf", &csrf),
            ("decision", "return"),
            ("reason", "Add the receipts"),
        ],
    );
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let returned = events(&d, "report.return");
    assert_eq!(returned.len(), 1);
    assert_eq!(returned[0].hat.as_deref(), Some("qip_officer"));
    let res = unit.post(&reports, &with_token);
    assert_eq!(res.status().as_u16(), 303);
    let listed = api_get(&d, &d.m.unit, &format!("/api/v1/proposals/{id}/reports"));
    let second = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "submitted")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = qip.post(
        &format!("/console/reports/{second}/decision"),
        &[("csrf", &csrf), ("decision", "accept")],
    );
    assert_eq!(res.status().as_u16(), 303);
    let after = page(&mut qip, res.headers()[LOCATION].to_str().unwrap());
    assert!(after.contains("The report is accepted."));
    let accepted = events(&d, "report.accept");
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].hat.as_deref(), Some("qip_officer"));
    assert_eq!(accepted[0].entity_id.as_deref(), Some(second.as_str()));
    let listed = api_get(&d, &d.m.qip, &format!("/api/v1/proposals/{id}/reports"));
    let statuses: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["returned", "accepted"]);
}

#[test]
fn finance_pays_a_tranche_once_from_its_form_and_the_unit_is_refused() {
    let d = desk("100000.00");
    let id = approved(&d, "Kalma borehole", "10000.00");
    let tranches = format!("/console/proposals/{id}/tranches");

    let mut finance = signed_in(&d, "finance");
    let brief = page(&mut finance, &format!("/console/proposals/{id}"));
    assert!(brief.contains(&tranches), "the brief links to the tranches");
    let html = page(&mut finance, &tranches);
    let action = format!("/console/proposals/{id}/tranches/1/disbursements");
    assert!(html.contains(&action), "{html}");
    assert!(
        !html.contains("/tranches/2/disbursements"),
        "tranche 2 waits for its condition"
    );
    let csrf = csrf_of(&html);
    let key = hidden(&html, "idempotency_key");
    let today = chrono::Utc::now().date_naive().to_string();
    let fields = [
        ("idempotency_key", key.as_str()),
        ("amount", "6000.00"),
        ("paid_on", today.as_str()),
        ("payment_reference", "PAY-77"),
    ];
    assert_eq!(
        finance.post(&action, &fields).status().as_u16(),
        403,
        "no CSRF token"
    );
    assert!(events(&d, "implementation.disburse").is_empty());
    let mut with_token = fields.to_vec();
    with_token.push(("csrf", &csrf));
    let res = finance.post(&action, &with_token);
    assert_eq!(res.status().as_u16(), 303, "{}", res.text().unwrap_or_default());
    let after = page(&mut finance, res.headers()[LOCATION].to_str().unwrap());
    assert!(after.contains("The payment is recorded."));
    // The same form sent again (a double click, a retry) replays the first payment: paid once.
    assert_eq!(finance.post(&action, &with_token).status().as_u16(), 303);
    let t = api_get(&d, &d.finance, &format!("/api/v1/proposals/{id}/tranches"));
    assert_eq!(t[0]["paid"], "6000.00");
    let paid = events(&d, "implementation.disburse");
    assert_eq!(paid.len(), 1);
    assert_eq!(paid[0].hat.as_deref(), Some("finance_officer"));
    assert_eq!(state_of(&d, &id), "in_implementation");
    let statement = api_get(
        &d,
        &d.finance,
        &format!("/api/v1/pools/{}/statement", d.m.pool_id),
    );
    assert_eq!(statement["closing"]["disbursed"], "6000.00");

    // The unit may read its tranches but not pay: no form, and a refused post is audited.
    let mut unit = signed_in(&d, "cimic");
    let html = page(&mut unit, &tranches);
    assert!(!html.contains("disbursements\""));
    let res = unit.post(
        &action,
        &[
            ("csrf", &csrf_of(&html)),
            ("idempotency_key", "k-1"),
            ("amount", "1.00"),
            ("paid_on", today.as_str()),
            ("payment_reference", "X"),
        ],
    );
    assert_eq!(res.status().as_u16(), 403);
    assert!(denied_for(
        &d,
        "cimic",
        "/api/v1/proposals/{id}/tranches/{n}/disbursements"
    ));
}

#[test]
fn a_brief_with_the_most_flags_it_lists_stays_under_100_kb_with_every_flag_form() {
    let d = desk("100000.00");
    let (plain, _, _) = d.m.submitted("Plain", "9000.00");
    let (busy, _, _) = d.m.submitted("Busy", "9000.00");
    let text =
        "The site sits next to the only water point of the camp; moving it 500 m east avoids the queue. ";
    let flags: Vec<Value> = (0..20)
        .map(|i| {
            json!({"category": "do_no_harm", "severity": "blocking",
            "description": format!("{i}: {}", text.repeat(2)), "confidential_note": text})
        })
        .collect();
    let res = d.m.app.post_json(
        &format!("/api/v1/proposals/{busy}/consultation/responses"),
        Some(&d.ocha.access),
        &json!({"kind": "objection", "flags": flags}),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());

    // Read as HC, every open flag carries its override form: the heaviest reading of the brief.
    let mut dsrsg = signed_in(&d, "dsrsg");
    let without = page(&mut dsrsg, &format!("/console/proposals/{plain}?hat=hc")).len();
    let with = page(&mut dsrsg, &format!("/console/proposals/{busy}?hat=hc"));
    assert_eq!(with.matches("Override this flag as HC").count(), 20);
    let per_flag = (with.len() - without) / 20;
    // The brief lists at most 100 flags: a page with 100 such flags stays under 100 KB uncompressed.
    assert!(
        without + 100 * per_flag < 100_000,
        "{without} bytes + 100 × {per_flag} per flag"
    );
}
