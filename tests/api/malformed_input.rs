//! Bad input never gets a 500: every operation of the served OpenAPI document is sent requests built from its own
//! schemas and then broken (wrong types, out-of-range numbers, unknown enum values, malformed JSON, wrong media
//! types, odd `If-Match`, `Idempotency-Key` and `Acting-Hat` headers, odd query values, real and unknown ids), by
//! every user of the demo mission and by nobody. Every answer must be below 500, every 4xx a problem+json, and
//! every status documented for its operation (the suite's contract checker). Afterwards the ledger check passes
//! and the audit chain verifies: nothing was half-written. The requests come from a seeded generator; a failure
//! names its seed, and `QIP_TEST_FUZZ_SEED` / `QIP_TEST_FUZZ_ROUNDS` replay it or run longer;
//! `QIP_TEST_FUZZ_THREADS` sends from several threads at once.

use proptest::prelude::Rng;
use proptest::test_runner::{RngAlgorithm, TestRng};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;
use qip_pool::features::demo::DEMO_PASSWORD;

/// Requests per operation in the suite's run (`QIP_TEST_FUZZ_ROUNDS` for more).
const ROUNDS: usize = 4;
const SEED: u64 = 2026_11_30;

/// An id nothing has.
const UNKNOWN_ID: &str = "01900000-0000-7000-8000-00000000dead";

/// Path segments that are not ids, each percent-encoded where it needs to be.
const JUNK_SEGMENTS: &[&str] = &[
    "0",
    "-1",
    "99",
    "9223372036854775808",
    "1e9",
    "x",
    "%20",
    "%00",
    "null",
    "%C3%A9t%C3%A9",
    "%F0%9F%92%A9",
    "%27%20OR%201%3D1%20--",
    "ab%2Fcd",
];

/// Query values to put in any query parameter.
const JUNK_QUERY: &[&str] = &[
    "",
    "0",
    "-1",
    "1",
    "10",
    "100000",
    "1.5",
    "x",
    "%00",
    "null",
    "true",
    "2026-02-30",
    "2026-01-01",
    "open",
    "USD",
    "%C3%A9",
    "9223372036854775808",
];

/// Bodies that are not what any operation takes.
const RAW_BODIES: &[&[u8]] = &[
    b"",
    b"{",
    b"null",
    b"[]",
    b"\xff\xfe\x00",
    b"\"text\"",
    b"123",
    b"{\"amount\": 1e99999}",
    b"{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":[[[[[[[[[[]]]]]]]]]]}}}}}}}}",
    b"HXL,#x\n\"unterminated,1\n",
    b"ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN,LAT,LON\nXY09,No\x00rth,XY0909,K\x00,1.5,2.5\n",
];

const MEDIA_TYPES: &[&str] = &[
    "application/json",
    "text/csv",
    "text/plain",
    "application/xml",
    "multipart/form-data; boundary=x",
];

#[derive(Clone)]
struct Caller {
    name: String,
    hats: Vec<String>,
    token: Option<String>,
}

