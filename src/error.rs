//! The one error type of the service, `AppError`, and its RFC 9457 `application/problem+json` form.
//! Every kind has a stable `type` URI (documented in docs/API.md); 5xx bodies are opaque and their cause is
//! logged with the request id by the problem middleware.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The kinds of problem the API reports. The `type` URI and title of each are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadRequest,
    MalformedJson,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    InvalidTransition,
    InsufficientFunds,
    DualControl,
    RequestInProgress,
    IdempotencyKeyReused,
    PreconditionFailed,
    PreconditionRequired,
    PayloadTooLarge,
    UnsupportedMediaType,
    Validation,
    TooManyRequests,
    ServiceUnavailable,
    Internal,
}

impl ErrorKind {
    /// Every kind, for documentation and the test that each one is documented.
    pub const ALL: [ErrorKind; 20] = [
        ErrorKind::BadRequest,
        ErrorKind::MalformedJson,
        ErrorKind::Unauthorized,
        ErrorKind::Forbidden,
        ErrorKind::NotFound,
        ErrorKind::MethodNotAllowed,
        ErrorKind::Conflict,
        ErrorKind::InvalidTransition,
        ErrorKind::InsufficientFunds,
        ErrorKind::DualControl,
        ErrorKind::RequestInProgress,
        ErrorKind::IdempotencyKeyReused,
        ErrorKind::PreconditionFailed,
        ErrorKind::PreconditionRequired,
        ErrorKind::PayloadTooLarge,
        ErrorKind::UnsupportedMediaType,
        ErrorKind::Validation,
        ErrorKind::TooManyRequests,
        ErrorKind::ServiceUnavailable,
        ErrorKind::Internal,
    ];

    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::BadRequest | ErrorKind::MalformedJson => StatusCode::BAD_REQUEST,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorKind::Conflict
            | ErrorKind::InvalidTransition
            | ErrorKind::InsufficientFunds
            | ErrorKind::DualControl
            | ErrorKind::RequestInProgress => StatusCode::CONFLICT,
            ErrorKind::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorKind::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorKind::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The last segment of the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::MalformedJson => "malformed-json",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not-found",
            ErrorKind::MethodNotAllowed => "method-not-allowed",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidTransition => "invalid-transition",
            ErrorKind::InsufficientFunds => "insufficient-funds",
            ErrorKind::DualControl => "dual-control",
            ErrorKind::RequestInProgress => "request-in-progress",
            ErrorKind::IdempotencyKeyReused => "idempotency-key-reused",
            ErrorKind::PreconditionFailed => "precondition-failed",
            ErrorKind::PreconditionRequired => "precondition-required",
            ErrorKind::PayloadTooLarge => "payload-too-large",
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::Validation => "validation",
            ErrorKind::TooManyRequests => "too-many-requests",
            ErrorKind::ServiceUnavailable => "service-unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", self.slug())
    }

    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "Bad request",
            ErrorKind::MalformedJson => "Malformed JSON body",
            ErrorKind::Unauthorized => "Authentication required",
            ErrorKind::Forbidden => "Not allowed",
            ErrorKind::NotFound => "Not found",
            ErrorKind::MethodNotAllowed => "Method not allowed",
            ErrorKind::Conflict => "Conflict with the current state",
            ErrorKind::InvalidTransition => "Action not allowed in this state",
            ErrorKind::InsufficientFunds => "Insufficient funds",
            ErrorKind::DualControl => "Another administrator must act first",
            ErrorKind::RequestInProgress => "A request with this idempotency key is in progress",
            ErrorKind::IdempotencyKeyReused => "Idempotency key reused with a different request",
            ErrorKind::PreconditionFailed => "Precondition failed",
            ErrorKind::PreconditionRequired => "Precondition required",
            ErrorKind::PayloadTooLarge => "Request body too large",
            ErrorKind::UnsupportedMediaType => "Unsupported media type",
            ErrorKind::Validation => "Validation failed",
            ErrorKind::TooManyRequests => "Too many requests",
            ErrorKind::ServiceUnavailable => "Service unavailable",
            ErrorKind::Internal => "Internal server error",
        }
    }

    /// The kind a bare status maps to, for responses that carry no `AppError` (actix's own).
    pub fn from_status(status: StatusCode) -> ErrorKind {
        match status.as_u16() {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Forbidden,
            404 => ErrorKind::NotFound,
            405 => ErrorKind::MethodNotAllowed,
            409 => ErrorKind::Conflict,
            412 => ErrorKind::PreconditionFailed,
            413 => ErrorKind::PayloadTooLarge,
            415 => ErrorKind::UnsupportedMediaType,
            422 => ErrorKind::Validation,
            428 => ErrorKind::PreconditionRequired,
            429 => ErrorKind::TooManyRequests,
            503 => ErrorKind::ServiceUnavailable,
            s if s >= 500 => ErrorKind::Internal,
            _ => ErrorKind::BadRequest,
        }
    }
}

