//! The authorization matrix, generated from the policy table: every route × every hat (plus anonymous and a
//! user with no hats) gets exactly the answer the table implies. A route the OpenAPI document lists without a
//! policy line fails here.

use qip_pool::access::policy::ROUTES;
use qip_pool::access::{Hat, Requirement};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

#[test]
fn every_served_route_has_exactly_one_policy_line() {
    let app = TestApp::spawn();
    let doc: Value = app.get("/api/v1/openapi.json").json().unwrap();
    let mut served = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            served.push((method.to_ascii_uppercase(), path.clone()));
        }
    }
    for (method, path) in &served {
        assert!(
            ROUTES.iter().any(|(m, t, _)| m == method && t == path),
            "{method} {path} is served but has no line in access::policy::ROUTES"
        );
    }
    for (m, t, _) in ROUTES {
        assert!(
            served.iter().any(|(method, path)| method == m && path == t),
            "{m} {t} in the policy but not served"
        );
    }
}

#[test]
fn matrix_of_routes_and_hats_matches_the_policy_table() {
    let (app, admin) = TestApp::with_admin();
    let org = app.create_org(&admin, "MATRIX", "mission_office");
    let nobody = app.user_with_hats(&admin, "nohats", &org, &[]);
    // The object of user routes: someone who never signs in here (admins disable and re-enable them).
    let target = app.user_with_hats(&admin, "target", &org, &[]);
    let holders: Vec<(Hat, String)> = Hat::ALL
        .iter()
        .map(|hat| {
            (
                *hat,
                app.user_with_hats(&admin, &format!("u-{hat}"), &org, &[hat.as_str()])
                    .access,
            )
        })
        .collect();

    for (method, template, requirement) in ROUTES {
        // Path parameters: an existing user where a user is meant, else an unknown id.
        let path = template
            .replace("{id}", &target.user_id)
            .replace("{hat_id}", "0000-unknown");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = (method == Method::POST).then(|| json!({}));
        let call = |token: Option<&str>| {
            app.send(method.clone(), &path, token, body.as_ref())
                .status()
                .as_u16()
        };

        let anonymous = call(None);
        let no_hat = call(Some(&nobody.access));
        match requirement {
            Requirement::Public => {
                assert!(
                    ![401, 403].contains(&anonymous),
                    "{method} {template}: public but anonymous got {anonymous}"
                );
            }
            Requirement::Authenticated => {
                assert_eq!(anonymous, 401, "{method} {template} anonymous");
                assert!(
                    ![401, 403].contains(&no_hat),
                    "{method} {template}: signed-in user got {no_hat}"
                );
            }
            Requirement::Action(action) => {
                assert_eq!(anonymous, 401, "{method} {template} anonymous");
                assert_eq!(no_hat, 403, "{method} {template} user without hats");
                for (hat, token) in &holders {
                    let status = call(Some(token));
                    if action.permits(*hat) {
                        assert!(
                            ![401, 403].contains(&status),
                            "{method} {template}: {hat} should pass, got {status}"
                        );
                    } else {
                        assert_eq!(status, 403, "{method} {template}: {hat} should be denied");
                    }
                }
            }
        }
    }
}
