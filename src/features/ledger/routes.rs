//! HTTP routes of the ledger: contributions and reversals (idempotent), transactions, statements, the check.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde_json::Value;
use utoipa_actix_web::service_config::ServiceConfig;

use super::check::LedgerReport;
use super::dto::{NewContribution, ReverseRequest, Statement, StatementQuery, Transaction, TransactionQuery};
use super::idempotency::{IdempotentRequest, StoredResponse};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::domain::ids::{PoolId, TransactionId};
use crate::error::{AppError, AppResult, Problem};
use crate::http::extract::Json;
use crate::http::extract::Query;
use crate::http::extract::deserialize_error;
use crate::http::pagination::{Page, PageQuery};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(contribute)
        .service(list_transactions)
        .service(statement)
        .service(get_transaction)
        .service(reverse)
        .service(ledger_check);
}

/// The stored (or first) response of an idempotent request, byte for byte.
pub fn idempotent_response(stored: StoredResponse) -> HttpResponse {
    let status =
        actix_web::http::StatusCode::from_u16(stored.status).unwrap_or(actix_web::http::StatusCode::OK);
    let mut res = HttpResponse::build(status);
    res.content_type("application/json");
    if stored.replayed {
        res.insert_header(("Idempotent-Replayed", "true"));
    }
    res.body(stored.body)
}

/// Fingerprints a money-moving request (`Idempotency-Key` required) and parses its body.
pub fn idempotent_input<T: serde::de::DeserializeOwned>(
    req: &HttpRequest,
    actor: &Actor,
    body: Value,
) -> AppResult<(IdempotentRequest, T)> {
    let key = req.headers().get("idempotency-key").and_then(|v| v.to_str().ok());
    let idem = IdempotentRequest::new(&actor.user_id, key, req.method().as_str(), req.path(), &body)?;
    let input = serde_json::from_value(body).map_err(|e| deserialize_error(&e))?;
    Ok((idem, input))
}

/// How long idempotency keys are kept (`ledger.idempotency_retention_days`).
pub fn retention(state: &AppState) -> chrono::Duration {
    chrono::Duration::days(i64::from(state.settings.ledger.idempotency_retention_days))
}

/// Record a contribution (`finance_officer`, `Idempotency-Key` required).
#[utoipa::path(
    tag = "ledger",
    security(("bearer" = [])),
    request_body = NewContribution,
    params(("Idempotency-Key" = String, Header, description = "One per intended contribution; retries reuse it")),
    responses(
        (status = 201, body = Transaction, description = "Posted (a replay answers the same, with Idempotent-Replayed: true)"),
        (status = 400, description = "No Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Same key still in progress", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid, or the key was used for another request", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/pools/{id}/contributions")]
async fn contribute(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    let (idem, input): (_, NewContribution) = idempotent_input(&req, &actor, body.into_inner())?;
    let pool_id = PoolId::from(id.into_inner());
    let stored = with_conn(&state, move |conn, s| {
        service::contribution_request(
            conn,
            &s.group_commit,
            retention(s),
            &actor,
            &pool_id,
            &input,
            &idem,
        )
    })
    .await?;
    Ok(idempotent_response(stored))
}

/// Transactions of a pool, newest first.
#[utoipa::path(
    tag = "ledger",
    security(("bearer" = [])),
    params(PageQuery, TransactionQuery),
    responses((status = 200, body = Page<Transaction>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/pools/{id}/transactions")]
async fn list_transactions(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
    page: Query<PageQuery>,
    query: Query<TransactionQuery>,
) -> AppResult<web::Json<Page<Transaction>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let (pool_id, query) = (PoolId::from(id.into_inner()), query.into_inner());
    let before = req.after.map(TransactionId::from);
    let rows = with_conn(&state, move |conn, _| {
        service::list_transactions(conn, &pool_id, &query, before.as_ref(), req.limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |t| t.id.clone())))
}

/// Opening balances, movements by kind and closing balances for a period (dates inclusive).
#[utoipa::path(
    tag = "ledger",
    security(("bearer" = [])),
    params(StatementQuery),
    responses((status = 200, body = Statement), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/pools/{id}/statement")]
async fn statement(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
    query: Query<StatementQuery>,
) -> AppResult<web::Json<Statement>> {
    let (pool_id, q) = (PoolId::from(id.into_inner()), query.into_inner());
    with_conn(&state, move |conn, _| {
        service::statement(conn, &pool_id, q.from, q.to)
    })
    .await
    .map(web::Json)
}

/// One transaction with its entries.
#[utoipa::path(
    tag = "ledger",
    security(("bearer" = [])),
    responses((status = 200, body = Transaction), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/transactions/{id}")]
async fn get_transaction(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Transaction>> {
    let id = TransactionId::from(id.into_inner());
    with_conn(&state, move |conn, _| service::get_transaction(conn, &id))
        .await
        .map(web::Json)
}

/// Reverse a transaction once (`finance_officer`, reason and `Idempotency-Key` required).
#[utoipa::path(
    tag = "ledger",
    security(("bearer" = [])),
    request_body = ReverseRequest,
    params(("Idempotency-Key" = String, Header, description = "One per intended reversal")),
    responses(
        (status = 201, body = Transaction),
        (status = 409, description = "Reversed already, a reversal, or the money has moved on", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/transactions/{id}/reverse")]
async fn reverse(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    let (idem, input): (_, ReverseRequest) = idempotent_input(&req, &actor, body.into_inner())?;
    let id = TransactionId::from(id.into_inner());
    let stored = with_conn(&state, move |conn, s| {
        service::reversal_request(conn, retention(s), &actor, &id, &input.reason, &idem)
    })
    .await?;
    Ok(idempotent_response(stored))
}

/// Check the ledger's invariants (`auditor`, `finance_officer`).
#[utoipa::path(
    tag = "ledger",
    security(("bearer" = [])),
    responses((status = 200, body = LedgerReport))
)]
#[get("/ledger/check")]
async fn ledger_check(state: web::Data<AppState>, _actor: Actor) -> AppResult<web::Json<LedgerReport>> {
    with_conn(&state, |conn, _| {
        super::check::check(conn).map_err(AppError::from)
    })
    .await
    .map(web::Json)
}
