//! The web console: server-rendered pages for people who are not programmers (sign in, my tasks, the decision
//! brief with approve / return / reject, the consultation answer), mounted at `/` and `/console/…` in the same
//! binary. Every page calls the same service functions as the API and is authorized by the same policy line as
//! the API route it stands for (see `session::authorize`); the console is not part of the OpenAPI document.
//! See docs/CONSOLE.md.

mod charts;
mod flags;
mod history;
mod labels;
mod pages;
mod payments;
mod pool;
mod reports;
mod seal;
pub mod session;
mod store;
mod unit;

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Compress;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::Markup;
use serde::Deserialize;

use crate::access::{Action, Hat, HatResolution, resolve_hat};
use crate::app::AppState;
use crate::domain::ids::ProposalId;
use crate::error::{AppError, ErrorKind};
use crate::features::approval::dto::{Decision, DecisionInput};
use crate::features::approval::service as approval;
use crate::features::consultation::dto::{FlagInput, ResponseInput, ResponseKind};
use crate::features::consultation::service as consultation;
use crate::features::identity::dto::LoginRequest;
use crate::features::identity::service as identity;
use crate::features::read_models::{brief::brief as decision_brief, tasks};
use crate::http::extract::Form;
use crate::http::extract::Query;
use pages::Chrome;
use session::{Caller, NoCaller};

/// The API routes whose policy lines the console pages share.
const TASKS_ROUTE: (&str, &str) = ("GET", "/api/v1/me/tasks");
const BRIEF_ROUTE: (&str, &str) = ("GET", "/api/v1/proposals/{id}/brief");
const DECIDE_ROUTE: (&str, &str) = ("POST", "/api/v1/proposals/{id}/approval/steps/{step_id}/decision");
const RESPOND_ROUTE: (&str, &str) = ("POST", "/api/v1/proposals/{id}/consultation/responses");

/// Registers the console's routes (plain actix routes, outside the OpenAPI document).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(to_tasks)).service(
        web::scope("/console")
            // Pages go compressed to browsers that ask (slow satellite links). Compression cannot leak the CSRF
            // token (BREACH): SameSite=Strict keeps the cookies off every request another site starts.
            .wrap(Compress::default())
            .route("", web::get().to(to_tasks))
            .route("/static/console.css", web::get().to(stylesheet))
            .route("/sign-in", web::get().to(sign_in_page))
            .route("/sign-in", web::post().to(sign_in))
            .route("/sign-out", web::post().to(sign_out))
            .route("/tasks", web::get().to(my_tasks))
            .route("/proposals/{id}", web::get().to(proposal))
            .route("/proposals/{id}/steps/{step_id}/decision", web::post().to(decide))
            .route("/proposals/{id}/consultation", web::post().to(respond))
            .route("/proposals", web::get().to(unit::list))
            .route("/pools", web::get().to(pool::list))
            .route("/pools/{id}", web::get().to(pool::show))
            .route("/proposals/{id}/history", web::get().to(history::show))
            .route("/proposals/{id}/reports", web::get().to(reports::show))
            .route("/proposals/{id}/reports", web::post().to(reports::submit))
            .route("/reports/{id}/decision", web::post().to(reports::decide))
            .route("/proposals/{id}/tranches", web::get().to(payments::show))
            .route(
                "/proposals/{id}/tranches/{n}/disbursements",
                web::post().to(payments::pay),
            )
            .route("/flags/{id}/{how}", web::post().to(flags::end))
            .route("/proposals/{id}/{action}", web::post().to(unit::act)),
    );
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

async fn to_tasks() -> HttpResponse {
    see_other("/console/tasks")
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(pages::STYLESHEET)
}

