//! From approval to close over HTTP: tranches, payments, reports, refunds, cancellation and close-out, with the
//! ledger, the pool statement and the audit chain checked at the end; payment refusals leave the ledger as it
//! was; concurrent payments, refunds and cancellations never pay a proposal more than its commitment.

use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::Method;
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::{Session, assert_problem};

impl Desk {
    pub(crate) fn pay(
        &self,
        who: &Session,
        key: Option<&str>,
        id: &str,
        n: i32,
        amount: &str,
    ) -> reqwest::blocking::Response {
        let mut req = self.m.app.client.post(self.m.app.url(&format!("/api/v1/proposals/{id}/tranches/{n}/disbursements")))
            .bearer_auth(&who.access)
            .json(&json!({"amount": amount, "paid_on": chrono::Utc::now().date_naive(), "payment_reference": format!("PAY-{n}")}));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().unwrap()
    }

    fn tranches(&self, id: &str) -> Vec<Value> {
        self.m
            .app
            .get_as(&format!("/api/v1/proposals/{id}/tranches"), &self.finance.access)
            .json()
            .unwrap()
    }

    fn proposal(&self, id: &str) -> Value {
        self.m
            .app
            .get_as(&format!("/api/v1/proposals/{id}"), &self.m.qip.access)
            .json()
            .unwrap()
    }

    fn transactions(&self) -> usize {
        let page: Value = self
            .m
            .app
            .get_as(
                &format!("/api/v1/pools/{}/transactions?limit=200", self.m.pool_id),
                &self.finance.access,
            )
            .json()
            .unwrap();
        page["items"].as_array().unwrap().len()
    }

    fn report(&self, id: &str, body: Value) -> String {
        let res = self.m.app.post_json(
            &format!("/api/v1/proposals/{id}/reports"),
            Some(&self.m.unit.access),
            &body,
        );
        assert_eq!(res.status().as_u16(), 201, "{}", res.text().unwrap_or_default());
        res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
    }

    fn accept(&self, report: &str) -> Value {
        self.m
            .app
            .post_json(
                &format!("/api/v1/reports/{report}/accept"),
                Some(&self.m.qip.access),
                &json!({}),
            )
            .json()
            .unwrap()
    }

    pub(crate) fn approved(&self, title: &str, amount: &str) -> String {
        let (id, _) = self.in_review(title, amount);
        let a = self.approve_all(&id);
        assert_eq!(a["state"], "approved");
        id
    }
}

fn completion() -> Value {
    json!({"kind": "completion", "narrative": "Borehole working", "expenditure_to_date": "10000.00",
           "beneficiaries_reached": {"women": 50, "men": 40, "girls": 310, "boys": 290},
           "handover": {"local_authority": "Kalma district council", "date": "2027-04-01", "maintenance": "Water committee"}})
}