/// The hats an operation permits, as its `Acting-Hat` parameter states them ("Permitted here: a, b.").
fn permitted_hats(operation: &Value) -> Vec<String> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == "Acting-Hat")
        .filter_map(|p| p["description"].as_str())
        .filter_map(|d| d.split("Permitted here: ").nth(1))
        .flat_map(|list| {
            list.trim_end_matches('.')
                .split(", ")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

struct Fuzzer<'a> {
    app: &'a TestApp,
    doc: Value,
    rng: TestRng,
    seed: u64,
    /// The demo users (name, hats, bearer token), and an anonymous caller (no hats, no token).
    callers: Vec<Caller>,
    /// Ids of real things (pools, proposals, organisations, transactions, users other than the callers).
    real_ids: Vec<String>,
    /// The same ids by the collection they are in (`pools`, `proposals`, …: the path segment before `{id}`).
    ids_in: std::collections::BTreeMap<String, Vec<String>>,
    sent: usize,
    /// Answers by status.
    statuses: std::collections::BTreeMap<u16, usize>,
}

impl Fuzzer<'_> {
    fn below(&mut self, n: usize) -> usize {
        (self.rng.next_u64() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng.next_u64() % 100 < percent
    }

    fn pick<'v, T>(&mut self, values: &'v [T]) -> &'v T {
        &values[self.below(values.len())]
    }

    /// A value for path parameter `name` following segment `collection`: mostly a real id of that collection.
    fn path_value(&mut self, name: &str, collection: &str) -> String {
        match self.below(10) {
            0 | 1 => self.pick(JUNK_SEGMENTS).to_string(),
            2 => UNKNOWN_ID.to_owned(),
            _ if name == "n" => self.pick(&["1", "2", "3"]).to_string(),
            3 => {
                let ids = self.real_ids.clone();
                self.pick(&ids).clone()
            }
            _ => {
                let ids = match self.ids_in.get(collection) {
                    Some(ids) if !ids.is_empty() => ids.clone(),
                    _ => self.real_ids.clone(),
                };
                self.pick(&ids).clone()
            }
        }
    }

    /// A well-formed value for `schema` (every required property, some optional ones, plausible values by
    /// property name and format), so that one mutation of it reaches the handler's own checks.
    fn valid_for(&mut self, schema: &Value, name: &str, depth: usize) -> Value {
        let schema = self.resolve(schema);
        if depth > 6 {
            return Value::Null;
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            if let Some(options) = schema[key].as_array().filter(|o| !o.is_empty()) {
                let concrete: Vec<Value> = options.iter().filter(|o| o["type"] != "null").cloned().collect();
                let option = self.pick(&concrete).clone();
                return self.valid_for(&option, name, depth + 1);
            }
        }
        if let Some(values) = schema["enum"].as_array().filter(|v| !v.is_empty()) {
            return values[self.below(values.len())].clone();
        }
        let kind = match &schema["type"] {
            Value::Array(kinds) => kinds
                .iter()
                .find(|k| *k != "null")
                .and_then(Value::as_str)
                .unwrap_or("null"),
            Value::String(kind) => kind.as_str(),
            _ if schema.get("properties").is_some() => "object",
            _ => "string",
        };
        match kind {
            "object" => {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut object = serde_json::Map::new();
                for (property, property_schema) in schema["properties"].as_object().into_iter().flatten() {
                    if required.contains(&property.as_str()) || self.chance(50) {
                        let value = self.valid_for(property_schema, property, depth + 1);
                        object.insert(property.clone(), value);
                    }
                }
                Value::Object(object)
            }
            "array" => {
                let n = 1 + self.below(2);
                Value::Array(
                    (0..n)
                        .map(|_| self.valid_for(&schema["items"], name, depth + 1))
                        .collect(),
                )
            }
            "integer" => json!(1),
            "number" => json!(1.5),
            "boolean" => json!(self.chance(50)),
            _ => self.plausible_string(name, schema["format"].as_str()),
        }
    }

    fn plausible_string(&mut self, name: &str, format: Option<&str>) -> Value {
        let ids = self.real_ids.clone();
        let text = match format {
            Some("date") => "2026-11-30".to_owned(),
            Some("date-time") => "2026-11-30T10:00:00Z".to_owned(),
            Some("uuid") => self.pick(&ids).clone(),
            _ if name.contains("amount") || name.ends_with("_minor") => "100.00".to_owned(),
            _ if name.contains("currency") => "USD".to_owned(),
            _ if name.ends_with("_id") || name == "id" => self.pick(&ids).clone(),
            _ if name.contains("email") => "someone@example.org".to_owned(),
            _ if name.contains("url") => "https://example.org/hook".to_owned(),
            _ if name.contains("adm1") => "XY01".to_owned(),
            _ if name.contains("adm2") => "XY0101".to_owned(),
            _ if name.contains("date")
                || name.ends_with("_on")
                || name.ends_with("_start")
                || name.ends_with("_end") =>
            {
                "2026-11-30".to_owned()
            }
            _ => format!("fuzz {name}"),
        };
        json!(text)
    }

    /// `value` with one thing broken (or, one time in four, nothing: some requests go through and change state).
    fn mutate(&mut self, value: &mut Value) {
        if self.chance(25) {
            return;
        }
        // Choose a random object or array inside (as a JSON pointer), then break one of its members.
        let mut pointer = String::new();
        let mut at: &Value = value;
        loop {
            let (step, inner) = match at {
                Value::Object(map) if !map.is_empty() && self.chance(40) => {
                    let (key, inner) = map.iter().nth(self.below(map.len())).unwrap();
                    (key.replace('~', "~0").replace('/', "~1"), inner)
                }
                Value::Array(items) if !items.is_empty() && self.chance(40) => {
                    let i = self.below(items.len());
                    (i.to_string(), &items[i])
                }
                _ => break,
            };
            if !(inner.is_object() || inner.is_array()) {
                break;
            }
            pointer = format!("{pointer}/{step}");
            at = inner;
        }
        let Some(target) = value.pointer_mut(&pointer) else {
            return;
        };
        match target {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(self.below(map.len())).cloned().unwrap_or_default();
                match self.below(4) {
                    0 => {
                        map.remove(&key);
                    }
                    1 => {
                        map.insert("unexpected_field".to_owned(), json!(1));
                    }
                    _ => {
                        let broken = self.broken_value();
                        map.insert(key, broken);
                    }
                }
            }
            Value::Array(items) => {
                let broken = self.broken_value();
                items.push(broken);
            }
            other => *other = self.broken_value(),
        }
    }

    /// A value of the wrong type, out of range, or malformed for its field.
    fn broken_value(&mut self) -> Value {
        if self.chance(50) {
            return self.junk_value();
        }
        json!(*self.pick(&[
            "0.001",
            "-5.00",
            "0",
            "1,000.00",
            "1e3",
            "99999999999999999999.99",
            "12.5.0",
            "usd",
            "EURO",
            "",
            " ",
            "not-a-known-value",
            "2026-02-30",
            "30/11/2026",
            "1900-01-01",
            "9999-12-31",
            "XY99",
            "http://127.0.0.1:1/",
            "ftp://example.org",
            "@",
            UNKNOWN_ID,
        ]))
    }

    fn junk_value(&mut self) -> Value {
        match self.below(12) {
            0 => Value::Null,
            1 => json!(true),
            2 => json!(-1),
            3 => json!(1e308),
            4 => json!(u64::MAX),
            5 => json!(""),
            6 => json!("x".repeat(5_000)),
            7 => json!("\u{0}\u{2028}\u{feff}"),
            8 => json!([]),
            9 => json!({}),
            10 => json!([[[[{"a": [null]}]]]]),
            _ => json!("NaN"),
        }
    }

    fn resolve(&self, schema: &Value) -> Value {
        let mut schema = schema.clone();
        for _ in 0..8 {
            let Some(reference) = schema["$ref"].as_str() else {
                break;
            };
            let name = reference.rsplit('/').next().unwrap_or_default().to_owned();
            schema = self.doc["components"]["schemas"][name].clone();
        }
        schema
    }

    /// Sends one broken request to `method template` and checks its answer.
    fn send_one(&mut self, method: &str, template: &str, operation: &Value) {
        let mut path = String::new();
        let mut collection = "";
        for segment in template.split('/').skip(1) {
            path.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => path.push_str(&self.path_value(name, collection)),
                None => path.push_str(segment),
            }
            collection = segment;
        }
        let mut query = Vec::new();
        for parameter in operation["parameters"].as_array().cloned().unwrap_or_default() {
            if parameter["in"] == "query" && self.chance(50) {
                let value = self.pick(JUNK_QUERY).to_string();
                query.push(format!("{}={value}", parameter["name"].as_str().unwrap()));
            }
        }
        if !query.is_empty() {
            path = format!("{path}?{}", query.join("&"));
        }
        // Mostly someone the operation permits, so that the request reaches the handler's own checks.
        let permitted = permitted_hats(operation);
        let holders: Vec<usize> = (0..self.callers.len())
            .filter(|&i| self.callers[i].hats.iter().any(|h| permitted.contains(h)))
            .collect();
        let caller = if !holders.is_empty() && self.chance(75) {
            *self.pick(&holders)
        } else {
            self.below(self.callers.len())
        };
        let (who, token) = (
            self.callers[caller].name.clone(),
            self.callers[caller].token.clone(),
        );
        let mut request = self.app.client.request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            self.app.url(&path),
        );
        if let Some(token) = &token {
            request = request.bearer_auth(token);
        }
        if self.chance(25) {
            let hat = if !permitted.is_empty() && self.chance(50) {
                self.pick(&permitted).clone()
            } else {
                self.pick(&["hc", "rc", "dsrsg", "admin", "bogus", ""])
                    .to_string()
            };
            request = request.header("Acting-Hat", hat);
        }
        if self.chance(30) {
            request = request.header(
                "If-Match",
                *self.pick(&[
                    "\"1\"",
                    "\"2\"",
                    "1",
                    "\"x\"",
                    "*",
                    "\"\"",
                    "W/\"1\"",
                    "\"99999999999999999999\"",
                ]),
            );
        }
        let wants_key = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == "Idempotency-Key" && p["required"] == true);
        if self.chance(if wants_key { 90 } else { 20 }) {
            let key = match self.below(6) {
                0 => String::new(),
                1 => "k".repeat(300),
                _ => format!("fuzz-{}-{}", self.seed, self.sent),
            };
            request = request.header("Idempotency-Key", key);
        }
        let mut shown_body = String::new();
        if method != "GET" && method != "DELETE" {
            let content = operation["requestBody"]["content"].clone();
            match content.get("application/json") {
                Some(json_body) if self.chance(80) => {
                    let mut body = self.valid_for(&json_body["schema"], "body", 0);
                    self.mutate(&mut body);
                    shown_body = body.to_string().chars().take(300).collect();
                    request = request.json(&body);
                }
                _ => {
                    let raw = self.pick(RAW_BODIES).to_vec();
                    let media_type = match content.as_object().and_then(|c| c.keys().next().cloned()) {
                        Some(documented) if self.chance(50) => documented,
                        _ => self.pick(MEDIA_TYPES).to_string(),
                    };
                    shown_body = format!("{media_type}: {}", String::from_utf8_lossy(&raw));
                    request = request.header("content-type", media_type).body(raw);
                }
            }
        }
        let response = request.send().unwrap();
        self.sent += 1;
        let status = response.status().as_u16();
        *self.statuses.entry(status).or_default() += 1;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.text().unwrap_or_default();
        let what = format!(
            "{method} {path} as {who} (seed {}, request {}) with {shown_body} -> {status} {content_type}: {}",
            self.seed,
            self.sent,
            body.chars().take(300).collect::<String>()
        );
        assert!(status < 500, "{what}");
        if (400..500).contains(&status) {
            assert!(content_type.starts_with("application/problem+json"), "{what}");
            let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(problem["status"], status, "{what}");
        }
    }
}