fn html(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// The browser's CSRF token, or a new one (with the cookie to set) when it has none.
fn csrf_for(req: &HttpRequest) -> (String, Option<Cookie<'static>>) {
    match session::csrf_token(req) {
        Some(t) => (t, None),
        None => {
            let t = session::new_csrf_token();
            let c = session::csrf_cookie(req, &t);
            (t, Some(c))
        }
    }
}

fn with_cookies(
    mut res: HttpResponse,
    cookies: impl IntoIterator<Item = Option<Cookie<'static>>>,
) -> HttpResponse {
    for c in cookies.into_iter().flatten() {
        if let Err(e) = res.add_cookie(&c) {
            tracing::error!(error = %e, "console cookie could not be set");
        }
    }
    res
}

fn csrf_refused(req: &HttpRequest) -> HttpResponse {
    let (_, cookie) = csrf_for(req);
    with_cookies(
        html(
            StatusCode::FORBIDDEN,
            pages::message(
                None,
                "Form expired",
                "This form could not be verified (missing or stale security token). Go back, reload the page and send it again.",
            ),
        ),
        [cookie],
    )
}

/// The answer when there is no authorized caller: the sign-in page, or the refusal as a page.
fn no_caller(req: &HttpRequest, why: NoCaller) -> HttpResponse {
    match why {
        NoCaller::SignIn => with_cookies(
            see_other("/console/sign-in"),
            [Some(session::removal(req, session::SESSION_COOKIE))],
        ),
        NoCaller::Csrf => csrf_refused(req),
        NoCaller::Refused(e) => error_page(None, &e),
    }
}

/// An error from a service as a page with the same status the API would answer; 5xx details stay opaque.
fn error_page(chrome: Option<&Chrome<'_>>, e: &AppError) -> HttpResponse {
    let status = e.kind().status();
    let (title, text) = if status.is_server_error() {
        (
            "Something went wrong",
            "The service could not complete this request; try again later.".to_owned(),
        )
    } else {
        let mut text = e.detail().to_owned();
        for f in e.errors() {
            text.push_str(&format!(" {}: {}.", f.field, f.message));
        }
        (e.kind().title(), text)
    };
    html(status, pages::message(chrome, title, &text))
}

// ---- sign in / out ----

#[derive(Deserialize)]
struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn sign_in_page(req: HttpRequest) -> HttpResponse {
    let (csrf, cookie) = csrf_for(&req);
    with_cookies(html(StatusCode::OK, pages::sign_in(&csrf, "", None)), [cookie])
}

/// Signs in through `identity::service::login` (throttling, lockout, password checks, audit), under the same
/// per-address rate limit as `POST /api/v1/auth/login`.
async fn sign_in(req: HttpRequest, state: web::Data<AppState>, form: Form<SignInForm>) -> HttpResponse {
    let form = form.into_inner();
    if !session::sign_in_csrf_matches(&req, &form.csrf) {
        return csrf_refused(&req);
    }
    let meta = session::request_meta(&req);
    let client = meta.client_addr.clone().unwrap_or_default();
    let (csrf, _) = csrf_for(&req);
    if let Err(wait) = state.auth.limiter.check(&client) {
        let text = format!("Too many sign-in requests from this address; retry in {wait} seconds.");
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(&csrf, &form.username, Some(&text)),
        );
    }
    let input = LoginRequest {
        username: form.username.clone(),
        password: form.password,
    };
    let s = state.clone();
    let result = crate::telemetry::blocking(move || identity::login(&s.pool, &s.auth, &input, &meta)).await;
    match result {
        // The session gets its own CSRF token, kept in its row: the sign-in form's token is done with.
        Ok(tokens) => match session::start(&req, &state, tokens).await {
            Ok(cookie) => with_cookies(
                see_other("/console/tasks"),
                [Some(cookie), Some(session::removal(&req, session::CSRF_COOKIE))],
            ),
            Err(e) => error_page(None, &e),
        },
        Err(e) => {
            let status = e.kind().status();
            let text = if status.is_server_error() {
                "The service could not sign you in now; try again later.".to_owned()
            } else {
                e.detail().to_owned()
            };
            html(status, pages::sign_in(&csrf, &form.username, Some(&text)))
        }
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Ends the console session and the sign-in under it (`identity::service::logout` revokes the refresh-token
/// family) and forgets the cookies. The form must carry the session's CSRF token.
async fn sign_out(req: HttpRequest, state: web::Data<AppState>, form: Form<CsrfOnly>) -> HttpResponse {
    match session::authorize_form(&req, &state, TASKS_ROUTE.0, TASKS_ROUTE.1, None, &form.csrf).await {
        // Already ended (or never begun): nothing to end but the cookies.
        Ok(_) | Err(NoCaller::SignIn) => {}
        Err(why) => return no_caller(&req, why),
    }
    if let Err(e) = session::end(&req, &state).await {
        return error_page(None, &e);
    }
    with_cookies(
        see_other("/console/sign-in"),
        [
            Some(session::removal(&req, session::SESSION_COOKIE)),
            Some(session::removal(&req, session::CSRF_COOKIE)),
        ],
    )
}

// ---- pages ----

/// Runs a service call for an authorized caller on the blocking pool.
/// Tasks shown on the console's task page.
const CONSOLE_TASKS_PAGE: u32 = 200;

async fn call<T, F>(state: &web::Data<AppState>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut crate::db::DbConn) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let s = state.clone();
    crate::telemetry::blocking(move || {
        let mut conn = s.pool.get()?;
        f(&mut conn)
    })
    .await
}

/// A console page that reads: authorized by the policy line of the API route it stands for, loaded through
/// service functions with the caller on a pooled connection, drawn by `draw`; a refusal or a service error is
/// the matching error page. The one shape of every reading page, so none can skip the policy or the cookies.
async fn read_page<T, L, D>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    route: (&str, &str),
    load: L,
    draw: D,
) -> HttpResponse
where
    T: Send + 'static,
    L: FnOnce(&mut crate::db::DbConn, &crate::access::Actor) -> Result<T, AppError> + Send + 'static,
    D: FnOnce(&Chrome<'_>, T) -> Markup,
{
    let Caller { actor, renewed, .. } = match session::authorize(req, state, route.0, route.1, None).await {
        Ok(c) => c,
        Err(why) => return no_caller(req, why),
    };
    let (csrf, csrf_cookie) = csrf_for(req);
    let username = actor.username.clone();
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    let res = match call(state, move |conn| load(conn, &actor)).await {
        Ok(loaded) => html(StatusCode::OK, draw(&chrome, loaded)),
        Err(e) => error_page(Some(&chrome), &e),
    };
    with_cookies(res, [renewed, csrf_cookie])
}

/// A console form that writes: authorized by the policy line of the API route it stands for and the session's
/// CSRF token, performed through a service function with the caller (bad input is an `AppError` from `write`),
/// then a redirect to the page `done` names from the result and the hat acted in; a refusal or an error is the
/// matching error page. The one shape of the forms that write.
async fn write_form<T, W, R>(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    route: (&str, &str),
    form_csrf: &str,
    write: W,
    done: R,
) -> HttpResponse
where
    T: Send + 'static,
    W: FnOnce(&mut crate::db::DbConn, &crate::access::Actor) -> Result<T, AppError> + Send + 'static,
    R: FnOnce(T, &str) -> String,
{
    let Caller { actor, renewed, .. } =
        match session::authorize_form(req, state, route.0, route.1, None, form_csrf).await {
            Ok(c) => c,
            Err(why) => return no_caller(req, why),
        };
    let (csrf, csrf_cookie) = csrf_for(req);
    let username = actor.username.clone();
    let hat = actor.hat().map(Hat::as_str).unwrap_or_default();
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    let res = match call(state, move |conn| write(conn, &actor)).await {
        Ok(out) => see_other(&done(out, hat)),
        Err(e) => error_page(Some(&chrome), &e),
    };
    with_cookies(res, [renewed, csrf_cookie])
}

/// "My tasks": `read_models::tasks::my_tasks`, the read model behind `GET /api/v1/me/tasks`.
async fn my_tasks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let caller = match session::authorize(&req, &state, TASKS_ROUTE.0, TASKS_ROUTE.1, None).await {
        Ok(c) => c,
        Err(why) => return no_caller(&req, why),
    };
    let (csrf, csrf_cookie) = csrf_for(&req);
    let Caller { actor, renewed, .. } = caller;
    let username = actor.username.clone();
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    // The first page (the API's largest): overdue first, so what is late is always on it.
    let res = match call(&state, move |conn| {
        tasks::my_tasks(conn, &actor, None, CONSOLE_TASKS_PAGE)
    })
    .await
    {
        Ok((list, _more)) => html(StatusCode::OK, pages::tasks(&chrome, &list)),
        Err(e) => error_page(Some(&chrome), &e),
    };
    with_cookies(res, [renewed, csrf_cookie])
}

#[derive(Deserialize)]
struct ProposalQuery {
    hat: Option<String>,
    done: Option<String>,
}

/// The decision brief (`approval::service::brief`, as `GET /api/v1/proposals/{id}/brief`) read in the hat
/// named by `?hat=`, with the decision form.
async fn proposal(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Query<ProposalQuery>,
) -> HttpResponse {
    let id = id.into_inner();
    let ProposalQuery { hat, done } = query.into_inner();
    let caller = match session::authorize(&req, &state, BRIEF_ROUTE.0, BRIEF_ROUTE.1, hat.clone()).await {
        Ok(c) => c,
        Err(NoCaller::Refused(e)) if e.kind() == ErrorKind::BadRequest && hat.is_none() => {
            // Several hats may read it and none was named: let the reader choose (what they see can differ).
            return choose_hat(&req, &state, &id).await;
        }
        Err(why) => return no_caller(&req, why),
    };
    let (csrf, csrf_cookie) = csrf_for(&req);
    let Caller { actor, renewed, .. } = caller;
    let username = actor.username.clone();
    let read_as = actor.hat();
    let deciding_hats: Vec<Hat> = held_hats_permitting(&actor.grants, Action::ApprovalDecide);
    let may_answer = !held_hats_permitting(&actor.grants, Action::ConsultationRespond).is_empty();
    let organization_id = actor.organization_id.clone();
    let powers = flags::Powers::of(&actor);
    let loaded = call(&state, move |conn| {
        let id = ProposalId::from(id);
        let brief = decision_brief(conn, &actor, &id)?;
        let steps = approval::get_approval(conn, &actor, &id)?;
        Ok((brief, steps))
    })
    .await;
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    let res = match (loaded, read_as) {
        (Ok((brief, steps)), Some(read_as)) => {
            // The answer form only for a consultee whose organisation is asked and has not answered; the service
            // decides again when the answer comes.
            let answering = may_answer
                && brief.consultation.iter().any(|c| {
                    c.organization_id == organization_id
                        && c.status == crate::domain::status::ConsulteeStatus::Pending
                });
            let form = pages::DecisionForm {
                csrf: &csrf,
                deciding_hats,
                answering,
                powers,
            };
            let notice = done.as_deref().and_then(|d| match d {
                "approve" => Some("Your approval is recorded."),
                "return" => Some("The proposal is returned to the submitter."),
                "reject" => Some("The proposal is rejected."),
                "answered" => Some("Your consultation answer is recorded."),
                "flag" => Some("The flag is ended."),
                "submitted" => Some("The proposal is submitted."),
                "revising" => Some("A new draft version is open for your revision."),
                _ => None,
            });
            html(
                StatusCode::OK,
                pages::proposal(&chrome, &brief, &steps, read_as, &form, notice),
            )
        }
        (Err(e), _) => error_page(Some(&chrome), &e),
        (Ok(_), None) => error_page(Some(&chrome), &AppError::forbidden("No hat resolved.")),
    };
    with_cookies(res, [renewed, csrf_cookie])
}

/// The caller's valid hats that the policy table lets take `action` (for the hat select and the chooser).
fn held_hats_permitting(grants: &[crate::access::HatGrant], action: Action) -> Vec<Hat> {
    let mut hats: Vec<Hat> = grants
        .iter()
        .map(|g| g.hat)
        .filter(|h| action.permits(*h))
        .collect();
    hats.sort();
    hats.dedup();
    hats
}

async fn choose_hat(req: &HttpRequest, state: &web::Data<AppState>, id: &str) -> HttpResponse {
    // Authenticated for the tasks route (any signed-in caller), then the policy says which hats may read.
    let caller = match session::authorize(req, state, TASKS_ROUTE.0, TASKS_ROUTE.1, None).await {
        Ok(c) => c,
        Err(why) => return no_caller(req, why),
    };
    let now = crate::features::audit::now_micros();
    let hats = match resolve_hat(Action::ApprovalRead, &caller.actor.grants, None, now) {
        Err(HatResolution::Ambiguous(candidates)) => candidates,
        _ => held_hats_permitting(&caller.actor.grants, Action::ApprovalRead),
    };
    let (csrf, csrf_cookie) = csrf_for(req);
    let chrome = Chrome {
        username: &caller.actor.username,
        csrf: &csrf,
    };
    with_cookies(
        html(StatusCode::OK, pages::choose_hat(&chrome, id, &hats)),
        [caller.renewed, csrf_cookie],
    )
}

#[derive(Deserialize)]
struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hat: String,
    decision: Option<String>,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    conditions: String,
    acknowledge: Option<String>,
    #[serde(default)]
    version: String,
}

