//! Stored statuses and kinds outside the proposal lifecycle are read as enums at the repo boundary: a value
//! this code never writes, found in the database, is an opaque 500 (cause logged), never a default.

use diesel::RunQueryDsl;
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::{Session, TestApp, USER_PASSWORD, assert_problem};

/// Writes a value this code never writes straight into the database (ids are UUIDs: safe to inline).
pub(crate) fn corrupt(app: &TestApp, sql: &str) {
    let mut conn = app.conn();
    let changed = diesel::sql_query(sql).execute(&mut *conn).unwrap();
    assert!(changed >= 1, "nothing changed: {sql}");
}

/// The answer is a 500 `internal` problem whose body does not carry `secret` (the stored value that caused it).
pub(crate) fn assert_opaque_500(res: reqwest::blocking::Response, secret: &str) {
    let body = assert_problem(res, 500, "internal");
    let text = body.to_string();
    assert!(!text.contains(secret), "the cause leaked: {text}");
}

#[test]
fn an_unknown_stored_activity_status_is_an_opaque_500_not_a_default() {
    let m = Mission::new();
    let res = m.app.post_json("/api/v1/activities", Some(&m.consultee.access), &json!({
        "title": "School WASH rehabilitation", "sector_code": "WSH", "adm1_pcode": "XY01", "adm2_pcode": "XY0102",
        "start_date": "2026-10-01"}));
    assert_eq!(res.status().as_u16(), 201);
    let activity: Value = res.json().unwrap();
    assert_eq!(activity["status"], "planned");
    let id = activity["id"].as_str().unwrap();
    corrupt(
        &m.app,
        &format!("UPDATE activities SET status = 'dormant' WHERE id = '{id}'"),
    );
    assert_opaque_500(
        m.app
            .get_as(&format!("/api/v1/activities/{id}"), &m.consultee.access),
        "dormant",
    );
    assert_opaque_500(m.app.get_as("/api/v1/activities", &m.consultee.access), "dormant");
    // Closing it refuses too, rather than guessing it was open.
    let res = m.app.post_json(
        &format!("/api/v1/activities/{id}/close"),
        Some(&m.consultee.access),
        &json!({}),
    );
    assert_opaque_500(res, "dormant");
}

#[test]
fn an_unknown_stored_user_status_is_an_opaque_500_not_a_default() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "QIPSEC", "mission_office");
    let bob = app.user_with_hats(&admin, "bob", &office, &["auditor"]);
    let res = app.get_as(&format!("/api/v1/users/{}", bob.user_id), &admin.access);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["status"], "active");
    corrupt(
        &app,
        &format!("UPDATE users SET status = 'frozen' WHERE id = '{}'", bob.user_id),
    );
    // Shown to the administrator: neither `active` nor `disabled`, and the list does not skip the row.
    assert_opaque_500(
        app.get_as(&format!("/api/v1/users/{}", bob.user_id), &admin.access),
        "frozen",
    );
    assert_opaque_500(app.get_as("/api/v1/users", &admin.access), "frozen");
    // Bob's own token does not act as an active account's would.
    assert_opaque_500(app.get_as("/api/v1/audit/events", &bob.access), "frozen");
    // Nor does a new sign-in.
    let res = app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": "bob", "password": USER_PASSWORD}),
    );
    assert_opaque_500(res, "frozen");
    // The administrator's own requests are unaffected.
    let res = app.get_as(&format!("/api/v1/users/{}", admin.user_id), &admin.access);
    assert_eq!(res.status().as_u16(), 200);
}

