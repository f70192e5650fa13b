//! Humanitarian consultation through the API: computed consultees (rules, overlap screening), responses,
//! confidential notes that never reach the wrong hats, flag endings, closing exactly once under concurrency,
//! deadlines and lapses, and the 3W registry with its HXL import.

use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::{Session, assert_problem};

const SECRET: &str = "secret-protection-note-4711";

struct World {
    m: Mission,
    unicef_org: String,
    ocha: Session,
    nrc: Session,
    hc: Session,
    others: Vec<(&'static str, Session)>,
}

fn world() -> World {
    let m = Mission::new();
    let admin = &m._admin;
    let unicef_org = m
        .app
        .get_as("/api/v1/me", &m.consultee.access)
        .json::<Value>()
        .unwrap()["organization"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ocha_org = m.app.create_org(admin, "OCHA", "coordination");
    let nrc_org = m.app.create_org(admin, "NRC", "ngo");
    let office = m.app.create_org(admin, "SRSG", "mission_office");
    let ocha = m.app.user_with_hats(admin, "ocha", &ocha_org, &["consultee"]);
    let nrc = m.app.user_with_hats(admin, "nrc", &nrc_org, &["consultee"]);
    let hc = m.app.user_with_hats(admin, "hc.user", &office, &["hc"]);
    let others = vec![
        ("rc", m.app.user_with_hats(admin, "rc.user", &office, &["rc"])),
        ("dsrsg", m.app.user_with_hats(admin, "dsrsg", &office, &["dsrsg"])),
        (
            "hoo",
            m.app.user_with_hats(admin, "hoo", &office, &["head_of_office"]),
        ),
        (
            "finance",
            m.app.user_with_hats(admin, "fin", &office, &["finance_officer"]),
        ),
    ];
    // Rules: WASH proposals consult UNICEF; OCHA on everything.
    for body in [
        json!({"organization_id": unicef_org, "sector_code": "WSH"}),
        json!({"organization_id": ocha_org, "always_consult": true}),
    ] {
        assert_eq!(
            m.app
                .post_json("/api/v1/consultation-rules", Some(&m.qip.access), &body)
                .status()
                .as_u16(),
            201
        );
    }
    World {
        m,
        unicef_org,
        ocha,
        nrc,
        hc,
        others,
    }
}

fn consultation(w: &World, who: &Session, id: &str) -> Value {
    w.m.app
        .get_as(&format!("/api/v1/proposals/{id}/consultation"), &who.access)
        .json()
        .unwrap()
}

fn answer(w: &World, who: &Session, id: &str, body: Value) -> reqwest::blocking::Response {
    w.m.app.post_json(
        &format!("/api/v1/proposals/{id}/consultation/responses"),
        Some(&who.access),
        &body,
    )
}

fn state(w: &World, id: &str) -> String {
    w.m.app
        .get_as(&format!("/api/v1/proposals/{id}"), &w.m.qip.access)
        .json::<Value>()
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn blocking_objection() -> Value {
    json!({"kind": "objection", "comment": "We drill there in March", "flags": [
        {"category": "protection_risk", "severity": "blocking", "description": "Armed escorts at a school endanger pupils",
         "confidential_note": SECRET}]})
}

#[test]
fn consultees_come_from_rules_and_overlaps_with_a_duplication_flag() {
    let w = world();
    let res = w.m.app.post_json("/api/v1/activities", Some(&w.m.consultee.access), &json!({
        "title": "School WASH rehabilitation", "sector_code": "WSH", "adm1_pcode": "XY01", "adm2_pcode": "XY0102",
        "lat": 12.15, "lon": 24.95, "start_date": "2026-10-01", "end_date": "2027-12-31"}));
    assert_eq!(res.status().as_u16(), 201);
    let activity: Value = res.json().unwrap();
    let (id, reference, _) = w.m.submitted("Kalma borehole", "9000.00");
    assert!(reference.starts_with("QIP-DFP-"));
    let c = consultation(&w, &w.m.qip, &id);
    let round = &c["rounds"][0];
    assert_eq!(round["round_number"], 1);
    let consultees = round["consultees"].as_array().unwrap();
    assert_eq!(consultees.len(), 2);
    let unicef = consultees
        .iter()
        .find(|c| c["organization_id"] == w.unicef_org)
        .unwrap();
    let kinds: Vec<&str> = unicef["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rule", "overlap"]);
    assert!(
        consultees
            .iter()
            .any(|c| c["reasons"][0]["kind"] == "always_consult")
    );
    let flag = &c["flags"][0];
    assert_eq!(flag["category"], "duplication");
    assert_eq!(flag["severity"], "advisory");
    assert_eq!(flag["system_raised"], true);
    assert_eq!(flag["activity_id"], activity["id"]);
    // Closing the activity takes it out of later screening.
    let res = w.m.app.post_json(
        &format!("/api/v1/activities/{}/close", activity["id"].as_str().unwrap()),
        Some(&w.m.consultee.access),
        &json!({}),
    );
    assert_eq!(res.json::<Value>().unwrap()["status"], "closed");
    let (id2, _, _) = w.m.submitted("Second borehole", "9000.00");
    assert_eq!(consultation(&w, &w.m.qip, &id2)["flags"], json!([]));
    // Another organisation cannot close it again or edit it.
    let res = w.m.app.post_json(
        &format!("/api/v1/activities/{}/close", activity["id"].as_str().unwrap()),
        Some(&w.nrc.access),
        &json!({}),
    );
    assert_problem(res, 403, "forbidden");
}

#[test]
fn a_blocking_objection_flags_the_proposal_and_its_note_stays_humanitarian() {
    let w = world();
    let (id, _, _) = w.m.submitted("School borehole", "9000.00");
    assert_eq!(
        answer(&w, &w.m.consultee, &id, blocking_objection())
            .status()
            .as_u16(),
        200
    );
    assert_eq!(state(&w, &id), "in_consultation");
    let c = answer(&w, &w.ocha, &id, json!({"kind": "no_objection"}))
        .json::<Value>()
        .unwrap();
    assert_eq!(c["state"], "flagged");
    assert_eq!(c["rounds"][0]["closed_by"], "all_answered");
    assert_eq!(c["rounds"][0]["outcome"], "flagged");

    // Humanitarian hats see the note.
    for who in [&w.m.consultee, &w.hc, &w.m.qip] {
        assert!(
            w.m.app
                .get_as(&format!("/api/v1/proposals/{id}/consultation"), &who.access)
                .text()
                .unwrap()
                .contains(SECRET)
        );
    }
    // Everyone else: no endpoint that can show flags or audit events ever carries it.
    let mut readers: Vec<&Session> = w.others.iter().map(|(_, s)| s).collect();
    readers.push(&w.m.unit);
    readers.push(&w.m.auditor);
    let flag_id = consultation(&w, &w.hc, &id)["flags"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let paths = [
        format!("/api/v1/proposals/{id}/consultation"),
        format!("/api/v1/proposals/{id}"),
        format!("/api/v1/proposals/{id}/versions"),
        "/api/v1/proposals".to_owned(),
        "/api/v1/audit/events?limit=200".to_owned(),
        format!("/api/v1/audit/events?entity_id={id}"),
        format!("/api/v1/audit/events?entity_id={flag_id}"),
    ];
    for who in readers {
        for path in &paths {
            let body = w.m.app.get_as(path, &who.access).text().unwrap();
            assert!(!body.contains(SECRET), "{path} leaked the confidential note");
        }
        // Errors do not echo it either.
        let body =
            w.m.app
                .post_json(
                    &format!("/api/v1/flags/{flag_id}/override"),
                    Some(&who.access),
                    &json!({}),
                )
                .text()
                .unwrap();
        assert!(!body.contains(SECRET));
    }
    // The audit trail records that a note exists, never its text.
    assert!(
        w.m.app
            .audit_rows()
            .iter()
            .all(|e| !e.after_state.as_deref().unwrap_or("").contains(SECRET))
    );
}

#[test]
fn flags_end_only_by_their_raiser_or_an_hc_override_with_justification() {
    let w = world();
    let (id, _, _) = w.m.submitted("School borehole", "9000.00");
    answer(&w, &w.m.consultee, &id, blocking_objection());
    answer(
        &w,
        &w.ocha,
        &id,
        json!({"kind": "objection", "flags": [{"category": "do_no_harm", "severity": "blocking", "description": "Market day crowds"}]}),
    );
    assert_eq!(state(&w, &id), "flagged");
    let flags = consultation(&w, &w.hc, &id)["flags"].as_array().unwrap().clone();
    let unicef_flag = flags
        .iter()
        .find(|f| f["organization_id"] == w.unicef_org)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ocha_flag = flags.iter().find(|f| f["category"] == "do_no_harm").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another organisation's consultee cannot end UNICEF's flag; the attempt is audited.
    assert_problem(
        w.m.app.post_json(
            &format!("/api/v1/flags/{unicef_flag}/withdraw"),
            Some(&w.ocha.access),
            &json!({}),
        ),
        403,
        "forbidden",
    );
    assert!(
        w.m.app
            .audit_rows()
            .iter()
            .any(|e| e.action == "flag.withdraw" && e.outcome == "denied")
    );
    // Resolve needs a revision first.
    assert_problem(
        w.m.app.post_json(
            &format!("/api/v1/flags/{unicef_flag}/resolve"),
            Some(&w.m.consultee.access),
            &json!({}),
        ),
        409,
        "conflict",
    );
    // Only the HC overrides, and never without a justification.
    assert_problem(
        w.m.app.post_json(
            &format!("/api/v1/flags/{ocha_flag}/override"),
            Some(&w.m.qip.access),
            &json!({"justification": "x".repeat(30)}),
        ),
        403,
        "forbidden",
    );
    // An HC who belongs to the submitting unit is a party, not a judge: refused and audited, flag still open.
    let unit_hc =
        w.m.app
            .user_with_hats(&w.m._admin, "banbat.hc", &w.m.unit_org, &["hc"]);
    assert_problem(
        w.m.app.post_json(
            &format!("/api/v1/flags/{ocha_flag}/override"),
            Some(&unit_hc.access),
            &json!({"justification": "Our own battalion says the market is fine"}),
        ),
        403,
        "forbidden",
    );
    assert!(w.m.app.audit_rows().iter().any(|e| e.action == "flag.override"
        && e.outcome == "denied"
        && e.actor_username.as_deref() == Some("banbat.hc")));
    assert_problem(
        w.m.app.post_json(
            &format!("/api/v1/flags/{ocha_flag}/override"),
            Some(&w.hc.access),
            &json!({"justification": "short"}),
        ),
        422,
        "validation",
    );
    let res = w.m.app.post_json(
        &format!("/api/v1/flags/{ocha_flag}/override"),
        Some(&w.hc.access),
        &json!({"justification": "Market committee moved market day; risk addressed in the plan"}),
    );
    assert_eq!(res.json::<Value>().unwrap()["status"], "overridden");
    assert_eq!(state(&w, &id), "flagged", "UNICEF's flag still blocks");
    let res = w.m.app.post_json(
        &format!("/api/v1/flags/{unicef_flag}/withdraw"),
        Some(&w.m.consultee.access),
        &json!({"justification": "Escorts dropped"}),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(state(&w, &id), "in_review", "the last blocking flag ended");
    let c = consultation(&w, &w.m.unit, &id);
    let overridden = c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == ocha_flag.as_str())
        .unwrap();
    assert!(
        overridden["end_justification"]
            .as_str()
            .unwrap()
            .contains("market day")
    );
    assert_problem(
        w.m.app.post_json(
            &format!("/api/v1/flags/{unicef_flag}/withdraw"),
            Some(&w.m.consultee.access),
            &json!({}),
        ),
        409,
        "conflict",
    );
}

#[test]
fn unsolicited_answers_are_recorded_but_cannot_block() {
    let w = world();
    let (id, _, _) = w.m.submitted("School borehole", "9000.00");
    let c = answer(&w, &w.nrc, &id, blocking_objection())
        .json::<Value>()
        .unwrap();
    let response = c["rounds"][0]["responses"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(response["unsolicited"], true);
    assert_eq!(c["flags"][0]["severity"], "advisory");
    answer(
        &w,
        &w.m.consultee,
        &id,
        json!({"kind": "comment", "comment": "Coordinate with the school"}),
    );
    // A changed answer before the round closes is allowed and recorded.
    answer(&w, &w.m.consultee, &id, json!({"kind": "no_objection"}));
    let c = answer(&w, &w.ocha, &id, json!({"kind": "no_objection"}))
        .json::<Value>()
        .unwrap();
    assert_eq!(c["state"], "in_review");
    assert_eq!(c["rounds"][0]["responses"].as_array().unwrap().len(), 4);
    let unicef = c["rounds"][0]["consultees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["organization_id"] == w.unicef_org)
        .unwrap()
        .clone();
    assert_eq!(unicef["status"], "no_objection");
    assert_problem(
        answer(&w, &w.ocha, &id, json!({"kind": "no_objection"})),
        409,
        "conflict",
    );
    assert_problem(
        answer(&w, &w.ocha, &id, json!({"kind": "objection"})),
        422,
        "validation",
    );
}

#[test]
fn two_consultees_answering_at_once_close_the_round_exactly_once() {
    let w = world();
    for i in 0..3 {
        let (id, _, _) = w.m.submitted(&format!("Race {i}"), "9000.00");
        std::thread::scope(|s| {
            let a = s.spawn(|| {
                answer(&w, &w.m.consultee, &id, json!({"kind": "no_objection"}))
                    .status()
                    .as_u16()
            });
            let b = s.spawn(|| {
                answer(&w, &w.ocha, &id, json!({"kind": "no_objection"}))
                    .status()
                    .as_u16()
            });
            assert_eq!(a.join().unwrap(), 200);
            assert_eq!(b.join().unwrap(), 200);
        });
        assert_eq!(state(&w, &id), "in_review");
        let closes =
            w.m.app
                .audit_rows()
                .iter()
                .filter(|e| e.action == "consultation.close" && e.entity_id.as_deref() == Some(id.as_str()))
                .count();
        assert_eq!(closes, 1);
    }
}

fn expire_rounds(w: &World) {
    w.m.app
        .db
        .connect()
        .batch_execute(
            "UPDATE consultation_rounds SET deadline = '2020-01-01 00:00:00' WHERE closed_at IS NULL",
        )
        .unwrap();
}

fn sweep(w: &World) -> usize {
    let settings = crate::support::test_settings(&w.m.app.db.url());
    let pool = qip_pool::db::build_pool(&settings.database).unwrap();
    qip_pool::jobs::sweep_once(&pool)
}

#[test]
fn at_the_deadline_silence_is_consent_or_a_blocking_flag_per_the_pool() {
    let w = world();
    let (consenting, _, _) = w.m.submitted("Quiet one", "9000.00");
    answer(&w, &w.ocha, &consenting, json!({"kind": "no_objection"}));
    // A second pool where silence is not consent.
    let mut settings =
        w.m.app
            .get_as(&format!("/api/v1/pools/{}", w.m.pool_id), &w.m.qip.access)
            .json::<Value>()
            .unwrap()["settings"]
            .clone();
    settings["silence_is_consent"] = json!(false);
    let strict: Value =
        w.m.app
            .post_json(
                "/api/v1/pools",
                Some(&w.m.qip.access),
                &json!({"code": "STRICT", "name": "Strict", "currency": "USD",
        "funding_start": "2026-01-01", "funding_end": "2027-12-31", "settings": settings}),
            )
            .json()
            .unwrap();
    let mut body = w.m.complete_content("Strict one", "9000.00");
    body["pool_id"] = strict["id"].clone();
    let draft: Value = w.m.create(&w.m.unit, &body).json().unwrap();
    let strict_id = draft["id"].as_str().unwrap().to_owned();
    assert_eq!(w.m.submit(&strict_id, 1).status().as_u16(), 200);
    answer(&w, &w.ocha, &strict_id, json!({"kind": "no_objection"}));

    assert_eq!(sweep(&w), 0, "nothing is overdue yet");
    expire_rounds(&w);
    assert_eq!(sweep(&w), 2);
    assert_eq!(sweep(&w), 0, "a round closes once");
    let c = consultation(&w, &w.m.qip, &consenting);
    assert_eq!(c["state"], "in_review");
    assert_eq!(c["rounds"][0]["closed_by"], "deadline");
    let unicef = c["rounds"][0]["consultees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["organization_id"] == w.unicef_org)
        .unwrap()
        .clone();
    assert_eq!(unicef["status"], "lapsed");
    let c = consultation(&w, &w.m.qip, &strict_id);
    assert_eq!(c["state"], "flagged");
    let lapse_flag = c["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["severity"] == "blocking")
        .unwrap()
        .clone();
    assert_eq!(lapse_flag["organization_id"], w.unicef_org);
    // The lapsed organisation can lift it by withdrawing.
    let res = w.m.app.post_json(
        &format!("/api/v1/flags/{}/withdraw", lapse_flag["id"].as_str().unwrap()),
        Some(&w.m.consultee.access),
        &json!({}),
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(state(&w, &strict_id), "in_review");
}

#[test]
fn the_sweeper_racing_a_late_answer_never_loses_it_or_closes_twice() {
    let w = world();
    for i in 0..3 {
        let (id, _, _) = w.m.submitted(&format!("Late {i}"), "9000.00");
        answer(&w, &w.ocha, &id, json!({"kind": "no_objection"}));
        expire_rounds(&w);
        let status = std::thread::scope(|s| {
            let swept = s.spawn(|| sweep(&w));
            let late = s.spawn(|| {
                answer(
                    &w,
                    &w.m.consultee,
                    &id,
                    json!({"kind": "comment", "comment": "late"}),
                )
                .status()
                .as_u16()
            });
            swept.join().unwrap();
            late.join().unwrap()
        });
        let c = consultation(&w, &w.m.qip, &id);
        let closes =
            w.m.app
                .audit_rows()
                .iter()
                .filter(|e| e.action == "consultation.close" && e.entity_id.as_deref() == Some(id.as_str()))
                .count();
        assert_eq!(closes, 1);
        assert_eq!(c["state"], "in_review");
        let unicef = c["rounds"][0]["consultees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["organization_id"] == w.unicef_org)
            .unwrap()
            .clone();
        match status {
            200 => {
                assert_eq!(unicef["status"], "comment", "an accepted answer is kept");
                assert_eq!(c["rounds"][0]["closed_by"], "all_answered");
            }
            409 => assert_eq!(unicef["status"], "lapsed"),
            other => panic!("unexpected {other}"),
        }
    }
}

#[test]
fn hxl_import_is_all_or_nothing_with_every_bad_line_named() {
    let w = world();
    let good = "Organisation,Sector,Admin 1,Admin 2,Lat,Lon,Start,End,Activity\n\
                #org,#sector,#adm1+code,#adm2+code,#geo+lat,#geo+lon,#date+start,#date+end,#activity\n\
                UNICEF,WSH,XY01,XY0101,12.1,24.9,2026-01-01,2027-06-30,Latrines\n\
                UNICEF,EDU,XY02,XY0201,,,2026-03-01,,Classrooms\n";
    let import = |who: &Session, body: &str| {
        w.m.app
            .client
            .post(w.m.app.url("/api/v1/activities/import"))
            .bearer_auth(&who.access)
            .header("content-type", "text/csv")
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    let res = import(&w.m.consultee, good);
    assert_eq!(res.json::<Value>().unwrap()["imported"], 2);
    let bad = "#org,#sector,#adm1+code,#adm2+code,#date+start,#date+end,#activity\n\
               UNICEF,WSH,XY01,XY0101,2026-01-01,,Fine\n\
               UNICEF,NOPE,XY01,XY0101,2026-01-01,,Bad sector\n\
               UNICEF,WSH,XY01,XY0201,2026-01-01,,Wrong adm\n\
               UNICEF,WSH,XY01,XY0101,01/02/2026,,Bad date\n\
               NRC,WSH,XY01,XY0101,2026-01-01,,Not mine\n";
    let problem = assert_problem(import(&w.m.consultee, bad), 422, "validation");
    let lines: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for line in ["line 3", "line 4", "line 5", "line 6"] {
        assert!(lines.contains(&line), "{line} missing in {problem}");
    }
    assert!(!lines.contains(&"line 2"));
    let page: Value =
        w.m.app
            .get_as("/api/v1/activities?limit=200", &w.m.unit.access)
            .json()
            .unwrap();
    assert_eq!(
        page["items"].as_array().unwrap().len(),
        2,
        "nothing of the bad file was written"
    );
}
