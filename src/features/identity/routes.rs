//! HTTP routes of identity: sign-in, password setup, `/me`, organisations, users, hats and pending grants of
//! privileged hats. Thin: extract, call the service.

use actix_web::{HttpResponse, delete, get, post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::dto::{
    GrantOutcome, HatGrantRequestFilter, HatGrantRequestView, HatGrantView, LoginRequest, Me, NewHatGrant,
    NewOrganization, NewUser, Organization, PasswordReset, RefreshRequest, RefuseHatGrant,
    SetupPasswordRequest, TokenResponse, User, UserFilter, UserWithSetupToken,
};
use super::service;
use crate::access::Actor;
use crate::app::AppState;
use crate::error::{AppResult, Problem};
use crate::http::extract::Json;
use crate::http::extract::Query;
use crate::http::middleware::RequestMeta;
use crate::http::pagination::{Page, PageQuery};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(login)
        .service(refresh)
        .service(logout)
        .service(setup_password)
        .service(me)
        .service(create_organization)
        .service(list_organizations)
        .service(get_organization)
        .service(create_user)
        .service(list_users)
        .service(get_user)
        .service(disable_user)
        .service(enable_user)
        .service(reset_password)
        .service(list_hats)
        .service(grant_hat)
        .service(revoke_hat)
        .service(list_hat_grant_requests)
        .service(get_hat_grant_request)
        .service(confirm_hat_grant)
        .service(refuse_hat_grant);
}

/// Sign in with username and password.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Wrong username or password, or the account cannot sign in now (the answer does not say which)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests from this address; see Retry-After", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/auth/login")]
async fn login(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<LoginRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let body = body.into_inner();
    // No pooled connection is held around the call: `login` takes its own, and none while it hashes.
    let state = state.clone();
    crate::telemetry::blocking(move || service::login(&state.pool, &state.auth, &body, &meta))
        .await
        .map(web::Json)
}

/// Exchange a refresh token for a new token pair (the old refresh token is spent).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "Unknown, expired, revoked or reused refresh token (reuse ends the whole sign-in)", body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/auth/refresh")]
async fn refresh(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<RefreshRequest>,
) -> AppResult<web::Json<TokenResponse>> {
    let token = body.into_inner().refresh_token;
    with_conn(&state, move |conn, s| {
        service::refresh(conn, &s.auth, &token, &meta)
    })
    .await
    .map(web::Json)
}

