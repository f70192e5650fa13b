//! The proposal workflow from outside: `allowed_actions` per caller in the states after approval (in
//! implementation, completed, closed, rejected, cancelled — `allowed_actions.rs` covers the states before), and
//! stored statuses read as enums: an unknown stored state, or an unknown pay condition on the money path, is an
//! opaque 500 (cause logged), never a default.

use std::collections::BTreeMap;

use diesel::RunQueryDsl;
use qip_pool::domain::lifecycle::{self, Action, Performer, State, TRANSITIONS};
use reqwest::Method;
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::{Session, assert_problem};

/// Writes a value this code never writes straight into the database (ids are UUIDs: safe to inline).
fn corrupt(d: &Desk, sql: &str) {
    let mut conn = d.m.app.conn();
    let changed = diesel::sql_query(sql).execute(&mut *conn).unwrap();
    assert_eq!(changed, 1, "{sql}");
}

fn get(d: &Desk, who: &Session, path: &str) -> reqwest::blocking::Response {
    d.m.app.get_as(path, &who.access)
}

fn pay(d: &Desk, key: &str, id: &str, n: i32, amount: &str) -> reqwest::blocking::Response {
    d.m.app
        .client
        .post(
            d.m.app
                .url(&format!("/api/v1/proposals/{id}/tranches/{n}/disbursements")),
        )
        .bearer_auth(&d.finance.access)
        .header("Idempotency-Key", key)
        .json(
            &json!({"amount": amount, "paid_on": chrono::Utc::now().date_naive(), "payment_reference": key}),
        )
        .send()
        .unwrap()
}

fn approved(d: &Desk, title: &str, amount: &str) -> String {
    let (id, _) = d.in_review(title, amount);
    assert_eq!(d.approve_all(&id)["state"], "approved");
    id
}

fn version(d: &Desk, id: &str) -> i64 {
    get(d, &d.m.qip, &format!("/api/v1/proposals/{id}"))
        .json::<Value>()
        .unwrap()["version"]
        .as_i64()
        .unwrap()
}

fn state(d: &Desk, id: &str) -> Value {
    get(d, &d.m.qip, &format!("/api/v1/proposals/{id}"))
        .json::<Value>()
        .unwrap()["state"]
        .clone()
}

fn transactions(d: &Desk) -> usize {
    get(
        d,
        &d.finance,
        &format!("/api/v1/pools/{}/transactions?limit=200", d.m.pool_id),
    )
    .json::<Value>()
    .unwrap()["items"]
        .as_array()
        .unwrap()
        .len()
}

fn assert_opaque(body: &Value, secret: &str) {
    let text = body.to_string();
    assert!(!text.contains(secret), "the cause leaked: {text}");
}

#[test]
fn an_unknown_stored_state_is_an_opaque_500_not_a_default() {
    let d = desk("100000.00");
    let (id, v) = d.m.draft("Borehole", "3000.00");
    corrupt(
        &d,
        &format!("UPDATE proposals SET state = 'teleported' WHERE id = '{id}'"),
    );
    let body = assert_problem(
        get(&d, &d.m.unit, &format!("/api/v1/proposals/{id}")),
        500,
        "internal",
    );
    assert_opaque(&body, "teleported");
    // Lists refuse too rather than guessing where the proposal stands.
    let body = assert_problem(get(&d, &d.m.unit, "/api/v1/proposals"), 500, "internal");
    assert_opaque(&body, "teleported");
    // And nothing moves it: the workflow reads the state under its lock and refuses.
    let res = d.m.with_if_match(
        Method::POST,
        &format!("/api/v1/proposals/{id}/withdraw"),
        &d.m.unit,
        v,
        None,
    );
    assert_opaque(&assert_problem(res, 500, "internal"), "teleported");
}

