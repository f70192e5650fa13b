//! Response-side HTTP semantics every route shares, so no handler repeats them: `If-None-Match` on reads
//! (304 when the client's copy is current) and `Location` on every 201 (where the created resource lives).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use crate::error::AppError;

/// A GET whose `If-None-Match` names the ETag the answer would carry gets `304 Not Modified` with that ETag
/// and no body (weak comparison, RFC 9110 §13.1.2; `*` matches any current representation).
pub async fn not_modified(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let if_none_match = (req.method() == Method::GET)
        .then(|| req.headers().get(header::IF_NONE_MATCH).cloned())
        .flatten();
    let res = next.call(req).await?;
    let Some(wanted) = if_none_match else {
        return Ok(res.map_into_boxed_body());
    };
    let current = res.headers().get(header::ETAG).cloned();
    match current {
        Some(etag) if res.status() == StatusCode::OK && etag_listed(&wanted, &etag) => {
            let (http_req, _) = res.into_parts();
            let not_modified = HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .finish();
            Ok(ServiceResponse::new(http_req, not_modified))
        }
        _ => Ok(res.map_into_boxed_body()),
    }
}

/// Whether an `If-None-Match` list names `etag` under weak comparison.
fn etag_listed(list: &HeaderValue, etag: &HeaderValue) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    let etag = opaque(etag);
    list.to_str()
        .unwrap_or("")
        .split(',')
        .any(|tag| tag.trim() == "*" || opaque(tag) == etag)
}

/// Adds `Location` to a 201 that has none, naming the created resource (derived from the route and the
/// created object's `id`, see [`created_location`]).
pub async fn location_on_created(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    if res.status() != StatusCode::CREATED || res.headers().contains_key(header::LOCATION) {
        return Ok(res.map_into_boxed_body());
    }
    let (http_req, http_res) = res.into_parts();
    let (head, body) = http_res.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        let failed = AppError::internal("reading a 201 body failed").error_response();
        return Ok(ServiceResponse::new(http_req, failed));
    };
    let mut res = head.set_body(BoxBody::new(bytes.clone()));
    let created: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let template = http_req.match_pattern().unwrap_or_default();
    let location = created_location(&template, http_req.path(), &created)
        .and_then(|location| HeaderValue::from_str(&location).ok());
    if let Some(value) = location {
        res.headers_mut().insert(header::LOCATION, value);
    }
    Ok(ServiceResponse::new(http_req, res))
}

/// Where the object a POST to `template` (at `path`) created can be found.
pub fn created_location(template: &str, path: &str, created: &serde_json::Value) -> Option<String> {
    let id = created.get("id")?.as_str()?;
    let path = path.trim_end_matches('/');
    Some(match template {
        // Money movements are ledger transactions.
        "/api/v1/pools/{id}/contributions"
        | "/api/v1/transactions/{id}/reverse"
        | "/api/v1/proposals/{id}/tranches/{n}/disbursements"
        | "/api/v1/proposals/{id}/refunds" => format!("/api/v1/transactions/{id}"),
        "/api/v1/hat-grant-requests/{id}/confirm" => {
            let user = created.get("user_id")?.as_str()?;
            format!("/api/v1/users/{user}/hats/{id}")
        }
        // Reports are read through their proposal.
        "/api/v1/proposals/{id}/reports" => path.to_owned(),
        // A POST to a collection creates a member of it.
        _ => format!("{path}/{id}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_comparison_for_if_none_match() {
        let etag = HeaderValue::from_static("\"3\"");
        for listed in ["\"3\"", "W/\"3\"", "\"1\", \"3\"", "*"] {
            assert!(etag_listed(&HeaderValue::from_static(listed), &etag), "{listed}");
        }
        assert!(!etag_listed(&HeaderValue::from_static("\"4\""), &etag));
    }

    #[test]
    fn locations_name_the_created_resource() {
        let t = serde_json::json!({"id": "t1", "user_id": "u1"});
        assert_eq!(
            created_location("/api/v1/pools", "/api/v1/pools", &t).as_deref(),
            Some("/api/v1/pools/t1")
        );
        assert_eq!(
            created_location(
                "/api/v1/pools/{id}/contributions",
                "/api/v1/pools/p/contributions",
                &t
            )
            .as_deref(),
            Some("/api/v1/transactions/t1")
        );
        assert_eq!(
            created_location("/api/v1/hat-grant-requests/{id}/confirm", "/x", &t).as_deref(),
            Some("/api/v1/users/u1/hats/t1")
        );
    }
}