/// End the sign-in a refresh token belongs to (every token of its family).
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out (also for unknown tokens)"), (status = 429, body = Problem, content_type = "application/problem+json"))
)]
#[post("/auth/logout")]
async fn logout(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<RefreshRequest>,
) -> AppResult<HttpResponse> {
    let token = body.into_inner().refresh_token;
    with_conn(&state, move |conn, _| service::logout(conn, &token, &meta)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set one's own password with the single-use setup token an administrator handed over (after the account was
/// created or its password reset). Then sign in with `POST /auth/login`.
#[utoipa::path(
    tag = "auth",
    request_body = SetupPasswordRequest,
    responses(
        (status = 204, description = "Password set; the token is spent"),
        (status = 401, description = "Unknown, used, replaced or expired token (the answer does not say which)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The password is too weak", body = Problem, content_type = "application/problem+json"),
        (status = 429, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/auth/setup-password")]
async fn setup_password(
    state: web::Data<AppState>,
    meta: RequestMeta,
    body: Json<SetupPasswordRequest>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    // The sign-in budget first, from memory: a flood of made-up tokens takes no connection and writes nothing.
    service::admit_password_setup(&state.auth, &meta)?;
    with_conn(&state, move |conn, s| {
        service::setup_password(conn, &s.auth, &body, &meta)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The caller, their organisation and the hats that give power now.
#[utoipa::path(
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/me")]
async fn me(state: web::Data<AppState>, actor: Actor) -> AppResult<web::Json<Me>> {
    with_conn(&state, move |conn, _| service::me(conn, &actor))
        .await
        .map(web::Json)
}

/// Register an organisation (`admin`).
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    request_body = NewOrganization,
    responses(
        (status = 201, body = Organization),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Code taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/organizations")]
async fn create_organization(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<NewOrganization>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let org = with_conn(&state, move |conn, _| {
        service::create_organization(conn, &actor, &body)
    })
    .await?;
    Ok(HttpResponse::Created().json(org))
}

/// List organisations (any hat), oldest first.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<Organization>), (status = 401, body = Problem, content_type = "application/problem+json"))
)]
#[get("/organizations")]
async fn list_organizations(
    state: web::Data<AppState>,
    _actor: Actor,
    page: Query<PageQuery>,
) -> AppResult<web::Json<Page<Organization>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let rows = with_conn(&state, move |conn, _| {
        service::list_organizations(conn, req.after.as_deref(), req.limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |o| o.id.clone())))
}

/// One organisation.
#[utoipa::path(
    tag = "organizations",
    security(("bearer" = [])),
    responses((status = 200, body = Organization), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/organizations/{id}")]
async fn get_organization(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Organization>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| service::get_organization(conn, &id))
        .await
        .map(web::Json)
}

/// Create a user account (`admin`); hats are granted separately. No password: the answer carries a single-use
/// setup token (shown once) for the user to choose their own at `POST /auth/setup-password`.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = NewUser,
    responses(
        (status = 201, body = UserWithSetupToken),
        (status = 409, description = "Username taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Every fault listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/users")]
async fn create_user(
    state: web::Data<AppState>,
    actor: Actor,
    body: Json<NewUser>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let user = with_conn(&state, move |conn, s| {
        service::create_user(conn, &s.auth, &s.settings.dual_control, &actor, &body)
    })
    .await?;
    Ok(HttpResponse::Created().json(user))
}

/// List users (`admin`, `auditor`), filtered by organisation and status.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(PageQuery, UserFilter),
    responses((status = 200, body = Page<User>), (status = 403, body = Problem, content_type = "application/problem+json"))
)]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    _actor: Actor,
    page: Query<PageQuery>,
    filter: Query<UserFilter>,
) -> AppResult<web::Json<Page<User>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let filter = filter.into_inner();
    let rows = with_conn(&state, move |conn, _| {
        service::list_users(
            conn,
            filter.organization_id.as_deref(),
            filter.status,
            req.after.as_deref(),
            req.limit,
        )
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |u| u.id.clone())))
}

/// One user.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/users/{id}")]
async fn get_user(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<User>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| service::get_user(conn, &id))
        .await
        .map(web::Json)
}

/// Disable an account: it can no longer sign in and its sessions end.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, description = "Own account", body = Problem, content_type = "application/problem+json"))
)]
#[post("/users/{id}/disable")]
async fn disable_user(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<User>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        service::set_user_enabled(conn, &actor, &id, false)
    })
    .await
    .map(web::Json)
}

/// Re-enable an account (also clears a lockout).
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = User), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/users/{id}/enable")]
async fn enable_user(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<User>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| {
        service::set_user_enabled(conn, &actor, &id, true)
    })
    .await
    .map(web::Json)
}

/// Reset a user's password (`admin`): the old one stops working and every session ends at once (access tokens
/// included). The answer carries a single-use setup token (shown once) for the user to choose a new password;
/// the administrator never sets one. The account's privileged hats are suspended into pending grant requests
/// (listed in `privileged_hats_pending`) that a second administrator must confirm.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = PasswordReset), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[post("/users/{id}/reset-password")]
async fn reset_password(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<PasswordReset>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, s| {
        service::reset_password(conn, &s.auth, &s.settings.dual_control, &actor, &id)
    })
    .await
    .map(web::Json)
}

/// Every hat grant of a user, revoked ones included.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = Vec<HatGrantView>), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/users/{id}/hats")]
async fn list_hats(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<Vec<HatGrantView>>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| service::list_hats(conn, &id))
        .await
        .map(web::Json)
}