/// The sentence recorded as the multi-hat acknowledgement when the box is ticked.
const ACKNOWLEDGEMENT: &str = "Acknowledged in the console: I decided an earlier step of this proposal in another hat and decide again in this one.";

/// Records a decision through `approval::service::decide`, as `POST …/decision` with `Acting-Hat` set to the
/// chosen hat and `If-Match` to the version the page showed.
async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: Form<DecisionForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (id, step_id) = path.into_inner();
    let hat = Some(form.hat.clone()).filter(|h| !h.trim().is_empty());
    let caller =
        match session::authorize_form(&req, &state, DECIDE_ROUTE.0, DECIDE_ROUTE.1, hat, &form.csrf).await {
            Ok(c) => c,
            Err(why) => return no_caller(&req, why),
        };
    let Caller { actor, renewed, .. } = caller;
    let username = actor.username.clone();
    let acting = actor.hat();
    let (csrf, csrf_cookie) = csrf_for(&req);
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    let decision = match form.decision.as_deref() {
        Some("approve") => Decision::Approve,
        Some("return") => Decision::Return,
        Some("reject") => Decision::Reject,
        _ => {
            let e = AppError::invalid_field("decision", "choose approve, return or reject");
            return with_cookies(error_page(Some(&chrome), &e), [renewed, csrf_cookie]);
        }
    };
    let Ok(expected) = form.version.trim().parse::<i64>() else {
        let e = AppError::precondition_required("The form lost the proposal's version; reload the page.");
        return with_cookies(error_page(Some(&chrome), &e), [renewed, csrf_cookie]);
    };
    let input = DecisionInput {
        decision,
        comment: Some(form.comment),
        conditions: Some(form.conditions),
        multi_hat_acknowledgement: form
            .acknowledge
            .filter(|v| v == "yes")
            .map(|_| ACKNOWLEDGEMENT.to_owned()),
    };
    let pid = ProposalId::from(id.as_str());
    let decided = call(&state, move |conn| {
        approval::decide(conn, &actor, &pid, &step_id.into(), expected, &input)
    })
    .await;
    let res = match decided {
        Ok(_) => {
            let hat = acting.map(|h| h.as_str()).unwrap_or_default();
            see_other(&format!(
                "/console/proposals/{id}?hat={hat}&done={}",
                decision.as_str()
            ))
        }
        Err(e) => error_page(Some(&chrome), &e),
    };
    with_cookies(res, [renewed, csrf_cookie])
}

