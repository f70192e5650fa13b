//! The served OpenAPI 3.1 document: the utoipa document generated from the routes, completed from the facts
//! the routes cannot state in their attributes — the access policy (security, 401/403, `Acting-Hat`), the
//! shared preconditions (`If-Match`, `If-None-Match`, `ETag`), idempotency keys, the standard problem
//! responses every layer can answer, response headers, limits from the settings, `servers`, and examples.
//! One place, so a route's documentation follows its policy line and cannot drift from it.

use serde_json::{Map, Value, json};

use crate::access::{Hat, Requirement, requirement_for_route};
use crate::config::Settings;

/// Operations that change a versioned resource and require `If-Match` (`http::preconditions`).
pub const IF_MATCH_OPERATIONS: &[&str] = &[
    "update_pool",
    "edit_proposal",
    "submit_proposal",
    "withdraw_proposal",
    "revise_proposal",
    "update_activity",
    "decide",
    "cancel",
    "close",
    "update_webhook",
];

/// Operations whose success carries the resource's `ETag`.
pub const ETAG_OPERATIONS: &[&str] = &[
    "create_pool",
    "get_pool",
    "update_pool",
    "create_proposal",
    "get_proposal",
    "edit_proposal",
    "submit_proposal",
    "withdraw_proposal",
    "revise_proposal",
    "create_activity",
    "get_activity",
    "update_activity",
    "get_approval",
    "decide",
    "cancel",
    "close",
    "create_webhook",
    "get_webhook",
    "update_webhook",
];

/// Money-moving operations that require `Idempotency-Key` (`features::ledger::idempotency`).
pub const IDEMPOTENT_OPERATIONS: &[&str] = &["contribute", "reverse", "disburse", "refund"];

const PROBLEM: &str = "application/problem+json";

/// What a path parameter may be: the ids, slugs and codes the service issues.
const PATH_SEGMENT_PATTERN: &str = "^[A-Za-z0-9_-]{1,128}$";

/// The served document, as JSON.
pub fn document(generated: &utoipa::openapi::OpenApi, settings: &Settings) -> Value {
    let mut doc = serde_json::to_value(generated).unwrap_or_else(|_| json!({}));
    complete(&mut doc, settings);
    doc
}

/// Completes a generated document in place.
pub fn complete(doc: &mut Value, settings: &Settings) {
    doc["openapi"] = json!("3.1.0");
    doc["servers"] = json!([{
        "url": settings.server.public_url,
        "description": "This service (`server.public_url`)"
    }]);
    doc["info"]["contact"] =
        json!({"name": "QIP secretariat", "url": format!("{}/docs/", settings.server.public_url)});
    doc["info"]["license"] = json!({"name": "Apache-2.0", "identifier": "Apache-2.0"});
    doc["tags"] = tags();
    fix_schemas(doc, settings);
    let max_page = settings.server.max_page_size;
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (template, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let requirement = requirement_for_route(&method.to_ascii_uppercase(), template);
            complete_operation(template, method, op, requirement, max_page);
        }
    }
}

fn tags() -> Value {
    json!([
        {"name": "operations", "description": "Health, readiness, metrics, this document and the problem pages."},
        {"name": "identity", "description": "Sign-in, organisations, users, hats and dual control."},
        {"name": "audit", "description": "The hash-chained audit trail."},
        {"name": "reference", "description": "Areas (P-codes) and sectors."},
        {"name": "pools", "description": "Funding pools and their settings."},
        {"name": "proposals", "description": "Proposals from draft to submission, versions and revision."},
        {"name": "ledger", "description": "Contributions, transactions, statements and reversals."},
        {"name": "consultation", "description": "3W activities, consultation rules, responses and flags."},
        {"name": "approval", "description": "Approval steps, decisions, briefs and tasks."},
        {"name": "implementation", "description": "Tranches, disbursements, refunds, reports, cancel and close."}
    ])
}