/// The environment variable `name` parsed, or `default`.
fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Ids of the things a list answers with.
fn ids_of(app: &TestApp, path: &str, token: &str) -> Vec<String> {
    let res = app.get_as(path, token);
    assert_eq!(res.status().as_u16(), 200, "{path}");
    let list: Value = res.json().unwrap();
    let items = list.get("items").cloned().unwrap_or(list);
    items
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn every_operation_answers_broken_input_with_a_documented_4xx_and_writes_nothing_half() {
    let app = TestApp::spawn();
    let auth =
        qip_pool::features::identity::AuthRuntime::new(&crate::support::test_settings(&app.db.url()).auth)
            .unwrap();
    let logins = qip_pool::features::demo::seed(&mut app.conn(), &auth).unwrap();
    let mut callers = vec![Caller {
        name: "nobody".to_owned(),
        hats: Vec::new(),
        token: None,
    }];
    let mut caller_ids = Vec::new();
    for login in &logins {
        let session = app.login(&login.username, DEMO_PASSWORD);
        caller_ids.push(session.user_id.clone());
        callers.push(Caller {
            name: login.username.clone(),
            hats: login.hats.iter().map(|h| h.as_str().to_owned()).collect(),
            token: Some(session.access),
        });
    }
    let token = |name: &str| -> String {
        callers
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.token.clone())
            .unwrap()
    };
    let (admin, finance, qip, auditor) = (
        token("admin"),
        token("finance"),
        token("qip.officer"),
        token("auditor"),
    );
    let pools = ids_of(&app, "/api/v1/pools", &finance);
    let transactions = format!("/api/v1/pools/{}/transactions", pools[0]);
    let mut ids_in = std::collections::BTreeMap::new();
    for (collection, list, reader) in [
        ("pools", "/api/v1/pools", &finance),
        ("proposals", "/api/v1/proposals?limit=200", &qip),
        ("organizations", "/api/v1/organizations", &admin),
        ("transactions", transactions.as_str(), &finance),
        ("activities", "/api/v1/activities", &qip),
        ("consultation-rules", "/api/v1/consultation-rules", &qip),
        ("hat-grant-requests", "/api/v1/hat-grant-requests", &admin),
        // Users other than the callers: disabling or resetting a caller would only turn the rest of its
        // requests into 401s.
        ("users", "/api/v1/users", &admin),
    ] {
        let ids: Vec<String> = ids_of(&app, list, reader)
            .into_iter()
            .filter(|id| !caller_ids.contains(id))
            .collect();
        ids_in.insert(collection.to_owned(), ids);
    }
    let real_ids: Vec<String> = ids_in.values().flatten().cloned().collect();
    assert!(real_ids.len() > 15, "real ids {real_ids:?}");

    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let mut operations = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            // Signing out ends the caller's session: the rest of its requests would test only the 401.
            if !template.ends_with("/auth/logout") {
                operations.push((method.to_ascii_uppercase(), template.clone(), operation.clone()));
            }
        }
    }
    assert!(operations.len() > 80, "{} operations", operations.len());

    let seed: u64 = setting("QIP_TEST_FUZZ_SEED", SEED);
    let rounds: usize = setting("QIP_TEST_FUZZ_ROUNDS", ROUNDS);
    // Several threads, each with its own seed (`seed + i`), send at once: what they change, the others meet.
    let threads: u64 = setting("QIP_TEST_FUZZ_THREADS", 1);
    let fuzzer_for = |i: u64| Fuzzer {
        app: &app,
        doc: doc.clone(),
        rng: TestRng::from_seed(
            RngAlgorithm::ChaCha,
            &[(seed + i).to_le_bytes(), [0; 8], [0; 8], [0; 8]].concat(),
        ),
        seed: seed + i,
        callers: callers.clone(),
        real_ids: real_ids.clone(),
        ids_in: ids_in.clone(),
        sent: 0,
        statuses: Default::default(),
    };
    let operations = &operations;
    let run = move |mut fuzzer: Fuzzer<'_>| {
        for _ in 0..rounds {
            for (method, template, operation) in operations {
                fuzzer.send_one(method, template, operation);
            }
        }
        (fuzzer.sent, fuzzer.statuses)
    };
    let finished: Vec<_> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|i| {
                let fuzzer = fuzzer_for(i);
                scope.spawn(move || run(fuzzer))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut sent = 0;
    for (each_sent, each_statuses) in finished {
        sent += each_sent;
        for (status, n) in each_statuses {
            *statuses.entry(status).or_default() += n;
        }
    }
    assert_eq!(sent, threads as usize * rounds * operations.len());
    // The requests got past sign-in and authorization to the handlers' own checks, and some went through.
    eprintln!("answers by status: {statuses:?}");
    for status in [200, 400, 403, 404, 422] {
        assert!(
            statuses.get(&status).copied().unwrap_or(0) >= 3,
            "{status} in {statuses:?}"
        );
    }

    app.seal();
    let check: Value = app.get_as("/api/v1/ledger/check", &auditor).json().unwrap();
    assert_eq!(check["ok"], true, "{check}");
    let verify: Value = app.get_as("/api/v1/audit/verify", &auditor).json().unwrap();
    assert_eq!(verify["intact"], true, "{verify}");
}

