//! The pages problem `type` URIs resolve to: `GET /problems/{slug}` says what the problem means and how to
//! fix it, one short HTML page per [`ErrorKind`].

use actix_web::{HttpResponse, get, web};

use crate::error::{AppError, ErrorKind};

/// What a problem means and what the client should do about it.
pub fn explanation(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::BadRequest => (
            "A query parameter or header could not be read, or a required header is missing.",
            "Read `detail`; fix the named parameter or header (e.g. a `limit` that is not a number, an unknown \
             `Acting-Hat`, a missing `Idempotency-Key`).",
        ),
        ErrorKind::MalformedJson => (
            "The request body is not valid JSON (or not the JSON shape the operation takes).",
            "Send `Content-Type: application/json` and a body matching the operation's schema; `line` and \
             `column` say where parsing stopped.",
        ),
        ErrorKind::Unauthorized => (
            "No access token, or one that is expired, malformed or revoked; or wrong sign-in credentials.",
            "Sign in with `POST /api/v1/auth/login` (or refresh with `POST /api/v1/auth/refresh`) and send \
             `Authorization: Bearer <access_token>`.",
        ),
        ErrorKind::Forbidden => (
            "You are signed in, but no hat you hold (or the hat named in `Acting-Hat`) permits this action on \
             this object.",
            "Act in a hat that permits it (`detail` lists them), or ask an administrator for that hat.",
        ),
        ErrorKind::NotFound => (
            "Nothing is served at this path, or the object does not exist or is not visible to you.",
            "Check the id and the path against the OpenAPI document at `/api/v1/openapi.json`.",
        ),
        ErrorKind::MethodNotAllowed => (
            "The path exists, but not for this HTTP method.",
            "Use one of the methods in the `Allow` header (also in `allowed_methods`).",
        ),
        ErrorKind::Conflict => (
            "The action does not fit the current state of the object (e.g. disabling a disabled user).",
            "GET the object, look at its state, and choose an action that state allows.",
        ),
        ErrorKind::InvalidTransition => (
            "The proposal's state does not allow this action.",
            "`state` says where the proposal is and `allowed_actions` what can be done now.",
        ),
        ErrorKind::InsufficientFunds => (
            "The money is not there: the account cannot cover the amount.",
            "`account` and `available` say what is left; contribute to the pool or ask for less.",
        ),
        ErrorKind::DualControl => (
            "Dual control: another administrator must act first.",
            "Have the grantee's password reset by an administrator other than the requester, hand over the new \
             setup token, and confirm once it is used.",
        ),
        ErrorKind::RequestInProgress => (
            "A request with the same `Idempotency-Key` is still being processed.",
            "Retry the same request, with the same key, after `Retry-After` seconds to receive its result.",
        ),
        ErrorKind::IdempotencyKeyReused => (
            "This `Idempotency-Key` was already used for a different request (another body or endpoint).",
            "Use a new key (e.g. a new UUID) for each new intended operation; reuse a key only to retry the \
             very same request.",
        ),
        ErrorKind::PreconditionFailed => (
            "`If-Match` does not name the current version: the object changed since you read it, or the tag is \
             weak (`W/\"3\"` never matches).",
            "GET the object again, reapply your change, and send its `ETag` exactly as received in `If-Match`.",
        ),
        ErrorKind::PreconditionRequired => (
            "A change was sent without `If-Match`.",
            "GET the object first and send its `ETag` in `If-Match`, so a concurrent change is not overwritten.",
        ),
        ErrorKind::PayloadTooLarge => (
            "The request body exceeds the limit (`limit_bytes`, or `max_rows` for imports).",
            "Send a smaller body, or split an import file into several.",
        ),
        ErrorKind::UnsupportedMediaType => (
            "The body is not sent with the media type the operation takes.",
            "Send `Content-Type: application/json` (or `text/csv` for imports).",
        ),
        ErrorKind::Validation => (
            "Well-formed input that breaks a rule; `errors` lists every fault at once.",
            "Fix each field named in `errors` (`field` is its JSON path) and send the request again.",
        ),
        ErrorKind::TooManyRequests => (
            "Too many requests from this address or account (sign-in is rate limited).",
            "Wait the number of seconds in `Retry-After` before trying again.",
        ),
        ErrorKind::ServiceUnavailable => (
            "Nothing was written and a retry may succeed: the database is unreachable or its migrations are \
             pending, a connection was lost, a concurrent transaction forced a rollback, or the service is busy.",
            "Retry after `Retry-After` seconds; if it persists, an operator should check `/readyz` and run \
             `qip-pool migrate`.",
        ),
        ErrorKind::Internal => (
            "A fault on the server; the body is deliberately opaque.",
            "Report the `request_id` to the operators; retrying a write may or may not be safe.",
        ),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page of one problem type.
pub fn page(kind: ErrorKind) -> String {
    let (meaning, fix) = explanation(kind);
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n\
         <h1>{title}</h1>\n<p>HTTP status {status}. Problem type <code>{uri}</code>.</p>\n\
         <h2>What it means</h2>\n<p>{meaning}</p>\n<h2>How to fix it</h2>\n<p>{fix}</p>\n\
         <p>Every error is an RFC 9457 <code>application/problem+json</code> body; branch on <code>type</code>, \
         never on <code>detail</code>. The API is described at <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p>\n\
         </body></html>\n",
        title = escape(kind.title()),
        status = kind.status().as_u16(),
        uri = escape(&kind.type_uri()),
        meaning = escape(meaning),
        fix = escape(fix),
    )
}

/// What a problem `type` means and how to fix it (the page its URI resolves to).
#[utoipa::path(
    tag = "operations",
    params(("slug" = String, Path, description = "The last segment of the problem's `type` URI")),
    responses(
        (status = 200, description = "A page explaining the problem", body = String, content_type = "text/html"),
        (status = 404, description = "No such problem type", body = crate::error::Problem, content_type = "application/problem+json")
    )
)]
#[get("/problems/{slug}")]
pub async fn problem_page(slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let kind = ErrorKind::ALL
        .into_iter()
        .find(|k| k.slug() == slug.as_str())
        .ok_or_else(|| {
            AppError::not_found("No problem type has this name; the types are listed in the API guide.")
        })?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "public, max-age=86400"))
        .body(page(kind)))
}