#[test]
fn a_proposal_goes_from_draft_to_closed_through_every_actor() {
    let d = desk("100000.00");
    let id = d.approved("Kalma borehole", "10000.00");
    let t = d.tranches(&id);
    assert_eq!(t.len(), 2);
    assert_eq!(
        (
            t[0]["amount"].as_str().unwrap(),
            t[0]["payable_now"].as_str().unwrap()
        ),
        ("6000.00", "6000.00")
    );
    assert_eq!(
        (
            t[1]["amount"].as_str().unwrap(),
            t[1]["payable_now"].as_str().unwrap()
        ),
        ("4000.00", "0.00")
    );
    assert_eq!(t[1]["condition"], "on_completion_report_accepted");
    let tasks: Vec<Value> =
        d.m.app
            .get_as("/api/v1/me/tasks", &d.finance.access)
            .json()
            .unwrap();
    assert!(tasks.iter().any(|t| t["kind"] == "tranche_to_pay"));

    assert_eq!(
        d.pay(&d.finance, Some("pay-1"), &id, 1, "6000.00")
            .status()
            .as_u16(),
        201
    );
    assert_eq!(d.proposal(&id)["state"], "in_implementation");
    let progress = d.report(&id, json!({"kind": "progress", "narrative": "Drilling done", "percent_complete": 60, "expenditure_to_date": "6000.00"}));
    assert_eq!(d.accept(&progress)["status"], "accepted");
    let done = d.report(&id, completion());
    let tasks: Vec<Value> =
        d.m.app
            .get_as("/api/v1/me/tasks", &d.m.qip.access)
            .json()
            .unwrap();
    assert!(tasks.iter().any(|t| t["kind"] == "report_to_accept"));
    assert_eq!(d.accept(&done)["status"], "accepted");
    assert_eq!(d.proposal(&id)["state"], "completed");
    assert_eq!(
        d.pay(&d.finance, Some("pay-2"), &id, 2, "4000.00")
            .status()
            .as_u16(),
        201
    );
    let refund =
        d.m.app
            .client
            .post(d.m.app.url(&format!("/api/v1/proposals/{id}/refunds")))
            .bearer_auth(&d.finance.access)
            .header("Idempotency-Key", "refund-1")
            .json(&json!({"amount": "150.00", "reason": "Pump cheaper than quoted"}))
            .send()
            .unwrap();
    assert_eq!(refund.status().as_u16(), 201);

    let p = d.proposal(&id);
    let res = d.m.with_if_match(Method::POST, &format!("/api/v1/proposals/{id}/close"), &d.m.qip, p["version"].as_i64().unwrap(),
        Some(&json!({"evaluation": {"objectives_met": "yes", "confidence_building_effect": "Community meetings with the battalion resumed", "lessons": "Agree maintenance early"}})));
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    let p = d.proposal(&id);
    assert_eq!(p["state"], "closed");
    assert_eq!(p["iati_activity_status"], 4);

    let pool: Value =
        d.m.app
            .get_as(&format!("/api/v1/pools/{}", d.m.pool_id), &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(
        pool["balances"],
        json!({"contributed": "100000.00", "unallocated": "90150.00", "committed": "0.00", "disbursed": "9850.00"})
    );
    let report: Value =
        d.m.app
            .get_as("/api/v1/ledger/check", &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let st: Value =
        d.m.app
            .get_as(
                &format!("/api/v1/pools/{}/statement", d.m.pool_id),
                &d.finance.access,
            )
            .json()
            .unwrap();
    assert_eq!(st["reconciles"], true);
    assert_eq!(st["closing"], pool["balances"]);
    assert!(
        qip_pool::features::audit::verify_chain(&mut d.m.app.conn())
            .unwrap()
            .intact
    );
}

#[test]
fn payments_are_refused_before_their_condition_above_the_remainder_by_an_approver_or_without_a_key() {
    let d = desk("100000.00");
    let id = d.approved("Fence", "10000.00");
    let before = d.transactions();
    assert_problem(d.pay(&d.finance, None, &id, 1, "100.00"), 400, "bad-request");
    let problem = assert_problem(d.pay(&d.finance, Some("k2"), &id, 2, "100.00"), 409, "conflict");
    assert_eq!(problem["condition"], "on_completion_report_accepted");
    let problem = assert_problem(
        d.pay(&d.finance, Some("k3"), &id, 1, "6000.01"),
        422,
        "validation",
    );
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("6000.00")
    );
    // Someone who decided a step, also holding the finance hat, may not pay.
    let admin = &d.m._admin;
    d.m.app
        .grant(admin, &d.hoo.user_id, &json!({"hat": "finance_officer"}));
    let res = d.m.app.client.post(d.m.app.url(&format!("/api/v1/proposals/{id}/tranches/1/disbursements"))).bearer_auth(&d.hoo.access)
        .header("Idempotency-Key", "k4").header("Acting-Hat", "finance_officer")
        .json(&json!({"amount": "100.00", "paid_on": chrono::Utc::now().date_naive(), "payment_reference": "X"})).send().unwrap();
    assert_problem(res, 403, "forbidden");
    assert_eq!(d.transactions(), before, "the ledger is unchanged");
    // A refused request does not consume its key.
    assert_eq!(
        d.pay(&d.finance, Some("k3"), &id, 1, "6000.00").status().as_u16(),
        201
    );
}

#[test]
fn cancelling_after_a_partial_payment_releases_exactly_the_unpaid_remainder() {
    let d = desk("100000.00");
    let id = d.approved("Roof", "10000.00");
    assert_eq!(
        d.pay(&d.finance, Some("p1"), &id, 1, "2500.00").status().as_u16(),
        201
    );
    let p = d.proposal(&id);
    let res =
        d.m.app
            .client
            .post(d.m.app.url(&format!("/api/v1/proposals/{id}/cancel")))
            .bearer_auth(&d.dsrsg.access)
            .header("Acting-Hat", "dsrsg")
            .header("If-Match", format!("\"{}\"", p["version"]))
            .json(&json!({"reason": "Site inaccessible after floods"}))
            .send()
            .unwrap();
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    assert_eq!(d.proposal(&id)["state"], "cancelled");
    let releases: Value =
        d.m.app
            .get_as(
                &format!(
                    "/api/v1/pools/{}/transactions?kind=release&proposal_id={id}",
                    d.m.pool_id
                ),
                &d.finance.access,
            )
            .json()
            .unwrap();
    assert_eq!(releases["items"][0]["amount"], "7500.00");
    let tranches = d.tranches(&id);
    assert!(tranches.iter().all(|t| t["status"] == "voided"));
    let pool: Value =
        d.m.app
            .get_as(&format!("/api/v1/pools/{}", d.m.pool_id), &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(pool["balances"]["committed"], "0.00");
    assert_eq!(pool["balances"]["disbursed"], "2500.00");
    assert_problem(
        d.pay(&d.finance, Some("p2"), &id, 1, "100.00"),
        409,
        "invalid-transition",
    );
}

#[test]
fn concurrent_payments_refunds_and_cancellations_never_overpay() {
    let d = desk("200000.00");
    let ids: Vec<String> = (0..5)
        .map(|i| d.approved(&format!("Concurrent {i}"), "10000.00"))
        .collect();
    let ok = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for thread in 0..6usize {
            let (d, ids, ok) = (&d, &ids, &ok);
            s.spawn(move || {
                for i in 0..8usize {
                    let id = &ids[(thread * 3 + i) % ids.len()];
                    let status = match (thread + i) % 5 {
                        0..=2 => d
                            .pay(&d.finance, Some(&format!("t{thread}-{i}")), id, 1, "1500.00")
                            .status()
                            .as_u16(),
                        3 => {
                            d.m.app
                                .client
                                .post(d.m.app.url(&format!("/api/v1/proposals/{id}/refunds")))
                                .bearer_auth(&d.finance.access)
                                .header("Idempotency-Key", format!("r{thread}-{i}"))
                                .json(&json!({"amount": "100.00", "reason": "Returned change"}))
                                .send()
                                .unwrap()
                                .status()
                                .as_u16()
                        }
                        _ => {
                            let v = d.proposal(id)["version"].as_i64().unwrap();
                            d.m.app
                                .client
                                .post(d.m.app.url(&format!("/api/v1/proposals/{id}/cancel")))
                                .bearer_auth(&d.dsrsg.access)
                                .header("Acting-Hat", "dsrsg")
                                .header("If-Match", format!("\"{v}\""))
                                .json(&json!({"reason": "Stopped by security"}))
                                .send()
                                .unwrap()
                                .status()
                                .as_u16()
                        }
                    };
                    assert!([200, 201, 409, 412, 422].contains(&status), "unexpected {status}");
                    if status < 300 {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    assert!(ok.load(Ordering::SeqCst) > 0);
    let report: Value =
        d.m.app
            .get_as("/api/v1/ledger/check", &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(report["ok"], true, "{report}");
    for id in &ids {
        let page: Value =
            d.m.app
                .get_as(
                    &format!(
                        "/api/v1/pools/{}/transactions?kind=disbursement&proposal_id={id}&limit=200",
                        d.m.pool_id
                    ),
                    &d.finance.access,
                )
                .json()
                .unwrap();
        // Money stays exact in the test too: minor units from the decimal strings.
        let minor = |v: &Value| -> i64 { v.as_str().unwrap().replace('.', "").parse().unwrap() };
        let paid: i64 = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| minor(&t["amount"]))
            .sum();
        assert!(
            paid <= 1_000_000,
            "{id} paid {paid} minor units of a 10000.00 commitment"
        );
        let tranches = d.tranches(id);
        assert_eq!(
            minor(&tranches[0]["paid"]),
            paid,
            "payments recorded on tranche 1 match the ledger"
        );
        assert!(minor(&tranches[0]["paid"]) <= 600_000);
    }
}
