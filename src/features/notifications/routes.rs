//! HTTP routes of notifications: the caller's feed and email preference (`/me/…`, any signed-in user) and an
//! organisation's webhook endpoints.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{
    MarkedRead, NotificationPage, NotificationPreferences, Webhook, WebhookDelivery, WebhookInput,
};
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
    cfg.service(feed)
        .service(mark_all_read)
        .service(mark_read)
        .service(get_preferences)
        .service(put_preferences)
        .service(list_webhooks)
        .service(create_webhook)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(rotate_secret)
        .service(list_deliveries)
        .service(redeliver);
}

/// Your notifications, newest first, with your unread count.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = NotificationPage)))]
#[get("/me/notifications")]
async fn feed(
    state: web::Data<AppState>,
    actor: Actor,
    page: Query<PageQuery>,
) -> AppResult<web::Json<NotificationPage>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let limit = req.limit;
    let (rows, unread_count) = with_conn(&state, move |conn, _| {
        service::feed(conn, &actor, req.after.as_deref(), limit)
    })
    .await?;
    let page = Page::from_rows(rows, limit, |n| n.id.clone());
    Ok(web::Json(NotificationPage {
        items: page.items,
        next_cursor: page.next_cursor,
        unread_count,
    }))
}

/// Mark every notification of yours read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), responses((status = 200, body = MarkedRead)))]
#[post("/me/notifications/read-all")]
async fn mark_all_read(state: web::Data<AppState>, actor: Actor) -> AppResult<web::Json<MarkedRead>> {
    with_conn(&state, move |conn, _| service::mark_read(conn, &actor, None))
        .await
        .map(web::Json)
}

/// Mark one notification read.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = MarkedRead), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[post("/me/notifications/{id}/read")]
async fn mark_read(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<MarkedRead>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| service::mark_read(conn, &actor, Some(&id)))
        .await
        .map(web::Json)
}

/// Your email preference: immediate (default), a daily digest, or none.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), responses((status = 200, body = NotificationPreferences)))]
#[get("/me/notification-preferences")]
async fn get_preferences(
    state: web::Data<AppState>,
    actor: Actor,
) -> AppResult<web::Json<NotificationPreferences>> {
    with_conn(&state, move |conn, _| service::preferences(conn, &actor))
        .await
        .map(web::Json)
}

/// Set your email preference.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), request_body = NotificationPreferences,
    responses((status = 200, body = NotificationPreferences), (status = 422, body = Problem, content_type = "application/problem+json")))]
#[put("/me/notification-preferences")]
async fn put_preferences(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<NotificationPreferences>,
) -> AppResult<web::Json<NotificationPreferences>> {
    let body = body.into_inner();
    with_conn(&state, move |conn, _| {
        service::set_preferences(conn, &actor, &body)
    })
    .await
    .map(web::Json)
}

/// The organisation's webhook endpoints (secrets are never listed).
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/organizations/{id}/webhooks")]
async fn list_webhooks(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Vec<Webhook>>> {
    let org = id.into_inner();
    with_conn(&state, move |conn, _| service::list_webhooks(conn, &actor, &org))
        .await
        .map(web::Json)
}

/// Register a webhook endpoint; the answer carries its signing secret, shown this once.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), request_body = WebhookInput,
    responses((status = 201, body = Webhook), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
#[post("/organizations/{id}/webhooks")]
async fn create_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: Json<WebhookInput>,
) -> AppResult<HttpResponse> {
    let (org, body) = (id.into_inner(), body.into_inner());
    let hook = with_conn(&state, move |conn, state| {
        service::create_webhook(
            conn,
            &actor,
            &org,
            &body,
            &state.settings.notifications.allowed_cidrs(),
        )
    })
    .await?;
    Ok(HttpResponse::Created()
        .insert_header(("ETag", etag(hook.version)))
        .json(hook))
}

/// One webhook endpoint.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Webhook), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/organizations/{id}/webhooks/{webhook_id}")]
async fn get_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (org, id) = path.into_inner();
    let hook = with_conn(&state, move |conn, _| {
        service::get_webhook(conn, &actor, &org, &id)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(hook.version)))
        .json(hook))
}

/// Change an endpoint's URL, description or whether it is active (`If-Match`).
#[utoipa::path(tag = "notifications", security(("bearer" = [])), request_body = WebhookInput,
    responses((status = 200, body = Webhook), (status = 412, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json"), (status = 428, body = Problem, content_type = "application/problem+json")))]
#[patch("/organizations/{id}/webhooks/{webhook_id}")]
async fn update_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: Json<WebhookInput>,
) -> AppResult<HttpResponse> {
    let expected = if_match_version(&req)?;
    let ((org, id), body) = (path.into_inner(), body.into_inner());
    let hook = with_conn(&state, move |conn, state| {
        service::update_webhook(
            conn,
            &actor,
            &org,
            &id,
            expected,
            &body,
            &state.settings.notifications.allowed_cidrs(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("ETag", etag(hook.version)))
        .json(hook))
}

/// Delete an endpoint; deliveries still waiting for it are dead-lettered.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[delete("/organizations/{id}/webhooks/{webhook_id}")]
async fn delete_webhook(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> AppResult<HttpResponse> {
    let (org, id) = path.into_inner();
    with_conn(&state, move |conn, _| {
        service::delete_webhook(conn, &actor, &org, &id)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new signing secret, shown this once; the old one stops signing at once.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = Webhook), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[post("/organizations/{id}/webhooks/{webhook_id}/rotate-secret")]
async fn rotate_secret(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<Webhook>> {
    let (org, id) = path.into_inner();
    with_conn(&state, move |conn, _| {
        service::rotate_secret(conn, &actor, &org, &id)
    })
    .await
    .map(web::Json)
}

/// Deliveries to an endpoint, newest first: pending, delivered and dead letters, with the last error.
#[utoipa::path(tag = "notifications", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<WebhookDelivery>), (status = 404, body = Problem, content_type = "application/problem+json")))]
#[get("/organizations/{id}/webhooks/{webhook_id}/deliveries")]
async fn list_deliveries(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
    page: Query<PageQuery>,
) -> AppResult<web::Json<Page<WebhookDelivery>>> {
    let (org, id) = path.into_inner();
    let req = page.resolve::<String>(&state.settings.server)?;
    let limit = req.limit;
    let rows = with_conn(&state, move |conn, _| {
        service::deliveries(conn, &actor, &org, &id, req.after.as_deref(), limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, limit, |d| d.id.clone())))
}

/// Send a delivery again (a dead letter, or one to repeat), due now with a fresh retry window.
#[utoipa::path(tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = WebhookDelivery), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json")))]
#[post("/organizations/{id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver")]
async fn redeliver(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String, String)>,
) -> AppResult<web::Json<WebhookDelivery>> {
    let (org, id, delivery) = path.into_inner();
    with_conn(&state, move |conn, _| {
        service::redeliver(conn, &actor, &org, &id, &delivery)
    })
    .await
    .map(web::Json)
}
