//! HTTP routes of consultation, the 3W registry, consultation rules and flags.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::activities::{self, ActivityImport};
use super::dto::{
    Activity, ActivityInput, AddConsultee, Consultation, Flag, FlagEnding, NewRule, ResponseInput, Rule,
};
use super::service::{self, FlagEnd};
use crate::access::Actor;
use crate::app::AppState;
use crate::error::{AppResult, Problem};
use crate::http::extract::Json;
use crate::http::extract::OptionalJson;
use crate::http::extract::Query;
use crate::http::pagination::{Page, PageQuery};
use crate::http::preconditions::{etag, if_match_version};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(import_activities)
        .service(create_activity)
        .service(list_activities)
        .service(get_activity)
        .service(update_activity)
        .service(close_activity)
        .service(create_rule)
        .service(list_rules)
        .service(delete_rule)
        .service(get_consultation)
        .service(respond)
        .service(add_consultee)
        .service(withdraw_flag)
        .service(resolve_flag)
        .service(override_flag);
}

/// Register an activity of your organisation in the 3W registry (`consultee`).
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = ActivityInput,
    responses((status = 201, body = Activity), (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/activities")]
async fn create_activity(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<ActivityInput>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let a = with_conn(&state, move |conn, _| {
        activities::create_activity(conn, &actor, &body)
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("ETag", etag(a.version)))
        .json(a))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ActivityFilter {
    organization_id: Option<String>,
    sector: Option<String>,
    adm2: Option<String>,
}

/// The 3W registry, filtered.
#[utoipa::path(tag = "consultation", security(("bearer" = [])), params(PageQuery, ActivityFilter),
    responses((status = 200, body = Page<Activity>)))]
#[get("/activities")]
async fn list_activities(
    state: web::Data<AppState>,
    _actor: Actor,
    page: Query<PageQuery>,
    filter: Query<ActivityFilter>,
) -> AppResult<web::Json<Page<Activity>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let f = filter.into_inner();
    let rows = with_conn(&state, move |conn, _| {
        activities::list_activities(
            conn,
            f.organization_id.as_deref(),
            f.sector.as_deref(),
            f.adm2.as_deref(),
            req.after.as_deref(),
            req.limit,
        )
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |a| a.id.clone())))
}

/// One activity.
#[utoipa::path(tag = "consultation", security(("bearer" = [])),
    responses((status = 200, body = Activity), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/activities/{id}")]
async fn get_activity(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let a = with_conn(&state, move |conn, _| activities::get_activity(conn, &id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(a.version)))
        .json(a))
}

/// Replace an activity's fields (its organisation, `If-Match`).
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = ActivityInput,
    responses((status = 200, body = Activity), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 412, body = Problem, content_type = "application/problem+json"), (status = 428, body = Problem, content_type = "application/problem+json")))]
#[patch("/activities/{id}")]
async fn update_activity(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    body: Json<ActivityInput>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let (id, body) = (id.into_inner(), body.into_inner());
    let a = with_conn(&state, move |conn, _| {
        activities::update_activity(conn, &actor, &id, expected, &body)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(a.version)))
        .json(a))
}

/// Close an activity (its organisation): closed activities are no longer screened.
#[utoipa::path(tag = "consultation", security(("bearer" = [])),
    responses((status = 200, body = Activity), (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The activity is closed already", body = Problem, content_type = "application/problem+json")))]
#[post("/activities/{id}/close")]
async fn close_activity(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Activity>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        activities::close_activity(conn, &actor, &id)
    })
    .await
    .map(web::Json)
}

/// Import activities from an HXL-tagged CSV (`text/csv`): all rows or none, every faulty line listed (the first
/// 100, with `errors_total`). Rows imported before are found again by `#activity+code` (or their content) and
/// updated, never duplicated.
#[utoipa::path(tag = "consultation", security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ActivityImport),
        (status = 413, description = "More data rows than `imports.max_rows` (named in `max_rows`); nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/activities/import")]
