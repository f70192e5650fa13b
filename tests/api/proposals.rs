//! Reference data, pools and proposals through the HTTP API: drafting, editing under If-Match, submission
//! checks, reference codes (also under concurrency), visibility, mass assignment, versions and lists.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::Mission;
use crate::support::assert_problem;

#[test]
fn gazetteer_import_is_all_or_nothing_and_names_every_bad_line() {
    let m = Mission::new();
    let areas: Value = m
        .app
        .get_as("/api/v1/areas?adm1=XY01", &m.unit.access)
        .json()
        .unwrap();
    let codes: Vec<&str> = areas["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["pcode"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["XY0101", "XY0102"]);
    assert_eq!(areas["items"][0]["lat"], 12.1);

    let bad = "ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN,LAT,LON\n\
               XY03,East,XY0301,Ok,1,1\n\
               XY03,East,,Missing,,\n\
               XY03,Another name,XY0302,Renamed,,\n\
               XY03,East,XY0301,Duplicate,,\n\
               XY03,East,XY0303,Far,95,10\n";
    let res = m
        .app
        .client
        .post(m.app.url("/api/v1/areas/import"))
        .bearer_auth(&m.qip.access)
        .header("content-type", "text/csv")
        .body(bad)
        .send()
        .unwrap();
    let body = assert_problem(res, 422, "validation");
    let lines: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for line in ["line 3", "line 4", "line 5", "line 6"] {
        assert!(lines.contains(&line), "{line} not reported: {body}");
    }
    assert!(!lines.contains(&"line 2"));
    let east: Value = m
        .app
        .get_as("/api/v1/areas?adm1=XY03", &m.unit.access)
        .json()
        .unwrap();
    assert_eq!(east["items"], json!([]), "nothing of a bad file is written");

    let res = m
        .app
        .client
        .post(m.app.url("/api/v1/areas/import"))
        .bearer_auth(&m.qip.access)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .unwrap();
    assert_problem(res, 415, "unsupported-media-type");
    let res = m
        .app
        .client
        .post(m.app.url("/api/v1/areas/import"))
        .bearer_auth(&m.qip.access)
        .header("content-type", "text/csv")
        .body("PCODE,NAME\nX,Y\n")
        .send()
        .unwrap();
    let body = assert_problem(res, 422, "validation");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("ADM1_PCODE")
    );
}

#[test]
fn sectors_hold_the_iasc_clusters_and_qip_sectors() {
    let m = Mission::new();
    let sectors: Value = m
        .app
        .get_as("/api/v1/sectors", &m.consultee.access)
        .json()
        .unwrap();
    let wash = sectors
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "WSH")
        .unwrap();
    assert_eq!(wash["vocabulary"], "10");
    assert_eq!(wash["humanitarian"], true);
    let infra = sectors
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == "QIP-INF")
        .unwrap();
    assert_eq!(infra["humanitarian"], false);
    assert_eq!(sectors.as_array().unwrap().len(), 17);
}

