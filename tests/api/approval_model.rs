//! A property test of the whole path to approval: random sequences of submissions, consultation answers,
//! HC overrides and step decisions by random people in random hats, checked against a model of who may do
//! what: no decision out of order or in the wrong hat, no self-approval, no out-of-scope decision, no second
//! decision by one person without acknowledgement, and every `approved` proposal has exactly one commitment of
//! its amount while no other proposal has any.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::Session;

#[derive(Debug, Clone)]
enum Op {
    Submit {
        amount: usize,
    },
    Answer {
        p: usize,
        object: bool,
    },
    Override {
        p: usize,
    },
    Decide {
        p: usize,
        who: usize,
        hat: usize,
        decision: usize,
        acknowledge: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize).prop_map(|amount| Op::Submit { amount }),
        (0..4usize, any::<bool>()).prop_map(|(p, object)| Op::Answer { p, object }),
        (0..4usize).prop_map(|p| Op::Override { p }),
        (0..4usize, 0..4usize, 0..4usize, 0..3usize, any::<bool>()).prop_map(
            |(p, who, hat, decision, acknowledge)| Op::Decide {
                p,
                who,
                hat,
                decision,
                acknowledge
            }
        ),
        (0..4usize, 0..4usize, 0..4usize, any::<bool>()).prop_map(|(p, who, hat, acknowledge)| Op::Decide {
            p,
            who,
            hat,
            decision: 0,
            acknowledge
        }),
    ]
}

const AMOUNTS: [&str; 3] = ["5000.00", "14000.00", "26000.00"];
const HATS: [&str; 4] = ["hc", "rc", "dsrsg", "head_of_office"];

