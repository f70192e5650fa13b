//! Stored kinds and states the ledger and the exchange read (transaction and account kinds, proposal states,
//! round outcomes, flag categories, step hats and reasons, currencies) are read as enums at the repo boundary:
//! a value this code never writes, found in the database, makes the pool report, the IATI file, a transaction
//! or the ledger check an opaque 500 (cause logged) — never money left out, a row skipped, a default, or the
//! stored text passed through.

use diesel::RunQueryDsl;
use serde_json::Value;

use crate::stored_kinds::{assert_opaque_500, corrupt};
use crate::support::{Session, TestApp};
use qip_pool::features::demo::DEMO_PASSWORD;

/// The demo mission: a pool with contributions, commitments, disbursements, consultation rounds, a flag and
/// decided approval steps.
fn demo() -> (TestApp, Session, String) {
    let app = TestApp::spawn_with(|_| {}, |_| {});
    let auth =
        qip_pool::features::identity::AuthRuntime::new(&crate::support::test_settings(&app.db.url()).auth)
            .unwrap();
    qip_pool::features::demo::seed(&mut app.conn(), &auth).unwrap();
    let finance = app.login("finance", DEMO_PASSWORD);
    let pools: Value = app.get_as("/api/v1/pools", &finance.access).json().unwrap();
    let pool = pools["items"][0]["id"].as_str().unwrap().to_owned();
    (app, finance, pool)
}

/// [`corrupt`] on the append-only `ledger_transactions`: its guard trigger is taken off first (this test's
/// database is its own), as only someone bypassing the service could.
fn corrupt_ledger(app: &TestApp, sql: &str) {
    let lift = if app.db.url().starts_with("postgres") {
        "ALTER TABLE ledger_transactions DISABLE TRIGGER ledger_transactions_append_only"
    } else {
        "DROP TRIGGER ledger_transactions_no_update"
    };
    diesel::sql_query(lift).execute(&mut *app.conn()).unwrap();
    corrupt(app, sql);
}

fn report(app: &TestApp, who: &Session, pool: &str) -> Value {
    let res = app.get_as(&format!("/api/v1/pools/{pool}/report"), &who.access);
    assert_eq!(res.status().as_u16(), 200);
    res.json().unwrap()
}

fn iati_status(app: &TestApp, who: &Session, pool: &str) -> u16 {
    app.get_as(
        &format!("/api/v1/pools/{pool}/exports/iati-activities.xml"),
        &who.access,
    )
    .status()
    .as_u16()
}

/// The id of one transaction of the pool of `kind`.
fn a_transaction(app: &TestApp, who: &Session, pool: &str, kind: &str) -> String {
    let page: Value = app
        .get_as(
            &format!("/api/v1/pools/{pool}/transactions?kind={kind}"),
            &who.access,
        )
        .json()
        .unwrap();
    page["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no {kind}: {page}"))
        .to_owned()
}

#[test]
fn an_unknown_stored_transaction_kind_is_a_500_in_the_report_and_the_iati_file_not_money_left_out() {
    let (app, finance, pool) = demo();
    let before = report(&app, &finance, &pool);
    assert_ne!(before["totals"]["contributed"], "0.00", "{before}");
    assert_eq!(iati_status(&app, &finance, &pool), 200);
    let contribution = a_transaction(&app, &finance, &pool, "contribution");
    corrupt_ledger(
        &app,
        &format!("UPDATE ledger_transactions SET kind = 'donation' WHERE id = '{contribution}'"),
    );
    // The report's totals sum the stored kinds: a kind it cannot read is not a contribution left out.
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "donation",
    );
    assert_opaque_500(
        app.get_as(
            &format!("/api/v1/pools/{pool}/report?format=csv"),
            &finance.access,
        ),
        "donation",
    );
    assert_opaque_500(
        app.get_as(
            &format!("/api/v1/pools/{pool}/exports/iati-activities.xml"),
            &finance.access,
        ),
        "donation",
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/transactions/{contribution}"), &finance.access),
        "donation",
    );
}

#[test]
fn an_unknown_kind_of_a_reversed_transaction_is_a_500_in_the_report() {
    let (app, finance, pool) = demo();
    report(&app, &finance, &pool);
    let commitment = a_transaction(&app, &finance, &pool, "commitment");
    // Money of a proposal is counted per the kind it moves as: a stored kind the report cannot read is an
    // error, not a line without it.
    corrupt_ledger(
        &app,
        &format!("UPDATE ledger_transactions SET kind = 'pledge' WHERE id = '{commitment}'"),
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "pledge",
    );
}

#[test]
fn an_unknown_stored_proposal_state_is_a_500_in_the_report_not_a_line_of_its_own() {
    let (app, finance, pool) = demo();
    let before = report(&app, &finance, &pool);
    let states: Vec<&str> = before["by_state"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"in_implementation"), "{before}");
    corrupt(
        &app,
        &format!(
            "UPDATE proposals SET state = 'dormant' WHERE pool_id = '{pool}' AND state = 'in_implementation'"
        ),
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "dormant",
    );
    assert_opaque_500(
        app.get_as(
            &format!("/api/v1/pools/{pool}/exports/iati-activities.xml"),
            &finance.access,
        ),
        "dormant",
    );
}

