//! HTTP routes of pools.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{NewPool, Pool, PoolUpdate};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::error::{AppResult, Problem};
use crate::http::extract::Json;
use crate::http::extract::Query;
use crate::http::pagination::{Page, PageQuery};
use crate::http::preconditions::{etag, if_match_version};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_pool)
        .service(list_pools)
        .service(get_pool)
        .service(update_pool);
}

/// Create a pool (`qip_officer`) with its QIP policy settings (defaults when absent).
#[utoipa::path(
    tag = "pools",
    security(("bearer" = [])),
    request_body = NewPool,
    responses(
        (status = 201, body = Pool),
        (status = 409, description = "Code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/pools")]
async fn create_pool(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<NewPool>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let pool = with_conn(&state, move |conn, _| service::create_pool(conn, &actor, &body)).await?;
    Ok(HttpResponse::Created()
        .insert_header(("ETag", etag(pool.version)))
        .json(pool))
}

/// List pools.
#[utoipa::path(tag = "pools", security(("bearer" = [])), params(PageQuery), responses((status = 200, body = Page<Pool>)))]
#[get("/pools")]
async fn list_pools(
    state: web::Data<AppState>,
    _actor: Actor,
    page: Query<PageQuery>,
) -> AppResult<web::Json<Page<Pool>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let rows = with_conn(&state, move |conn, _| {
        service::list_pools(conn, req.after.as_deref(), req.limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |p| p.id.clone())))
}

/// One pool with its current settings (and, with the ledger, its balances).
#[utoipa::path(
    tag = "pools",
    security(("bearer" = [])),
    responses((status = 200, body = Pool), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/pools/{id}")]
async fn get_pool(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let pool = with_conn(&state, move |conn, _| service::get_pool(conn, &id.into())).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(pool.version)))
        .json(pool))
}

/// Rename a pool or replace its settings (`qip_officer`, `If-Match` required). New settings become a new
/// settings version; proposals keep the version they were checked against.
#[utoipa::path(
    tag = "pools",
    security(("bearer" = [])),
    request_body = PoolUpdate,
    responses(
        (status = 200, body = Pool),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/pools/{id}")]
async fn update_pool(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<PoolUpdate>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let (id, body) = (id.into_inner(), body.into_inner());
    let pool = with_conn(&state, move |conn, _| {
        service::update_pool(conn, &actor, &id.into(), expected, &body)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(pool.version)))
        .json(pool))
}
