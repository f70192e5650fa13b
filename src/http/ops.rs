//! Operational endpoints: liveness, readiness, Prometheus metrics and the OpenAPI document.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{AppError, Problem};

#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `ok` for liveness, `ready` for readiness.
    pub status: String,
    /// `sqlite` or `postgresql` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// Liveness: the process is up and answering.
#[utoipa::path(tag = "operations", responses((status = 200, body = HealthStatus)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<HealthStatus> {
    web::Json(HealthStatus {
        status: "ok".into(),
        database: None,
    })
}

/// Readiness: the database answers and its migrations are current.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, body = HealthStatus),
        (status = 503, description = "Database unreachable or migrations pending", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<HealthStatus>, AppError> {
    let probe_state = state.clone();
    let outcome = crate::telemetry::blocking(move || {
        crate::db::check_ready(&probe_state.pool, &probe_state.backend, Duration::from_secs(2)).map_err(
            |not_ready| {
                tracing::warn!(cause = %not_ready.detail(), "readiness probe failed");
                AppError::retryable(not_ready.public_reason())
            },
        )
    })
    .await;
    outcome.map(|()| {
        web::Json(HealthStatus {
            status: "ready".into(),
            database: Some(state.backend.name().into()),
        })
    })
}

/// Prometheus text exposition: request counts and latency by route and status, pool connections.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let (in_use, idle) = crate::db::pool_counts(&state.pool);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(in_use, idle))
}

/// This OpenAPI 3.1 document, generated from the routes the server registers.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
#[get("/openapi.json")]
pub async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.to_string())
}