#[test]
fn an_unknown_stored_round_outcome_is_a_500_not_a_key_of_the_report() {
    let (app, finance, pool) = demo();
    let before = report(&app, &finance, &pool);
    assert!(
        before["consultation_outcomes"]["clear"].as_i64().unwrap_or(0) > 0,
        "{before}"
    );
    corrupt(
        &app,
        "UPDATE consultation_rounds SET outcome = 'murky' WHERE outcome = 'clear'",
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "murky",
    );
}

#[test]
fn an_unknown_stored_flag_category_is_a_500_not_a_key_of_the_report() {
    let (app, finance, pool) = demo();
    let before = report(&app, &finance, &pool);
    assert!(
        before["flags_by_category"]["duplication"].as_i64().unwrap_or(0) > 0,
        "{before}"
    );
    corrupt(
        &app,
        "UPDATE flags SET category = 'gossip' WHERE category = 'duplication'",
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "gossip",
    );
}

#[test]
fn an_unreadable_stored_step_reason_is_a_500_not_a_step_of_kind_step() {
    let (app, finance, pool) = demo();
    let before = report(&app, &finance, &pool);
    let steps = before["approval_turnaround"].as_array().unwrap();
    assert!(!steps.is_empty(), "{before}");
    assert!(
        steps
            .iter()
            .all(|s| !s["step"].as_str().unwrap().ends_with(":step")),
        "{before}"
    );
    corrupt(
        &app,
        "UPDATE approval_steps SET reason = '{\"kind\":\"whim\"}' WHERE decided_at IS NOT NULL",
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "whim",
    );
}

#[test]
fn an_unknown_stored_hat_of_a_decided_step_is_a_500_in_the_report() {
    let (app, finance, pool) = demo();
    report(&app, &finance, &pool);
    corrupt(
        &app,
        "UPDATE approval_steps SET hat = 'jester' WHERE decided_at IS NOT NULL",
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "jester",
    );
}

#[test]
fn an_unknown_stored_organisation_kind_is_a_500_in_the_report() {
    let (app, finance, pool) = demo();
    let before = report(&app, &finance, &pool);
    assert!(!before["by_organization"].as_array().unwrap().is_empty());
    corrupt(
        &app,
        &format!(
            "UPDATE organizations SET kind = 'guild' WHERE id IN (SELECT organization_id FROM proposals \
             WHERE pool_id = '{pool}')"
        ),
    );
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/report"), &finance.access),
        "guild",
    );
}

#[test]
fn an_unknown_stored_original_currency_is_a_500_not_an_original_amount_left_out() {
    let (app, finance, pool) = demo();
    let contribution = a_transaction(&app, &finance, &pool, "contribution");
    let path = format!("/api/v1/transactions/{contribution}");
    let res = app.get_as(&path, &finance.access);
    assert_eq!(res.status().as_u16(), 200);
    corrupt_ledger(
        &app,
        &format!(
            "UPDATE ledger_transactions SET original_currency = 'QQQ', original_minor = 100, \
             fx_rate = '1.5' WHERE id = '{contribution}'"
        ),
    );
    assert_opaque_500(app.get_as(&path, &finance.access), "QQQ");
    assert_opaque_500(
        app.get_as(&format!("/api/v1/pools/{pool}/transactions"), &finance.access),
        "QQQ",
    );
}

#[test]
fn an_unknown_stored_account_kind_in_the_monthly_totals_fails_the_ledger_check() {
    let (app, finance, pool) = demo();
    let res = app.get_as("/api/v1/ledger/check", &finance.access);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["ok"], true);
    corrupt(
        &app,
        &format!(
            "UPDATE ledger_monthly_totals SET account_kind = 'piggy_bank' WHERE pool_id = '{pool}' \
             AND account_kind = 'unallocated'"
        ),
    );
    // The check reads the roll-up as kinds; one it cannot read is not compared as text.
    assert_opaque_500(app.get_as("/api/v1/ledger/check", &finance.access), "piggy_bank");
}

#[test]
fn an_unknown_stored_idempotency_status_is_a_500_not_a_free_key() {
    let (app, finance, pool) = demo();
    let contribution = a_transaction(&app, &finance, &pool, "contribution");
    let original: Value = app
        .get_as(&format!("/api/v1/transactions/{contribution}"), &finance.access)
        .json()
        .unwrap();
    let contributor = original["contributor_organization_id"].as_str().unwrap();
    let send = || {
        app.client
            .post(app.url(&format!("/api/v1/pools/{pool}/contributions")))
            .bearer_auth(&finance.access)
            .header("Idempotency-Key", "stored-status")
            .json(
                &serde_json::json!({"contributor_organization_id": contributor, "amount": "10.00",
                "currency": "USD"}),
            )
            .send()
            .unwrap()
    };
    let first = send();
    assert_eq!(first.status().as_u16(), 201);
    let replay = send();
    assert_eq!(replay.status().as_u16(), 201);
    assert_eq!(
        replay
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    let count = |app: &TestApp| -> i64 {
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query("SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_transactions")
            .get_result::<N>(&mut *app.conn())
            .unwrap()
            .n
    };
    let before = count(&app);
    corrupt(
        &app,
        "UPDATE idempotency_keys SET status = 'mulling' WHERE idem_key = 'stored-status'",
    );
    // A record this code cannot read is not a key to run the request again under.
    assert_opaque_500(send(), "mulling");
    assert_eq!(count(&app), before);
}