/// Schema facts the DTO derives cannot state (values the server sends that the derive got wrong).
fn fix_schemas(doc: &mut Value, settings: &Settings) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    // An audit event's `before`/`after` are snapshots of any shape, null where there was none (creation,
    // deletion, denials) — in `AuditEvent` and wherever a page inlines it.
    for schema in schemas.values_mut() {
        fix_audit_snapshots(schema);
    }
    // The body of `POST /proposals`: the content fields and the pool.
    if let Some(content) = schemas.get("ProposalContent").cloned() {
        let mut body = content;
        body["description"] = json!("A new draft: the pool it asks money from, and any content fields.");
        body["properties"]["pool_id"] =
            json!({"type": "string", "description": "The pool the proposal asks money from"});
        let mut required: Vec<Value> = body["required"].as_array().cloned().unwrap_or_default();
        required.push(json!("pool_id"));
        body["required"] = Value::Array(required);
        schemas.insert("NewProposal".into(), body);
    }
    // Currencies are the ones `domain::money` knows, for a pool and for a contribution alike.
    let codes: Vec<&str> = crate::domain::money::currencies()
        .iter()
        .map(|c| c.code())
        .collect();
    for (schema, field) in [("NewPool", "currency"), ("NewContribution", "currency")] {
        if let Some(property) = schemas
            .get_mut(schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{field}")))
        {
            property["enum"] = json!(codes);
        }
    }
    // A contribution's amount has at most the minor digits of its own currency: whole numbers in a currency
    // without minor units (the general pattern allows two decimals).
    let whole: Vec<&str> = crate::domain::money::currencies()
        .iter()
        .filter(|c| c.minor_digits() == 0)
        .map(|c| c.code())
        .collect();
    if let Some(contribution) = schemas.get_mut("NewContribution") {
        contribution["if"] = json!({"properties": {"currency": {"enum": whole}}, "required": ["currency"]});
        contribution["then"] = json!({"properties": {"amount": {"pattern": "^[0-9]*[1-9][0-9]*$"}}});
    }
    // An activity is created or changed `planned` or `ongoing`; `closed` only by its close operation.
    if let Some(status) = schemas
        .get_mut("ActivityInput")
        .and_then(|s| s.pointer_mut("/properties/status"))
    {
        *status = json!({
            "description": "`planned` (default) or `ongoing`; close with `POST /activities/{id}/close`.",
            "type": ["string", "null"],
            "enum": ["planned", "ongoing", null]
        });
    }
    // A consultation rule names a sector, or consults always (`consultation::service::create_rule`).
    if let Some(rule) = schemas.get_mut("NewRule") {
        rule["if"] =
            json!({"properties": {"always_consult": {"const": true}}, "required": ["always_consult"]});
        // Said with `not` ("not a string"; "not absent or null"): Redocly's validator closes a branch's own
        // `properties` and wants a branch's `required` defined beside it.
        rule["then"] =
            json!({"not": {"required": ["sector_code"], "properties": {"sector_code": {"type": "string"}}}});
        rule["else"] = json!({"not": {"anyOf": [
            {"not": {"required": ["sector_code"], "properties": {"sector_code": {"type": ["string", "null"]}}}},
            {"properties": {"sector_code": {"type": "null"}}}
        ]}});
    }
    // Flags come with an objection and only with one (`consultation::service::respond`).
    if let Some(response) = schemas.get_mut("ResponseInput") {
        response["if"] = json!({"properties": {"kind": {"const": "objection"}}, "required": ["kind"]});
        // Said with `not`, as for `NewRule` (Redocly closes a branch's own `properties`).
        response["then"] = json!({"not": {"anyOf": [
            {"not": {"required": ["flags"], "properties": {"flags": {"type": "array"}}}},
            {"properties": {"flags": {"maxItems": 0}}}
        ]}});
        response["else"] = json!({"not": {"required": ["flags"], "properties": {"flags": {"minItems": 1}}}});
    }
    // Internally tagged enums with `deny_unknown_fields`: the derive leaves their variants open, the server
    // refuses a member no variant names (422).
    for tagged in ["NewReport", "StepApplies"] {
        if let Some(variants) = schemas
            .get_mut(tagged)
            .and_then(|s| s.get_mut("oneOf"))
            .and_then(Value::as_array_mut)
        {
            for variant in variants.iter_mut().filter(|v| v.get("properties").is_some()) {
                variant["additionalProperties"] = json!(false);
            }
        }
    }
    if let Some(problem) = schemas.get_mut("Problem") {
        problem["properties"]["type"]["format"] = json!("uri");
        problem["properties"]["type"]["example"] =
            json!(format!("{}/problems/validation", settings.server.public_url));
        problem["additionalProperties"] = json!(true);
    }
}

