//! Issue 11 item 2: a confidential consultation note never reaches the submitting organisation, whatever hats
//! its members hold. The leak sweep is generated from the OpenAPI document: every GET route, with its path
//! parameters filled from a proposal that carries a note, is called by members of the submitting organisation
//! in every hat, and the note's text must appear in no body. A reader the rule allows (the HC of another
//! organisation) does see it, so the sweep can fail. Audit events never hold the text either.

use reqwest::Method;
use serde_json::{Value, json};

use crate::approval::desk;
use crate::support::{Session, TestApp};
use qip_pool::access::Hat;

/// `GET` with an optional `Acting-Hat`; returns (status, body text).
fn get(app: &TestApp, path: &str, who: &Session, hat: Option<Hat>) -> (u16, String) {
    let mut req = app
        .client
        .request(Method::GET, app.url(path))
        .bearer_auth(&who.access);
    if let Some(h) = hat {
        req = req.header("Acting-Hat", h.as_str());
    }
    let res = req.send().unwrap();
    (res.status().as_u16(), res.text().unwrap())
}

/// Fills a path template: each `{param}` gets the id of the object the segment before it names.
fn fill(template: &str, ids: &[(&str, &str)], fallback: &str) -> String {
    let segments: Vec<&str> = template.split('/').collect();
    let mut out = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        if segment.starts_with('{') && segment.ends_with('}') {
            let collection = if i > 0 { segments[i - 1] } else { "" };
            let key = if *segment == "{id}" {
                collection
            } else {
                segment.trim_matches(['{', '}'])
            };
            let id = ids
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| *v)
                .unwrap_or(fallback);
            out.push(id.to_owned());
        } else {
            out.push((*segment).to_owned());
        }
    }
    out.join("/")
}