/// U+0000 in a JSON body, a query string, a CSV upload or a console form: PostgreSQL cannot store it (before
/// the fix each was a 500 there, found by the test above) and SQLite would. Both databases now refuse it the
/// same way, name where it was, and write nothing.
#[test]
fn a_nul_character_is_refused_wherever_text_comes_in_and_nothing_is_written() {
    let m = crate::fixtures::Mission::new();
    let app = &m.app;
    let audit_before = app.audit_rows().len();

    let mut body = m.complete_content("Well\u{0}", "5000.00");
    let res = m.create(&m.unit, &body);
    let problem = crate::support::assert_problem(res, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "title", "{problem}");
    body["budget_lines"][0]["description"] = json!("Pump\u{0}");
    body["title"] = json!("Well");
    let problem = crate::support::assert_problem(m.create(&m.unit, &body), 422, "validation");
    assert_eq!(
        problem["errors"][0]["field"], "budget_lines[0].description",
        "{problem}"
    );
    let mine: Value = app.get_as("/api/v1/proposals", &m.unit.access).json().unwrap();
    assert_eq!(mine["items"], json!([]), "no proposal was written");

    // Signing in with it is refused before any account is looked up: no failure is counted for anyone.
    let res = app.post_json(
        "/api/v1/auth/login",
        None,
        &json!({"username": "cimic\u{0}", "password": "whatever-it-is"}),
    );
    let problem = crate::support::assert_problem(res, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "username", "{problem}");

    let res = app.get_as("/api/v1/activities?sector=W%00SH", &m.qip.access);
    let problem = crate::support::assert_problem(res, 400, "bad-request");
    assert_eq!(problem["errors"][0]["field"], "sector", "{problem}");

    let res = app
        .client
        .post(app.url("/api/v1/areas/import"))
        .bearer_auth(&m.qip.access)
        .header("content-type", "text/csv")
        .body(format!(
            "{}XY03,East\u{0},XY0301,Geneina,13.45,22.45\n",
            crate::fixtures::GAZETTEER
        ))
        .send()
        .unwrap();
    let problem = crate::support::assert_problem(res, 422, "validation");
    assert_eq!(problem["errors"][0]["field"], "line 5", "{problem}");
    let areas: Value = app.get_as("/api/v1/areas", &m.qip.access).json().unwrap();
    assert!(
        !areas.to_string().contains("XY03"),
        "the file was refused whole: {areas}"
    );

    // The console's sign-in form.
    let mut browser = crate::console::Browser::new(app);
    let page = browser.get("/console/sign-in").text().unwrap();
    let csrf = crate::console::csrf_of(&page);
    let res = browser.post(
        "/console/sign-in",
        &[("csrf", &csrf), ("username", "cimic\u{0}"), ("password", "x")],
    );
    let problem = crate::support::assert_problem(res, 400, "bad-request");
    assert_eq!(problem["errors"][0]["field"], "username", "{problem}");

    assert_eq!(app.audit_rows().len(), audit_before, "no event was written");
}