#[test]
fn pool_settings_are_validated_versioned_and_guarded_by_if_match() {
    let m = Mission::new();
    let pool: Value = m
        .app
        .get_as(&format!("/api/v1/pools/{}", m.pool_id), &m.unit.access)
        .json()
        .unwrap();
    assert_eq!(pool["settings"]["ceiling"], "50000.00");
    assert_eq!(
        pool["settings"]["authority_bands"][0],
        json!({"max_amount": "15000.00", "hat": "head_of_office"})
    );
    assert_eq!(pool["settings_version"], 1);

    let mut settings = pool["settings"].clone();
    settings["authority_bands"][1]["max_amount"] = json!("40000.00");
    settings["tranche_plan"][1]["percent"] = json!(30);
    settings["ceiling"] = json!("50000.001");
    let path = format!("/api/v1/pools/{}", m.pool_id);
    let res = m.app.send(
        Method::PATCH,
        &path,
        Some(&m.qip.access),
        Some(&json!({"settings": settings})),
    );
    assert_problem(res, 428, "precondition-required");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.qip,
        1,
        Some(&json!({"settings": settings})),
    );
    let body = assert_problem(res, 422, "validation");
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "settings.ceiling"),
        "{body}"
    );
    settings["ceiling"] = json!("50000.00");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.qip,
        1,
        Some(&json!({"settings": settings})),
    );
    let body = assert_problem(res, 422, "validation");
    let messages: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(messages.iter().any(|m| m.contains("cover the ceiling")), "{body}");
    assert!(messages.iter().any(|m| m.contains("sum to 100")), "{body}");

    settings["authority_bands"][1]["max_amount"] = json!("50000.00");
    settings["tranche_plan"][1]["percent"] = json!(40);
    settings["consultation_window_days"] = json!(7);
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.qip,
        1,
        Some(&json!({"settings": settings})),
    );
    assert_eq!(res.headers().get("etag").unwrap(), "\"2\"");
    let pool: Value = res.json().unwrap();
    assert_eq!(pool["settings_version"], 2);
    assert_eq!(pool["settings"]["consultation_window_days"], 7);
    let res = m.with_if_match(Method::PATCH, &path, &m.qip, 1, Some(&json!({"name": "Stale"})));
    assert_problem(res, 412, "precondition-failed");
    assert!(
        m.app
            .audit_rows()
            .iter()
            .any(|e| e.action == "pool.update" && e.entity_id.as_deref() == Some(m.pool_id.as_str()))
    );
    // Only the secretariat manages pools.
    let res = m.with_if_match(Method::PATCH, &path, &m.unit, 2, Some(&json!({"name": "Mine"})));
    assert_problem(res, 403, "forbidden");
}

#[test]
fn draft_edit_submit_then_the_version_is_immutable() {
    let m = Mission::new();
    let mut body = m.complete_content("Kalma borehole", "12000.00");
    body.as_object_mut().unwrap().remove("requested_amount");
    let res = m.create(&m.unit, &body);
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers().get("etag").unwrap(), "\"1\"");
    let draft: Value = res.json().unwrap();
    assert_eq!(draft["state"], "draft");
    assert_eq!(draft["reference"], Value::Null);
    assert_eq!(draft["organization_id"], m.unit_org);
    assert_eq!(draft["computed"]["budget_total"], "12000.00");
    assert_eq!(draft["computed"]["duration_days"], 90);
    assert_eq!(draft["iati_activity_status"], 1);
    let id = draft["id"].as_str().unwrap();
    let path = format!("/api/v1/proposals/{id}");

    let res = m.app.send(
        Method::PATCH,
        &path,
        Some(&m.unit.access),
        Some(&json!({"requested_amount": "12000.00"})),
    );
    assert_problem(res, 428, "precondition-required");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.unit,
        1,
        Some(&json!({"requested_amount": "12000.00", "visibility_note": "Plaque"})),
    );
    assert_eq!(res.status().as_u16(), 200);
    let edited: Value = res.json().unwrap();
    assert_eq!(edited["version"], 2);
    assert_eq!(edited["content"]["requested_amount"], "12000.00");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.unit,
        1,
        Some(&json!({"title": "Stale edit"})),
    );
    assert_problem(res, 412, "precondition-failed");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.unit,
        2,
        Some(&json!({"visibility_note": null})),
    );
    assert_eq!(
        res.json::<Value>().unwrap()["content"]["visibility_note"],
        Value::Null
    );

    let res = m.submit(id, 3);
    assert_eq!(res.status().as_u16(), 200);
    let submitted: Value = res.json().unwrap();
    let year = chrono::Utc::now().format("%Y").to_string();
    assert_eq!(submitted["reference"], format!("QIP-DFP-{year}-0001"));
    assert_eq!(submitted["state"], "in_consultation");
    assert_eq!(submitted["pool_settings_version"], 1);
    assert_eq!(
        submitted["allowed_actions"],
        json!(["withdraw"]),
        "the submitter is offered what it may do, not what the state allows"
    );

    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.unit,
        4,
        Some(&json!({"title": "Changed after submission"})),
    );
    let body = assert_problem(res, 409, "invalid-transition");
    assert_eq!(body["state"], "in_consultation");
    assert!(
        body["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("withdraw"))
    );
    let version: Value = m
        .app
        .get_as(&format!("{path}/versions/1"), &m.unit.access)
        .json()
        .unwrap();
    assert_eq!(version["status"], "submitted");
    assert_eq!(version["content"]["title"], "Kalma borehole");
    assert_problem(
        m.app.get_as(&format!("{path}/versions/2"), &m.unit.access),
        404,
        "not-found",
    );
    let versions: Value = m
        .app
        .get_as(&format!("{path}/versions"), &m.consultee.access)
        .json()
        .unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 1);

    let events: Vec<String> = m
        .app
        .audit_rows()
        .into_iter()
        .filter(|e| e.entity_id.as_deref() == Some(id))
        .map(|e| e.action)
        .collect();
    assert_eq!(
        events,
        [
            "proposal.create",
            "proposal.edit",
            "proposal.edit",
            "proposal.submit",
            "consultation.open"
        ]
    );
}