#[test]
fn confidential_notes_never_reach_the_submitting_organisation_on_any_get_route() {
    let d = desk("100000.00");
    let app = &d.m.app;
    let admin = &d.m._admin;
    let marker = format!("CONFIDENTIAL-{}", uuid::Uuid::now_v7().simple());

    // A proposal of the battalion, with a confidential note from the consultee, approved and partly paid so
    // that transactions, tranches, steps and versions exist to be read.
    let (id, _, _) = d.m.submitted("Kalma borehole", "10000.00");
    let res = app.post_json(
        &format!("/api/v1/proposals/{id}/consultation/responses"),
        Some(&d.ocha.access),
        &json!({"kind": "objection", "flags": [{"category": "local_capacity", "severity": "advisory",
                "description": "Local masons are available", "confidential_note": marker}]}),
    );
    assert_eq!(res.status().as_u16(), 200, "{}", res.text().unwrap_or_default());
    assert_eq!(d.approve_all(&id)["state"], "approved");
    let paid = app
        .client
        .post(app.url(&format!("/api/v1/proposals/{id}/tranches/1/disbursements")))
        .bearer_auth(&d.finance.access)
        .header("Idempotency-Key", "leak-pay-1")
        .json(&json!({"amount": "1000.00", "paid_on": chrono::Utc::now().date_naive(), "payment_reference": "PAY-1"}))
        .send()
        .unwrap();
    assert_eq!(paid.status().as_u16(), 201);
    let transaction = paid.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let round = get(
        app,
        &format!("/api/v1/proposals/{id}/consultation"),
        &d.m.qip,
        None,
    )
    .1;
    let round: Value = serde_json::from_str(&round).unwrap();
    let round_id = round["rounds"][0]["id"].as_str().unwrap().to_owned();
    let flag_id = round["flags"][0]["id"].as_str().unwrap().to_owned();

    // The control: readers the rule allows see the note, so the sweep below can fail.
    let (status, body) = get(
        app,
        &format!("/api/v1/proposals/{id}/consultation"),
        &d.dsrsg,
        Some(Hat::Hc),
    );
    assert_eq!(status, 200);
    assert!(
        body.contains(&marker),
        "the HC of another organisation reads the note"
    );
    let (_, body) = get(
        app,
        &format!("/api/v1/proposals/{id}/brief"),
        &d.dsrsg,
        Some(Hat::Hc),
    );
    assert!(body.contains(&marker), "the HC's decision brief carries the note");
    assert!(
        get(
            app,
            &format!("/api/v1/proposals/{id}/consultation"),
            &d.ocha,
            None
        )
        .1
        .contains(&marker)
    );

    // Members of the submitting battalion: one per hat, and one holding every hat (acting in each in turn).
    let mut callers: Vec<(String, Session, Option<Hat>)> = Vec::new();
    for hat in Hat::ALL {
        let who = app.user_with_hats(admin, &format!("bat-{hat}"), &d.m.unit_org, &[hat.as_str()]);
        callers.push((format!("member with {hat}"), who, None));
    }
    let every: Vec<&str> = Hat::ALL.iter().map(|h| h.as_str()).collect();
    let all_hats = app.user_with_hats(admin, "bat-all", &d.m.unit_org, &every);
    for hat in Hat::ALL {
        callers.push((
            format!("member of every hat acting as {hat}"),
            all_hats.clone(),
            Some(hat),
        ));
    }
    callers.push(("member of every hat, no hat named".into(), all_hats.clone(), None));
    callers.push(("the submitting officer".into(), d.m.unit.clone(), None));
    // A hat scoped to act for the battalion counts as belonging to it.
    let scoped = app.user_with_hats(admin, "ocha-for-bat", &d.ocha.organization_id, &[]);
    app.grant(
        admin,
        &scoped.user_id,
        &json!({"hat": "hc", "scope_organization_id": d.m.unit_org}),
    );
    let scoped = app.login("ocha-for-bat", crate::support::USER_PASSWORD);
    callers.push(("an HC scoped to the battalion".into(), scoped, None));

    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let ids: Vec<(&str, &str)> = vec![
        ("proposals", &id),
        ("pools", &d.m.pool_id),
        ("transactions", &transaction),
        ("organizations", &d.m.unit_org),
        ("users", &d.m.unit.user_id),
        ("rounds", &round_id),
        ("flags", &flag_id),
        ("n", "1"),
        ("number", "1"),
    ];
    let mut routes = 0;
    let mut readable = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() {
            continue;
        }
        routes += 1;
        let path = fill(template, &ids, &id);
        for (label, who, hat) in &callers {
            let (status, body) = get(app, &path, who, *hat);
            assert!(status < 500, "GET {path} as {label}: {status} {body}");
            if status == 200 {
                readable += 1;
            }
            assert!(
                !body.contains(&marker),
                "GET {path} as {label} ({status}) leaks the confidential note: {body}"
            );
        }
    }
    assert!(routes >= 30, "the OpenAPI document lists {routes} GET routes");
    assert!(
        readable > routes,
        "the sweep read real bodies ({readable} answers of 200)"
    );
    // The reads that carry flags were answered, without the note.
    for path in [
        format!("/api/v1/proposals/{id}/consultation"),
        format!("/api/v1/proposals/{id}/brief"),
    ] {
        let (status, body) = get(app, &path, &all_hats, Some(Hat::Hc));
        assert_eq!(status, 200, "GET {path} as the battalion's HC");
        let flags = &serde_json::from_str::<Value>(&body).unwrap()["flags"];
        assert_eq!(flags[0]["description"], "Local masons are available");
        assert!(flags[0].get("confidential_note").is_none(), "{flags}");
    }

    // A write that answers with the flag: the battalion's HC overrides it, and reads no note back.
    let res = app
        .client
        .post(app.url(&format!("/api/v1/flags/{flag_id}/override")))
        .bearer_auth(&all_hats.access)
        .header("Acting-Hat", "hc")
        .json(&json!({"justification": "The masons were consulted and declined the work"}))
        .send()
        .unwrap();
    let status = res.status().as_u16();
    let body = res.text().unwrap();
    assert!(
        !body.contains(&marker),
        "override answer ({status}) leaks the note: {body}"
    );

    // The audit trail records that a note exists, never its text.
    for row in app.audit_rows() {
        let text = format!("{row:?}");
        assert!(!text.contains(&marker), "audit event leaks the note: {text}");
    }
    let mut conn = app.conn();
    let stored = qip_pool::features::consultation::repo::flags_of(&mut conn, &id).unwrap();
    assert_eq!(stored[0].confidential_note.as_deref(), Some(marker.as_str()));
}