/// Seconds a client should wait before retrying a transient failure.
pub const RETRY_AFTER_SECS: &str = "1";

/// Path prefix of every problem `type`; the problem middleware prefixes `server.public_url`, making it an
/// absolute URI that resolves to the problem's page (`http::problems`).
pub const PROBLEM_TYPE_BASE: &str = "/problems/";

/// Most field messages one problem body lists; `errors_total` says how many there were. A 9 MB file of bad
/// rows must not come back as a 20 MB answer.
pub const MAX_PROBLEM_ERRORS: usize = 100;

/// One field-level validation message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the offending field (`budget_lines[2].unit_cost`), or a query/header name.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// RFC 9457 problem details, as every error response carries them. Specific problem types add members of
/// their own (listed in docs/API.md), so clients must ignore members they do not know.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// Stable absolute URI naming the kind of problem, e.g. `http://127.0.0.1:8080/problems/validation`; it
    /// resolves to a page saying what the problem means and how to fix it.
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    /// A sentence a person can act on.
    pub detail: String,
    /// The request path the problem occurred on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Same value as the `X-Request-Id` response header; quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level messages (validation problems list every fault at once, up to the first 100).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many field messages there were in all (present with `errors`; more than listed when capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_total: Option<usize>,
    /// Extra members of specific problems (e.g. `state` and `allowed_actions` for a refused transition);
    /// each problem type documents its own in docs/API.md.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

type BoxedCause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error on its way to becoming a problem response.
pub struct AppError {
    kind: ErrorKind,
    detail: String,
    errors: Vec<FieldError>,
    extensions: serde_json::Map<String, serde_json::Value>,
    headers: Vec<(HeaderName, HeaderValue)>,
    cause: Option<BoxedCause>,
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized, detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, detail)
    }
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionFailed, detail)
    }
    /// The 412 a use case returns when the stored version moved on since the caller read it (`If-Match`).
    pub fn stale(current: i64) -> Self {
        Self::precondition_failed(format!(
            "The resource changed since you read it (now version {current}); GET it again and reapply your change."
        ))
        .with_extension("current_version", serde_json::json!(current))
    }
    pub fn precondition_required(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::PreconditionRequired, detail)
    }
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::ServiceUnavailable, detail)
    }

    /// A 503 the client may safely retry (nothing was written): lost database, contention, pool exhausted.
    /// `Retry-After` tells it when.
    pub fn retryable(detail: impl Into<String>) -> Self {
        Self::unavailable(detail).with_header(actix_web::http::header::RETRY_AFTER, RETRY_AFTER_SECS)
    }

    /// A 422 listing every fault at once.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 field is invalid; see `errors`.".to_owned(),
            n => format!("{n} fields are invalid; see `errors`."),
        };
        Self::new(ErrorKind::Validation, detail).with_errors(errors)
    }

    /// A 422 about one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// A 500 whose cause is logged and never shown.
    pub fn internal(cause: impl Into<BoxedCause>) -> Self {
        let mut e = Self::new(
            ErrorKind::Internal,
            "The server could not complete the request. Quote the request id when reporting it.",
        );
        e.cause = Some(cause.into());
        e
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions.insert(key.to_owned(), value);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub fn with_cause(mut self, cause: impl Into<BoxedCause>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn detail(&self) -> &str {
        &self.detail
    }
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.cause.as_deref()
    }

    /// The problem body; `origin` (the service's public address), `instance` and `request_id` are filled in
    /// by the middleware that knows them.
    pub fn to_problem(&self, origin: &str, instance: Option<String>, request_id: Option<String>) -> Problem {
        Problem {
            type_uri: format!("{origin}{}", self.kind.type_uri()),
            title: self.kind.title().to_owned(),
            status: self.kind.status().as_u16(),
            detail: self.detail.clone(),
            instance,
            request_id,
            errors: self.errors.iter().take(MAX_PROBLEM_ERRORS).cloned().collect(),
            errors_total: (!self.errors.is_empty()).then_some(self.errors.len()),
            extensions: self.extensions.clone(),
        }
    }

    /// The full response: status, problem body, and any headers the problem needs (`Retry-After`, `Allow`).
    pub fn problem_response(
        &self,
        origin: &str,
        instance: Option<String>,
        request_id: Option<String>,
    ) -> HttpResponse {
        let mut builder = HttpResponse::build(self.kind.status());
        builder.content_type(PROBLEM_CONTENT_TYPE);
        for (name, value) in &self.headers {
            builder.insert_header((name.clone(), value.clone()));
        }
        let body = serde_json::to_string(&self.to_problem(origin, instance, request_id))
            .unwrap_or_else(|_| String::from("{}"));
        builder.body(body)
    }
}

