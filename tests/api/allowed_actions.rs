//! `allowed_actions` is what the caller may do, generated over proposal states × callers: every offer is a
//! transition the state allows, performed in a hat the caller holds, within their organisation, scope and
//! separation of duties — and the callers who may act are offered it.

use std::collections::BTreeMap;

use qip_pool::domain::lifecycle::{self, Action, Performer, State, TRANSITIONS};
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::Session;

/// A caller: name, session, the hats they hold, member of the submitting organisation.
struct Caller<'a> {
    name: &'static str,
    session: &'a Session,
    hats: &'static [&'static str],
    submitting_org: bool,
    /// A head of office limited to the other area.
    out_of_scope: bool,
}

const DECISIONS: [&str; 4] = ["approve_step", "final_approve", "return_for_revision", "reject"];

fn offers(d: &Desk, caller: &Caller<'_>, id: &str) -> Option<Vec<String>> {
    let res =
        d.m.app
            .client
            .get(d.m.app.url(&format!("/api/v1/proposals/{id}")))
            .bearer_auth(&caller.session.access)
            .header("Acting-Hat", caller.hats[0])
            .send()
            .unwrap();
    match res.status().as_u16() {
        404 => None,
        200 => Some(
            res.json::<Value>().unwrap()["allowed_actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect(),
        ),
        other => panic!("{}: GET {id} gave {other}", caller.name),
    }
}

fn open_step_hat(d: &Desk, id: &str) -> Option<String> {
    d.approval(id)["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .map(|s| s["hat"].as_str().unwrap().to_owned())
}

#[test]
fn allowed_actions_are_what_each_caller_may_do_in_every_reachable_state() {
    let d = desk("100000.00");
    let admin = &d.m._admin;
    let battalion_hc =
        d.m.app
            .user_with_hats(admin, "battalion.hc", &d.m.unit_org, &["hc"]);
    let callers = [
        Caller {
            name: "unit",
            session: &d.m.unit,
            hats: &["submitter"],
            submitting_org: true,
            out_of_scope: false,
        },
        Caller {
            name: "other unit",
            session: &d.m.other_unit,
            hats: &["submitter"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "qip",
            session: &d.m.qip,
            hats: &["qip_officer"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "ocha (raiser)",
            session: &d.ocha,
            hats: &["consultee"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "unicef",
            session: &d.m.consultee,
            hats: &["consultee"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "auditor",
            session: &d.m.auditor,
            hats: &["auditor"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "dsrsg",
            session: &d.dsrsg,
            hats: &["hc", "rc", "dsrsg"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "battalion hc",
            session: &battalion_hc,
            hats: &["hc"],
            submitting_org: true,
            out_of_scope: false,
        },
        Caller {
            name: "hoo north",
            session: &d.hoo,
            hats: &["head_of_office"],
            submitting_org: false,
            out_of_scope: false,
        },
        Caller {
            name: "hoo south",
            session: &d.hoo_south,
            hats: &["head_of_office"],
            submitting_org: false,
            out_of_scope: true,
        },
        Caller {
            name: "finance",
            session: &d.finance,
            hats: &["finance_officer"],
            submitting_org: false,
            out_of_scope: false,
        },
    ];

    // The states fixtures reach cheaply (amount 3,000: `hc` clearance, then `head_of_office` decides).
    let mut fixtures: Vec<(&str, String)> = Vec::new();
    fixtures.push(("draft", d.m.draft("Draft", "3000.00").0));
    fixtures.push(("in_consultation", d.m.submitted("Consulted", "3000.00").0));
    let (flagged, _, _) = d.m.submitted("Flagged", "3000.00");
    d.m.app.post_json(&format!("/api/v1/proposals/{flagged}/consultation/responses"), Some(&d.ocha.access),
        &json!({"kind": "objection", "flags": [{"category": "do_no_harm", "severity": "blocking", "description": "Too close to the camp"}]}));
    fixtures.push(("flagged", flagged));
    fixtures.push(("in_review", d.in_review("Review, first step", "3000.00").0));
    let (last_step, v) = d.in_review("Review, last step", "3000.00");
    let first = d.step_ids(&last_step)[0].clone();
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &last_step,
        &first,
        v,
        json!({"decision": "approve"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    fixtures.push(("in_review", last_step));
    let (approved, _) = d.in_review("Approved", "3000.00");
    d.approve_all(&approved);
    fixtures.push(("approved", approved));
    let (withdrawn, v) = d.m.draft("Withdrawn", "3000.00");
    let res = d.m.with_if_match(
        reqwest::Method::POST,
        &format!("/api/v1/proposals/{withdrawn}/withdraw"),
        &d.m.unit,
        v,
        None,
    );
    assert_eq!(res.status().as_u16(), 200);
    fixtures.push(("withdrawn", withdrawn));

    let mut seen: BTreeMap<(usize, &str), Vec<String>> = BTreeMap::new();
    for (index, (state_name, id)) in fixtures.iter().enumerate() {
        let state: State = state_name.parse().unwrap();
        let allowed: Vec<&str> = lifecycle::allowed_actions(state)
            .iter()
            .map(|a| a.as_str())
            .collect();
        let step_hat = open_step_hat(&d, id);
        for caller in &callers {
            let Some(offered) = offers(&d, caller, id) else {
                continue; // Not visible to this caller: nothing offered either.
            };
            for name in &offered {
                let action: Action = name.parse().unwrap();
                // Allowed by the state...
                assert!(
                    allowed.contains(&name.as_str()),
                    "{state_name}: {} offered {name}",
                    caller.name
                );
                // ...through a row performed in a hat the caller holds.
                let performable = TRANSITIONS.iter().any(|t| {
                    t.from == Some(state)
                        && t.action == action
                        && match t.performer {
                            Performer::Hat(hat) => caller.hats.contains(&hat),
                            Performer::ApprovalStepDecider => {
                                step_hat.as_deref().is_some_and(|h| caller.hats.contains(&h))
                            }
                            Performer::System => false,
                        }
                });
                assert!(
                    performable,
                    "{state_name}: {} offered {name} without the hat",
                    caller.name
                );
            }
            // Separation of duties, organisation and scope.
            if caller.hats.contains(&"submitter") {
                assert!(!offered.iter().any(|a| a == "override_flags"), "{}", caller.name);
            }
            if caller.submitting_org || caller.out_of_scope {
                assert!(
                    !offered.iter().any(|a| DECISIONS.contains(&a.as_str())),
                    "{state_name}: {} offered a decision: {offered:?}",
                    caller.name
                );
            }
            assert!(
                !offered
                    .iter()
                    .any(|a| a == "close_consultation" || a == "flag_consultation")
            );
            seen.insert((index, caller.name), offered);
        }
    }

    // And those who may act are offered exactly what they may do.
    let expect = |index: usize, name: &str, actions: &[&str]| {
        assert_eq!(
            seen.get(&(index, name))
                .unwrap_or_else(|| panic!("{name} cannot see fixture {index}")),
            &actions.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
            "{name} on fixture {index} ({})",
            fixtures[index].0
        );
    };
    expect(0, "unit", &["edit", "submit", "withdraw"]);
    expect(0, "qip", &[]);
    assert!(
        !seen.contains_key(&(0, "dsrsg")),
        "drafts are invisible to deciders"
    );
    assert!(!seen.contains_key(&(0, "other unit")), "and to other units");
    expect(1, "unit", &["withdraw"]);
    expect(1, "qip", &[]);
    expect(1, "ocha (raiser)", &[]);
    expect(2, "unit", &["withdraw", "revise"]);
    expect(2, "ocha (raiser)", &["end_last_flag"]);
    expect(2, "unicef", &[]);
    expect(2, "dsrsg", &["override_flags"]);
    expect(2, "auditor", &[]);
    expect(3, "unit", &["withdraw"]);
    expect(3, "dsrsg", &["approve_step", "return_for_revision", "reject"]);
    expect(3, "battalion hc", &[]);
    expect(3, "hoo north", &[]);
    expect(
        4,
        "hoo north",
        &["final_approve", "return_for_revision", "reject"],
    );
    expect(4, "hoo south", &[]);
    expect(4, "dsrsg", &[]);
    expect(5, "finance", &["first_disbursement"]);
    expect(5, "dsrsg", &["cancel"]);
    expect(5, "unit", &[]);
    expect(5, "qip", &[]);
    for caller in &callers {
        if let Some(offered) = seen.get(&(6, caller.name)) {
            assert!(
                offered.is_empty(),
                "withdrawn: {} offered {offered:?}",
                caller.name
            );
        }
    }
}
