//! HTTP routes of proposals.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};
use serde_json::{Map, Value};
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{Proposal, ProposalQuery, ProposalSummary, ProposalVersion, WithdrawRequest};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::domain::ids::ProposalId;
use crate::domain::proposal::ProposalContent;
use crate::error::{AppResult, Problem};
use crate::http::extract::Json;
use crate::http::extract::OptionalJson;
use crate::http::extract::Query;
use crate::http::pagination::{Page, PageQuery};
use crate::http::preconditions::{etag, if_match_version};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_proposal)
        .service(list_proposals)
        .service(get_proposal)
        .service(edit_proposal)
        .service(list_versions)
        .service(get_version)
        .service(submit_proposal)
        .service(withdraw_proposal)
        .service(revise_proposal);
}

fn with_etag(proposal: Proposal, status: actix_web::http::StatusCode) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("ETag", etag(proposal.version)))
        .json(proposal)
}

/// Create a draft for your organisation (`submitter`). Body: `pool_id` and any content fields
/// (see `ProposalContent`); server-owned fields are refused.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    request_body(content = ProposalContent, description = "`pool_id` plus content fields"),
    responses(
        (status = 201, body = Proposal),
        (status = 422, description = "Malformed values or server-owned fields", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/proposals")]
async fn create_proposal(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<Map<String, Value>>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let p = with_conn(&state, move |conn, _| {
        service::create_proposal(conn, &actor, body)
    })
    .await?;
    Ok(with_etag(p, actix_web::http::StatusCode::CREATED))
}

/// Proposals visible to you, newest first, filtered.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    params(PageQuery, ProposalQuery),
    responses((status = 200, body = Page<ProposalSummary>))
)]
#[get("/proposals")]
async fn list_proposals(
    state: web::Data<AppState>,
    actor: Actor,
    page: Query<PageQuery>,
    query: Query<ProposalQuery>,
) -> AppResult<web::Json<Page<ProposalSummary>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let query = query.into_inner();
    let rows = with_conn(&state, move |conn, _| {
        service::list_proposals(conn, &actor, &query, req.after.as_deref(), req.limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |p| p.id.clone())))
}

/// One proposal (404 when it is not visible to you).
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    responses((status = 200, body = Proposal), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/proposals/{id}")]
async fn get_proposal(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = ProposalId::from(id.into_inner());
    let p = with_conn(&state, move |conn, _| service::get_proposal(conn, &actor, &id)).await?;
    Ok(with_etag(p, actix_web::http::StatusCode::OK))
}

/// Edit a draft (`submitter` of its organisation, `If-Match` required): top-level keys replace, `null` clears.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    request_body = ProposalContent,
    responses(
        (status = 200, body = Proposal),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not a draft", body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json")
    )
)]
#[patch("/proposals/{id}")]
async fn edit_proposal(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let (id, body) = (ProposalId::from(id.into_inner()), body.into_inner());
    let p = with_conn(&state, move |conn, _| {
        service::edit_proposal(conn, &actor, &id, expected, body)
    })
    .await?;
    Ok(with_etag(p, actix_web::http::StatusCode::OK))
}

/// Every version of a proposal, oldest first.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<ProposalVersion>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/proposals/{id}/versions")]
async fn list_versions(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Vec<ProposalVersion>>> {
    let id = ProposalId::from(id.into_inner());
    with_conn(&state, move |conn, _| service::list_versions(conn, &actor, &id))
        .await
        .map(web::Json)
}

/// One version of a proposal.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    responses((status = 200, body = ProposalVersion), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/proposals/{id}/versions/{n}")]
async fn get_version(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, i32)>,
) -> AppResult<web::Json<ProposalVersion>> {
    let (id, n) = path.into_inner();
    with_conn(&state, move |conn, _| {
        service::get_version(conn, &actor, &id.into(), n)
    })
    .await
    .map(web::Json)
}

/// Submit the current draft version (`submitter`, `If-Match`): all checks at once; the first submission
/// assigns the reference code.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Proposal),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every problem listed in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/proposals/{id}/submit")]
async fn submit_proposal(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let id = ProposalId::from(id.into_inner());
    let p = with_conn(&state, move |conn, _| {
        service::submit_proposal(conn, &actor, &id, expected)
    })
    .await?;
    Ok(with_etag(p, actix_web::http::StatusCode::OK))
}

/// Withdraw a proposal before approval (`submitter`, `If-Match`).
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    request_body = WithdrawRequest,
    responses(
        (status = 200, body = Proposal),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/proposals/{id}/withdraw")]
async fn withdraw_proposal(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: OptionalJson<WithdrawRequest>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let id = ProposalId::from(id.into_inner());
    let reason = body.into_inner().and_then(|b| b.reason);
    let p = with_conn(&state, move |conn, _| {
        service::withdraw_proposal(conn, &actor, &id, expected, reason)
    })
    .await?;
    Ok(with_etag(p, actix_web::http::StatusCode::OK))
}

/// Start a revision of a `flagged` proposal (`submitter` of its organisation, `If-Match`): a new draft version
/// copied from the current content. Edit it and submit it again; the new consultation round asks the raisers
/// of the still-open blocking flags to confirm that the revision resolves them.
#[utoipa::path(
    tag = "proposals",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The proposal, now a draft of its new version", body = Proposal),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The proposal is not `flagged`", body = Problem, content_type = "application/problem+json"),
        (status = 412, body = Problem, content_type = "application/problem+json"),
        (status = 428, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/proposals/{id}/revise")]
async fn revise_proposal(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let id = ProposalId::from(id.into_inner());
    let p = with_conn(&state, move |conn, _| {
        service::revise_proposal(conn, &actor, &id, expected)
    })
    .await?;
    Ok(with_etag(p, actix_web::http::StatusCode::OK))
}