/// Grant a hat (`admin`; never to oneself), optionally scoped, time-bound or acting. Ordinary hats take effect
/// at once (201). `admin`, `finance_officer`, `dsrsg`, `hc`, `rc` and `head_of_office` need a second
/// administrator: the answer is a pending request (202) to confirm at `/hat-grant-requests/{id}/confirm`.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = NewHatGrant,
    responses(
        (status = 201, description = "Granted", body = HatGrantView),
        (status = 202, description = "Privileged hat: waits for a second administrator", body = HatGrantRequestView),
        (status = 403, description = "Own hats, or not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/users/{id}/hats")]
async fn grant_hat(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: Json<NewHatGrant>,
) -> AppResult<HttpResponse> {
    let (id, body) = (id.into_inner(), body.into_inner());
    let outcome = with_conn(&state, move |conn, s| {
        service::grant_hat(conn, &s.settings.dual_control, &actor, &id, &body)
    })
    .await?;
    Ok(match outcome {
        GrantOutcome::Granted(grant) => HttpResponse::Created().json(grant),
        GrantOutcome::Pending(request) => HttpResponse::Accepted().json(request),
    })
}

/// Revoke a hat grant (`admin`; never one's own). Takes effect on the holder's next request.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 200, body = HatGrantView),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already revoked", body = Problem, content_type = "application/problem+json")
    )
)]
#[delete("/users/{id}/hats/{hat_id}")]
async fn revoke_hat(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<(String, String)>,
) -> AppResult<web::Json<HatGrantView>> {
    let (id, hat_id) = path.into_inner();
    with_conn(&state, move |conn, _| {
        service::revoke_hat(conn, &actor, &id, &hat_id)
    })
    .await
    .map(web::Json)
}

/// Grant requests for privileged hats (`admin`, `auditor`), oldest first; by default those waiting for a second
/// administrator.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    params(PageQuery, HatGrantRequestFilter),
    responses((status = 200, body = Page<HatGrantRequestView>), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"))
)]
#[get("/hat-grant-requests")]
async fn list_hat_grant_requests(
    state: web::Data<AppState>,
    _actor: Actor,
    page: Query<PageQuery>,
    filter: Query<HatGrantRequestFilter>,
) -> AppResult<web::Json<Page<HatGrantRequestView>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let status = filter.into_inner().status;
    let rows = with_conn(&state, move |conn, _| {
        service::list_hat_grant_requests(conn, status.unwrap_or_default(), req.after.as_deref(), req.limit)
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |r| r.id.clone())))
}

/// One grant request.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = HatGrantRequestView), (status = 404, body = Problem, content_type = "application/problem+json"))
)]
#[get("/hat-grant-requests/{id}")]
async fn get_hat_grant_request(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<web::Json<HatGrantRequestView>> {
    let id = id.into_inner();
    with_conn(&state, move |conn, _| service::get_hat_grant_request(conn, &id))
        .await
        .map(web::Json)
}

/// Confirm a pending grant (`admin`, neither its requester nor its grantee): the hat takes effect now.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The grant now in force", body = HatGrantView),
        (status = 403, description = "The requester or the grantee", body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Expired, or settled already (`/problems/conflict`); or the grantee's password was set with a setup token the requester issued (`/problems/dual-control`): reset it yourself, hand the new token over, then confirm", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/hat-grant-requests/{id}/confirm")]
async fn confirm_hat_grant(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let id = id.into_inner();
    let grant = with_conn(&state, move |conn, _| {
        service::confirm_hat_grant(conn, &actor, &id)
    })
    .await?;
    Ok(HttpResponse::Created().json(grant))
}

/// Refuse a pending grant (`admin`); its requester cancels it the same way.
#[utoipa::path(
    tag = "users",
    security(("bearer" = [])),
    request_body = RefuseHatGrant,
    responses(
        (status = 200, body = HatGrantRequestView),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Expired, or settled already", body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/hat-grant-requests/{id}/refuse")]
async fn refuse_hat_grant(
    state: web::Data<AppState>,
    actor: Actor,
    id: web::Path<String>,
    body: Json<RefuseHatGrant>,
) -> AppResult<web::Json<HatGrantRequestView>> {
    let (id, body) = (id.into_inner(), body.into_inner());
    with_conn(&state, move |conn, _| {
        service::refuse_hat_grant(conn, &actor, &id, body.reason.as_deref())
    })
    .await
    .map(web::Json)
}