#[test]
fn the_user_status_filter_is_an_enum_and_locked_means_locked_now() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "QIPSEC", "mission_office");
    let bob = app.user_with_hats(&admin, "bob", &office, &["auditor"]);
    let carol = app.user_with_hats(&admin, "carol", &office, &["auditor"]);
    let until = (chrono::Utc::now() + chrono::Duration::hours(1)).naive_utc();
    {
        use diesel::prelude::*;
        use qip_pool::db::schema::users;
        diesel::update(users::table.find(&carol.user_id))
            .set(users::locked_until.eq(Some(until)))
            .execute(&mut *app.conn())
            .unwrap();
    }
    let ids = |status: &str| -> Vec<String> {
        let page: Value = app
            .get_as(
                &format!("/api/v1/users?organization_id={office}&status={status}"),
                &admin.access,
            )
            .json()
            .unwrap();
        page["items"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|u| {
                assert_eq!(u["status"], status, "{u}");
                u["id"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(ids("active"), [bob.user_id.as_str()]);
    assert_eq!(ids("locked"), [carol.user_id.as_str()]);
    assert!(ids("disabled").is_empty());
    let body = assert_problem(
        app.get_as("/api/v1/users?status=frozen", &admin.access),
        400,
        "bad-request",
    );
    assert!(body["detail"].as_str().unwrap().contains("active"), "{body}");
}

#[test]
fn an_unknown_stored_organisation_kind_is_an_opaque_500() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "UNICEF", "un_agency");
    corrupt(
        &app,
        &format!("UPDATE organizations SET kind = 'militia' WHERE id = '{org}'"),
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/organizations/{org}"), &admin.access),
        "militia",
    );
    assert_opaque_500(app.get_as("/api/v1/organizations", &admin.access), "militia");
}

/// `granter` asks for `hat` for `user`: a grant awaiting a second administrator (202); the request's id.
fn pending_grant(app: &TestApp, granter: &Session, user: &Session, hat: &str) -> String {
    let res = app.post_json(
        &format!("/api/v1/users/{}/hats", user.user_id),
        Some(&granter.access),
        &json!({"hat": hat}),
    );
    assert_eq!(res.status().as_u16(), 202, "pending");
    res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
}

#[test]
fn an_unknown_stored_hat_grant_request_status_is_a_500_not_a_dropped_row() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "FINSEC", "mission_section");
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);
    let id = pending_grant(&app, &admin, &bob, "finance_officer");
    corrupt(
        &app,
        &format!("UPDATE hat_grant_requests SET status = 'parked' WHERE id = '{id}'"),
    );
    assert_opaque_500(
        app.get_as("/api/v1/hat-grant-requests?status=all", &admin.access),
        "parked",
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/hat-grant-requests/{id}"), &admin.access),
        "parked",
    );
    // An unknown stored hat in a request is refused the same way.
    corrupt(
        &app,
        &format!("UPDATE hat_grant_requests SET status = 'pending', hat = 'warlord' WHERE id = '{id}'"),
    );
    assert_opaque_500(app.get_as("/api/v1/hat-grant-requests", &admin.access), "warlord");
    // The list filter is an enum: an unknown value is a clear 400 naming the values.
    let body = assert_problem(
        app.get_as("/api/v1/hat-grant-requests?status=parked", &admin.access),
        400,
        "bad-request",
    );
    assert!(body["detail"].as_str().unwrap().contains("confirmed"), "{body}");
}

#[test]
fn an_unknown_stored_hat_of_a_grant_is_a_500_not_a_skipped_grant() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "QIPSEC", "mission_office");
    let bob = app.user_with_hats(&admin, "bob", &office, &["auditor"]);
    let hats: Value = app
        .get_as(&format!("/api/v1/users/{}/hats", bob.user_id), &admin.access)
        .json()
        .unwrap();
    let hat_id = hats[0]["id"].as_str().unwrap().to_owned();
    corrupt(
        &app,
        &format!("UPDATE hats SET hat = 'warlord' WHERE id = '{hat_id}'"),
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/users/{}/hats", bob.user_id), &admin.access),
        "warlord",
    );
    // Bob's requests fail rather than go on without the grant.
    assert_opaque_500(app.get_as("/api/v1/me", &bob.access), "warlord");
}