fn fix_audit_snapshots(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let is_audit_event = map
                .get("properties")
                .is_some_and(|p| p.get("prev_hash").is_some() && p.get("before").is_some());
            if is_audit_event {
                for member in ["before", "after"] {
                    map["properties"][member] = json!({
                        "description": "Snapshot of the entity (null where there was none).",
                        "type": ["object", "null"]
                    });
                }
            }
            for value in map.values_mut() {
                fix_audit_snapshots(value);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(fix_audit_snapshots),
        _ => {}
    }
}

/// Main responses as the demo mission answers them (`qip-pool demo seed`), by operation id and status.
static RESPONSE_EXAMPLES: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| {
    serde_json::from_str(include_str!("openapi_examples.json")).unwrap_or(Value::Null)
});

/// An id of the demo mission's shape (ids are UUID v7, different in every seeded database).
const DEMO_ID: &str = "0195a3c8-5b1e-7c4d-9f00-3a2b1c0d9e8f";

/// Request bodies from the demo mission (`qip-pool demo seed`, the fictional "Republic of Xylonia"), one for
/// every JSON request body, so "Try it out" starts from a request the demo server accepts.
fn request_example(op_id: &str) -> Option<Value> {
    Some(match op_id {
        "login" => json!({"username": "cimic", "password": "xylonia-demo-2026"}),
        "refresh" | "logout" => json!({"refresh_token": "rt_01a2f3c4d5e6f708192a3b4c5d6e7f80"}),
        "setup_password" => json!({"token": "st_8Qm2cV7xZk1Lr4Pw", "password": "orange-kettle-batallion-77"}),
        "create_organization" => {
            json!({"code": "WFP", "name": "WFP Xylonia (demo)", "kind": "un_agency"})
        }
        "create_user" => {
            json!({"username": "lena", "display_name": "Lena M.", "email": "lena@unicef.example",
                                "organization_id": DEMO_ID})
        }
        "grant_hat" => json!({"hat": "consultee", "scope_organization_id": DEMO_ID}),
        "refuse_hat_grant" => json!({"reason": "Second hat not agreed with the DSRSG office"}),
        "create_pool" => json!({"code": "XYQIP27", "name": "Xylonia QIP pool 2027 (demo)", "currency": "USD",
                                "funding_start": "2027-01-01", "funding_end": "2027-12-31"}),
        "update_pool" => json!({"name": "Xylonia QIP pool (demo), extended"}),
        "contribute" => {
            json!({"contributor_organization_id": DEMO_ID, "amount": "250000.00", "currency": "USD",
                               "reference": "DEMO-GRANT-002", "memo": "Second demo contribution"})
        }
        "reverse" => json!({"reason": "Entered twice by mistake"}),
        "create_proposal" => json!({
            "pool_id": DEMO_ID,
            "title": "Solar fridge for Tawila health post", "summary": "Vaccine cold chain for the health post",
            "objectives": "Keep vaccines cold", "confidence_building_purpose": "Trust with the health committee",
            "sector_code": "HEA", "location": {"adm1_pcode": "XY01", "adm2_pcode": "XY0102"},
            "implementing_partner": {"kind": "local_authority", "name": "District council (demo)"},
            "beneficiaries": {"women": 300, "men": 250, "girls": 400, "boys": 380},
            "planned_start": "2027-03-01", "planned_end": "2027-05-15",
            "budget_lines": [{"description": "Solar fridge", "category": "equipment", "quantity": "1",
                              "unit_cost": "6500.00"}],
            "requested_amount": "6500.00",
            "handover": {"local_authority": "District council (demo)", "maintenance": "Community committee"},
            "local_ownership": "Endorsed by the council and community leaders (demo)",
            "screening": {"civilian_actor_present": false,
                          "unique_military_capability": "Engineering company with heavy equipment",
                          "time_limited_with_handover": true, "assistance_type": "indirect",
                          "humanitarian_access_risk": "Low: the council leads, the battalion installs"}
        }),
        "edit_proposal" => json!({"title": "Solar fridge and freezer for Tawila health post"}),
        "withdraw_proposal" => json!({"reason": "The health office found another donor"}),
        "create_activity" | "update_activity" => json!({
            "title": "Water point rehabilitation, Tawila (demo)", "sector_code": "WSH", "adm1_pcode": "XY01",
            "adm2_pcode": "XY0102", "lat": 13.53, "lon": 24.98, "start_date": "2026-10-01",
            "end_date": "2027-03-31", "status": "ongoing"}),
        "create_rule" => json!({"organization_id": DEMO_ID, "sector_code": "WSH", "adm1_pcode": "XY01"}),
        "respond" => json!({"kind": "objection", "comment": "Our borehole programme covers this site (demo)",
                            "flags": [{"category": "duplication", "severity": "blocking",
                                       "description": "UNICEF drills here in January (demo)"}]}),
        "add_consultee" => json!({"organization_id": DEMO_ID, "reason": "Runs the water points in Kalma"}),
        "resolve_flag" | "withdraw_flag" => json!({"justification": "The site moved 2 km north (demo)"}),
        "override_flag" => {
            json!({"justification": "The HC weighed the overlap: the school cannot wait (demo)"})
        }
        "decide" => json!({"decision": "approve", "comment": "Demo decision",
                           "conditions": "Keep the community committee in the handover"}),
        "disburse" => {
            json!({"amount": "3900.00", "paid_on": "2026-11-20", "payment_reference": "DEMO-PAY-1"})
        }
        "refund" => json!({"amount": "250.00", "reason": "Unspent balance returned by the council (demo)",
                           "reference": "DEMO-REF-1"}),
        "submit_report" => {
            json!({"kind": "progress", "narrative": "Panels installed; fridge delivered (demo)",
                                  "percent_complete": 60, "expenditure_to_date": "3900.00"})
        }
        "accept_report" => json!({}),
        "return_report" => json!({"reason": "Add the receipts for the panels"}),
        "cancel" => json!({"reason": "The health post was relocated by the authorities"}),
        "close" => json!({"evaluation": {"objectives_met": "yes",
                                          "confidence_building_effect": "Youth and the battalion now meet monthly (demo)",
                                          "lessons": "Involve the youth council from the start (demo)"}}),
        "put_preferences" => json!({"email": "daily_digest"}),
        "create_webhook" | "update_webhook" => json!({"url": "https://hooks.unicef.example/qip",
                                                      "description": "UNICEF WASH coordination inbox",
                                                      "active": true}),
        _ => return None,
    })
}

