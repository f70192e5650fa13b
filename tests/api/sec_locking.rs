//! Issue 11 item 7: rules that depend on current state are checked under the proposal's row lock.
//!
//! Both tests race requests of one multi-hatted person against each other. On the old code the rule was read
//! before the lock: a request that read the steps while the other's transaction was still open, then waited
//! for the lock, went ahead on a stale read. That interleaving is a timing window, not a certainty, so these
//! tests fire several staggered attempts per round over many rounds: on the old code they fail in most runs
//! (not deterministically); with the checks under the lock no interleaving can pass, so they never fail.

use std::time::Duration;

use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::Session;

const ROUNDS: usize = 8;
/// Staggered starts of the racing attempts, in milliseconds after the first request.
const OFFSETS_MS: [u64; 5] = [0, 2, 5, 9, 14];

fn step_ids_in_order(d: &Desk, id: &str) -> Vec<String> {
    d.approval(id)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn racing_decisions_in_two_hats_cannot_both_skip_the_multi_hat_acknowledgement() {
    let d = desk("100000.00");
    let mut serialized_after = 0;
    for round in 0..ROUNDS {
        // 30,000 needs the HC, the RC and the DSRSG: all three are the same person.
        let (id, version) = d.in_review(&format!("Bridge {round}"), "30000.00");
        let steps = step_ids_in_order(&d, &id);
        assert_eq!(d.approval(&id)["steps"][1]["hat"], "rc");
        let (first, seconds): (u16, Vec<u16>) = std::thread::scope(|s| {
            let first = s.spawn(|| {
                d.decide(
                    &d.dsrsg,
                    Some("hc"),
                    &id,
                    &steps[0],
                    version,
                    json!({"decision": "approve"}),
                )
                .status()
                .as_u16()
            });
            // The RC step, sent for the version the HC decision makes, without an acknowledgement.
            let seconds: Vec<_> = OFFSETS_MS
                .iter()
                .map(|ms| {
                    let (d, id, step) = (&d, &id, &steps[1]);
                    s.spawn(move || {
                        std::thread::sleep(Duration::from_millis(*ms));
                        d.decide(
                            &d.dsrsg,
                            Some("rc"),
                            id,
                            step,
                            version + 1,
                            json!({"decision": "approve"}),
                        )
                        .status()
                        .as_u16()
                    })
                })
                .collect();
            (
                first.join().unwrap(),
                seconds.into_iter().map(|h| h.join().unwrap()).collect(),
            )
        });
        assert_eq!(
            first, 200,
            "round {round}: the first decision needs no acknowledgement"
        );
        for status in &seconds {
            // 412: it ran before the HC decision; 422: after it, and was asked for the acknowledgement.
            assert!(
                [412, 422].contains(status),
                "round {round}: a second decision in another hat without acknowledgement got {status} ({seconds:?})"
            );
        }
        serialized_after += seconds.iter().filter(|s| **s == 422).count();
        let rc = &d.approval(&id)["steps"][1];
        assert_eq!(rc["status"], "pending", "round {round}: {rc}");
    }
    assert!(
        serialized_after > 0,
        "the race never reached the acknowledgement check"
    );
}

fn pay(d: &Desk, who: &Session, id: &str, key: &str) -> u16 {
    d.m.app
        .client
        .post(d.m.app.url(&format!("/api/v1/proposals/{id}/tranches/1/disbursements")))
        .bearer_auth(&who.access)
        .header("Acting-Hat", "finance_officer")
        .header("Idempotency-Key", key)
        .json(&json!({"amount": "100.00", "paid_on": chrono::Utc::now().date_naive(), "payment_reference": key}))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn whoever_gives_the_final_approval_cannot_pay_even_when_the_approval_lands_during_the_payment() {
    let d = desk("1000000.00");
    // A second DSRSG who is also a finance officer: they decide only the final step, so before that decision
    // commits nothing says they approved. Separation of duties must still keep them from paying it.
    let payer = d.m.app.user_with_hats(
        &d.m._admin,
        "dsrsg.finance",
        &d.dsrsg.organization_id,
        &["dsrsg", "finance_officer"],
    );
    let mut refused_after_approval = 0;
    for round in 0..ROUNDS {
        let (id, version) = d.in_review(&format!("Clinic {round}"), "30000.00");
        let steps = step_ids_in_order(&d, &id);
        let ack =
            json!({"decision": "approve", "multi_hat_acknowledgement": "I decide again, in another hat"});
        let res = d.decide(
            &d.dsrsg,
            Some("hc"),
            &id,
            &steps[0],
            version,
            json!({"decision": "approve"}),
        );
        assert_eq!(res.status().as_u16(), 200);
        let res = d.decide(&d.dsrsg, Some("rc"), &id, &steps[1], version + 1, ack.clone());
        assert_eq!(res.status().as_u16(), 200);
        let (approval, payments): (u16, Vec<u16>) = std::thread::scope(|s| {
            let approval = s.spawn(|| {
                d.decide(
                    &payer,
                    Some("dsrsg"),
                    &id,
                    &steps[2],
                    version + 2,
                    json!({"decision": "approve"}),
                )
                .status()
                .as_u16()
            });
            let payments: Vec<_> = OFFSETS_MS
                .iter()
                .enumerate()
                .map(|(i, ms)| {
                    let (d, id, payer) = (&d, &id, &payer);
                    s.spawn(move || {
                        std::thread::sleep(Duration::from_millis(*ms));
                        pay(d, payer, id, &format!("race-{round}-{i}"))
                    })
                })
                .collect();
            (
                approval.join().unwrap(),
                payments.into_iter().map(|h| h.join().unwrap()).collect(),
            )
        });
        assert_eq!(approval, 200, "round {round}");
        for status in &payments {
            // 409: before the approval the proposal is not payable; 403: after it, the payer is an approver.
            assert!(
                [403, 409].contains(status),
                "round {round}: the approver's payment got {status} ({payments:?})"
            );
        }
        refused_after_approval += payments.iter().filter(|s| **s == 403).count();
        let tranche: Vec<Value> =
            d.m.app
                .get_as(&format!("/api/v1/proposals/{id}/tranches"), &d.finance.access)
                .json()
                .unwrap();
        assert_eq!(tranche[0]["paid"], "0.00", "round {round}");
    }
    assert!(
        refused_after_approval > 0,
        "no payment ever ran after the approval"
    );
    // Each refusal after the approval is an audited denial.
    let denials =
        d.m.app
            .audit_rows()
            .into_iter()
            .filter(|r| r.action == "implementation.disburse" && r.outcome == "denied")
            .count();
    assert_eq!(denials, refused_after_approval);
    // The rule is about the person, not the timing: another finance officer pays.
    let (id, version) = d.in_review("Clinic paid", "30000.00");
    let steps = step_ids_in_order(&d, &id);
    let ack = json!({"decision": "approve", "multi_hat_acknowledgement": "I decide again, in another hat"});
    d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        &steps[0],
        version,
        json!({"decision": "approve"}),
    );
    d.decide(&d.dsrsg, Some("rc"), &id, &steps[1], version + 1, ack.clone());
    let res = d.decide(
        &payer,
        Some("dsrsg"),
        &id,
        &steps[2],
        version + 2,
        json!({"decision": "approve"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(pay(&d, &payer, &id, "after"), 403);
    assert_eq!(pay(&d, &d.finance, &id, "other"), 201);
}