#[test]
fn an_unknown_stored_notification_kind_is_an_opaque_500() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "DSS", "mission_office");
    let second = app.user_with_hats(&admin, "admin2", &office, &["admin"]);
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);
    pending_grant(&app, &admin, &bob, "hc");
    let page: Value = app
        .get_as("/api/v1/me/notifications", &second.access)
        .json()
        .unwrap();
    let item = &page["items"][0];
    assert_eq!(item["kind"], "hat_grant.pending", "{page}");
    let id = item["id"].as_str().unwrap();
    corrupt(
        &app,
        &format!("UPDATE notifications SET kind = 'hat_grant.whispered' WHERE id = '{id}'"),
    );
    assert_opaque_500(
        app.get_as("/api/v1/me/notifications", &second.access),
        "whispered",
    );
}

#[test]
fn an_unknown_stored_ledger_transaction_kind_is_an_opaque_500_not_skipped_money() {
    let m = Mission::new();
    let admin = &m._admin;
    let donor = m.app.create_org(admin, "DONOR", "contributor");
    let office = m.app.create_org(admin, "FINSEC", "mission_office");
    let finance = m
        .app
        .user_with_hats(admin, "finance", &office, &["finance_officer"]);
    let res = m
        .app
        .client
        .post(m.app.url(&format!("/api/v1/pools/{}/contributions", m.pool_id)))
        .bearer_auth(&finance.access)
        .header("Idempotency-Key", "stored-kinds")
        .json(&json!({"contributor_organization_id": donor, "amount": "1000.00", "currency": "USD"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let transaction: Value = res.json().unwrap();
    assert_eq!(transaction["kind"], "contribution");
    let statement = format!("/api/v1/pools/{}/statement", m.pool_id);
    assert_eq!(m.app.get_as(&statement, &finance.access).status().as_u16(), 200);

    // A transaction kind this code never writes, in the daily and monthly totals statements are summed from:
    // the statement does not leave that money out.
    for table in ["ledger_daily_totals", "ledger_monthly_totals"] {
        corrupt(
            &m.app,
            &format!(
                "UPDATE {table} SET transaction_kind = 'donation' WHERE account_kind = 'unallocated' \
                 AND pool_id = '{}'",
                m.pool_id
            ),
        );
    }
    assert_opaque_500(m.app.get_as(&statement, &finance.access), "donation");
}

/// `SELECT COUNT(*) AS n …`, for database effects.
fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(&mut *app.conn())
        .unwrap()
        .n
}

/// A proposal in review: (desk, proposal id, version, its steps in order).
fn reviewed() -> (crate::approval::Desk, String, i64, Vec<Value>) {
    let d = crate::approval::desk("100000.00");
    let (id, version) = d.in_review("Borehole for Kalma school", "30000.00");
    let steps = d.approval(&id)["steps"].as_array().unwrap().clone();
    assert!(steps.len() >= 2, "{steps:?}");
    (d, id, version, steps)
}

#[test]
fn an_unknown_stored_step_hat_is_a_500_and_its_deciders_are_not_silently_skipped() {
    let (d, id, version, steps) = reviewed();
    let first = &steps[0];
    let next_id = steps[1]["id"].as_str().unwrap();
    // The next step (still to be opened) holds a hat this code never writes.
    corrupt(
        &d.m.app,
        &format!("UPDATE approval_steps SET hat = 'warlord' WHERE id = '{next_id}'"),
    );
    let awaiting = format!(
        "SELECT COUNT(*) AS n FROM notification_events WHERE kind = 'approval.step_awaiting_decision' \
         AND proposal_id = '{id}'"
    );
    let before = count(&d.m.app, &awaiting);
    // Approving the first step would tell the next step's deciders: with its hat unknown, the decision fails
    // rather than commit with nobody told.
    let hat = first["hat"].as_str().unwrap();
    let who = if hat == "head_of_office" { &d.hoo } else { &d.dsrsg };
    let res = d.decide(
        who,
        Some(hat),
        &id,
        first["id"].as_str().unwrap(),
        version,
        json!({"decision": "approve", "comment": "Cleared"}),
    );
    assert_opaque_500(res, "warlord");
    assert_eq!(
        count(&d.m.app, &awaiting),
        before,
        "no notification left out a decider"
    );
    let first_id = first["id"].as_str().unwrap();
    assert_eq!(
        count(
            &d.m.app,
            &format!(
                "SELECT COUNT(*) AS n FROM approval_steps WHERE id = '{first_id}' AND status = 'pending' \
                 AND decided_by IS NULL"
            )
        ),
        1,
        "the decision rolled back"
    );
    // Reading the steps refuses too, rather than skip or guess the step.
    assert_opaque_500(
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/approval"), &d.m.qip.access),
        "warlord",
    );
    assert_opaque_500(
        d.m.app.get_as(
            &format!("/api/v1/pools/{}/turnaround", d.m.pool_id),
            &d.m.qip.access,
        ),
        "warlord",
    );
}

#[test]
fn an_unknown_stored_step_decision_decided_hat_or_reason_is_an_opaque_500() {
    let (d, id, version, steps) = reviewed();
    let first = &steps[0];
    let first_id = first["id"].as_str().unwrap();
    let hat = first["hat"].as_str().unwrap();
    let who = if hat == "head_of_office" { &d.hoo } else { &d.dsrsg };
    let res = d.decide(
        who,
        Some(hat),
        &id,
        first_id,
        version,
        json!({"decision": "approve", "comment": "Cleared"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let approval = d.approval(&id);
    assert_eq!(approval["steps"][0]["decision"], "approve");
    assert_eq!(approval["steps"][0]["decided_hat"], hat);
    let path = format!("/api/v1/proposals/{id}/approval");
    let turnaround = format!("/api/v1/pools/{}/turnaround", d.m.pool_id);
    for (column, planted, restored) in [
        ("decision", "'shrug'", "'approve'".to_owned()),
        ("decided_hat", "'warlord'", format!("'{hat}'")),
        (
            "reason",
            "'{\"kind\": \"whim\"}'",
            format!("'{}'", first["reason"]),
        ),
    ] {
        corrupt(
            &d.m.app,
            &format!("UPDATE approval_steps SET {column} = {planted} WHERE id = '{first_id}'"),
        );
        let secret = planted.trim_matches('\'');
        assert_opaque_500(d.m.app.get_as(&path, &d.m.qip.access), secret);
        if column == "reason" {
            // The turnaround does not file the step under an `unknown` kind.
            assert_opaque_500(d.m.app.get_as(&turnaround, &d.m.qip.access), "whim");
        }
        corrupt(
            &d.m.app,
            &format!("UPDATE approval_steps SET {column} = {restored} WHERE id = '{first_id}'"),
        );
        assert_eq!(
            d.m.app.get_as(&path, &d.m.qip.access).status().as_u16(),
            200,
            "{column} restored"
        );
    }
}

#[test]
fn an_unknown_stored_settlement_channel_of_a_hat_grant_request_is_an_opaque_500() {
    let (app, admin) = TestApp::with_admin();
    let office = app.create_org(&admin, "FINSEC", "mission_section");
    let second = app.user_with_hats(&admin, "admin2", &office, &["admin"]);
    let bob = app.user_with_hats(&admin, "bob", &office, &[]);
    let id = pending_grant(&app, &second, &bob, "finance_officer");
    let res = app.post_json(
        &format!("/api/v1/hat-grant-requests/{id}/confirm"),
        Some(&admin.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap_or_default());
    let path = format!("/api/v1/hat-grant-requests/{id}");
    let request: Value = app.get_as(&path, &admin.access).json().unwrap();
    assert_eq!(request["decided_via"], "api", "{request}");
    corrupt(
        &app,
        &format!("UPDATE hat_grant_requests SET decided_via = 'carrier_pigeon' WHERE id = '{id}'"),
    );
    assert_opaque_500(app.get_as(&path, &admin.access), "carrier_pigeon");
    assert_opaque_500(
        app.get_as("/api/v1/hat-grant-requests?status=all", &admin.access),
        "carrier_pigeon",
    );
}

#[test]
fn an_unknown_stored_setup_token_purpose_is_an_opaque_500_and_spends_nothing() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "NRC", "ngo");
    let (id, token) = app.create_user(&admin, "omar", &org);
    corrupt(
        &app,
        &format!("UPDATE password_setup_tokens SET purpose = 'backdoor' WHERE user_id = '{id}'"),
    );
    assert_opaque_500(app.setup_password(&token, "a-long-new-passphrase-42"), "backdoor");
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM password_setup_tokens WHERE user_id = '{id}' AND used_at IS NULL"
            )
        ),
        1,
        "the token is not spent"
    );
    let res = app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": "omar", "password": "a-long-new-passphrase-42"}),
    );
    assert_eq!(res.status().as_u16(), 401, "no password was set");
}

