//! Revising a `flagged` proposal (DESIGN.md §2–§3): a new draft version, a new round that asks the raisers of
//! still-open blocking flags to confirm resolution, and the automatic steps that follow audited as the system
//! with their trigger linked (DESIGN.md §7).

use qip_pool::features::audit::repo::AuditEventRow;
use reqwest::Method;
use serde_json::{Value, json};

use crate::approval::{Desk, desk};
use crate::support::{Session, assert_problem};

fn proposal(d: &Desk, who: &Session, id: &str) -> Value {
    d.m.app
        .get_as(&format!("/api/v1/proposals/{id}"), &who.access)
        .json()
        .unwrap()
}

fn consultation(d: &Desk, id: &str) -> Value {
    d.m.app
        .get_as(&format!("/api/v1/proposals/{id}/consultation"), &d.m.qip.access)
        .json()
        .unwrap()
}

fn answer(d: &Desk, who: &Session, id: &str, body: Value) -> Value {
    let res = d.m.app.post_json(
        &format!("/api/v1/proposals/{id}/consultation/responses"),
        Some(&who.access),
        &body,
    );
    assert_eq!(res.status().as_u16(), 200, "answer");
    res.json().unwrap()
}

fn blocking_objection() -> Value {
    json!({"kind": "objection", "flags": [{"category": "do_no_harm", "severity": "blocking",
        "description": "The site is next to the IDP camp's only water point"}]})
}

/// A proposal OCHA's blocking flag has put in `flagged`: (id, flag id).
fn flagged(d: &Desk, title: &str) -> (String, String) {
    let (id, _, _) = d.m.submitted(title, "9000.00");
    let c = answer(d, &d.ocha, &id, blocking_objection());
    assert_eq!(c["state"], "flagged");
    let flag = c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "blocking")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, flag)
}

fn revise(d: &Desk, who: &Session, id: &str, version: i64) -> reqwest::blocking::Response {
    d.m.with_if_match(
        Method::POST,
        &format!("/api/v1/proposals/{id}/revise"),
        who,
        version,
        None,
    )
}

/// The audit events about `id` after the event `after_id`, oldest first.
fn events_after(d: &Desk, id: &str, after_id: &str) -> Vec<AuditEventRow> {
    let rows: Vec<AuditEventRow> =
        d.m.app
            .audit_rows()
            .into_iter()
            .filter(|e| e.entity_id.as_deref() == Some(id) || e.id == after_id)
            .collect();
    let start = rows.iter().position(|e| e.id == after_id).unwrap();
    rows.into_iter().skip(start + 1).collect()
}

/// An automatic step: no person, no hat, the system's name, and the trigger linked in the reason.
fn assert_system_after(event: &AuditEventRow, trigger: &AuditEventRow) {
    assert_eq!(event.actor_id, None, "{}: a person is recorded", event.action);
    assert_eq!(
        event.actor_username.as_deref(),
        Some("system"),
        "{}",
        event.action
    );
    assert_eq!(event.hat, None, "{}", event.action);
    assert_eq!(event.organization_id, None, "{}", event.action);
    let reason = event.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains(&trigger.id) && reason.contains(&trigger.action),
        "{}: reason {reason:?} does not link {} {}",
        event.action,
        trigger.action,
        trigger.id
    );
    assert_eq!(event.request_id, trigger.request_id, "{}", event.action);
}

fn last_event(d: &Desk, action: &str, entity_id: &str) -> AuditEventRow {
    d.m.app
        .audit_rows()
        .into_iter()
        .rfind(|e| e.action == action && e.entity_id.as_deref() == Some(entity_id))
        .unwrap_or_else(|| panic!("no {action} event"))
}