/// A text of at least `min` characters once trimmed (`min` ≥ 2): a non-blank character at each end.
fn trimmed_at_least(min: usize, description: &str) -> Value {
    json!({
        "type": "string",
        "minLength": min,
        "pattern": format!("\\S[\\s\\S]{{{},}}\\S", min - 2),
        "description": description
    })
}

/// Request bodies whose rules depend on the operation rather than the shared DTO: the same DTO serves
/// several operations, and only some of them require a field.
fn operation_body_schema(op_id: &str) -> Option<Value> {
    Some(match op_id {
        // `ReportDecision`: optional to accept, required to return (`implementation::service::decide_report`).
        "return_report" => json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["reason"],
            "properties": {"reason": trimmed_at_least(5, "Why the report goes back: at least 5 characters.")}
        }),
        // `FlagEnding`: an override needs a written justification (`consultation::service::end_flag`).
        "override_flag" => {
            let mut justification = trimmed_at_least(
                20,
                "The HC's written justification: at least 20 characters, at most 4,000.",
            );
            justification["maxLength"] = json!(4000);
            json!({
                "type": "object",
                "additionalProperties": false,
                "required": ["justification"],
                "properties": {"justification": justification}
            })
        }
        // Returning or rejecting needs the reasons (`approval::service::decide`).
        "decide" => json!({
            "allOf": [
                {"$ref": "#/components/schemas/DecisionInput"},
                {
                    "if": {"properties": {"decision": {"enum": ["return", "reject"]}}, "required": ["decision"]},
                    "then": {
                        "required": ["comment"],
                        "properties": {"comment": trimmed_at_least(5, "The reasons: at least 5 characters.")}
                    }
                }
            ]
        }),
        _ => return None,
    })
}