/// The one text column of the first row `sql` selects (`… AS v`).
fn text(app: &TestApp, sql: &str) -> String {
    #[derive(diesel::QueryableByName)]
    struct Text {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    diesel::sql_query(sql)
        .get_result::<Text>(&mut *app.conn())
        .unwrap()
        .v
}

#[test]
fn an_unknown_stored_delivery_channel_is_neither_tried_nor_dead_lettered() {
    let (d, _, _, _) = reviewed();
    let app = &d.m.app;
    let pending_email = "SELECT id AS v FROM notification_deliveries WHERE channel = 'email' \
                         AND status = 'pending' ORDER BY id LIMIT 1";
    let delivery = text(app, pending_email);
    corrupt(
        app,
        &format!("UPDATE notification_deliveries SET channel = 'pigeon' WHERE id = '{delivery}'"),
    );
    // The worker as `serve` runs it, writing emails to a folder.
    let mut settings = crate::support::test_settings(&app.db.url());
    settings.notifications.outbox_dir = std::env::temp_dir()
        .join(format!("qip-outbox-{}", uuid::Uuid::now_v7()))
        .display()
        .to_string();
    let worker = qip_pool::features::notifications::worker::Worker::new(&settings.notifications).unwrap();
    let pool = qip_pool::db::build_pool(&settings.database).unwrap();
    for _ in 0..5 {
        worker.run_once(&pool);
    }
    // The others went out; this one is left as it was (its load fails, logged) rather than dead-lettered as
    // if an attempt had been made on some channel.
    assert!(
        count(
            app,
            "SELECT COUNT(*) AS n FROM notification_deliveries WHERE status = 'delivered'"
        ) > 0
    );
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT COUNT(*) AS n FROM notification_deliveries WHERE id = '{delivery}' \
                 AND status = 'pending' AND attempts = 0 AND last_error IS NULL"
            )
        ),
        1
    );
}

