//! Authorization middleware, deny by default: every request to a registered route is checked against the
//! policy table before its handler runs. A route with no policy line is closed; public routes pass; others
//! need a valid access token, an active account, and (for actions) a resolved hat. The decision is taken on
//! the canonical path (`http::canonical_path`), the same one the router matches, and recorded with the route
//! template it was taken for; the `Actor` extractor hands the caller to a handler only when the route that
//! actually runs is that template, so a guarded handler cannot run without an authorized caller.

use std::cell::RefCell;
use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::access::{self, Actor, Requirement};
use crate::app::AppState;
use crate::db::PooledDbConn;
use crate::error::{AppError, ErrorKind};
use crate::features::identity;
use crate::http::middleware::RequestMeta;

/// Header naming the hat the caller acts in when several could permit the action.
pub const ACTING_HAT_HEADER: &str = "acting-hat";

tokio::task_local! {
    /// The connection authorization checked out, handed on to the handler of the same request (see
    /// [`take_handed_conn`]): one checkout per request.
    static HANDED_CONN: RefCell<Option<PooledDbConn>>;
}

/// The connection the authorization of the running request checked out, if not yet taken. `http::with_conn` uses it instead of checking out a second one.
pub(crate) fn take_handed_conn() -> Option<PooledDbConn> {
    HANDED_CONN
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten()
}

/// Reads the request's body as sent (still encoded, if it is) before a connection is checked out, and puts it
/// back for the handler's extractors, which decode it and apply their own limits as before. A client sending
/// its body slowly so holds no pooled connection, and the request still checks out only once. Anything over
/// the largest body limit is refused here.
async fn buffer_body(req: &mut ServiceRequest, limit: usize) -> Result<(), AppError> {
    use futures_util::StreamExt;
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::bad_request(format!("The request body could not be read: {e}.")))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::new(
                ErrorKind::PayloadTooLarge,
                format!("The request body is larger than the limit of {limit} bytes."),
            )
            .with_extension("limit_bytes", serde_json::json!(limit)));
        }
        body.extend_from_slice(&chunk);
    }
    req.set_payload(Payload::from(body.freeze()));
    Ok(())
}

/// The outcome of authorization for a guarded route: the caller, and the route template the decision was
/// taken for. Only the `Actor` extractor reads it.
#[derive(Debug, Clone)]
struct AuthorizedCall {
    route_template: String,
    actor: Actor,
}

/// Holds a refusal of an `/api/v1/auth/*` request for `auth.refusal_hold_ms` on a timer before it is sent: a
/// flooder that asks again as soon as it is answered would otherwise turn cheap refusals into thousands of
/// requests a second competing with everyone else for the cores. No thread is held while waiting.
async fn hold_refusal(state: &AppState) {
    let hold = state.settings.auth.refusal_hold_ms;
    if hold > 0 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(hold)).await;
    }
}

pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.error_response(AppError::internal("application state missing")));
    };
    let method = req.method().as_str().to_owned();
    // The path the router will match: the canonical one, as the router itself reads it.
    let path = req.match_info().as_str().to_owned();
    let Some(template) = state.routes.template_for(&method, &path) else {
        // A handler under /api/ that the OpenAPI document (so the policy table) does not know is closed.
        if let Some(pattern) = req.resource_map().match_pattern(&path) {
            if pattern.starts_with("/api/") && !state.routes.has_template(&pattern) {
                tracing::error!(%method, %pattern, "route outside the OpenAPI document; refusing it");
                return Ok(req.error_response(AppError::forbidden(
                    "This route is closed: no access policy covers it.",
                )));
            }
        }
        // A path a route owns, asked with another method: 405 here, before the router could hand it to a
        // shadowed parameter route (`GET /activities/import` is not the activity "import").
        if !state.routes.methods_for(&path).is_empty() {
            let refusal = crate::http::fallback::unmatched(req.request(), &state);
            return Ok(req.error_response(refusal));
        }
        // Unregistered paths fall through to the 404 fallback; /docs is static.
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let Some(requirement) = access::requirement_for_route(&method, &template) else {
        tracing::error!(%method, %template, "route has no access policy; refusing it");
        return Ok(req.error_response(AppError::forbidden(
            "This route is closed: no access policy covers it.",
        )));
    };
    let meta = RequestMeta::from_request(req.request(), &mut Payload::None).into_inner()?;
    if template.starts_with("/api/v1/auth/") {
        let client = meta.client_addr.clone().unwrap_or_default();
        if let Err(wait) = state.auth.limiter.check(&client) {
            let err = AppError::new(
                ErrorKind::TooManyRequests,
                format!("Too many sign-in requests from this address; retry in {wait} seconds."),
            )
            .with_header(header::RETRY_AFTER, &wait.to_string());
            hold_refusal(&state).await;
            return Ok(req.error_response(err));
        }
        if requirement == Requirement::Public {
            let res = next.call(req).await?;
            if res.status() == actix_web::http::StatusCode::TOO_MANY_REQUESTS {
                hold_refusal(&state).await;
            }
            return Ok(res.map_into_boxed_body());
        }
    }
    if requirement == Requirement::Public {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    }
    let token = match bearer_token(&req) {
        Ok(t) => t,
        Err(e) => return Ok(req.error_response(e)),
    };
    let claims = match state.auth.keys.verify(&token) {
        Ok(c) => c,
        Err(e) => return Ok(req.error_response(e)),
    };
    let acting_hat = req
        .headers()
        .get(ACTING_HAT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let route = format!("{method} {template}");
    let mut req = req;
    if !crate::http::extract::sends_no_body(req.headers()) {
        let server = &state.settings.server;
        let limit = server.json_limit_bytes.max(server.upload_limit_bytes);
        if let Err(e) = buffer_body(&mut req, limit).await {
            return Ok(req.error_response(e));
        }
    }
    let authorized = crate::telemetry::blocking(move || {
        let mut conn = state.pool.get()?;
        let actor = identity::service::authorize_request(
            &mut conn,
            &claims,
            requirement,
            acting_hat.as_deref(),
            &route,
            &meta,
        )?;
        Ok((actor, conn))
    })
    .await;
    match authorized {
        Ok((actor, conn)) => {
            req.extensions_mut().insert(AuthorizedCall {
                route_template: template.clone(),
                actor,
            });
            // The handler runs inside this future, so it finds the connection in the task-local slot; one
            // it did not take goes back to the pool when the response head is ready.
            let res = HANDED_CONN
                .scope(RefCell::new(Some(conn)), next.call(req))
                .await?;
            if let Some(ran) = res.request().match_pattern().filter(|ran| *ran != template) {
                // A handler that asks for the caller was refused it (see the extractor); one that does not ran
                // on another route's decision. Either way the route table and the router disagree: say so.
                tracing::error!(%method, authorized = %template, %ran, "authorization and router disagree on the route");
            }
            Ok(res.map_into_boxed_body())
        }
        Err(e) => Ok(req.error_response(e)),
    }
}

fn bearer_token(req: &ServiceRequest) -> Result<String, AppError> {
    let missing = || {
        AppError::unauthorized("Sign in and send the access token as `Authorization: Bearer <token>`.")
            .with_header(header::WWW_AUTHENTICATE, "Bearer")
    };
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
        _ => Err(missing()),
    }
}

impl FromRequest for Actor {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;

    /// The authorized caller, only on the very route the authorization middleware decided on. Anything else
    /// (no decision: the policy marks the route public, or the middleware did not run; a decision taken for
    /// another route) is a server bug that must fail closed: refused and logged, never a pass.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let call = req.extensions().get::<AuthorizedCall>().cloned();
        let running = req.match_pattern();
        ready(match call {
            Some(call) if running.as_deref() == Some(call.route_template.as_str()) => Ok(call.actor),
            Some(call) => {
                tracing::error!(
                    authorized = %call.route_template,
                    running = running.as_deref().unwrap_or("unmatched"),
                    "handler asked for the caller of a route that was not the one authorized; refusing"
                );
                Err(AppError::forbidden(
                    "This route is closed: its authorization could not be confirmed.",
                ))
            }
            None => {
                tracing::error!(
                    running = running.as_deref().unwrap_or("unmatched"),
                    "handler asked for the caller on a route with no authorization decision; refusing"
                );
                Err(AppError::forbidden(
                    "This route is closed: its authorization could not be confirmed.",
                ))
            }
        })
    }
}