/// Rules of an operation that its schema cannot state (a reference that must exist, an order between
/// fields, a file's content, the outside world): a schema-valid request that breaks one is a 422
/// `validation` naming the field. `scripts/schemathesis.toml` accepts 422 for positive data on exactly these.
fn business_rule(op_id: &str) -> Option<&'static str> {
    Some(match op_id {
        "create_proposal" => "A 422 `validation` when `pool_id` names no pool.",
        "create_rule" => {
            "A 422 `validation` when `organization_id` names no organisation, `sector_code` is not a sector of \
             the code list (`GET /sectors`) or `adm1_pcode` is not an adm1 P-code (`GET /areas`)."
        }
        "create_user" => "A 422 `validation` when `organization_id` names no organisation.",
        "create_pool" => "A 422 `validation` when `funding_end` is not after `funding_start`.",
        "create_activity" | "update_activity" => "A 422 `validation` when `end_date` is before `start_date`.",
        "import_activities" | "import_areas" => {
            "A 422 `validation` lists every faulty line of the file (its header rows, columns and values), \
             which a `text/csv` schema cannot describe."
        }
        "create_webhook" | "update_webhook" => {
            "A 422 `validation` when the URL's host does not resolve, or resolves to an address that is not \
             public (loopback, private, link-local…): deliveries must not reach inside the mission's network."
        }
        _ => return None,
    })
}

fn is_public(requirement: Option<Requirement>) -> bool {
    matches!(requirement, Some(Requirement::Public))
}

fn status_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created; `Location` names the new resource",
        "202" => "Accepted: waits for another step",
        "204" => "Done; no body",
        "304" => "Not modified: the copy named in `If-None-Match` is current",
        "400" => "Bad request: a query parameter or header cannot be read, or the body is not valid JSON",
        "401" => "Not signed in, or the access token is expired or invalid",
        "403" => "No hat you hold (or the one named in `Acting-Hat`) permits this",
        "404" => "No such object, or not visible to you",
        "409" => "Conflicts with the current state",
        "412" => "`If-Match` does not name the current version (or is weak)",
        "413" => "Request body too large",
        "415" => "Unsupported media type",
        "422" => "Validation failed; `errors` lists every fault",
        "428" => "`If-Match` is required",
        "429" => "Too many requests; wait `Retry-After` seconds",
        "500" => "Internal error; the body is opaque, the cause is logged with the request id",
        "503" => "Unavailable; nothing was written, retry after `Retry-After` seconds",
        _ => "Response",
    }
}

