//! Contract checks for the whole suite: every response a test server sends is checked against the OpenAPI
//! document it serves — the status must be documented for the operation, and a JSON body must match the
//! schema documented for that status and media type. Validators are compiled lazily and cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use qip_pool::http::tap::TappedResponse;
use serde_json::{Value, json};

pub struct ContractChecker {
    doc: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    failures: Mutex<Vec<String>>,
}

impl ContractChecker {
    pub fn new(document: &str) -> Arc<Self> {
        Arc::new(Self {
            doc: serde_json::from_str(document).expect("the served document is JSON"),
            validators: Mutex::new(HashMap::new()),
            failures: Mutex::new(Vec::new()),
        })
    }

    /// Everything that broke the contract so far.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().map(|f| f.clone()).unwrap_or_default()
    }

    fn fail(&self, message: String) {
        if let Ok(mut f) = self.failures.lock() {
            f.push(message);
        }
    }

    pub fn check(&self, r: &TappedResponse<'_>) {
        let Some(template) = r.template else {
            return;
        };
        let method = r.method.to_ascii_lowercase();
        let Some(op) = self.doc["paths"].get(template).and_then(|p| p.get(&method)) else {
            return;
        };
        let what = format!("{} {} ({template}) -> {}", r.method, r.path, r.status);
        let status = r.status.to_string();
        let Some(response) = op["responses"]
            .get(&status)
            .or_else(|| op["responses"].get("default"))
        else {
            self.fail(format!("{what}: status not documented"));
            return;
        };
        let media_type = r
            .content_type
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim();
        // Streamed (non-JSON) bodies reach the observer empty: their media type is still checked.
        if r.body.is_empty() && (media_type.is_empty() || media_type.ends_with("json")) {
            return;
        }
        let Some(content) = response["content"].get(media_type) else {
            self.fail(format!("{what}: media type `{media_type}` not documented"));
            return;
        };
        if !media_type.ends_with("json") {
            return;
        }
        let Ok(body) = serde_json::from_slice::<Value>(r.body) else {
            self.fail(format!("{what}: body is not JSON"));
            return;
        };
        let Some(schema) = content.get("schema") else {
            return;
        };
        let key = format!("{method} {template} {status} {media_type}");
        let validator = {
            let mut cache = self.validators.lock().expect("validator cache");
            match cache.get(&key) {
                Some(v) => v.clone(),
                None => {
                    let mut root = schema.as_object().cloned().unwrap_or_default();
                    root.insert(
                        "$schema".into(),
                        json!("https://json-schema.org/draft/2020-12/schema"),
                    );
                    root.insert("components".into(), self.doc["components"].clone());
                    let v = match jsonschema::validator_for(&Value::Object(root)) {
                        Ok(v) => Arc::new(v),
                        Err(e) => {
                            drop(cache);
                            self.fail(format!("{what}: schema does not compile: {e}"));
                            return;
                        }
                    };
                    cache.insert(key, v.clone());
                    v
                }
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .take(3)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect();
        if !errors.is_empty() {
            let shown: String = body.to_string().chars().take(300).collect();
            self.fail(format!(
                "{what}: body does not match the schema: {} — body {shown}",
                errors.join("; ")
            ));
        }
    }
}

/// Every example the document shows (request and response bodies, properties, parameters) is valid against
/// the schema beside it: Swagger UI's "Try it out" starts from them, and a generated client's docs quote them.
#[test]
fn every_example_matches_its_schema() {
    let app = crate::support::TestApp::spawn();
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    let mut check = |what: String, schema: &Value, example: &Value| {
        let mut root = schema.as_object().cloned().unwrap_or_default();
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("components".into(), doc["components"].clone());
        let validator = jsonschema::validator_for(&Value::Object(root)).expect("schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(example)
            .take(3)
            .map(|e| format!("at `{}`: {e}", e.instance_path()))
            .collect();
        checked += 1;
        if !errors.is_empty() {
            failures.push(format!("{what}: {}", errors.join("; ")));
        }
    };
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            check(format!("schema {name}"), schema, example);
        }
        for (property, p) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(example) = p.get("example") {
                check(format!("schema {name}.{property}"), p, example);
            }
        }
    }
    let mut request_examples = 0;
    let mut missing = Vec::new();
    let mut response_examples = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let label = format!("{method} {template}");
            if let Some(media) = op.pointer("/requestBody/content/application~1json") {
                match media.get("example") {
                    Some(example) => {
                        request_examples += 1;
                        check(format!("{label} request"), &media["schema"], example);
                    }
                    None => missing.push(format!("{label}: the JSON request body has no example")),
                }
            }
            for (status, response) in op["responses"].as_object().into_iter().flatten() {
                for (media_type, media) in response["content"].as_object().into_iter().flatten() {
                    if let Some(example) = media.get("example") {
                        response_examples += 1;
                        check(
                            format!("{label} {status} {media_type}"),
                            &media["schema"],
                            example,
                        );
                    }
                }
            }
            for p in op["parameters"].as_array().into_iter().flatten() {
                if let Some(example) = p["schema"].get("example") {
                    check(format!("{label} parameter {}", p["name"]), &p["schema"], example);
                }
            }
        }
    }
    failures.extend(missing);
    assert!(request_examples > 30, "{request_examples} request examples");
    assert!(response_examples >= 7, "{response_examples} response examples");
    assert!(
        failures.is_empty(),
        "{checked} examples checked:\n{}",
        failures.join("\n")
    );
}