#[derive(Deserialize)]
struct AnswerForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    flag_category: String,
    #[serde(default)]
    flag_severity: String,
    #[serde(default)]
    flag_description: String,
    #[serde(default)]
    flag_note: String,
    #[serde(default)]
    flag2_category: String,
    #[serde(default)]
    flag2_severity: String,
    #[serde(default)]
    flag2_description: String,
    #[serde(default)]
    flag2_note: String,
    #[serde(default)]
    flag3_category: String,
    #[serde(default)]
    flag3_severity: String,
    #[serde(default)]
    flag3_description: String,
    #[serde(default)]
    flag3_note: String,
}

/// A form value read as one of the API's enums (`no_objection`, `local_capacity`, …), by the same serde names.
fn enum_field<T: serde::de::DeserializeOwned>(field: &str, value: &str) -> Result<T, AppError> {
    serde_json::from_value(serde_json::Value::String(value.trim().to_owned()))
        .map_err(|_| AppError::invalid_field(field, format!("`{value}` is not one of the choices")))
}

impl AnswerForm {
    /// The same body `POST …/consultation/responses` takes, with up to three flags (empty slots are none).
    fn input(self) -> Result<ResponseInput, AppError> {
        let kind: ResponseKind = enum_field("kind", &self.kind)?;
        let slots = [
            (
                "flag",
                &self.flag_category,
                &self.flag_severity,
                &self.flag_description,
                &self.flag_note,
            ),
            (
                "flag2",
                &self.flag2_category,
                &self.flag2_severity,
                &self.flag2_description,
                &self.flag2_note,
            ),
            (
                "flag3",
                &self.flag3_category,
                &self.flag3_severity,
                &self.flag3_description,
                &self.flag3_note,
            ),
        ];
        let mut flags: Vec<FlagInput> = Vec::new();
        for (prefix, category, severity, description, note) in slots {
            flags.extend(flags::flag_slot(prefix, category, severity, description, note)?);
        }
        Ok(ResponseInput {
            kind,
            comment: Some(self.comment).filter(|c| !c.trim().is_empty()),
            flags,
        })
    }
}

/// Answers a consultation through `consultation::service::respond`, as `POST …/consultation/responses`.
async fn respond(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form<AnswerForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let id = id.into_inner();
    let caller =
        match session::authorize_form(&req, &state, RESPOND_ROUTE.0, RESPOND_ROUTE.1, None, &form.csrf).await
        {
            Ok(c) => c,
            Err(why) => return no_caller(&req, why),
        };
    let Caller { actor, renewed, .. } = caller;
    let username = actor.username.clone();
    let hat = actor.hat().map(|h| h.as_str()).unwrap_or_default();
    let (csrf, csrf_cookie) = csrf_for(&req);
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    let input = match form.input() {
        Ok(i) => i,
        Err(e) => return with_cookies(error_page(Some(&chrome), &e), [renewed, csrf_cookie]),
    };
    let pid = ProposalId::from(id.as_str());
    let answered = call(&state, move |conn| {
        consultation::respond(conn, &actor, &pid, &input)
    })
    .await;
    let res = match answered {
        Ok(_) => see_other(&format!("/console/proposals/{id}?hat={hat}&done=answered")),
        Err(e) => error_page(Some(&chrome), &e),
    };
    with_cookies(res, [renewed, csrf_cookie])
}