async fn import_activities(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<web::Json<ActivityImport>> {
    crate::http::extract::require_csv(&req, "HXL file")?;
    with_conn(&state, move |conn, s| {
        activities::import_activities(conn, &actor, &body, s.settings.imports.max_rows)
    })
    .await
    .map(web::Json)
}

/// Add a consultation rule (`qip_officer`).
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = NewRule,
    responses((status = 201, body = Rule), (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/consultation-rules")]
async fn create_rule(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<NewRule>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let r = with_conn(&state, move |conn, _| service::create_rule(conn, &actor, &body)).await?;
    Ok(HttpResponse::Created().json(r))
}

/// The consultation rules.
#[utoipa::path(tag = "consultation", security(("bearer" = [])), responses((status = 200, body = Vec<Rule>)))]
#[get("/consultation-rules")]
async fn list_rules(state: web::Data<AppState>, _actor: Actor) -> AppResult<web::Json<Vec<Rule>>> {
    with_conn(&state, |conn, _| service::list_rules(conn))
        .await
        .map(web::Json)
}

/// Remove a consultation rule (`qip_officer`); rounds already open keep their consultees.
#[utoipa::path(tag = "consultation", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[delete("/consultation-rules/{id}")]
async fn delete_rule(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| service::delete_rule(conn, &actor, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The consultation of a proposal: rounds, consultees and why, responses, flags.
#[utoipa::path(tag = "consultation", security(("bearer" = [])),
    responses((status = 200, body = Consultation), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/proposals/{id}/consultation")]
async fn get_consultation(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Consultation>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        service::get_consultation(conn, &actor, &id.into())
    })
    .await
    .map(web::Json)
}

/// Answer for your organisation (`consultee`): `no_objection`, `comment`, or `objection` with flags.
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = ResponseInput,
    responses((status = 200, body = Consultation), (status = 409, description = "Consultation not open", body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/proposals/{id}/consultation/responses")]
async fn respond(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: Json<ResponseInput>,
) -> AppResult<web::Json<Consultation>> {
    let (id, body) = (id.into_inner(), body.into_inner());
    with_conn(&state, move |conn, _| {
        service::respond(conn, &actor, &id.into(), &body)
    })
    .await
    .map(web::Json)
}

/// Add an organisation to the open round, with a reason (`qip_officer`).
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = AddConsultee,
    responses((status = 200, body = Consultation), (status = 409, body = Problem, content_type = "application/problem+json")))]
#[post("/proposals/{id}/consultation/consultees")]
async fn add_consultee(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: Json<AddConsultee>,
) -> AppResult<web::Json<Consultation>> {
    let (id, body) = (id.into_inner(), body.into_inner());
    with_conn(&state, move |conn, _| {
        service::add_consultee(conn, &actor, &id.into(), &body)
    })
    .await
    .map(web::Json)
}

async fn end(
    state: web::Data<AppState>,
    actor: Actor,
    id: String,
    how: FlagEnd,
    body: OptionalJson<FlagEnding>,
) -> AppResult<web::Json<Flag>> {
    let body = body.into_inner().unwrap_or_default();
    with_conn(&state, move |conn, _| {
        service::end_flag(conn, &actor, &id.into(), how, &body)
    })
    .await
    .map(web::Json)
}

/// Withdraw a flag your organisation raised (`consultee`).
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = FlagEnding,
    responses((status = 200, body = Flag), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
#[post("/flags/{id}/withdraw")]
async fn withdraw_flag(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: OptionalJson<FlagEnding>,
) -> AppResult<web::Json<Flag>> {
    end(state, actor, id.into_inner(), FlagEnd::Withdraw, body).await
}

/// Confirm that a revision answered a flag your organisation raised (`consultee`).
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = FlagEnding,
    responses((status = 200, body = Flag), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json")))]
#[post("/flags/{id}/resolve")]
async fn resolve_flag(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: OptionalJson<FlagEnding>,
) -> AppResult<web::Json<Flag>> {
    end(state, actor, id.into_inner(), FlagEnd::Resolve, body).await
}

/// Override a flag (`hc`), with a written justification of at least 20 characters.
#[utoipa::path(tag = "consultation", security(("bearer" = [])), request_body = FlagEnding,
    responses((status = 200, body = Flag), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/flags/{id}/override")]
async fn override_flag(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: OptionalJson<FlagEnding>,
) -> AppResult<web::Json<Flag>> {
    end(state, actor, id.into_inner(), FlagEnd::Override, body).await
}
