//! Optimistic concurrency on the wire: resources send `ETag: "<version>"`; changes must send `If-Match` with it
//! (missing: 428; not a version: 400; stale: 412, decided by the service under its row lock). `If-Match` uses
//! the strong comparison of RFC 9110 §13.1.1: a weak tag (`W/"3"`) never matches, so it is a 412 whatever the
//! version. Reads answer `If-None-Match` with 304 (`http::conditional`).

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::error::{AppError, AppResult};

/// The version named by `If-Match`.
pub fn if_match_version(req: &HttpRequest) -> AppResult<i64> {
    let value = req.headers().get(header::IF_MATCH).ok_or_else(|| {
        AppError::precondition_required(
            "Send `If-Match` with the ETag of the version you are changing (GET the resource first).",
        )
    })?;
    let text = value.to_str().unwrap_or("").trim();
    if text.starts_with("W/") {
        return Err(AppError::precondition_failed(
            "`If-Match` compares strongly: a weak ETag (`W/\"3\"`) never matches. Send the ETag exactly as \
             this service sent it, like \"3\".",
        ));
    }
    let Some(quoted) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return Err(AppError::bad_request(
            "`If-Match` must be an ETag this service sent, quotes included, like \"3\".",
        ));
    };
    quoted
        .parse::<i64>()
        .map_err(|_| AppError::bad_request("`If-Match` must be an ETag this service sent, like \"3\"."))
}

pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}