#[test]
fn an_unknown_stored_email_preference_is_an_opaque_500_not_immediate() {
    let d = crate::approval::desk("100000.00");
    let app = &d.m.app;
    let res = app
        .client
        .put(app.url("/api/v1/me/notification-preferences"))
        .bearer_auth(&d.ocha.access)
        .json(&json!({"email": "daily_digest"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    corrupt(
        app,
        &format!(
            "UPDATE notification_preferences SET email_mode = 'hourly' WHERE user_id = '{}'",
            d.ocha.user_id
        ),
    );
    assert_opaque_500(
        app.get_as("/api/v1/me/notification-preferences", &d.ocha.access),
        "hourly",
    );
    // A submission that consults OCHA would email its focal point: it fails rather than email at once.
    let (id, version) = d.m.draft("Kalma borehole", "9000.00");
    assert_opaque_500(d.m.submit(&id, version), "hourly");
    let proposal: Value = app
        .get_as(&format!("/api/v1/proposals/{id}"), &d.m.unit.access)
        .json()
        .unwrap();
    assert_eq!(proposal["state"], "draft", "the submission rolled back");
}

#[test]
fn an_unknown_stored_tranche_condition_is_not_a_task_to_pay_on_approval() {
    let d = crate::approval::desk("100000.00");
    let (id, _) = d.in_review("Kalma borehole", "10000.00");
    let approved = d.approve_all(&id);
    assert_eq!(approved["state"], "approved", "{approved}");
    let tasks = |who: &crate::support::Session| d.m.app.get_as("/api/v1/me/tasks", &who.access);
    let listed: Vec<Value> = tasks(&d.finance).json().unwrap();
    let payable = |t: &&Value| t["kind"] == "tranche_to_pay" && t["proposal_id"] == id.as_str();
    assert_eq!(listed.iter().filter(payable).count(), 1, "{listed:?}");
    // Every tranche of the proposal gets a condition this code never writes: it is not taken for
    // `on_approval` (payable now) — the list fails instead.
    let changed = diesel::sql_query(format!(
        "UPDATE tranches SET condition = 'on_full_moon' WHERE proposal_id = '{id}'"
    ))
    .execute(&mut *d.m.app.conn())
    .unwrap();
    assert!(changed >= 1);
    assert_opaque_500(tasks(&d.finance), "on_full_moon");
}

#[test]
fn an_unknown_stored_waived_limit_is_an_opaque_500_not_nothing_waived() {
    let (d, id, _, _) = reviewed();
    corrupt(
        &d.m.app,
        &format!(
            "UPDATE proposal_versions SET waiver_reasons = '[\"curfew\"]' WHERE proposal_id = '{id}' \
             AND number = 1"
        ),
    );
    // Read as "nothing waived", the brief would hide the waiver the DSRSG step is there for.
    for path in [
        format!("/api/v1/proposals/{id}"),
        format!("/api/v1/proposals/{id}/brief"),
    ] {
        assert_opaque_500(d.m.app.get_as(&path, &d.m.qip.access), "curfew");
    }
}

#[test]
fn an_unknown_stored_partner_kind_is_an_opaque_500_not_a_schedule_for_no_partner() {
    let d = crate::approval::desk("100000.00");
    let (id, _) = d.in_review("Kalma borehole", "10000.00");
    // The implementing partner's kind decides reimbursement mode (one tranche against reports).
    corrupt(
        &d.m.app,
        &format!(
            "UPDATE proposal_versions SET content = REPLACE(content, '\"local_authority\"', '\"warlord\"') \
             WHERE proposal_id = '{id}' AND number = 1"
        ),
    );
    assert_opaque_500(
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/brief"), &d.m.qip.access),
        "warlord",
    );
    // The steps are decided in turn; the final approval, which plans the tranches, fails and changes nothing.
    let mut first = true;
    let refused = loop {
        let a = d.approval(&id);
        let step = a["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["current"] == true)
            .cloned()
            .expect("a step is open until the final approval");
        let hat = step["hat"].as_str().unwrap().to_owned();
        let who = if hat == "head_of_office" { &d.hoo } else { &d.dsrsg };
        let mut body = json!({"decision": "approve", "comment": "Approved"});
        if !first && who.user_id == d.dsrsg.user_id {
            body["multi_hat_acknowledgement"] = json!("I decide again, in another hat");
        }
        first = first && who.user_id != d.dsrsg.user_id;
        let res = d.decide(
            who,
            Some(&hat),
            &id,
            step["id"].as_str().unwrap(),
            a["version"].as_i64().unwrap(),
            body,
        );
        if res.status().as_u16() != 200 {
            break res;
        }
    };
    assert_opaque_500(refused, "warlord");
    assert_eq!(
        count(
            &d.m.app,
            &format!("SELECT COUNT(*) AS n FROM tranches WHERE proposal_id = '{id}'")
        ),
        0
    );
    assert_eq!(
        count(
            &d.m.app,
            &format!("SELECT COUNT(*) AS n FROM proposals WHERE id = '{id}' AND state = 'in_review'")
        ),
        1,
        "the final approval rolled back"
    );
}
