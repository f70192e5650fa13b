//! HTTP routes of approvals, the decision brief, my tasks and turnaround.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{Approval, Brief, DecisionInput, Task, Turnaround};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::error::{AppResult, Problem};
use crate::features::read_models::{self, tasks};
use crate::http::extract::Json;
use crate::http::extract::Query;
use crate::http::pagination::PageQuery;
use crate::http::preconditions::{etag, if_match_version};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_approval)
        .service(decide)
        .service(brief)
        .service(my_tasks)
        .service(turnaround);
}

/// The approval steps of a proposal: deciding hat, why the step applies, state, due date, overdue mark.
#[utoipa::path(tag = "approval", security(("bearer" = [])),
    responses((status = 200, body = Approval), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/proposals/{id}/approval")]
async fn get_approval(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let a = with_conn(&state, move |conn, _| {
        service::get_approval(conn, &actor, &id.into())
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(a.version)))
        .json(a))
}

/// Decide a step (`hc`, `rc`, `head_of_office` or `dsrsg` — the step's hat; `If-Match` with the proposal's
/// version). The last approval commits the funds in the same transaction.
#[utoipa::path(tag = "approval", security(("bearer" = [])), request_body = DecisionInput,
    responses(
        (status = 200, body = Approval),
        (status = 403, description = "Wrong hat, out of scope, or own organisation's proposal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Out of order, decided already, or the pool cannot cover the amount (`available`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Reasons or multi-hat acknowledgement missing", body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json")
    ))]
#[post("/proposals/{id}/approval/steps/{step_id}/decision")]
async fn decide(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Json<DecisionInput>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let ((id, step_id), body) = (path.into_inner(), body.into_inner());
    let a = with_conn(&state, move |conn, _| {
        service::decide(conn, &actor, &id.into(), &step_id.into(), expected, &body)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(a.version)))
        .json(a))
}

/// One page for a decider.
#[utoipa::path(tag = "approval", security(("bearer" = [])),
    responses((status = 200, body = Brief), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/proposals/{id}/brief")]
async fn brief(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Brief>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        read_models::brief::brief(conn, &actor, &id.into())
    })
    .await
    .map(web::Json)
}

/// What waits for you across all your hats, overdue first, a page at a time: `?limit=` and `?cursor=`; when
/// there is more, the `Link` header carries the next page (`rel="next"`).
#[utoipa::path(tag = "approval", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Vec<Task>)))]
#[get("/me/tasks")]
async fn my_tasks(
    state: web::Data<AppState>,
    actor: Actor,
    page: Query<PageQuery>,
) -> AppResult<HttpResponse> {
    let req = page.resolve::<tasks::TaskKey>(&state.settings.server)?;
    let limit = req.limit;
    let (items, next) = with_conn(&state, move |conn, _| {
        tasks::my_tasks(conn, &actor, req.after.as_ref(), limit)
    })
    .await?;
    let mut res = HttpResponse::Ok();
    if let Some(next) = next {
        res.insert_header((
            actix_web::http::header::LINK,
            format!(
                "</api/v1/me/tasks?limit={limit}&cursor={}>; rel=\"next\"",
                crate::http::pagination::encode_cursor(&next)
            ),
        ));
    }
    Ok(res.json(items))
}

/// Decision turnaround of a pool: per step kind and hat, median and 90th-percentile days, overdue now.
#[utoipa::path(tag = "approval", security(("bearer" = [])),
    responses((status = 200, body = Turnaround), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/pools/{id}/turnaround")]
async fn turnaround(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Turnaround>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        read_models::turnaround::turnaround(conn, &id.into())
    })
    .await
    .map(web::Json)
}