#[test]
fn an_unknown_stored_pay_condition_refuses_payment_instead_of_paying_on_approval() {
    let d = desk("100000.00");
    let id = approved(&d, "Water point", "10000.00");
    // Tranche 2 is payable only once the completion report is accepted.
    assert_problem(pay(&d, "early", &id, 2, "4000.00"), 409, "conflict");
    corrupt(
        &d,
        &format!("UPDATE tranches SET condition = 'whenever' WHERE proposal_id = '{id}' AND number = 2"),
    );
    let before = transactions(&d);
    // Once read as "payable on approval" (the old default), this paid; now it is a 500 and no money moves.
    let body = assert_problem(pay(&d, "corrupt", &id, 2, "4000.00"), 500, "internal");
    assert_opaque(&body, "whenever");
    assert_eq!(transactions(&d), before);
    assert_eq!(state(&d, &id), "approved");
    let body = assert_problem(
        get(&d, &d.finance, &format!("/api/v1/proposals/{id}/tranches")),
        500,
        "internal",
    );
    assert_opaque(&body, "whenever");
}

struct Caller<'a> {
    name: &'static str,
    session: &'a Session,
    hats: &'static [&'static str],
}

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

#[test]
fn allowed_actions_after_approval_are_what_each_caller_may_do() {
    let d = desk("100000.00");
    let callers = [
        Caller {
            name: "unit",
            session: &d.m.unit,
            hats: &["submitter"],
        },
        Caller {
            name: "qip",
            session: &d.m.qip,
            hats: &["qip_officer"],
        },
        Caller {
            name: "ocha",
            session: &d.ocha,
            hats: &["consultee"],
        },
        Caller {
            name: "auditor",
            session: &d.m.auditor,
            hats: &["auditor"],
        },
        Caller {
            name: "dsrsg",
            session: &d.dsrsg,
            hats: &["hc", "rc", "dsrsg"],
        },
        Caller {
            name: "hoo north",
            session: &d.hoo,
            hats: &["head_of_office"],
        },
        Caller {
            name: "finance",
            session: &d.finance,
            hats: &["finance_officer"],
        },
    ];

    // in_implementation: the first tranche paid.
    let running = approved(&d, "Running", "10000.00");
    assert_eq!(pay(&d, "run-1", &running, 1, "6000.00").status().as_u16(), 201);
    // completed: the completion report accepted.
    let completed = approved(&d, "Completed", "10000.00");
    assert_eq!(pay(&d, "done-1", &completed, 1, "6000.00").status().as_u16(), 201);
    let res = d.m.app.post_json(
        &format!("/api/v1/proposals/{completed}/reports"),
        Some(&d.m.unit.access),
        &json!({"kind": "completion", "narrative": "Working", "expenditure_to_date": "6000.00",
                "beneficiaries_reached": {"women": 5, "men": 4, "girls": 3, "boys": 2},
                "handover": {"local_authority": "District council", "date": "2027-04-01", "maintenance": "Committee"}}),
    );
    assert_eq!(res.status().as_u16(), 201);
    let report = res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let res = d.m.app.post_json(
        &format!("/api/v1/reports/{report}/accept"),
        Some(&d.m.qip.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(state(&d, &completed), "completed");
    // closed: a completed proposal closed with its unpaid tranche waived.
    let closed = approved(&d, "Closed", "10000.00");
    assert_eq!(pay(&d, "closed-1", &closed, 1, "6000.00").status().as_u16(), 201);
    let res = d.m.app.post_json(
        &format!("/api/v1/proposals/{closed}/reports"),
        Some(&d.m.unit.access),
        &json!({"kind": "completion", "narrative": "Working", "expenditure_to_date": "6000.00",
                "beneficiaries_reached": {"women": 5, "men": 4, "girls": 3, "boys": 2},
                "handover": {"local_authority": "District council", "date": "2027-04-01", "maintenance": "Committee"}}),
    );
    let report = res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    d.m.app.post_json(
        &format!("/api/v1/reports/{report}/accept"),
        Some(&d.m.qip.access),
        &json!({}),
    );
    let res = d.m.with_if_match(
        Method::POST,
        &format!("/api/v1/proposals/{closed}/close"),
        &d.m.qip,
        version(&d, &closed),
        Some(&json!({"waive_unpaid_tranches": "Came in under budget",
            "evaluation": {"objectives_met": "yes", "confidence_building_effect": "Meetings resumed", "lessons": "Plan maintenance"}})),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    // cancelled: approved, then cancelled by the DSRSG.
    let cancelled = approved(&d, "Cancelled", "3000.00");
    let res = d.m.with_if_match(
        Method::POST,
        &format!("/api/v1/proposals/{cancelled}/cancel"),
        &d.dsrsg,
        version(&d, &cancelled),
        Some(&json!({"reason": "Security situation changed"})),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    // rejected: the first step rejects.
    let (rejected, v) = d.in_review("Rejected", "3000.00");
    let first = d.step_ids(&rejected)[0].clone();
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &rejected,
        &first,
        v,
        json!({"decision": "reject", "comment": "Not a quick impact"}),
    );
    assert_eq!(res.status().as_u16(), 200);

    let fixtures = [
        ("in_implementation", running),
        ("completed", completed),
        ("closed", closed),
        ("cancelled", cancelled),
        ("rejected", rejected),
    ];
    let mut seen: BTreeMap<(&str, &str), Vec<String>> = BTreeMap::new();
    for (state_name, id) in &fixtures {
        assert_eq!(state(&d, id), *state_name);
        let state: State = state_name.parse().unwrap();
        let allowed = lifecycle::allowed_actions(state);
        for caller in &callers {
            let offered =
                offers(&d, caller, id).unwrap_or_else(|| panic!("{} cannot see {state_name}", caller.name));
            for name in &offered {
                let action: Action = name.parse().unwrap();
                assert!(
                    allowed.contains(&action),
                    "{state_name}: {} offered {name}",
                    caller.name
                );
                let performable = TRANSITIONS.iter().any(|t| {
                    t.from == Some(state)
                        && t.action == action
                        && matches!(t.performer, Performer::Hat(hat) if caller.hats.contains(&hat))
                });
                assert!(
                    performable,
                    "{state_name}: {} offered {name} without the hat",
                    caller.name
                );
            }
            seen.insert((state_name, caller.name), offered);
        }
    }
    let expect = |state_name: &str, caller: &str, actions: &[&str]| {
        assert_eq!(
            seen[&(state_name, caller)],
            actions.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>(),
            "{caller} in {state_name}"
        );
    };
    expect("in_implementation", "finance", &["disburse"]);
    expect("in_implementation", "qip", &["accept_completion"]);
    expect("in_implementation", "dsrsg", &["cancel"]);
    expect("in_implementation", "unit", &[]);
    expect("in_implementation", "auditor", &[]);
    expect("completed", "finance", &["disburse"]);
    expect("completed", "qip", &["close"]);
    expect("completed", "dsrsg", &[]);
    expect("completed", "unit", &[]);
    for final_state in ["closed", "cancelled", "rejected"] {
        for caller in &callers {
            expect(final_state, caller.name, &[]);
        }
    }
}

#[test]
fn the_openapi_document_lists_every_status_and_kind_value() {
    let app = crate::support::TestApp::spawn();
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let schemas = &doc["components"]["schemas"];
    let values = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an enum schema: {}", schemas[name]))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        values("StepStatus"),
        ["pending", "approved", "returned", "rejected", "superseded"]
    );
    assert_eq!(values("TrancheStatus"), ["scheduled", "paid", "voided", "waived"]);
    assert_eq!(
        values("FlagStatus"),
        ["open", "withdrawn", "resolved", "overridden"]
    );
    assert_eq!(values("VersionStatus"), ["draft", "submitted"]);
    assert_eq!(values("ReportKind"), ["progress", "completion"]);
    assert_eq!(values("ReportStatus"), ["submitted", "accepted", "returned"]);
    assert!(values("ConsulteeStatus").contains(&"lapsed".to_owned()));
    assert!(values("ReasonKind").contains(&"confirm_resolution".to_owned()));
    // The DTO fields refer to them instead of free text.
    let field = |schema: &str, name: &str| schemas[schema]["properties"][name].to_string();
    assert!(
        field("Step", "status").contains("StepStatus"),
        "{}",
        field("Step", "status")
    );
    assert!(field("Tranche", "status").contains("TrancheStatus"));
    assert!(field("Flag", "status").contains("FlagStatus"));
    assert!(field("Report", "kind").contains("ReportKind"));
}