#[test]
fn a_submission_with_many_faults_lists_every_one() {
    let m = Mission::new();
    let res = m.create(&m.unit, &json!({
        "pool_id": m.pool_id,
        "title": "Half-written",
        "sector_code": "NOT-A-SECTOR",
        "location": {"adm1_pcode": "XY02", "adm2_pcode": "XY0101"},
        "planned_start": "2027-05-01",
        "planned_end": "2027-04-01",
        "budget_lines": [{"description": "Cement", "category": "materials", "quantity": "10", "unit_cost": "100.00"}],
        "requested_amount": "999.00",
        "screening": {"civilian_actor_present": true}
    }));
    let draft: Value = res.json().unwrap();
    let body = assert_problem(m.submit(draft["id"].as_str().unwrap(), 1), 422, "validation");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    for expected in [
        "summary",
        "objectives",
        "confidence_building_purpose",
        "local_ownership",
        "sector_code",
        "location.adm2_pcode",
        "implementing_partner",
        "beneficiaries",
        "planned_end",
        "requested_amount",
        "handover",
        "screening.civilian_actor_details",
        "screening.unique_military_capability",
        "screening.time_limited_with_handover",
        "screening.assistance_type",
        "screening.humanitarian_access_risk",
    ] {
        assert!(fields.contains(&expected), "{expected} not listed: {fields:?}");
    }
    let after: Value = m
        .app
        .get_as(
            &format!("/api/v1/proposals/{}", draft["id"].as_str().unwrap()),
            &m.unit.access,
        )
        .json()
        .unwrap();
    assert_eq!(after["state"], "draft");
    assert_eq!(after["version"], 1, "a refused submission changes nothing");
}

#[test]
fn malformed_values_are_refused_when_saved() {
    let m = Mission::new();
    let mut body = m.complete_content("Bad money", "12000.001");
    body["budget_lines"][0]["quantity"] = json!("-1");
    body["location"]["lat"] = json!(120.0);
    let res = m.create(&m.unit, &body);
    let body = assert_problem(res, 422, "validation");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"requested_amount"), "{body}");
    assert!(fields.contains(&"budget_lines[0].quantity"), "{body}");
    assert!(fields.contains(&"location.lat"), "{body}");
}

#[test]
fn the_ceiling_needs_a_waiver_and_the_waiver_is_recorded() {
    let m = Mission::new();
    let (id, version) = m.draft("Bridge", "60000.00");
    let body = assert_problem(m.submit(&id, version), 422, "validation");
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == "requested_amount" && e["message"].as_str().unwrap().contains("ceiling"))
    );
    let path = format!("/api/v1/proposals/{id}");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.unit,
        version,
        Some(&json!({"waiver": {"reason": "The only crossing within 40 km; a bridge cannot cost less"}})),
    );
    let res = m.submit(&id, res.json::<Value>().unwrap()["version"].as_i64().unwrap());
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.json::<Value>().unwrap()["waived_limits"], json!(["ceiling"]));
}

