//! HTTP routes of the audit API (`auditor`; `admin` for their own domain).

use actix_web::{get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{AuditEvent, Checkpoint, EventQuery};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::domain::hash_chain::VerifyReport;
use crate::error::{AppResult, Problem};
use crate::http::extract::Query;
use crate::http::pagination::{Page, PageQuery};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_events).service(verify).service(checkpoint);
}

/// Audit events, newest first, filtered. Reading is itself audited.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    params(PageQuery, EventQuery),
    responses((status = 200, body = Page<AuditEvent>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/audit/events")]
async fn list_events(
    state: web::Data<AppState>,
    actor: Actor,
    page: Query<PageQuery>,
    query: Query<EventQuery>,
) -> AppResult<web::Json<Page<AuditEvent>>> {
    let req = page.resolve::<i64>(&state.settings.server)?;
    let query = query.into_inner();
    let rows = with_conn(&state, move |conn, _| {
        service::list_events(conn, &actor, &query, req.after, req.limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |e| e.event_no)))
}

/// Recompute the sealed hash chain: `{intact, events_checked, head_seq, head_hash, first_broken_seq}`, and
/// the unsealed tail beside it (`unsealed_events`, `oldest_unsealed_age_ms`).
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    responses((status = 200, body = VerifyReport), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/audit/verify")]
async fn verify(state: web::Data<AppState>, actor: Actor) -> AppResult<web::Json<VerifyReport>> {
    with_conn(&state, move |conn, _| service::verify_and_record(conn, &actor))
        .await
        .map(web::Json)
}

/// The chain head now, to keep outside the system.
#[utoipa::path(
    tag = "audit",
    security(("bearer" = [])),
    responses((status = 200, body = Checkpoint), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/audit/checkpoint")]
async fn checkpoint(state: web::Data<AppState>, actor: Actor) -> AppResult<web::Json<Checkpoint>> {
    with_conn(&state, move |conn, _| service::checkpoint(conn, &actor))
        .await
        .map(web::Json)
}
