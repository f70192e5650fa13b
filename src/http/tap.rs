//! An optional observer of every response the service sends, with its route and body: the test suite checks
//! each one against the OpenAPI document (contract tests). Off (no cost) unless `AppState::response_tap` is set.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{ResponseError, web};

use crate::app::AppState;
use crate::error::AppError;

/// One response as sent: the request's method, the route template that served it (if any), status,
/// media type and body.
#[derive(Debug)]
pub struct TappedResponse<'a> {
    pub method: &'a str,
    pub template: Option<&'a str>,
    pub path: &'a str,
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub headers: &'a actix_web::http::header::HeaderMap,
    pub body: &'a [u8],
}

/// The observer.
pub type ResponseTap = Arc<dyn Fn(&TappedResponse<'_>) + Send + Sync>;

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let tap = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.response_tap.clone());
    let res = next.call(req).await?;
    let Some(tap) = tap else {
        return Ok(res.map_into_boxed_body());
    };
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    if !is_json {
        // Streamed exports (CSV, XML) stay streamed: the observer sees their status and media type only.
        let http_req = res.request();
        let content_type = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let template = http_req.match_pattern();
        tap(&TappedResponse {
            method: http_req.method().as_str(),
            template: template.as_deref(),
            path: http_req.path(),
            status: res.status().as_u16(),
            content_type: content_type.as_deref(),
            headers: res.headers(),
            body: &[],
        });
        return Ok(res.map_into_boxed_body());
    }
    let (http_req, http_res) = res.into_parts();
    let (head, body) = http_res.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        let failed = AppError::internal("reading a response body failed").error_response();
        return Ok(ServiceResponse::new(http_req, failed));
    };
    let template = http_req.match_pattern();
    let content_type = head
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    tap(&TappedResponse {
        method: http_req.method().as_str(),
        template: template.as_deref(),
        path: http_req.path(),
        status: head.status().as_u16(),
        content_type: content_type.as_deref(),
        headers: head.headers(),
        body: &bytes,
    });
    Ok(ServiceResponse::new(http_req, head.set_body(BoxBody::new(bytes))))
}