#[test]
fn server_owned_fields_are_refused_on_create_and_edit() {
    let m = Mission::new();
    let (id, version) = m.draft("Mass assignment", "1000.00");
    let path = format!("/api/v1/proposals/{id}");
    for field in qip_pool::domain::proposal::SERVER_OWNED_FIELDS {
        if field == "pool_id" {
            continue;
        }
        let mut body = m.complete_content("x", "1000.00");
        body[field] = json!("forged");
        let res = m.create(&m.unit, &body);
        let problem = assert_problem(res, 422, "validation");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {problem}"
        );
        let res = m.with_if_match(
            Method::PATCH,
            &path,
            &m.unit,
            version,
            Some(&json!({field: "forged"})),
        );
        assert_problem(res, 422, "validation");
    }
    let mut body = m.complete_content("x", "1000.00");
    body["budget_lines"][0]["total"] = json!("5.00");
    assert_problem(m.create(&m.unit, &body), 422, "validation");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.unit,
        version,
        Some(&json!({"pool_id": "another"})),
    );
    assert_problem(res, 422, "validation");
    let unchanged: Value = m.app.get_as(&path, &m.unit.access).json().unwrap();
    assert_eq!(unchanged["version"], version);
    assert_eq!(unchanged["state"], "draft");
}

#[test]
fn drafts_are_invisible_outside_their_organisation_and_consultees_cannot_draft() {
    let m = Mission::new();
    let (id, version) = m.draft("Private draft", "1000.00");
    let path = format!("/api/v1/proposals/{id}");
    assert_problem(m.app.get_as(&path, &m.other_unit.access), 404, "not-found");
    let res = m.with_if_match(
        Method::PATCH,
        &path,
        &m.other_unit,
        version,
        Some(&json!({"title": "Hijack"})),
    );
    assert_problem(res, 404, "not-found");
    assert_problem(m.app.get_as(&path, &m.consultee.access), 404, "not-found");
    assert_eq!(m.app.get_as(&path, &m.qip.access).status().as_u16(), 200);
    assert_eq!(m.app.get_as(&path, &m.auditor.access).status().as_u16(), 200);
    assert_problem(
        m.create(&m.consultee, &m.complete_content("No", "1.00")),
        403,
        "forbidden",
    );
    let list: Value = m
        .app
        .get_as("/api/v1/proposals", &m.other_unit.access)
        .json()
        .unwrap();
    assert_eq!(list["items"], json!([]));

    let res = m.submit(&id, version);
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(m.app.get_as(&path, &m.consultee.access).status().as_u16(), 200);
    assert_problem(m.app.get_as(&path, &m.other_unit.access), 404, "not-found");
}