/// The document's `maxLength` counts characters (JSON Schema's rule), and so does the server: a name of 200
/// two-byte characters is valid for both, and 201 characters are refused by both.
#[test]
fn text_limits_count_characters_as_the_document_declares() {
    let (app, admin) = crate::support::TestApp::with_admin();
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let name = &doc["components"]["schemas"]["NewOrganization"]["properties"]["name"];
    assert_eq!(name["maxLength"], 200);
    assert_eq!(name["pattern"], "\\S");
    let at_limit = "é".repeat(200);
    let res = app.post_json(
        "/api/v1/organizations",
        Some(&admin.access),
        &json!({"code": "ACCENT", "name": at_limit, "kind": "ngo"}),
    );
    assert_eq!(res.status().as_u16(), 201);
    let created: Value = res.json().unwrap();
    assert_eq!(created["name"].as_str().map(|n| n.chars().count()), Some(200));
    let stored = app.get_as(
        &format!("/api/v1/organizations/{}", created["id"].as_str().unwrap()),
        &admin.access,
    );
    assert_eq!(stored.json::<Value>().unwrap()["name"], at_limit.as_str());
    let over = app.post_json(
        "/api/v1/organizations",
        Some(&admin.access),
        &json!({"code": "ACCENT2", "name": "é".repeat(201), "kind": "ngo"}),
    );
    let problem = crate::support::assert_problem(over, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "name");
    // Blank is refused, as the `\S` pattern says.
    let blank = app.post_json(
        "/api/v1/organizations",
        Some(&admin.access),
        &json!({"code": "BLANK", "name": "   ", "kind": "ngo"}),
    );
    crate::support::assert_problem(blank, 422, "validation");
}