fn problem_response(status: &str) -> Value {
    json!({
        "description": status_description(status),
        "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn header(description: &str, schema: Value) -> Value {
    json!({"description": description, "schema": schema})
}

fn retry_after() -> Value {
    header(
        "Seconds to wait before retrying",
        json!({"type": "integer", "minimum": 0}),
    )
}

fn complete_operation(
    template: &str,
    method: &str,
    op: &mut Value,
    requirement: Option<Requirement>,
    max_page: u32,
) {
    let op_id = op["operationId"].as_str().unwrap_or_default().to_owned();
    let has_body = op.get("requestBody").is_some();
    let json_body = op.pointer("/requestBody/content/application~1json").is_some();
    if op.get("description").is_none() {
        let summary = op["summary"].as_str().unwrap_or(&op_id).to_owned();
        op["description"] = json!(summary);
    }
    if op.get("summary").is_none() {
        op["summary"] = json!(op_id.replace('_', " "));
    }
    if let Some(rule) = business_rule(&op_id) {
        let text = op["description"].as_str().unwrap_or_default().to_owned();
        op["description"] = json!(format!("{text}\n\n{rule}"));
    }
    let guarded = !is_public(requirement);
    op["security"] = if guarded {
        json!([{"bearer": []}])
    } else {
        json!([])
    };

    if op_id == "create_proposal" {
        // The handler takes `pool_id` beside the content fields (server-owned fields are refused):
        // `NewProposal`, made in `fix_schemas`.
        op["requestBody"]["content"]["application/json"]["schema"] =
            json!({"$ref": "#/components/schemas/NewProposal"});
    }
    if let Some(schema) = operation_body_schema(&op_id) {
        op["requestBody"]["content"]["application/json"]["schema"] = schema;
    }
    let csv_example = match op_id.as_str() {
        "import_areas" => Some(
            "ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN\nXY01,North Darfa (demo),XY0101,Kalma (demo)\n\
             XY01,North Darfa (demo),XY0102,Tawila (demo)\n",
        ),
        "import_activities" => Some(
            "Organisation,Sector,Adm1,Adm2,Lat,Lon,Start,End,Activity\n\
             #org,#sector,#adm1+code,#adm2+code,#geo+lat,#geo+lon,#date+start,#date+end,#activity\n\
             UNICEF,WSH,XY01,XY0102,13.53,24.98,2026-10-01,2027-03-31,Water point rehabilitation (demo)\n",
        ),
        _ => None,
    };
    if let (Some(example), Some(media)) = (csv_example, op.pointer_mut("/requestBody/content/text~1csv")) {
        media["example"] = json!(example);
    }
    if let Some(example) = request_example(&op_id) {
        if let Some(media) = op.pointer_mut("/requestBody/content/application~1json") {
            media["example"] = example;
        }
    }

    // Parameters.
    let params = op
        .as_object_mut()
        .map(|o| o.entry("parameters").or_insert_with(|| json!([])))
        .and_then(Value::as_array_mut);
    let mut has_query = false;
    if let Some(params) = params {
        for p in params.iter_mut() {
            has_query |= p["in"] == "query";
            if p["in"] == "query" && p["name"] == "limit" {
                p["schema"] =
                    json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": max_page});
            }
            if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                p["required"] = json!(true);
                p["schema"] = json!({"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7E]+$",
                                     "example": "0b8e1c52-2f6c-4d7e-9a53-7c1d2e3f4a5b"});
            }
            if p["in"] == "query" && p["name"] == "level" {
                p["schema"] = json!({"type": "integer", "enum": [1, 2]});
            }
            if p["in"] == "path" && p["schema"]["type"] == "string" {
                // Ids, slugs and codes the service issues; `/`, `%`, `.` segments and control characters
                // would be refused or resolved away before routing (`http::canonical_path`).
                p["schema"]["pattern"] = json!(PATH_SEGMENT_PATTERN);
            }
            if p["in"] == "query" && p["name"] == "cursor" {
                p["description"] = json!(
                    "`next_cursor` of the previous page, as received (opaque; a cursor the list did not \
                     return is refused with 422)"
                );
                p["schema"] = json!({"type": "string", "pattern": "^[A-Za-z0-9_-]*$", "maxLength": 1024});
            }
            if p["in"] == "query" && p["name"] == "format" && template.ends_with("/report") {
                p["schema"] = json!({"type": ["string", "null"], "enum": ["json", "csv", null]});
            }
            if p["in"] == "path" && p.get("description").is_none() {
                p["description"] = json!("Identifier");
            }
        }
        if let Some(Requirement::Action(action)) = requirement {
            let permitted: Vec<&str> = action.permitted_hats().iter().map(|h| h.as_str()).collect();
            params.push(json!({
                "name": "Acting-Hat",
                "in": "header",
                "required": false,
                "description": format!(
                    "The hat you act in. Needed only for a change when more than one hat you hold could make it; \
                     reads are served in any permitting hat. Permitted here: {}.",
                    permitted.join(", ")
                ),
                "schema": {"type": "string", "enum": Hat::ALL.iter().map(|h| h.as_str()).collect::<Vec<_>>()}
            }));
        }
        if IF_MATCH_OPERATIONS.contains(&op_id.as_str()) {
            params.push(json!({
                "name": "If-Match",
                "in": "header",
                // Required by the server: without it the answer is 428 (documented).
                "required": true,
                "description": "Required: the `ETag` of the version you are changing, exactly as received (strong \
                                comparison: a weak `W/\"3\"` never matches). Without it the answer is 428.",
                // Up to 18 digits: every such value is a version the server can read (an i64).
                "schema": {"type": "string", "pattern": "^\"[0-9]{1,18}\"$", "example": "\"1\""}
            }));
        }
        if method == "get" && ETAG_OPERATIONS.contains(&op_id.as_str()) {
            params.push(json!({
                "name": "If-None-Match",
                "in": "header",
                "required": false,
                "description": "`ETag`s of copies you hold; when one is current the answer is 304 with no body.",
                "schema": {"type": "string", "example": "\"1\""}
            }));
        }
        if params.is_empty() {
            if let Some(o) = op.as_object_mut() {
                o.remove("parameters");
            }
        }
    }

    // Responses.
    let Some(responses) = op
        .as_object_mut()
        .map(|o| o.entry("responses").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut standard: Vec<&str> = Vec::new();
    if guarded {
        standard.push("401");
    }
    if let Some(Requirement::Action(_)) = requirement {
        // An unknown or ambiguous `Acting-Hat`; no valid hat that permits the action (even where every hat
        // could, a user may hold none now), or object-level scope.
        standard.extend(["400", "403"]);
    }
    if template.contains('{') {
        // A path segment that cannot be decoded (`http::canonical_path`) is a 400.
        standard.push("400");
        if template != "/problems/{slug}" {
            standard.push("404");
        }
    }
    if has_body {
        standard.extend(["400", "413", "415", "422"]);
    }
    if json_body || has_query {
        standard.extend(["400", "422"]);
    }
    if IF_MATCH_OPERATIONS.contains(&op_id.as_str()) {
        standard.extend(["400", "412", "428"]);
    }
    if IDEMPOTENT_OPERATIONS.contains(&op_id.as_str()) {
        standard.extend(["400", "409", "422"]);
    }
    if template.starts_with("/api/v1/auth/") {
        standard.push("429");
    }
    if template.starts_with("/api/") && template != "/api/v1/openapi.json" {
        standard.extend(["500", "503"]);
    }
    for status in standard {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(status));
    }
    if method == "get" && ETAG_OPERATIONS.contains(&op_id.as_str()) {
        responses.insert(
            "304".into(),
            json!({"description": status_description("304"),
                   "headers": {"ETag": header("The current version", json!({"type": "string"}))}}),
        );
    }
    for (status, response) in responses.iter_mut() {
        complete_response(status, response, &op_id);
        if let (Some(example), Some(media)) = (
            RESPONSE_EXAMPLES.get(&op_id).and_then(|e| e.get(status)),
            response.pointer_mut("/content/application~1json"),
        ) {
            media["example"] = example.clone();
        }
    }
}

fn complete_response(status: &str, response: &mut Value, op_id: &str) {
    let Some(r) = response.as_object_mut() else {
        return;
    };
    if r.get("description")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        r.insert("description".into(), json!(status_description(status)));
    }
    let mut headers = r
        .remove("headers")
        .and_then(|h| h.as_object().cloned())
        .unwrap_or_default();
    add_response_headers(status, op_id, &mut headers);
    if !headers.is_empty() {
        r.insert("headers".into(), Value::Object(headers));
    }
}

fn add_response_headers(status: &str, op_id: &str, headers: &mut Map<String, Value>) {
    let success = status.starts_with('2');
    if success && ETAG_OPERATIONS.contains(&op_id) {
        headers.insert(
            "ETag".into(),
            header(
                "The version of the resource; send it back in `If-Match` to change it",
                json!({"type": "string", "example": "\"1\""}),
            ),
        );
    }
    if status == "201" {
        headers.insert(
            "Location".into(),
            header(
                "Where the created resource can be read",
                json!({"type": "string", "format": "uri-reference"}),
            ),
        );
    }
    if success && IDEMPOTENT_OPERATIONS.contains(&op_id) {
        headers.insert(
            "Idempotent-Replayed".into(),
            header(
                "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`",
                json!({"type": "string", "enum": ["true"]}),
            ),
        );
    }
    if ["409", "429", "503"].contains(&status) {
        headers.insert("Retry-After".into(), retry_after());
    }
    if status == "401" {
        headers.insert(
            "WWW-Authenticate".into(),
            header("`Bearer`", json!({"type": "string"})),
        );
    }
}
