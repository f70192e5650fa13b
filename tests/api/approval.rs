//! Approval under delegated authority: the multi-hatted DSRSG, order, racing deciders, an underfunded final
//! approval, separation of duties and scope, return and reject, the brief and "my tasks".

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::{Session, assert_problem};

pub struct Desk {
    pub m: Mission,
    pub ocha: Session,
    pub dsrsg: Session,
    pub hoo: Session,
    pub hoo_south: Session,
    pub finance: Session,
}

pub fn desk(funding: &str) -> Desk {
    let m = Mission::new();
    let admin = &m._admin;
    let ocha_org = m.app.create_org(admin, "OCHA", "coordination");
    let office = m.app.create_org(admin, "SRSG", "mission_office");
    let donor = m.app.create_org(admin, "DONOR", "contributor");
    let ocha = m.app.user_with_hats(admin, "ocha", &ocha_org, &["consultee"]);
    let dsrsg = m
        .app
        .user_with_hats(admin, "dsrsg", &office, &["hc", "rc", "dsrsg"]);
    let hoo = m.app.user_with_hats(admin, "hoo.north", &office, &[]);
    m.app.grant(
        admin,
        &hoo.user_id,
        &json!({"hat": "head_of_office", "scope_adm1": "XY01"}),
    );
    let hoo_south = m.app.user_with_hats(admin, "hoo.south", &office, &[]);
    m.app.grant(
        admin,
        &hoo_south.user_id,
        &json!({"hat": "head_of_office", "scope_adm1": "XY02"}),
    );
    let finance = m
        .app
        .user_with_hats(admin, "finance", &office, &["finance_officer"]);
    let hoo = m.app.login("hoo.north", crate::support::USER_PASSWORD);
    let hoo_south = m.app.login("hoo.south", crate::support::USER_PASSWORD);
    m.app.post_json(
        "/api/v1/consultation-rules",
        Some(&m.qip.access),
        &json!({"organization_id": ocha_org, "always_consult": true}),
    );
    let res = m
        .app
        .client
        .post(m.app.url(&format!("/api/v1/pools/{}/contributions", m.pool_id)))
        .bearer_auth(&finance.access)
        .header("Idempotency-Key", "seed-funding")
        .json(&json!({"contributor_organization_id": donor, "amount": funding, "currency": "USD"}))
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    Desk {
        m,
        ocha,
        dsrsg,
        hoo,
        hoo_south,
        finance,
    }
}

impl Desk {
    /// A proposal consulted without objection, now in review: (id, version).
    pub fn in_review(&self, title: &str, amount: &str) -> (String, i64) {
        let (id, _, _) = self.m.submitted(title, amount);
        let res = self.m.app.post_json(
            &format!("/api/v1/proposals/{id}/consultation/responses"),
            Some(&self.ocha.access),
            &json!({"kind": "no_objection"}),
        );
        assert_eq!(res.json::<Value>().unwrap()["state"], "in_review");
        let approval = self.approval(&id);
        (id, approval["version"].as_i64().unwrap())
    }

    pub fn approval(&self, id: &str) -> Value {
        self.m
            .app
            .get_as(&format!("/api/v1/proposals/{id}/approval"), &self.m.qip.access)
            .json()
            .unwrap()
    }

    pub fn decide(
        &self,
        who: &Session,
        hat: Option<&str>,
        id: &str,
        step: &str,
        version: i64,
        body: Value,
    ) -> reqwest::blocking::Response {
        let mut req = self
            .m
            .app
            .client
            .request(
                Method::POST,
                self.m
                    .app
                    .url(&format!("/api/v1/proposals/{id}/approval/steps/{step}/decision")),
            )
            .bearer_auth(&who.access)
            .header("If-Match", format!("\"{version}\""))
            .json(&body);
        if let Some(h) = hat {
            req = req.header("Acting-Hat", h);
        }
        req.send().unwrap()
    }

