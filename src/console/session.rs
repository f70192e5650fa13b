//! The console's server-side session and its CSRF token. The browser's cookie holds only a random secret; the
//! session row (`console_sessions`, found by the secret's SHA-256) links it to one API sign-in made through
//! `identity::service::login`, so sign-in throttling, lockout, refresh rotation and reuse detection, password
//! resets and disabling all bite exactly as they do on the API. The sign-in's tokens stay on the server, sealed
//! under the cookie's secret (`console::seal`). An expired access token is refreshed through
//! `identity::service::refresh_in_tx` while the session row is locked, so parallel requests (tabs) refresh once
//! and never look like refresh-token reuse. Each form carries the session's own CSRF token, kept in its row.
//! Every caller is then turned into an `Actor` by `identity::service::authorize_request` against the requirement
//! of the API route the page stands for (`access::requirement_for_route`): one policy table, deny by default.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::web;
use chrono::Duration;
use sha2::{Digest, Sha256};

use super::{seal, store};
use crate::access::{Actor, requirement_for_route};
use crate::app::AppState;
use crate::db::{self, DbConn};
use crate::error::AppError;
use crate::features::audit::now_micros;
use crate::features::identity::dto::TokenResponse;
use crate::features::identity::service as identity;
use crate::features::identity::tokens::AccessClaims;
use crate::request_meta::RequestMeta;

/// Holds the session's random secret (64 hex digits), nothing else.
pub const SESSION_COOKIE: &str = "qip_console";
/// Before sign-in there is no session to bind a CSRF token to: the sign-in form alone uses a double-submit
/// token in this cookie (against login CSRF). It is removed at sign-in; after it, forms carry the session's token.
pub const CSRF_COOKIE: &str = "qip_csrf";
/// Where the session lives; the CSRF cookie is scoped the same way.
const COOKIE_PATH: &str = "/";
/// A session's `last_seen_at` is written at most this often (no write on every page).
const TOUCH_EVERY_SECS: i64 = 60;

/// The secret in the browser's session cookie, if it has a well-formed one.
fn read_secret(req: &HttpRequest) -> Option<[u8; 32]> {
    let cookie = req.cookie(SESSION_COOKIE)?;
    let bytes = hex::decode(cookie.value()).ok()?;
    bytes.try_into().ok()
}

/// What the table keeps of a secret.
fn secret_hash(secret: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(secret))
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

fn session_cookie(req: &HttpRequest, secret: &[u8; 32]) -> Cookie<'static> {
    hardened(Cookie::new(SESSION_COOKIE, hex::encode(secret)), req)
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

/// The CSRF token of the session this request was authorized in (`authorize` puts it there).
#[derive(Clone)]
struct SessionCsrf(String);

/// The CSRF token the forms of this page must carry: the session's once `authorize` has run, else the
/// pre-session token of the sign-in form, if the browser has one.
pub fn csrf_token(req: &HttpRequest) -> Option<String> {
    use actix_web::HttpMessage;
    if let Some(SessionCsrf(t)) = req.extensions().get::<SessionCsrf>() {
        return Some(t.clone());
    }
    req.cookie(CSRF_COOKIE)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Equal tokens, compared as SHA-256 digests so the time taken does not depend on where they first differ.
fn same_token(expected: &str, submitted: &str) -> bool {
    !submitted.is_empty() && Sha256::digest(expected.as_bytes()) == Sha256::digest(submitted.as_bytes())
}

/// The sign-in form's check (no session yet): the form's token equals the pre-session cookie's.
pub fn sign_in_csrf_matches(req: &HttpRequest, submitted: &str) -> bool {
    req.cookie(CSRF_COOKIE)
        .is_some_and(|c| same_token(c.value(), submitted))
}

/// Starts a console session on a sign-in `identity::service::login` just made: a new row, its CSRF token, and the
/// cookie (the secret) for the browser. Stale sessions of anyone are swept on the way.
pub async fn start(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    tokens: TokenResponse,
) -> Result<Cookie<'static>, AppError> {
    let secret: [u8; 32] = rand::random();
    let s = state.clone();
    crate::telemetry::blocking(move || {
        let mut conn = s.pool.get()?;
        let now = now_micros();
        let limits = &s.settings.console;
        let family_id = store::family_of_refresh_token(
            &mut conn,
            &crate::features::identity::tokens::refresh_token_hash(&tokens.refresh_token),
        )?
        .ok_or_else(|| AppError::internal("the new sign-in has no refresh token"))?;
        let user_id = s.auth.keys.verify(&tokens.access_token)?.sub;
        let row = store::ConsoleSessionRow {
            id: uuid::Uuid::now_v7().to_string(),
            secret_hash: secret_hash(&secret),
            user_id,
            family_id,
            sealed_tokens: seal_tokens(&secret, &tokens)?,
            access_expires_at: now + Duration::seconds(tokens.expires_in),
            csrf_token: new_csrf_token(),
            version: 1,
            created_at: now,
            last_seen_at: now,
            expires_at: now + Duration::hours(i64::from(limits.session_max_hours)),
        };
        let idle_since = now - Duration::minutes(i64::from(limits.session_idle_minutes));
        db::write_tx(&mut conn, |tx| {
            store::delete_stale(tx, now, idle_since)?;
            store::insert(tx, &row)
        })?;
        Ok(())
    })
    .await?;
    Ok(session_cookie(req, &secret))
}