#[test]
fn a_flagged_proposal_is_revised_and_the_raiser_confirms_resolution_in_the_next_round() {
    let d = desk("100000.00");
    let (id, flag) = flagged(&d, "Water point");
    let p = proposal(&d, &d.m.unit, &id);
    assert_eq!(p["allowed_actions"], json!(["withdraw", "revise"]));
    let version = p["version"].as_i64().unwrap();
    // Before the revision the flagged version cannot change.
    let res = d.m.with_if_match(
        Method::PATCH,
        &format!("/api/v1/proposals/{id}"),
        &d.m.unit,
        version,
        Some(&json!({"summary": "Moved"})),
    );
    assert_problem(res, 409, "invalid-transition");

    // Only the submitter of the proposal's organisation revises, with a current If-Match.
    let res = d.m.app.post_json(
        &format!("/api/v1/proposals/{id}/revise"),
        Some(&d.m.unit.access),
        &json!({}),
    );
    assert_problem(res, 428, "precondition-required");
    assert_problem(
        revise(&d, &d.m.unit, &id, version - 1),
        412,
        "precondition-failed",
    );
    assert_problem(revise(&d, &d.m.other_unit, &id, version), 404, "not-found");
    assert_problem(revise(&d, &d.ocha, &id, version), 403, "forbidden");
    let res = revise(&d, &d.m.unit, &id, version);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers()["etag"].to_str().unwrap(),
        format!("\"{}\"", version + 1)
    );
    let revised: Value = res.json().unwrap();
    assert_eq!(revised["state"], "draft");
    assert_eq!(revised["current_version"], 2);
    assert_eq!(revised["content"]["title"], "Water point");
    assert_eq!(revised["allowed_actions"], json!(["edit", "submit", "withdraw"]));
    // Revising is a transition of `flagged` only.
    assert_problem(revise(&d, &d.m.unit, &id, version + 1), 409, "invalid-transition");
    let versions: Value =
        d.m.app
            .get_as(&format!("/api/v1/proposals/{id}/versions"), &d.m.unit.access)
            .json()
            .unwrap();
    let statuses: Vec<&str> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["submitted", "draft"]);
    let revise_event = last_event(&d, "proposal.revise", &id);
    assert_eq!(revise_event.actor_id.as_deref(), Some(d.m.unit.user_id.as_str()));
    assert_eq!(revise_event.hat.as_deref(), Some("submitter"));
    assert_eq!(
        serde_json::from_str::<Value>(revise_event.after_state.as_deref().unwrap()).unwrap(),
        json!({"state": "draft", "current_version": 2})
    );
    // The flag still blocks, and its raiser cannot see the draft yet.
    assert_eq!(consultation(&d, &id)["flags"][0]["status"], "open");
    assert_problem(
        d.m.app.post_json(
            &format!("/api/v1/flags/{flag}/resolve"),
            Some(&d.ocha.access),
            &json!({}),
        ),
        404,
        "not-found",
    );

    // Edit and submit the new version: a second round asks OCHA to confirm the resolution.
    let res = d.m.with_if_match(
        Method::PATCH,
        &format!("/api/v1/proposals/{id}"),
        &d.m.unit,
        version + 1,
        Some(&json!({"summary": "A borehole 500 m away from the camp's water point"})),
    );
    assert_eq!(res.status().as_u16(), 200);
    let res = d.m.submit(&id, version + 2);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["state"], "in_consultation");
    let c = consultation(&d, &id);
    let rounds = c["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(rounds[1]["version_number"], 2);
    assert_eq!(rounds[1]["consultees"].as_array().unwrap().len(), 1);
    let asked = &rounds[1]["consultees"][0];
    assert_eq!(
        asked["organization_id"],
        rounds[0]["consultees"][0]["organization_id"]
    );
    assert_eq!(asked["status"], "pending");
    assert_eq!(asked["reasons"][0]["kind"], "confirm_resolution");
    let tasks: Vec<Value> = d.m.app.get_as("/api/v1/me/tasks", &d.ocha.access).json().unwrap();
    assert!(tasks.iter().any(|t| t["kind"] == "consultation_response"));

    // The raiser resolves its flag: that answers the round, which closes, and the proposal goes to review.
    let res = d.m.app.post_json(
        &format!("/api/v1/flags/{flag}/resolve"),
        Some(&d.ocha.access),
        &json!({"justification": "The new site is away from the water point"}),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    assert_eq!(res.json::<Value>().unwrap()["status"], "resolved");
    let c = consultation(&d, &id);
    assert_eq!(c["state"], "in_review");
    let round = &c["rounds"][1];
    assert_eq!(round["outcome"], "clear");
    assert_eq!(round["closed_by"], "all_answered");
    assert_eq!(round["consultees"][0]["status"], "resolved");
    assert_eq!(round["consultees"][0]["responded_by"], d.ocha.user_id.as_str());
    let approval = d.approval(&id);
    let steps = approval["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    assert!(steps.iter().all(|s| s["version_number"] == 2));
    let p = proposal(&d, &d.m.unit, &id);
    assert_eq!(p["state"], "in_review");
    assert_eq!(p["current_version"], 2);

    // Every step that followed the raiser's resolution is the system's, linked to it.
    let resolved = last_event(&d, "flag.resolve", &flag);
    assert_eq!(resolved.actor_id.as_deref(), Some(d.ocha.user_id.as_str()));
    let following = events_after(&d, &id, &resolved.id);
    let actions: Vec<&str> = following.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "consultation.resolution_confirmed",
            "consultation.close",
            "approval.steps_instantiated"
        ]
    );
    for event in &following {
        assert_system_after(event, &resolved);
    }
    // The second round was opened by the submission, as the system.
    let submitted = last_event(&d, "proposal.submit", &id);
    let opened = last_event(&d, "consultation.open", &id);
    assert_system_after(&opened, &submitted);
    assert!(
        d.m.app
            .get_as("/api/v1/audit/verify", &d.m.auditor.access)
            .json::<Value>()
            .unwrap()["intact"]
            == true
    );
}

