//! Authorization middleware, deny by default: every request to a registered route is checked against the
//! policy table before its handler runs. A route with no policy line is closed; public routes pass; others
//! need a valid access token, an active account, and (for actions) a resolved hat. The resulting `Actor` is
//! handed to handlers through the request extensions.

use std::future::{Ready, ready};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::access::{self, Actor, Requirement};
use crate::app::AppState;
use crate::error::{AppError, ErrorKind};
use crate::features::identity;
use crate::http::middleware::RequestMeta;

/// Header naming the hat the caller acts in when several could permit the action.
pub const ACTING_HAT_HEADER: &str = "acting-hat";

pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req.error_response(AppError::internal("application state missing")));
    };
    let method = req.method().as_str().to_owned();
    // Unregistered paths and wrong methods fall through to the 404/405 fallback; /docs is static.
    let Some(template) = state.routes.template_for(&method, req.path()) else {
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
            return Ok(req.error_response(err));
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
    let authorized = crate::telemetry::blocking(move || {
        let mut conn = state.pool.get()?;
        identity::service::authorize_request(
            &mut conn,
            &claims,
            requirement,
            acting_hat.as_deref(),
            &route,
            &meta,
        )
    })
    .await;
    match authorized {
        Ok(actor) => {
            req.extensions_mut().insert(actor);
            next.call(req).await.map(ServiceResponse::map_into_boxed_body)
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

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Present whenever the policy table requires a signed-in caller; absent means the route is public
        // and the handler should not ask for an actor.
        ready(req.extensions().get::<Actor>().cloned().ok_or_else(|| {
            AppError::internal("handler asked for an actor on a route the policy table marks public")
        }))
    }
}
