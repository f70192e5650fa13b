//! HTTP routes of implementation: tranches, disbursements, refunds, reports, cancellation and close-out.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{
    CancelRequest, CloseRequest, NewDisbursement, NewRefund, NewReport, Report, ReportDecision, Tranche,
};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::error::{AppResult, Problem};
use crate::features::ledger::dto::Transaction;
use crate::features::ledger::routes::{idempotent_input, idempotent_response, retention};
use crate::features::proposals::dto::Proposal;
use crate::http::extract::Json;
use crate::http::extract::OptionalJson;
use crate::http::preconditions::{etag, if_match_version};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_tranches)
        .service(disburse)
        .service(refund)
        .service(submit_report)
        .service(list_reports)
        .service(accept_report)
        .service(return_report)
        .service(cancel)
        .service(close);
}

/// The tranche schedule with conditions, what is paid, and what is payable now.
#[utoipa::path(tag = "implementation", security(("bearer" = [])),
    responses((status = 200, body = Vec<Tranche>), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/proposals/{id}/tranches")]
async fn list_tranches(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Vec<Tranche>>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        service::list_tranches(conn, &actor, &id.into())
    })
    .await
    .map(web::Json)
}

/// Pay (part of) a tranche (`finance_officer`, `Idempotency-Key`; never someone who approved the proposal).
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = NewDisbursement,
    params(("Idempotency-Key" = String, Header, description = "One per intended payment")),
    responses(
        (status = 201, body = Transaction),
        (status = 403, description = "The payer approved this proposal", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Condition not met, tranche closed, or state does not allow payment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Above the tranche's remainder, or invalid", body = Problem, content_type = "application/problem+json")
    ))]
#[post("/proposals/{id}/tranches/{n}/disbursements")]
async fn disburse(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<(String, i32)>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    let (idem, input): (_, NewDisbursement) = idempotent_input(&req, &actor, body.into_inner())?;
    let (id, n) = path.into_inner();
    let stored = with_conn(&state, move |conn, s| {
        service::disbursement_request(conn, retention(s), &actor, &id.into(), n, &input, &idem)
    })
    .await?;
    Ok(idempotent_response(stored))
}

/// Book unspent money returned by the partner (`finance_officer`, `Idempotency-Key`).
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = NewRefund,
    params(("Idempotency-Key" = String, Header, description = "One per refund")),
    responses((status = 201, body = Transaction), (status = 409, description = "More than was disbursed", body = Problem, content_type = "application/problem+json")))]
#[post("/proposals/{id}/refunds")]
async fn refund(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    let (idem, input): (_, NewRefund) = idempotent_input(&req, &actor, body.into_inner())?;
    let id = id.into_inner();
    let stored = with_conn(&state, move |conn, s| {
        service::refund_request(conn, retention(s), &actor, &id.into(), &input, &idem)
    })
    .await?;
    Ok(idempotent_response(stored))
}

/// Submit a progress or completion report (`submitter` of the proposal's organisation).
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = NewReport,
    responses((status = 201, body = Report), (status = 409, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/proposals/{id}/reports")]
async fn submit_report(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: Json<NewReport>,
) -> AppResult<HttpResponse> {
    let (id, body) = (id.into_inner(), body.into_inner());
    let r = with_conn(&state, move |conn, _| {
        service::submit_report(conn, &actor, &id.into(), &body)
    })
    .await?;
    Ok(HttpResponse::Created().json(r))
}

/// The reports of a proposal.
#[utoipa::path(tag = "implementation", security(("bearer" = [])), responses((status = 200, body = Vec<Report>)))]
#[get("/proposals/{id}/reports")]
async fn list_reports(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Vec<Report>>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        service::list_reports(conn, &actor, &id.into())
    })
    .await
    .map(web::Json)
}

/// Accept a report (`qip_officer`); an accepted completion report completes the proposal.
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = ReportDecision,
    responses((status = 200, body = Report), (status = 409, body = Problem, content_type = "application/problem+json")))]
#[post("/reports/{id}/accept")]
async fn accept_report(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: OptionalJson<ReportDecision>,
) -> AppResult<web::Json<Report>> {
    let (id, body) = (id.into_inner(), body.into_inner().unwrap_or_default());
    with_conn(&state, move |conn, _| {
        service::decide_report(conn, &actor, &id.into(), true, &body)
    })
    .await
    .map(web::Json)
}

/// Return a report with reasons (`qip_officer`).
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = ReportDecision,
    responses((status = 200, body = Report), (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/reports/{id}/return")]
async fn return_report(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: OptionalJson<ReportDecision>,
) -> AppResult<web::Json<Report>> {
    let (id, body) = (id.into_inner(), body.into_inner().unwrap_or_default());
    with_conn(&state, move |conn, _| {
        service::decide_report(conn, &actor, &id.into(), false, &body)
    })
    .await
    .map(web::Json)
}

/// Cancel an approved proposal (`dsrsg`, `If-Match`, reason): releases what is unpaid.
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = CancelRequest,
    responses((status = 200, body = Proposal), (status = 409, body = Problem, content_type = "application/problem+json"), (status = 412, body = Problem, content_type = "application/problem+json")))]
#[post("/proposals/{id}/cancel")]
async fn cancel(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<CancelRequest>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let (id, body) = (id.into_inner(), body.into_inner());
    let p = with_conn(&state, move |conn, _| {
        service::cancel(conn, &actor, &id.into(), expected, &body.reason)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(p.version)))
        .json(p))
}

/// Close a completed proposal (`qip_officer`, `If-Match`) with its evaluation; releases any commitment left.
#[utoipa::path(tag = "implementation", security(("bearer" = [])), request_body = CloseRequest,
    responses((status = 200, body = Proposal), (status = 409, description = "Not completed, or unpaid tranches without a waiver", body = Problem, content_type = "application/problem+json")))]
#[post("/proposals/{id}/close")]
async fn close(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<CloseRequest>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let (id, body) = (id.into_inner(), body.into_inner());
    let p = with_conn(&state, move |conn, _| {
        service::close(conn, &actor, &id.into(), expected, &body)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(p.version)))
        .json(p))
}