struct Person<'a> {
    session: &'a Session,
    hats: &'a [&'a str],
    /// Of the submitting organisation (may never decide).
    insider: bool,
    /// Limited to this adm1 as head of office.
    scope: Option<&'a str>,
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let d: Desk = desk("40000.00");
    let insider =
        d.m.app
            .user_with_hats(&d.m._admin, "insider", &d.m.unit_org, &["head_of_office"]);
    let people = [
        Person {
            session: &d.dsrsg,
            hats: &["hc", "rc", "dsrsg"],
            insider: false,
            scope: None,
        },
        Person {
            session: &d.hoo,
            hats: &["head_of_office"],
            insider: false,
            scope: Some("XY01"),
        },
        Person {
            session: &d.hoo_south,
            hats: &["head_of_office"],
            insider: false,
            scope: Some("XY02"),
        },
        Person {
            session: &insider,
            hats: &["head_of_office"],
            insider: true,
            scope: None,
        },
    ];
    let mut proposals: Vec<(String, &str)> = Vec::new();
    let mut deciders: HashMap<String, HashSet<String>> = HashMap::new();
    for op in ops {
        match op {
            Op::Submit { amount } => {
                let (id, _, _) = d.m.submitted(&format!("P{}", proposals.len()), AMOUNTS[*amount]);
                proposals.push((id, AMOUNTS[*amount]));
            }
            Op::Answer { p, object } if !proposals.is_empty() => {
                let id = &proposals[p % proposals.len()].0;
                let body = if *object {
                    json!({"kind": "objection", "flags": [{"category": "do_no_harm", "severity": "blocking", "description": "Risk"}]})
                } else {
                    json!({"kind": "no_objection"})
                };
                let status =
                    d.m.app
                        .post_json(
                            &format!("/api/v1/proposals/{id}/consultation/responses"),
                            Some(&d.ocha.access),
                            &body,
                        )
                        .status()
                        .as_u16();
                prop_assert!(status == 200 || status == 409, "answer {status}");
            }
            Op::Override { p } if !proposals.is_empty() => {
                let id = &proposals[p % proposals.len()].0;
                let c: Value =
                    d.m.app
                        .get_as(&format!("/api/v1/proposals/{id}/consultation"), &d.m.qip.access)
                        .json()
                        .unwrap();
                if let Some(flag) = c["flags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["status"] == "open" && f["severity"] == "blocking")
                {
                    let res =
                        d.m.app
                            .client
                            .post(d.m.app.url(&format!(
                                "/api/v1/flags/{}/override",
                                flag["id"].as_str().unwrap()
                            )))
                            .bearer_auth(&d.dsrsg.access)
                            .header("Acting-Hat", "hc")
                            .json(&json!({"justification": "Risk mitigated by the revised site plan"}))
                            .send()
                            .unwrap();
                    prop_assert_eq!(res.status().as_u16(), 200);
                }
            }
            Op::Decide {
                p,
                who,
                hat,
                decision,
                acknowledge,
            } if !proposals.is_empty() => {
                let id = proposals[p % proposals.len()].0.clone();
                let person = &people[*who];
                let hat = HATS[*hat];
                let before = d.approval(&id);
                let steps = before["steps"].as_array().unwrap();
                let Some(target) = steps
                    .iter()
                    .filter(|s| s["status"] == "pending")
                    .nth(*decision % 2)
                else {
                    continue;
                };
                let current = steps.iter().find(|s| s["current"] == true);
                let body = match decision {
                    2 => json!({"decision": "reject", "comment": "Not a QIP"}),
                    _ => json!({"decision": "approve"}),
                };
                let mut body = body;
                if *acknowledge {
                    body["multi_hat_acknowledgement"] = json!("Deciding again in another hat");
                }
                let res = d.decide(
                    person.session,
                    Some(hat),
                    &id,
                    target["id"].as_str().unwrap(),
                    before["version"].as_i64().unwrap(),
                    body,
                );
                let status = res.status().as_u16();
                if status == 200 {
                    let current = current.expect("a decision succeeded without a current step");
                    prop_assert_eq!(&current["id"], &target["id"], "decided out of order");
                    prop_assert!(person.hats.contains(&hat), "decided in a hat not held");
                    prop_assert_eq!(target["hat"].as_str().unwrap(), hat, "decided in the wrong hat");
                    prop_assert!(!person.insider, "self-approval");
                    prop_assert!(person.scope.is_none_or(|s| s == "XY01"), "out of scope");
                    let set = deciders.entry(id.clone()).or_default();
                    prop_assert!(
                        !set.contains(&person.session.user_id) || *acknowledge,
                        "second decision without acknowledgement"
                    );
                    set.insert(person.session.user_id.clone());
                } else {
                    prop_assert!(
                        [400, 403, 409, 422].contains(&status),
                        "unexpected {status}: {}",
                        res.text().unwrap_or_default()
                    );
                }
            }
            _ => {}
        }
    }
    for (id, amount) in &proposals {
        let p: Value =
            d.m.app
                .get_as(&format!("/api/v1/proposals/{id}"), &d.m.qip.access)
                .json()
                .unwrap();
        let page: Value =
            d.m.app
                .get_as(
                    &format!(
                        "/api/v1/pools/{}/transactions?kind=commitment&proposal_id={id}",
                        d.m.pool_id
                    ),
                    &d.finance.access,
                )
                .json()
                .unwrap();
        let commitments: Vec<&Value> = page["items"].as_array().unwrap().iter().collect();
        if p["state"] == "approved" {
            prop_assert_eq!(commitments.len(), 1, "approved without exactly one commitment");
            prop_assert_eq!(commitments[0]["amount"].as_str().unwrap(), *amount);
        } else {
            prop_assert_eq!(
                commitments.len(),
                0,
                "a commitment for a proposal that is {}",
                p["state"]
            );
        }
    }
    let report: Value =
        d.m.app
            .get_as("/api/v1/ledger/check", &d.finance.access)
            .json()
            .unwrap();
    prop_assert_eq!(&report["ok"], &json!(true));
    prop_assert!(
        qip_pool::features::audit::verify_chain(&mut d.m.app.conn())
            .unwrap()
            .intact
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn random_paths_to_approval_obey_the_rules(ops in prop::collection::vec(op(), 8..40)) {
        run(&ops)?;
    }
}
