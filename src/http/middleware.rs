//! The request middleware: request id (taken from `X-Request-Id` or made), the request's tracing span, every
//! error response rewritten as problem+json (with `instance` and `request_id`), security headers, metrics
//! and one completion log line.

use std::future::{Ready, ready};
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use tracing::Instrument;

use crate::app::AppState;
use crate::error::{AppError, ErrorKind, PROBLEM_CONTENT_TYPE};
use crate::http::client_addr::client_address;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

pub use crate::request_meta::RequestMeta;
use crate::request_meta::new_request_id;

/// The request's facts as `request_context` stored them (a fresh request id when it did not run).
impl FromRequest for RequestMeta {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let meta = req
            .extensions()
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_else(|| RequestMeta::fresh(req.peer_addr().map(|a| a.ip().to_string())));
        ready(Ok(meta))
    }
}

/// A client's id is echoed only when it is short and plain, so it is safe in logs and headers.
fn acceptable_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map(str::to_owned)
        .unwrap_or_else(new_request_id);
    let client_addr = match req.app_data::<web::Data<AppState>>() {
        Some(state) => client_address(
            req.peer_addr().map(|a| a.ip()),
            req.headers(),
            &state.settings.server.trusted_proxies,
        ),
        None => req.peer_addr().map(|a| a.ip().to_string()),
    };
    req.extensions_mut().insert(RequestMeta {
        request_id: request_id.clone(),
        client_addr,
    });
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path()
    );
    let started = Instant::now();
    async move {
        // Handler and extractor errors arrive as responses carrying the error; an `Err` here could only come
        // from an inner middleware, and actix renders it through the same `ResponseError` impl.
        let res = next.call(req).await?.map_into_boxed_body();
        let mut res = into_problem(res, &request_id);
        add_headers(&mut res, &request_id);
        let status = res.status().as_u16();
        let elapsed = started.elapsed();
        let pattern = res.request().match_pattern();
        if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
            state.metrics.observe_request(
                res.request().method().as_str(),
                pattern.as_deref(),
                status,
                elapsed.as_secs_f64(),
            );
        }
        let route = pattern.as_deref().unwrap_or("unmatched");
        tracing::info!(status, route = %route, latency_ms = elapsed.as_secs_f64() * 1000.0, "request completed");
        Ok(res)
    }
    .instrument(span)
    .await
}

/// Rewrites any error response as problem+json, logging the cause of server errors.
fn into_problem(res: ServiceResponse<BoxBody>, request_id: &str) -> ServiceResponse<BoxBody> {
    let status = res.status();
    let console_page = is_console(res.request().path())
        && res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if status.as_u16() < 400 || console_page {
        // The console answers its errors as HTML pages a person can read (see `console`).
        return res;
    }
    let instance = Some(res.request().path().to_owned());
    let request_id = Some(request_id.to_owned());
    let origin = res
        .request()
        .app_data::<web::Data<AppState>>()
        .map(|state| state.settings.server.public_url.clone())
        .unwrap_or_default();
    let response = match res.response().error().and_then(|e| e.as_error::<AppError>()) {
        Some(app_error) => {
            if app_error.kind().status().is_server_error() {
                tracing::error!(error = %app_error, "request failed");
            }
            app_error.problem_response(&origin, instance, request_id)
        }
        None => {
            let already_problem = res
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
            if already_problem {
                return res;
            }
            let kind = ErrorKind::from_status(status);
            let detail = match res.response().error() {
                Some(err) if !status.is_server_error() => err.to_string(),
                Some(err) => {
                    tracing::error!(error = %err, "request failed");
                    AppError::internal("opaque").detail().to_owned()
                }
                None if status.is_server_error() => AppError::internal("opaque").detail().to_owned(),
                None => status.canonical_reason().unwrap_or("Request refused").to_owned() + ".",
            };
            let mut error = AppError::new(kind, detail);
            for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
                if let Some(v) = res.headers().get(&name).and_then(|v| v.to_str().ok()) {
                    error = error.with_header(name.clone(), v);
                }
            }
            let mut response = error.problem_response(&origin, instance, request_id);
            *response.status_mut() = status;
            response
        }
    };
    res.into_response(response)
}

/// The web console's pages (`/` redirects into it).
fn is_console(path: &str) -> bool {
    path == "/" || path == "/console" || path.starts_with("/console/")
}

fn add_headers(res: &mut ServiceResponse<BoxBody>, request_id: &str) {
    let is_docs = res.request().path().starts_with("/docs");
    let is_console = is_console(res.request().path());
    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
    let csp = if is_docs {
        // Swagger UI is served from the binary; it needs its own scripts, styles and inline images.
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'"
    } else if is_console {
        // The console loads its one stylesheet from the service; no script at all, forms post only to it.
        "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    } else {
        "default-src 'none'; frame-ancestors 'none'"
    };
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !is_docs && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}