/// JSON Schema counts `200.0` as an `integer`, and so does the server for every whole-number field of a
/// request body (`domain::whole_number`): Schemathesis and clients with one number type send them. A fraction
/// is still a 422 `validation` and changes nothing.
#[test]
fn an_integral_float_is_accepted_for_an_integer_field_and_a_fraction_is_a_422() {
    let m = crate::fixtures::Mission::new();
    let pool_path = format!("/api/v1/pools/{}", m.pool_id);
    let pool: Value = m.app.get_as(&pool_path, &m.qip.access).json().unwrap();
    let version = pool["version"].as_i64().unwrap();
    let mut settings = pool["settings"].clone();
    settings["max_duration_days"] = json!(200.0);
    settings["overhead_cap_percent"] = json!(1.5e1);
    for tranche in settings["tranche_plan"].as_array_mut().unwrap() {
        let percent = tranche["percent"].as_f64().unwrap();
        tranche["percent"] = json!(percent);
    }
    let res = m.with_if_match(
        reqwest::Method::PATCH,
        &pool_path,
        &m.qip,
        version,
        Some(&json!({"settings": settings})),
    );
    assert_eq!(res.status().as_u16(), 200);
    let updated: Value = res.json().unwrap();
    assert_eq!(updated["settings"]["max_duration_days"], json!(200));
    assert_eq!(updated["settings"]["overhead_cap_percent"], json!(15));
    assert_eq!(
        updated["settings_version"],
        pool["settings_version"].as_i64().unwrap() + 1
    );
    let stored: Value = m.app.get_as(&pool_path, &m.qip.access).json().unwrap();
    assert_eq!(stored["settings"]["max_duration_days"], json!(200));

    // A fraction is refused, and so is a member a tagged variant does not name; the pool stays as it was.
    let version = stored["version"].as_i64().unwrap();
    let mut fraction = stored["settings"].clone();
    fraction["max_duration_days"] = json!(200.5);
    let res = m.with_if_match(
        reqwest::Method::PATCH,
        &pool_path,
        &m.qip,
        version,
        Some(&json!({"settings": fraction})),
    );
    let problem = crate::support::assert_problem(res, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "body");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("whole number"), "{message}");
    let mut extra = stored["settings"].clone();
    extra["approval_steps"] =
        json!([{"hat": "qip_officer", "applies": {"kind": "always", "sectors": ["WSH"]}, "sla_days": 5.0}]);
    let res = m.with_if_match(
        reqwest::Method::PATCH,
        &pool_path,
        &m.qip,
        version,
        Some(&json!({"settings": extra})),
    );
    crate::support::assert_problem(res, 422, "validation");
    let unchanged: Value = m.app.get_as(&pool_path, &m.qip.access).json().unwrap();
    assert_eq!(unchanged["version"], version);
    assert_eq!(unchanged["settings"], stored["settings"]);

    // The same in a proposal's beneficiaries (a struct of the domain), stored and read back as integers.
    let mut body = m.complete_content("Integral floats", "5000.00");
    body["beneficiaries"] = json!({"women": 40.0, "men": 35, "girls": 3e2, "boys": 280.0});
    let res = m.create(&m.unit, &body);
    assert_eq!(res.status().as_u16(), 201);
    let id = res.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned();
    let proposal: Value = m
        .app
        .get_as(&format!("/api/v1/proposals/{id}"), &m.unit.access)
        .json()
        .unwrap();
    assert_eq!(
        proposal["content"]["beneficiaries"],
        json!({"women": 40, "men": 35, "girls": 300, "boys": 280})
    );
    body["beneficiaries"]["boys"] = json!(280.25);
    crate::support::assert_problem(m.create(&m.unit, &body), 422, "validation");
}

/// The variants of an internally tagged body (`NewReport`, `StepApplies`) name every member they take: the
/// server refuses any other (`deny_unknown_fields`), and the document says so.
#[test]
fn tagged_variants_declare_that_they_take_no_other_members() {
    let app = crate::support::TestApp::spawn();
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    for schema in ["NewReport", "StepApplies"] {
        let variants = doc["components"]["schemas"][schema]["oneOf"].as_array().unwrap();
        assert!(!variants.is_empty());
        for variant in variants {
            assert_eq!(
                variant["additionalProperties"],
                json!(false),
                "{schema}: {variant}"
            );
        }
    }
}

/// A consultation rule names a sector or consults always, never both nor neither: the document states it
/// (`if`/`then`/`else` on `NewRule`) and the server refuses the same bodies (422).
#[test]
fn a_rule_names_a_sector_or_consults_always_in_the_document_as_on_the_server() {
    let m = crate::fixtures::Mission::new();
    let doc: Value = m.app.get("/api/v1/openapi.json").json().unwrap();
    let schema = doc["components"]["schemas"]["NewRule"].clone();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let org = m.unit_org.clone();
    for (body, valid) in [
        (json!({"organization_id": org, "sector_code": "WSH"}), true),
        (json!({"organization_id": org, "always_consult": true}), true),
        (
            json!({"organization_id": org, "always_consult": true, "sector_code": null}),
            true,
        ),
        (json!({"organization_id": org}), false),
        (json!({"organization_id": org, "sector_code": null}), false),
        (
            json!({"organization_id": org, "always_consult": true, "sector_code": "WSH"}),
            false,
        ),
    ] {
        assert_eq!(validator.is_valid(&body), valid, "document: {body}");
        let res = m
            .app
            .post_json("/api/v1/consultation-rules", Some(&m.qip.access), &body);
        if valid {
            assert_eq!(res.status().as_u16(), 201, "server: {body}");
        } else {
            let problem = crate::support::assert_problem(res, 422, "validation");
            assert_eq!(problem["errors"][0]["field"], "sector_code", "{body}");
        }
    }
}
