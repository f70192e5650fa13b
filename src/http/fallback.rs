//! The default service: a path no route serves is a 404; a path served only for other methods is a 405 with
//! `Allow`. Which methods a path has is read from the OpenAPI document, itself generated from the routes.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::error::{AppError, ErrorKind};

/// Path templates of every route and the methods each answers.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = split(path).map(str::to_owned).collect();
                let methods = serde_json::to_value(item)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .map(|obj| {
                        obj.keys()
                            .filter(|k| {
                                [
                                    "get", "put", "post", "delete", "patch", "head", "options", "trace",
                                ]
                                .contains(&k.as_str())
                            })
                            .map(|k| k.to_ascii_uppercase())
                            .collect()
                    })
                    .unwrap_or_default();
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    /// The templates that own `path`: of all that match it, the most literal ones. A literal segment shadows a
    /// parameter (`/activities/import` over `/activities/{id}`) for every method, so `GET /activities/import`
    /// is a 405 naming `POST`, never a lookup of an activity called "import".
    fn owners(&self, path: &str) -> Vec<&(Vec<String>, Vec<String>)> {
        let parts: Vec<&str> = split(path).collect();
        let matching: Vec<&(Vec<String>, Vec<String>)> = self
            .routes
            .iter()
            .filter(|(template, _)| matches(template, &parts))
            .collect();
        let literal = |template: &[String]| template.iter().filter(|t| !is_param(t)).count();
        let best = matching.iter().map(|(t, _)| literal(t)).max().unwrap_or(0);
        matching.into_iter().filter(|(t, _)| literal(t) == best).collect()
    }

    /// The route template serving `method` at `path`; where several match, the most literal one owns the path
    /// (`/users/me` over `/users/{id}`), as in actix's own routing order for these routes.
    pub fn template_for(&self, method: &str, path: &str) -> Option<String> {
        self.owners(path)
            .into_iter()
            .find(|(_, methods)| methods.iter().any(|m| m == method))
            .map(|(template, _)| format!("/{}", template.join("/")))
    }

    /// Whether `template` (`/api/v1/users/{id}`) is a route of the document, for any method.
    pub fn has_template(&self, template: &str) -> bool {
        let parts: Vec<&str> = split(template).collect();
        self.routes.iter().any(|(segments, _)| {
            segments.len() == parts.len() && segments.iter().zip(&parts).all(|(a, b)| a == b)
        })
    }

    /// Methods served at `path`, by the templates that own it.
    pub fn methods_for(&self, path: &str) -> Vec<String> {
        let mut methods: Vec<String> = self
            .owners(path)
            .into_iter()
            .flat_map(|(_, m)| m.iter().cloned())
            .collect();
        methods.sort();
        methods.dedup();
        methods
    }
}

fn is_param(segment: &str) -> bool {
    segment.starts_with('{') && segment.ends_with('}')
}

fn matches(template: &[String], parts: &[&str]) -> bool {
    template.len() == parts.len() && template.iter().zip(parts).all(|(t, p)| is_param(t) || t == p)
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

pub async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    Err(unmatched(&req, &state))
}

/// The 404 or 405 (with `Allow`) for a request no route serves.
pub fn unmatched(req: &HttpRequest, state: &AppState) -> AppError {
    let methods = state.routes.methods_for(req.path());
    if methods.is_empty() {
        return AppError::not_found(format!(
            "Nothing is served at {}. The API is described at /api/v1/openapi.json.",
            req.path()
        ));
    }
    let allow = methods.join(", ");
    AppError::new(
        ErrorKind::MethodNotAllowed,
        format!("{} is not served at {}; use {allow}.", req.method(), req.path()),
    )
    .with_extension("allowed_methods", serde_json::json!(methods))
    .with_header(header::ALLOW, &allow)
}