    pub fn step_ids(&self, id: &str) -> Vec<String> {
        self.approval(id)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "pending")
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Takes a reviewed proposal through every step with the DSRSG (and the head of office for small amounts).
    pub fn approve_all(&self, id: &str) -> Value {
        let mut last = Value::Null;
        let mut first = true;
        loop {
            let a = self.approval(id);
            let Some(step) = a["steps"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["current"] == true)
                .cloned()
            else {
                return last;
            };
            let hat = step["hat"].as_str().unwrap().to_owned();
            let who = if hat == "head_of_office" {
                &self.hoo
            } else {
                &self.dsrsg
            };
            let mut body = json!({"decision": "approve", "comment": "Approved"});
            if !first && who.user_id == self.dsrsg.user_id {
                body["multi_hat_acknowledgement"] = json!("I decide again, in another hat");
            }
            let res = self.decide(
                who,
                Some(&hat),
                id,
                step["id"].as_str().unwrap(),
                a["version"].as_i64().unwrap(),
                body,
            );
            assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
            last = res.json().unwrap();
            first = first && who.user_id != self.dsrsg.user_id;
        }
    }
}

#[test]
fn the_multi_hatted_dsrsg_takes_a_proposal_through_every_step_acknowledging_each_further_hat() {
    let d = desk("100000.00");
    let (id, version) = d.in_review("Bridge repair", "30000.00");
    let a = d.approval(&id);
    let hats: Vec<&str> = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["hat"].as_str().unwrap())
        .collect();
    assert_eq!(hats, ["hc", "rc", "dsrsg"]);
    assert_eq!(
        a["steps"][1]["reason"],
        json!({"kind": "amount_at_least", "amount_minor": 2500000})
    );
    assert_eq!(a["steps"][2]["financial"], true);
    let steps = d.step_ids(&id);
    // Three hats permit deciding: the caller must say which.
    let problem = assert_problem(
        d.decide(
            &d.dsrsg,
            None,
            &id,
            &steps[0],
            version,
            json!({"decision": "approve"}),
        ),
        400,
        "bad-request",
    );
    assert_eq!(problem["candidate_hats"], json!(["hc", "rc", "dsrsg"]));
    // Out of order.
    assert_problem(
        d.decide(
            &d.dsrsg,
            Some("rc"),
            &id,
            &steps[1],
            version,
            json!({"decision": "approve"}),
        ),
        409,
        "conflict",
    );
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        &steps[0],
        version,
        json!({"decision": "approve", "comment": "Cleared"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    let v = res.json::<Value>().unwrap()["version"].as_i64().unwrap();
    let problem = assert_problem(
        d.decide(
            &d.dsrsg,
            Some("rc"),
            &id,
            &steps[1],
            v,
            json!({"decision": "approve"}),
        ),
        422,
        "validation",
    );
    assert_eq!(problem["errors"][0]["field"], "multi_hat_acknowledgement");
    let res = d.decide(
        &d.dsrsg,
        Some("rc"),
        &id,
        &steps[1],
        v,
        json!({"decision": "approve", "multi_hat_acknowledgement": "Also RC: development angle reviewed"}),
    );
    let v = res.json::<Value>().unwrap()["version"].as_i64().unwrap();
    let res = d.decide(&d.dsrsg, Some("dsrsg"), &id, &steps[2], v, json!({"decision": "approve", "conditions": "Photos at handover", "multi_hat_acknowledgement": "Financial decision in my DSRSG hat"}));
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["state"], "approved");

    let decisions: Vec<_> =
        d.m.app
            .audit_rows()
            .into_iter()
            .filter(|e| e.action == "approval.decide")
            .collect();
    assert_eq!(decisions.len(), 3);
    assert!(
        decisions
            .iter()
            .all(|e| e.actor_id.as_deref() == Some(d.dsrsg.user_id.as_str()))
    );
    let hats: Vec<&str> = decisions.iter().map(|e| e.hat.as_deref().unwrap()).collect();
    assert_eq!(hats, ["hc", "rc", "dsrsg"]);
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
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["amount"], "30000.00");
    let pool: Value =
        d.m.app
            .get_as(&format!("/api/v1/pools/{}", d.m.pool_id), &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(pool["balances"]["committed"], "30000.00");
    assert_eq!(pool["balances"]["unallocated"], "70000.00");
}

