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