/// Ends the browser's console session and the API sign-in under it (`identity::service::logout` revokes the
/// refresh-token family, audited `auth.logout`). No session: nothing to do.
pub async fn end(req: &HttpRequest, state: &web::Data<AppState>) -> Result<(), AppError> {
    let Some(secret) = read_secret(req) else {
        return Ok(());
    };
    let meta = request_meta(req);
    let s = state.clone();
    crate::telemetry::blocking(move || {
        let mut conn = s.pool.get()?;
        let Some(row) = store::find_by_secret_hash(&mut conn, &secret_hash(&secret))? else {
            return Ok(());
        };
        if let Some((_, refresh)) = unseal_tokens(&secret, &row.sealed_tokens) {
            identity::logout(&mut conn, &refresh, &meta)?;
        }
        store::delete(&mut conn, &row.id)?;
        Ok(())
    })
    .await
}

fn seal_tokens(secret: &[u8; 32], tokens: &TokenResponse) -> Result<String, AppError> {
    seal::seal(
        secret,
        &format!("{}~{}", tokens.access_token, tokens.refresh_token),
    )
    .ok_or_else(|| AppError::internal("console session tokens could not be sealed"))
}

/// `(access, refresh)` from a row, or `None` when the secret does not open it.
fn unseal_tokens(secret: &[u8; 32], sealed: &str) -> Option<(String, String)> {
    let plain = seal::unseal(secret, sealed)?;
    let (access, refresh) = plain.split_once('~')?;
    Some((access.to_owned(), refresh.to_owned()))
}

/// A session that passed every check, with a verified access token.
struct LiveSession {
    claims: AccessClaims,
    csrf: String,
}

/// Finds the browser's session and makes sure it may go on: within its idle and absolute lifetimes, its sign-in
/// still live, its access token verified (refreshed under the row's lock when expired). A session that may not
/// go on is deleted; `None` means "sign in (again)".
fn authenticate(
    conn: &mut DbConn,
    state: &AppState,
    secret: &[u8; 32],
    meta: &RequestMeta,
) -> Result<Option<LiveSession>, AppError> {
    let Some(row) = store::find_by_secret_hash(conn, &secret_hash(secret))? else {
        return Ok(None);
    };
    let now = now_micros();
    let idle = Duration::minutes(i64::from(state.settings.console.session_idle_minutes));
    let usable = row.expires_at > now
        && row.last_seen_at + idle > now
        && store::family_is_live(conn, &row.family_id, now)?;
    let Some((access, _)) = unseal_tokens(secret, &row.sealed_tokens).filter(|_| usable) else {
        store::delete(conn, &row.id)?;
        return Ok(None);
    };
    if now < row.access_expires_at
        && let Ok(claims) = state.auth.keys.verify(&access)
    {
        if now - row.last_seen_at > Duration::seconds(TOUCH_EVERY_SECS) {
            store::touch(conn, &row.id, now)?;
        }
        return Ok(Some(LiveSession {
            claims,
            csrf: row.csrf_token,
        }));
    }
    // The access token is spent: refresh it once, under the row. A request that waited for the lock finds the
    // version moved and takes the tokens the other one stored, instead of presenting the rotated refresh token
    // again (which the API rightly treats as theft and answers by ending the sign-in).
    let seen_version = row.version;
    db::write_tx(
        conn,
        |tx| -> Result<Result<Option<LiveSession>, AppError>, AppError> {
            db::lock_row(tx, "console_sessions", &row.id)?;
            let Some(current) = store::find(tx, &row.id)? else {
                return Ok(Ok(None));
            };
            let Some((access, refresh)) = unseal_tokens(secret, &current.sealed_tokens) else {
                store::delete(tx, &current.id)?;
                return Ok(Ok(None));
            };
            if current.version != seen_version {
                return Ok(Ok(state.auth.keys.verify(&access).ok().map(|claims| {
                    LiveSession {
                        claims,
                        csrf: current.csrf_token,
                    }
                })));
            }
            match identity::refresh_in_tx(tx, &state.auth, &refresh, meta)? {
                Ok(tokens) => {
                    let claims = state.auth.keys.verify(&tokens.access_token)?;
                    let now = now_micros();
                    store::store_refreshed(
                        tx,
                        &current.id,
                        &seal_tokens(secret, &tokens)?,
                        now + Duration::seconds(tokens.expires_in),
                        now,
                    )?;
                    Ok(Ok(Some(LiveSession {
                        claims,
                        csrf: current.csrf_token,
                    })))
                }
                // Refused (revoked, expired, reused): the refusal and its audit event commit, the session ends.
                Err(_) => {
                    store::delete(tx, &current.id)?;
                    Ok(Ok(None))
                }
            }
        },
    )?
}

