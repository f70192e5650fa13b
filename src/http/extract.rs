//! Extractor configuration: JSON, query and path errors become problem responses (malformed JSON → 400 with
//! the parser's position, wrong content type → 415, too large → 413, query errors → 400).

use actix_web::error::{JsonPayloadError, PathError, PayloadError, QueryPayloadError};
use actix_web::web;
use serde_json::json;

use crate::error::{AppError, ErrorKind, FieldError};

pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(err).into())
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| query_error(err).into())
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| path_error(err).into())
}

/// Limit for raw bodies (CSV uploads).
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

fn too_large(limit: usize) -> AppError {
    AppError::new(
        ErrorKind::PayloadTooLarge,
        format!("The request body is larger than the limit of {limit} bytes."),
    )
    .with_extension("limit_bytes", json!(limit))
}

pub fn json_error(err: JsonPayloadError) -> AppError {
    match err {
        JsonPayloadError::OverflowKnownLength { limit, .. } | JsonPayloadError::Overflow { limit } => {
            too_large(limit)
        }
        JsonPayloadError::ContentType => AppError::new(
            ErrorKind::UnsupportedMediaType,
            "Send the request body as JSON with `Content-Type: application/json`.",
        ),
        JsonPayloadError::Deserialize(e) => deserialize_error(&e),
        JsonPayloadError::Payload(PayloadError::Overflow) => AppError::new(
            ErrorKind::PayloadTooLarge,
            "The request body is larger than the configured limit.",
        ),
        other => AppError::bad_request(format!("The request body could not be read: {other}.")),
    }
}

/// Syntax errors are a 400 that says where parsing stopped; well-formed JSON of the wrong shape is a 422.
pub fn deserialize_error(e: &serde_json::Error) -> AppError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => AppError::validation(vec![FieldError::new("body", e.to_string())]),
        Category::Syntax | Category::Eof | Category::Io => AppError::new(
            ErrorKind::MalformedJson,
            format!("The request body is not valid JSON: {e}."),
        )
        .with_extension("line", json!(e.line()))
        .with_extension("column", json!(e.column())),
    }
}

fn query_error(err: QueryPayloadError) -> AppError {
    match err {
        QueryPayloadError::Deserialize(e) => {
            AppError::bad_request(format!("The query string is invalid: {e}."))
                .with_errors(vec![FieldError::new("query", e.to_string())])
        }
        other => AppError::bad_request(format!("The query string is invalid: {other}.")),
    }
}

fn path_error(err: PathError) -> AppError {
    AppError::not_found(format!("No resource at this path: {err}."))
}

/// Refuses a body that is not sent as `text/csv` (415), for the CSV import routes.
pub fn require_csv(req: &actix_web::HttpRequest, what: &str) -> Result<(), AppError> {
    let is_csv = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    if is_csv {
        Ok(())
    } else {
        Err(AppError::new(
            ErrorKind::UnsupportedMediaType,
            format!("Send the {what} as `Content-Type: text/csv`."),
        ))
    }
}