#[test]
fn two_deciders_racing_on_one_step_record_one_decision() {
    let d = desk("100000.00");
    let admin = &d.m._admin;
    let office =
        d.m.app
            .get_as("/api/v1/me", &d.dsrsg.access)
            .json::<Value>()
            .unwrap()["organization"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let hc2 = d.m.app.user_with_hats(admin, "hc.deputy", &office, &["hc"]);
    for i in 0..3 {
        let (id, version) = d.in_review(&format!("Race {i}"), "5000.00");
        let step = d.step_ids(&id)[0].clone();
        let statuses: Vec<u16> = std::thread::scope(|s| {
            let a = s.spawn(|| {
                d.decide(
                    &d.dsrsg,
                    Some("hc"),
                    &id,
                    &step,
                    version,
                    json!({"decision": "approve"}),
                )
                .status()
                .as_u16()
            });
            let b = s.spawn(|| {
                d.decide(&hc2, None, &id, &step, version, json!({"decision": "approve"}))
                    .status()
                    .as_u16()
            });
            vec![a.join().unwrap(), b.join().unwrap()]
        });
        let mut sorted = statuses.clone();
        sorted.sort();
        assert_eq!(sorted, [200, 412], "{statuses:?}");
        let decided = d.approval(&id)["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "approved")
            .count();
        assert_eq!(decided, 1);
    }
}

#[test]
fn an_underfunded_final_approval_changes_nothing_and_says_what_is_available() {
    let d = desk("10000.00");
    let (id, version) = d.in_review("Clinic roof", "12000.00");
    let steps = d.step_ids(&id);
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        &steps[0],
        version,
        json!({"decision": "approve"}),
    );
    let v = res.json::<Value>().unwrap()["version"].as_i64().unwrap();
    let before = d.approval(&id);
    let problem = assert_problem(
        d.decide(&d.hoo, None, &id, &steps[1], v, json!({"decision": "approve"})),
        409,
        "insufficient-funds",
    );
    assert_eq!(problem["available"], "10000.00");
    assert!(problem["detail"].as_str().unwrap().contains("10000.00"));
    let after = d.approval(&id);
    assert_eq!(after, before, "proposal and steps unchanged");
    let pool: Value =
        d.m.app
            .get_as(&format!("/api/v1/pools/{}", d.m.pool_id), &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(pool["balances"]["committed"], "0.00");
    let report: Value =
        d.m.app
            .get_as("/api/v1/ledger/check", &d.finance.access)
            .json()
            .unwrap();
    assert_eq!(report["ok"], true);
}

#[test]
fn deciders_need_the_step_hat_their_scope_and_distance_from_the_submitter() {
    let d = desk("100000.00");
    let (id, version) = d.in_review("Well", "8000.00");
    let steps = d.step_ids(&id);
    // The rc hat does not decide the hc step.
    assert_problem(
        d.decide(
            &d.dsrsg,
            Some("rc"),
            &id,
            &steps[0],
            version,
            json!({"decision": "approve"}),
        ),
        403,
        "forbidden",
    );
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        &steps[0],
        version,
        json!({"decision": "approve"}),
    );
    let v = res.json::<Value>().unwrap()["version"].as_i64().unwrap();
    // A head of office for the south cannot decide a northern proposal.
    assert_problem(
        d.decide(
            &d.hoo_south,
            None,
            &id,
            &steps[1],
            v,
            json!({"decision": "approve"}),
        ),
        403,
        "forbidden",
    );
    // Somebody of the submitting unit who also holds a deciding hat cannot decide its proposal.
    let admin = &d.m._admin;
    let insider =
        d.m.app
            .user_with_hats(admin, "insider", &d.m.unit_org, &["head_of_office"]);
    assert_problem(
        d.decide(&insider, None, &id, &steps[1], v, json!({"decision": "approve"})),
        403,
        "forbidden",
    );
    assert!(
        d.m.app
            .audit_rows()
            .iter()
            .filter(|e| e.action == "approval.decide" && e.outcome == "denied")
            .count()
            >= 3
    );
    let res = d.decide(&d.hoo, None, &id, &steps[1], v, json!({"decision": "approve"}));
    assert_eq!(res.json::<Value>().unwrap()["state"], "approved");
}

#[test]
fn return_makes_a_new_draft_version_and_reject_ends_it() {
    let d = desk("100000.00");
    let (id, version) = d.in_review("Fence", "3000.00");
    let steps = d.step_ids(&id);
    assert_problem(
        d.decide(
            &d.dsrsg,
            Some("hc"),
            &id,
            &steps[0],
            version,
            json!({"decision": "return"}),
        ),
        422,
        "validation",
    );
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        &steps[0],
        version,
        json!({"decision": "return", "comment": "Add the maintenance plan"}),
    );
    let a: Value = res.json().unwrap();
    assert_eq!(a["state"], "draft");
    assert_eq!(a["steps"][1]["status"], "superseded");
    let p: Value =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}"), &d.m.unit.access)
            .json()
            .unwrap();
    assert_eq!(p["current_version"], 2);
    let res = d.m.with_if_match(Method::PATCH, &format!("/api/v1/proposals/{id}"), &d.m.unit, p["version"].as_i64().unwrap(),
        Some(&json!({"handover": {"local_authority": "Council", "maintenance": "Council works department, yearly"}})));
    let v = res.json::<Value>().unwrap()["version"].as_i64().unwrap();
    let res = d.m.submit(&id, v);
    assert_eq!(res.json::<Value>().unwrap()["state"], "in_consultation");
    let c: Value =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/consultation"), &d.m.qip.access)
            .json()
            .unwrap();
    assert_eq!(c["rounds"].as_array().unwrap().len(), 2);
    assert_eq!(c["rounds"][1]["version_number"], 2);
    let versions: Value =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/versions"), &d.m.unit.access)
            .json()
            .unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 2);

    let (id2, version2) = d.in_review("Statue", "3000.00");
    let step = d.step_ids(&id2)[0].clone();
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id2,
        &step,
        version2,
        json!({"decision": "reject", "comment": "No humanitarian or confidence-building value"}),
    );
    assert_eq!(res.json::<Value>().unwrap()["state"], "rejected");
}