impl fmt::Debug for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppError")
            .field("kind", &self.kind)
            .field("detail", &self.detail)
            .field("errors", &self.errors)
            .field("cause", &self.cause.as_ref().map(|c| c.to_string()))
            .finish()
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.slug(), self.detail)?;
        if let Some(cause) = &self.cause {
            write!(f, " (cause: {cause})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.kind.status()
    }

    fn error_response(&self) -> HttpResponse {
        self.problem_response("", None, None)
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match crate::db::transient_cause(&err) {
            Some(crate::db::TransientCause::ConnectionLost) => {
                return AppError::retryable(
                    "The database connection was lost; nothing was changed. Retry shortly.",
                )
                .with_cause(err);
            }
            Some(crate::db::TransientCause::Contention) => {
                return AppError::retryable(
                    "The request collided with a concurrent change and was rolled back; retry it.",
                )
                .with_cause(err);
            }
            None => {}
        }
        match err {
            Error::NotFound => AppError::not_found("The requested resource does not exist."),
            // A concurrent request created the same unique thing first (a check before an insert cannot see it).
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => AppError::conflict(
                "The request conflicts with a record that was created meanwhile; reload and retry.",
            )
            .with_cause(err),
            other => AppError::internal(other),
        }
    }
}

impl From<crate::db::DbError> for AppError {
    fn from(err: crate::db::DbError) -> Self {
        match err {
            crate::db::DbError::Query(e) => e.into(),
            other => AppError::retryable("The database is not reachable; retry shortly.").with_cause(other),
        }
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(err: diesel::r2d2::PoolError) -> Self {
        AppError::retryable("No database connection became free in time; retry shortly.").with_cause(err)
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(err: actix_web::error::BlockingError) -> Self {
        AppError::internal(err)
    }
}

impl From<crate::domain::lifecycle::TransitionError> for AppError {
    /// A refused state change: 409 naming the state and what is allowed in it.
    fn from(err: crate::domain::lifecycle::TransitionError) -> Self {
        AppError::new(ErrorKind::InvalidTransition, err.to_string())
            .with_extension("state", serde_json::json!(err.state))
            .with_extension("allowed_actions", serde_json::json!(err.allowed))
    }
}

impl From<crate::domain::status::UnknownStored> for AppError {
    /// A stored status or kind this code never wrote: a 500 with the cause logged, never a default.
    fn from(err: crate::domain::status::UnknownStored) -> Self {
        AppError::internal(err)
    }
}
