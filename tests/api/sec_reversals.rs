//! Issue 11 item 4: money reversals keep the proposal consistent. A raw reversal is for contributions only;
//! a commitment, disbursement, release or refund is refused with a 409 that names the correction (cancel,
//! refund), and nothing moves. The ledger check also holds every tranche's `paid` figure to the disbursements
//! posted for it: a tampered tranche row makes both the endpoint and `qip-pool ledger check` fail.

use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::{TestApp, assert_problem};

fn reverse(d: &Desk, transaction: &str, key: &str) -> reqwest::blocking::Response {
    d.m.app
        .client
        .post(
            d.m.app
                .url(&format!("/api/v1/transactions/{transaction}/reverse")),
        )
        .bearer_auth(&d.finance.access)
        .header("Idempotency-Key", key)
        .json(&json!({"reason": "Booked against the wrong proposal"}))
        .send()
        .unwrap()
}

fn pay(d: &Desk, id: &str, n: i32, amount: &str, key: &str) -> Value {
    let res = d
        .m
        .app
        .client
        .post(d.m.app.url(&format!("/api/v1/proposals/{id}/tranches/{n}/disbursements")))
        .bearer_auth(&d.finance.access)
        .header("Idempotency-Key", key)
        .json(&json!({"amount": amount, "paid_on": chrono::Utc::now().date_naive(), "payment_reference": format!("PAY-{key}")}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap_or_default());
    res.json().unwrap()
}

fn transactions(d: &Desk, query: &str) -> Vec<Value> {
    let page: Value =
        d.m.app
            .get_as(
                &format!("/api/v1/pools/{}/transactions?limit=200&{query}", d.m.pool_id),
                &d.finance.access,
            )
            .json()
            .unwrap();
    page["items"].as_array().unwrap().clone()
}

fn balances(d: &Desk) -> Value {
    d.m.app
        .get_as(&format!("/api/v1/pools/{}", d.m.pool_id), &d.finance.access)
        .json::<Value>()
        .unwrap()["balances"]
        .clone()
}

fn proposal(d: &Desk, id: &str) -> Value {
    d.m.app
        .get_as(&format!("/api/v1/proposals/{id}"), &d.m.qip.access)
        .json()
        .unwrap()
}

fn tranches(d: &Desk, id: &str) -> Vec<Value> {
    d.m.app
        .get_as(&format!("/api/v1/proposals/{id}/tranches"), &d.finance.access)
        .json()
        .unwrap()
}

fn ledger_check(app: &TestApp, d: &Desk) -> Value {
    let res = app.get_as("/api/v1/ledger/check", &d.finance.access);
    assert_eq!(res.status().as_u16(), 200);
    res.json().unwrap()
}

#[track_caller]
fn assert_refused(d: &Desk, transaction: &str, key: &str, correction: &str) {
    let before = (transactions(d, "").len(), balances(d));
    let problem = assert_problem(reverse(d, transaction, key), 409, "conflict");
    assert_eq!(problem["correction"], correction, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("cannot be reversed"),
        "{problem}"
    );
    assert_eq!((transactions(d, "").len(), balances(d)), before, "nothing moved");
    let original: Value =
        d.m.app
            .get_as(&format!("/api/v1/transactions/{transaction}"), &d.finance.access)
            .json()
            .unwrap();
    assert!(original["reversed_by"].is_null());
}

#[test]
fn only_contributions_are_reversed_raw_and_proposal_money_is_corrected_through_the_proposal() {
    let d = desk("100000.00");
    let id = {
        let (id, _) = d.in_review("Kalma borehole", "10000.00");
        assert_eq!(d.approve_all(&id)["state"], "approved");
        id
    };
    let commitment = transactions(&d, &format!("kind=commitment&proposal_id={id}"));
    assert_eq!(commitment.len(), 1);
    let commitment = commitment[0]["id"].as_str().unwrap().to_owned();

    // Today this returned the money to unallocated while the proposal stayed approved with a payable tranche.
    assert_refused(&d, &commitment, "rev-commitment", "cancel_proposal");
    assert_eq!(proposal(&d, &id)["state"], "approved");
    assert_eq!(tranches(&d, &id)[0]["payable_now"], "6000.00");
    assert_eq!(balances(&d)["committed"], "10000.00");

    // Today reversing a payment left the tranche marked paid.
    let disbursement = pay(&d, &id, 1, "6000.00", "pay-1")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_refused(&d, &disbursement, "rev-disbursement", "refund");
    assert_eq!(tranches(&d, &id)[0]["status"], "paid");
    assert_eq!(balances(&d)["disbursed"], "6000.00");

    // A refund and a release touch the proposal's money too.
    let refund =
        d.m.app
            .client
            .post(d.m.app.url(&format!("/api/v1/proposals/{id}/refunds")))
            .bearer_auth(&d.finance.access)
            .header("Idempotency-Key", "refund-1")
            .json(&json!({"amount": "500.00", "reason": "Pump cheaper than quoted"}))
            .send()
            .unwrap();
    assert_eq!(refund.status().as_u16(), 201);
    let refund = refund.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    assert_refused(&d, &refund, "rev-refund", "none");
    let version = proposal(&d, &id)["version"].as_i64().unwrap();
    let res =
        d.m.app
            .client
            .post(d.m.app.url(&format!("/api/v1/proposals/{id}/cancel")))
            .bearer_auth(&d.dsrsg.access)
            .header("Acting-Hat", "dsrsg")
            .header("If-Match", format!("\"{version}\""))
            .json(&json!({"reason": "Site inaccessible after floods"}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    let release = transactions(&d, &format!("kind=release&proposal_id={id}"));
    assert_eq!(release[0]["amount"], "4000.00");
    assert_refused(&d, release[0]["id"].as_str().unwrap(), "rev-release", "none");

    // A contribution still reverses, once, linked to its original.
    let donor = transactions(&d, "kind=contribution")[0]["contributor_organization_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let extra =
        d.m.app
            .client
            .post(
                d.m.app
                    .url(&format!("/api/v1/pools/{}/contributions", d.m.pool_id)),
            )
            .bearer_auth(&d.finance.access)
            .header("Idempotency-Key", "extra")
            .json(&json!({"contributor_organization_id": donor, "amount": "250.00", "currency": "USD"}))
            .send()
            .unwrap();
    let extra = extra.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let res = reverse(&d, &extra, "rev-contribution");
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.json::<Value>().unwrap()["reversal_of"], extra.as_str());
    assert!(ledger_check(&d.m.app, &d)["ok"].as_bool().unwrap());
}

fn qip_pool_cli(args: &[&str], db_url: &str) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qip-pool"));
    cmd.args(args);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("QIP__")) {
        cmd.env_remove(key);
    }
    cmd.env("RUST_LOG", "error").env("QIP__DATABASE__URL", db_url);
    crate::support::run_child(&mut cmd)
}

#[test]
fn the_ledger_check_holds_tranche_paid_figures_to_their_disbursements() {
    let d = desk("100000.00");
    let (id, _) = d.in_review("Clinic roof", "10000.00");
    assert_eq!(d.approve_all(&id)["state"], "approved");
    pay(&d, &id, 1, "2500.00", "pay-a");
    pay(&d, &id, 1, "1000.00", "pay-b");
    let report = ledger_check(&d.m.app, &d);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["tranches_checked"], 2);
    let out = qip_pool_cli(&["ledger", "check"], &d.m.app.db.url());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Tamper: the tranche claims more paid than its disbursements posted (as a raw reversal of a payment
    // would have left it, the other way round).
    let mut conn = d.m.app.db.connect();
    conn.batch_execute(&format!(
        "UPDATE tranches SET paid_minor = 600000, status = 'paid' WHERE proposal_id = '{id}' AND number = 1"
    ))
    .unwrap();
    let report = ledger_check(&d.m.app, &d);
    assert_eq!(report["ok"], false);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0]["kind"], "tranche_paid_mismatch");
    assert_eq!(problems[0]["subject"], format!("{id}/tranches/1"));
    assert!(
        problems[0]["detail"].as_str().unwrap().contains("600000")
            && problems[0]["detail"].as_str().unwrap().contains("350000"),
        "{problems:?}"
    );
    let out = qip_pool_cli(&["ledger", "check"], &d.m.app.db.url());
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["problems"][0]["kind"], "tranche_paid_mismatch");

    // A disbursement of the proposal that no payment row names is reported too.
    conn.batch_execute(&format!(
        "UPDATE tranches SET paid_minor = 350000, status = 'scheduled' WHERE proposal_id = '{id}' AND number = 1"
    ))
    .unwrap();
    assert_eq!(ledger_check(&d.m.app, &d)["ok"], true);
    let payment: String = {
        use diesel::prelude::*;
        use qip_pool::db::schema::tranche_payments;
        tranche_payments::table
            .filter(tranche_payments::proposal_id.eq(&id))
            .filter(tranche_payments::amount_minor.eq(100000_i64))
            .select(tranche_payments::transaction_id)
            .first(&mut conn)
            .unwrap()
    };
    conn.batch_execute(&format!(
        "DELETE FROM tranche_payments WHERE transaction_id = '{payment}'"
    ))
    .unwrap();
    let report = ledger_check(&d.m.app, &d);
    let kinds: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "disbursement_outside_tranches")
            .count(),
        1,
        "{report}"
    );
    assert!(kinds.contains(&"tranche_paid_mismatch"), "{report}");
}