#[test]
fn the_brief_and_my_tasks_show_what_a_decider_needs() {
    let d = desk("50000.00");
    let (id, _, _) = d.m.submitted("Market latrines", "20000.00");
    let tasks: Vec<Value> = d.m.app.get_as("/api/v1/me/tasks", &d.ocha.access).json().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["kind"], "consultation_response");
    assert_eq!(tasks[0]["hat"], "consultee");
    d.m.app.post_json(&format!("/api/v1/proposals/{id}/consultation/responses"), Some(&d.ocha.access),
        &json!({"kind": "objection", "flags": [{"category": "local_capacity", "severity": "advisory", "description": "Local masons available"}]}));
    assert_eq!(
        d.m.app
            .get_as("/api/v1/me/tasks", &d.ocha.access)
            .json::<Vec<Value>>()
            .unwrap()
            .len(),
        0
    );
    let tasks: Vec<Value> =
        d.m.app
            .get_as("/api/v1/me/tasks", &d.dsrsg.access)
            .json()
            .unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["kind"], "approval_step");
    assert_eq!(tasks[0]["hat"], "hc");
    let unit_tasks: Vec<Value> =
        d.m.app
            .get_as("/api/v1/me/tasks", &d.m.unit.access)
            .json()
            .unwrap();
    assert_eq!(unit_tasks[0]["kind"], "flag_on_my_proposal");

    let brief_as_hc = || -> Value {
        d.m.app
            .client
            .get(d.m.app.url(&format!("/api/v1/proposals/{id}/brief")))
            .bearer_auth(&d.dsrsg.access)
            .header("Acting-Hat", "hc")
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let brief = brief_as_hc();
    assert_eq!(brief["amount"], "20000.00");
    assert_eq!(brief["pool_unallocated_before"], "50000.00");
    assert_eq!(brief["pool_unallocated_after"], "30000.00");
    assert_eq!(brief["flags"][0]["category"], "local_capacity");
    assert_eq!(brief["flags_total"], brief["flags"].as_array().unwrap().len());
    assert_eq!(brief["consultation"][0]["status"], "objection");
    assert_eq!(brief["screening"]["assistance_type"], "indirect");
    assert_eq!(brief["steps"].as_array().unwrap().len(), 2);
    d.approve_all(&id);
    let brief = brief_as_hc();
    assert_eq!(brief["state"], "approved");
    assert_eq!(brief["steps"][0]["decided_hat"], "hc");
    let turnaround: Value =
        d.m.app
            .get_as(
                &format!("/api/v1/pools/{}/turnaround", d.m.pool_id),
                &d.m.qip.access,
            )
            .json()
            .unwrap();
    assert!(
        turnaround["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["group"] == "hat" && l["key"] == "hc" && l["decided"] == 1)
    );
}

#[test]
fn the_same_hc_clearing_a_new_version_after_returning_the_first_needs_no_acknowledgement() {
    let d = desk("100000.00");
    let (id, _, _) = d.m.submitted("Bridge repair", "30000.00");
    // An advisory objection: OCHA is consulted again on the next version, and the round can close.
    let c: Value = d.m.app.post_json(&format!("/api/v1/proposals/{id}/consultation/responses"), Some(&d.ocha.access),
        &json!({"kind": "objection", "flags": [{"category": "local_capacity", "severity": "advisory", "description": "Local masons available"}]}))
        .json().unwrap();
    assert_eq!(c["state"], "in_review");
    let a = d.approval(&id);
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        a["steps"][0]["id"].as_str().unwrap(),
        a["version"].as_i64().unwrap(),
        json!({"decision": "return", "comment": "Add the maintenance plan"}),
    );
    assert_eq!(res.json::<Value>().unwrap()["state"], "draft");
    let p: Value =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}"), &d.m.unit.access)
            .json()
            .unwrap();
    let res = d.m.submit(&id, p["version"].as_i64().unwrap());
    assert_eq!(res.json::<Value>().unwrap()["state"], "in_consultation");
    let c: Value =
        d.m.app
            .post_json(
                &format!("/api/v1/proposals/{id}/consultation/responses"),
                Some(&d.ocha.access),
                &json!({"kind": "no_objection"}),
            )
            .json()
            .unwrap();
    assert_eq!(c["state"], "in_review");

    // Version 2: the same person in the same hat clears it without an acknowledgement.
    let a = d.approval(&id);
    let v2: Vec<&Value> = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["version_number"] == 2)
        .collect();
    assert_eq!(v2[0]["hat"], "hc");
    let res = d.decide(
        &d.dsrsg,
        Some("hc"),
        &id,
        v2[0]["id"].as_str().unwrap(),
        a["version"].as_i64().unwrap(),
        json!({"decision": "approve", "comment": "Maintenance plan added"}),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    let a: Value = res.json().unwrap();
    let cleared = a["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == v2[0]["id"])
        .unwrap();
    assert_eq!(cleared["status"], "approved");
    assert_eq!(cleared["multi_hat_acknowledgement"], Value::Null);
    // Another hat on the same version still needs one.
    let problem = assert_problem(
        d.decide(
            &d.dsrsg,
            Some("rc"),
            &id,
            v2[1]["id"].as_str().unwrap(),
            a["version"].as_i64().unwrap(),
            json!({"decision": "approve"}),
        ),
        422,
        "validation",
    );
    assert_eq!(problem["errors"][0]["field"], "multi_hat_acknowledgement");
}