#[test]
fn a_raiser_who_answers_without_ending_its_flag_leaves_the_proposal_flagged() {
    let d = desk("100000.00");
    let (id, flag) = flagged(&d, "Water point");
    let version = proposal(&d, &d.m.unit, &id)["version"].as_i64().unwrap();
    let revised: Value = revise(&d, &d.m.unit, &id, version).json().unwrap();
    let res = d.m.submit(&id, revised["version"].as_i64().unwrap());
    assert_eq!(res.json::<Value>().unwrap()["state"], "in_consultation");
    let c = answer(
        &d,
        &d.ocha,
        &id,
        json!({"kind": "comment", "comment": "Still too close"}),
    );
    assert_eq!(c["state"], "flagged", "the earlier blocking flag is still open");
    assert_eq!(c["rounds"][1]["outcome"], "flagged");
    // Resolving it now, after the revision, moves the proposal on.
    let res = d.m.app.post_json(
        &format!("/api/v1/flags/{flag}/resolve"),
        Some(&d.ocha.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(proposal(&d, &d.m.unit, &id)["state"], "in_review");
    let resolved = last_event(&d, "flag.resolve", &flag);
    let following = events_after(&d, &id, &resolved.id);
    let actions: Vec<&str> = following.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["proposal.flags_cleared", "approval.steps_instantiated"]);
    for event in &following {
        assert_system_after(event, &resolved);
    }
}

#[test]
fn a_round_closed_by_the_last_answer_is_audited_as_the_system_not_the_consultee() {
    let d = desk("100000.00");
    let (id, _) = d.in_review("Latrines", "9000.00");
    let answered = last_event(&d, "consultation.respond", &id);
    assert_eq!(answered.actor_id.as_deref(), Some(d.ocha.user_id.as_str()));
    let following = events_after(&d, &id, &answered.id);
    let actions: Vec<&str> = following.iter().map(|e| e.action.as_str()).collect();
    // The transition first, then what entering `in_review` brings (the workflow's order).
    assert_eq!(actions, ["consultation.close", "approval.steps_instantiated"]);
    for event in &following {
        assert_system_after(event, &answered);
    }
    let close: Value = serde_json::from_str(following[0].after_state.as_deref().unwrap()).unwrap();
    assert_eq!(close["state"], "in_review");
}