#[test]
fn concurrent_submissions_get_distinct_gap_free_references() {
    let m = Mission::new();
    let drafts: Vec<(String, i64)> = (0..10)
        .map(|i| m.draft(&format!("Project {i}"), "1000.00"))
        .collect();
    let refs: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = drafts
            .iter()
            .map(|(id, v)| {
                let m = &m;
                s.spawn(move || {
                    let res = m.submit(id, *v);
                    assert_eq!(res.status().as_u16(), 200);
                    res.json::<Value>().unwrap()["reference"]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let year = chrono::Utc::now().format("%Y").to_string();
    let mut refs = refs;
    refs.sort();
    let expected: Vec<String> = (1..=10).map(|n| format!("QIP-DFP-{year}-{n:04}")).collect();
    assert_eq!(refs, expected);
}

#[test]
fn withdrawal_is_for_the_submitter_before_approval() {
    let m = Mission::new();
    let (id, _, version) = m.submitted("Withdrawn one", "2000.00");
    let path = format!("/api/v1/proposals/{id}/withdraw");
    let res = m.with_if_match(
        Method::POST,
        &path,
        &m.consultee,
        version,
        Some(&json!({"reason": "x"})),
    );
    assert_problem(res, 403, "forbidden");
    let res = m.with_if_match(
        Method::POST,
        &path,
        &m.unit,
        version,
        Some(&json!({"reason": "Community changed its mind"})),
    );
    assert_eq!(res.status().as_u16(), 200);
    let body: Value = res.json().unwrap();
    assert_eq!(body["state"], "withdrawn");
    assert_eq!(body["iati_activity_status"], 5);
    assert_eq!(body["allowed_actions"], json!([]));
    let res = m.with_if_match(
        Method::POST,
        &path,
        &m.unit,
        body["version"].as_i64().unwrap(),
        None,
    );
    let problem = assert_problem(res, 409, "invalid-transition");
    assert_eq!(problem["state"], "withdrawn");
}

#[test]
fn list_filters_combine_and_paging_sees_every_row_once_while_rows_are_added() {
    let m = Mission::new();
    for i in 0..5 {
        m.submitted(&format!("Borehole {i}"), "1000.00");
    }
    let mut other = m.complete_content("School roof Nyala", "3000.00");
    other["sector_code"] = json!("EDU");
    other["location"] = json!({"adm1_pcode": "XY02", "adm2_pcode": "XY0201"});
    let res = m.create(&m.unit, &other);
    let roof: Value = res.json().unwrap();
    m.submit(roof["id"].as_str().unwrap(), 1);
    m.draft("Draft only", "10.00");

    let get = |q: &str| -> Value {
        m.app
            .get_as(&format!("/api/v1/proposals?{q}"), &m.qip.access)
            .json()
            .unwrap()
    };
    assert_eq!(get("sector=EDU&adm1=XY02")["items"].as_array().unwrap().len(), 1);
    assert_eq!(get("sector=EDU&adm1=XY01")["items"].as_array().unwrap().len(), 0);
    assert_eq!(get("state=draft")["items"].as_array().unwrap().len(), 1);
    assert_eq!(get("q=BOREHOLE 3")["items"][0]["title"], "Borehole 3");
    assert_eq!(
        get("q=roof&adm2=XY0201")["items"][0]["requested_amount"],
        "3000.00"
    );
    assert_eq!(
        get(&format!("pool_id={}&state=in_consultation", m.pool_id))["items"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    let consultee_view: Value = m
        .app
        .get_as("/api/v1/proposals", &m.consultee.access)
        .json()
        .unwrap();
    assert_eq!(
        consultee_view["items"].as_array().unwrap().len(),
        6,
        "drafts are not listed for consultees"
    );

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut added = 0;
    loop {
        let q = match &cursor {
            Some(c) => format!("limit=2&cursor={c}"),
            None => "limit=2".into(),
        };
        let page = get(&q);
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        if added < 3 {
            m.draft(&format!("Added while paging {added}"), "5.00");
            added += 1;
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no row twice");
    assert_eq!(seen.len(), 7, "every row that existed when paging began");
}

#[test]
fn demo_seed_builds_a_mission_with_every_hat_and_proposals_in_several_states() {
    let app = crate::support::TestApp::spawn();
    let auth =
        qip_pool::features::identity::AuthRuntime::new(&crate::support::test_settings(&app.db.url()).auth)
            .unwrap();
    let logins = qip_pool::features::demo::seed(&mut app.conn(), &auth).unwrap();
    let hats: std::collections::BTreeSet<&str> = logins
        .iter()
        .flat_map(|l| l.hats.iter().map(|h| h.as_str()))
        .collect();
    assert_eq!(
        hats.len(),
        qip_pool::access::Hat::ALL.len(),
        "a user for every hat"
    );
    let unit = app.login("cimic", qip_pool::features::demo::DEMO_PASSWORD);
    let mine: Value = app.get_as("/api/v1/proposals", &unit.access).json().unwrap();
    let states: Vec<&str> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "draft").count(), 1);
    assert_eq!(states.iter().filter(|s| **s == "in_consultation").count(), 2);
    let every: std::collections::BTreeSet<&str> = states.iter().copied().collect();
    assert_eq!(every.len(), 11, "a proposal in every state: {every:?}");
    let dsrsg = app.login("dsrsg", qip_pool::features::demo::DEMO_PASSWORD);
    let me: Value = app.get_as("/api/v1/me", &dsrsg.access).json().unwrap();
    assert_eq!(me["hats"].as_array().unwrap().len(), 3);
    assert!(
        qip_pool::features::demo::seed(&mut app.conn(), &auth).is_err(),
        "seeding twice is refused"
    );
    assert!(
        qip_pool::features::audit::verify_chain(&mut app.conn())
            .unwrap()
            .intact
    );
}