/// A body the client may leave out (a withdrawal's reason, a flag's ending, a report decision's comment) is
/// still read when sent: a broken one is answered, not taken for none. Before, actix's `Option<Json<_>>` turned
/// it into "no body" and the proposal was withdrawn without the reason the client sent.
#[test]
fn a_broken_optional_body_is_answered_and_the_action_not_taken() {
    let m = crate::fixtures::Mission::new();
    let (id, _, version) = m.submitted("Latrines", "3000.00");
    let path = format!("/api/v1/proposals/{id}/withdraw");
    let state = |id: &str| -> Value {
        let proposal: Value = m
            .app
            .get_as(&format!("/api/v1/proposals/{id}"), &m.unit.access)
            .json()
            .unwrap();
        proposal["state"].clone()
    };
    let before = state(&id);
    assert_ne!(before, "withdrawn");
    for (body, status, slug) in [
        (json!({"reason": 5}), 422, "validation"),
        (json!({"reason": "Duplicate\u{0}"}), 422, "validation"),
    ] {
        let res = m.with_if_match(Method::POST, &path, &m.unit, version, Some(&body));
        let problem = crate::support::assert_problem(res, status, slug);
        assert_eq!(
            problem["errors"][0]["field"].as_str().map(|f| f.is_empty()),
            Some(false),
            "{problem}"
        );
    }
    let res = m
        .app
        .client
        .post(m.app.url(&path))
        .bearer_auth(&m.unit.access)
        .header("If-Match", format!("\"{version}\""))
        .header("content-type", "application/json")
        .body("{\"reason\": ")
        .send()
        .unwrap();
    crate::support::assert_problem(res, 400, "malformed-json");
    assert_eq!(state(&id), before, "not withdrawn");

    // Sent well, or not at all, it works as before.
    let res = m.with_if_match(
        Method::POST,
        &path,
        &m.unit,
        version,
        Some(&json!({"reason": "Duplicate of a WASH project"})),
    );
    assert_eq!(res.status().as_u16(), 200);
    let (other, _, version) = m.submitted("Fence", "1000.00");
    let res = m.with_if_match(
        Method::POST,
        &format!("/api/v1/proposals/{other}/withdraw"),
        &m.unit,
        version,
        None,
    );
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        (state(&id), state(&other)),
        (json!("withdrawn"), json!("withdrawn"))
    );
}

/// A console form that cannot be read (the wrong media type, or over the 16 KiB form limit) is
/// answered with a problem+json like every other unreadable body, not actix's plain text, and signs nobody in.
#[test]
fn an_unreadable_console_form_is_answered_as_a_problem() {
    let m = crate::fixtures::Mission::new();
    let app = &m.app;
    let audit_before = app.audit_rows().len();
    let post = |content_type: &str, body: String| {
        app.client
            .post(app.url("/console/sign-in"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .unwrap()
    };

    let res = post("text/plain", "csrf=x&username=cimic&password=y".into());
    let problem = crate::support::assert_problem(res, 415, "unsupported-media-type");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("x-www-form-urlencoded"),
        "{problem}"
    );

    let res = post(
        "application/x-www-form-urlencoded",
        format!("csrf=x&username=cimic&password={}", "y".repeat(20_000)),
    );
    let problem = crate::support::assert_problem(res, 413, "payload-too-large");
    assert_eq!(problem["limit_bytes"], 16_384, "{problem}");

    assert_eq!(app.audit_rows().len(), audit_before, "no sign-in was tried");
}