/// Why a console request has no caller.
pub enum NoCaller {
    /// No session, or one that can no longer go on: sign in (again).
    SignIn,
    /// A form without this session's CSRF token: refused before anything else happens.
    Csrf,
    /// Authenticated, but the policy (or something else) refused: show the error.
    Refused(AppError),
}

/// The authenticated, authorized caller of a console page.
pub struct Caller {
    pub actor: Actor,
    /// Always `None`: the server-side session never changes its cookie (kept so handlers that pass it on to
    /// the response still compile; refreshes happen in the session row).
    pub renewed: Option<Cookie<'static>>,
    /// The CSRF token this session's forms carry.
    pub csrf: String,
}

/// Authenticates the session and authorizes it for the API route `method template` (whose policy line the
/// console page shares), acting in `acting_hat` when given. No policy line: refused (deny by default). For pages
/// (GET); a form's POST goes through [`authorize_form`].
pub async fn authorize(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    method: &str,
    template: &str,
    acting_hat: Option<String>,
) -> Result<Caller, NoCaller> {
    authorize_inner(req, state, method, template, acting_hat, None).await
}

/// [`authorize`] for a form's POST: the form's `csrf` field must be this session's token (a token of another
/// session, or none, is a 403 before the policy is even asked).
pub async fn authorize_form(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    method: &str,
    template: &str,
    acting_hat: Option<String>,
    form_csrf: &str,
) -> Result<Caller, NoCaller> {
    authorize_inner(
        req,
        state,
        method,
        template,
        acting_hat,
        Some(form_csrf.to_owned()),
    )
    .await
}

async fn authorize_inner(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    method: &str,
    template: &str,
    acting_hat: Option<String>,
    form_csrf: Option<String>,
) -> Result<Caller, NoCaller> {
    use actix_web::HttpMessage;
    let Some(requirement) = requirement_for_route(method, template) else {
        tracing::error!(%method, %template, "console page names a route with no access policy; refusing");
        return Err(NoCaller::Refused(AppError::forbidden(
            "This page is closed: no access policy covers it.",
        )));
    };
    let Some(secret) = read_secret(req) else {
        return Err(match form_csrf {
            Some(_) => NoCaller::Csrf,
            None => NoCaller::SignIn,
        });
    };
    let meta = request_meta(req);
    let route = format!("{method} {template} (console)");
    let s = state.clone();
    let outcome = crate::telemetry::blocking(move || {
        let mut conn = s.pool.get()?;
        let Some(live) = authenticate(&mut conn, &s, &secret, &meta)? else {
            return Ok(Err(NoCaller::SignIn));
        };
        if let Some(submitted) = form_csrf
            && !same_token(&live.csrf, &submitted)
        {
            return Ok(Err(NoCaller::Csrf));
        }
        let actor = identity::authorize_request(
            &mut conn,
            &live.claims,
            requirement,
            acting_hat.as_deref(),
            &route,
            &meta,
        )?;
        Ok(Ok((actor, live.csrf)))
    })
    .await;
    let (actor, csrf) = match outcome {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => return Err(why),
        Err(e) if e.kind().status().as_u16() == 401 => return Err(NoCaller::SignIn),
        Err(e) => return Err(NoCaller::Refused(e)),
    };
    req.extensions_mut().insert(SessionCsrf(csrf.clone()));
    Ok(Caller {
        actor,
        renewed: None,
        csrf,
    })
}

pub fn request_meta(req: &HttpRequest) -> RequestMeta {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_else(|| RequestMeta::fresh(req.peer_addr().map(|a| a.ip().to_string())))
}
