//! The console's cookie session and CSRF token. The session cookie carries the same access and refresh tokens
//! the API issues (`identity::service::login`), so sign-in throttling, lockout, refresh rotation and reuse
//! detection, password resets and disabling all bite exactly as they do on the API. An expired access token
//! is refreshed transparently through `identity::service::refresh`. Every caller is then turned into an
//! `Actor` by `identity::service::authorize_request` against the requirement of the API route the page stands
//! for (`access::requirement_for_route`): one policy table, deny by default.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::web;
use sha2::{Digest, Sha256};

use crate::access::{Actor, requirement_for_route};
use crate::app::AppState;
use crate::error::AppError;
use crate::features::identity::dto::TokenResponse;
use crate::features::identity::service as identity;
use crate::request_meta::RequestMeta;

/// Holds `<access token>~<refresh token>`; both are URL-safe base64 (and `.`), so `~` never occurs in them.
pub const SESSION_COOKIE: &str = "qip_console";
/// The double-submit CSRF token: a random value in this cookie that every form must echo in its `csrf` field.
pub const CSRF_COOKIE: &str = "qip_csrf";
/// Where the session lives; the CSRF cookie is scoped the same way.
const COOKIE_PATH: &str = "/";

/// The caller's tokens, as read from the session cookie.
pub struct SessionTokens {
    pub access: String,
    pub refresh: String,
}

pub fn read_session(req: &HttpRequest) -> Option<SessionTokens> {
    let cookie = req.cookie(SESSION_COOKIE)?;
    let (access, refresh) = cookie.value().split_once('~')?;
    if access.is_empty() || refresh.is_empty() {
        return None;
    }
    Some(SessionTokens {
        access: access.to_owned(),
        refresh: refresh.to_owned(),
    })
}

/// `Secure` when the request came over TLS (directly, or as a proxy reports it): the cookie is then never
/// sent in clear text. Plain-HTTP development and tests get a cookie the browser will send back.
fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme().eq_ignore_ascii_case("https")
}

fn hardened(mut cookie: Cookie<'static>, req: &HttpRequest) -> Cookie<'static> {
    cookie.set_path(COOKIE_PATH);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(secure(req));
    cookie
}

pub fn session_cookie(req: &HttpRequest, tokens: &TokenResponse) -> Cookie<'static> {
    let value = format!("{}~{}", tokens.access_token, tokens.refresh_token);
    hardened(Cookie::new(SESSION_COOKIE, value), req)
}

/// A cookie that tells the browser to forget `name`.
pub fn removal(req: &HttpRequest, name: &'static str) -> Cookie<'static> {
    let mut cookie = hardened(Cookie::new(name, ""), req);
    cookie.make_removal();
    cookie
}

/// A fresh CSRF token (256 random bits, hex).
pub fn new_csrf_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

pub fn csrf_cookie(req: &HttpRequest, token: &str) -> Cookie<'static> {
    hardened(Cookie::new(CSRF_COOKIE, token.to_owned()), req)
}

/// The CSRF token of this browser, if it has one.
pub fn csrf_token(req: &HttpRequest) -> Option<String> {
    req.cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True when the form's token equals the cookie's. Compared as SHA-256 digests so the comparison time does not
/// depend on where the two first differ.
pub fn csrf_matches(req: &HttpRequest, submitted: &str) -> bool {
    match csrf_token(req) {
        Some(expected) if !submitted.is_empty() => {
            Sha256::digest(expected.as_bytes()) == Sha256::digest(submitted.as_bytes())
        }
        _ => false,
    }
}

/// Why a console request has no caller.
pub enum NoCaller {
    /// No session, or one that can no longer be refreshed: sign in (again).
    SignIn,
    /// Authenticated, but the policy (or something else) refused: show the error.
    Refused(AppError),
}

/// The authenticated, authorized caller of a console page, and a renewed session cookie when the access token
/// had to be refreshed.
pub struct Caller {
    pub actor: Actor,
    pub renewed: Option<Cookie<'static>>,
}

/// Authenticates the session and authorizes it for the API route `method template` (whose policy line the
/// console page shares), acting in `acting_hat` when given. No policy line: refused (deny by default).
pub async fn authorize(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    method: &str,
    template: &str,
    acting_hat: Option<String>,
) -> Result<Caller, NoCaller> {
    let Some(requirement) = requirement_for_route(method, template) else {
        tracing::error!(%method, %template, "console page names a route with no access policy; refusing");
        return Err(NoCaller::Refused(AppError::forbidden(
            "This page is closed: no access policy covers it.",
        )));
    };
    let Some(tokens) = read_session(req) else {
        return Err(NoCaller::SignIn);
    };
    let meta = request_meta(req);
    let (claims, renewed) = match state.auth.keys.verify(&tokens.access) {
        Ok(claims) => (claims, None),
        Err(_) => {
            // Expired (or otherwise unusable) access token: spend the refresh token, as an API client would.
            let s = state.clone();
            let m = meta.clone();
            let refreshed = crate::telemetry::blocking(move || {
                let mut conn = s.pool.get()?;
                identity::refresh(&mut conn, &s.auth, &tokens.refresh, &m)
            })
            .await
            .map_err(|_| NoCaller::SignIn)?;
            let claims = state
                .auth
                .keys
                .verify(&refreshed.access_token)
                .map_err(|_| NoCaller::SignIn)?;
            (claims, Some(session_cookie(req, &refreshed)))
        }
    };
    let route = format!("{method} {template} (console)");
    let s = state.clone();
    let actor = crate::telemetry::blocking(move || {
        let mut conn = s.pool.get()?;
        identity::authorize_request(
            &mut conn,
            &claims,
            requirement,
            acting_hat.as_deref(),
            &route,
            &meta,
        )
    })
    .await
    .map_err(|e| {
        if e.kind().status().as_u16() == 401 {
            NoCaller::SignIn
        } else {
            NoCaller::Refused(e)
        }
    })?;
    Ok(Caller { actor, renewed })
}

pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_else(|| RequestMeta::fresh(req.peer_addr().map(|a| a.ip().to_string())))
}
