//! Builds the actix application (shared by `serve` and the tests): state, extractor limits, routes, Swagger
//! UI, the fallback and the request middleware; and the HTTP server around it.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::config::Settings;
use crate::db::{Backend, DbPool};
use crate::error::{FieldError, Problem};
use crate::features::identity::AuthRuntime;
use crate::features::ledger::group_commit::GroupCommit;
use crate::http::fallback::{RouteTable, fallback};
use crate::http::{configure_routes, extract};
use crate::metrics::Metrics;

/// Shared, read-only state of every worker.
pub struct AppState {
    pub pool: DbPool,
    pub backend: Backend,
    pub settings: Arc<Settings>,
    pub metrics: Metrics,
    pub openapi_json: String,
    pub routes: RouteTable,
    pub auth: AuthRuntime,
    /// Closed (503) while database migrations are pending (`serve --no-migrate`).
    pub schema_gate: crate::http::schema_gate::SchemaGate,
    /// Sees every response (the test suite's contract checks); `None` in service.
    pub response_tap: Option<crate::http::tap::ResponseTap>,
    /// Concurrent contributions written together (PostgreSQL; `ledger.group_commit_max`).
    pub group_commit: Arc<GroupCommit>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "qip-pool",
        description = "Joint funding pool for Quick Impact Projects: proposals, humanitarian consultation, \
                       approval under delegated authority, a double-entry ledger and a tamper-evident audit trail. \
                       Every error is RFC 9457 `application/problem+json` (schema `Problem`).",
        license(name = "Apache-2.0")
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every registered route, as generated (the served one is completed by
/// `http::openapi::document`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(configure_routes)
        .split_for_parts();
    doc
}

impl AppState {
    pub fn new(settings: Settings, pool: DbPool) -> Result<Self, String> {
        let doc = openapi();
        let routes = RouteTable::from_openapi(&doc);
        let openapi_json = serde_json::to_string_pretty(&crate::http::openapi::document(&doc, &settings))
            .unwrap_or_else(|_| "{}".into());
        let backend = Backend::from_url(settings.database.url.expose());
        let auth = AuthRuntime::new(&settings.auth)?;
        // The budget starts knowing the clients that signed in within the known-address period, as the database
        // remembers them: a restart during a flood does not shut the usual users out.
        crate::jobs::learn_known_clients(
            &pool,
            &auth.sign_in_budget,
            crate::features::audit::now_micros()
                - chrono::Duration::days(crate::domain::lockout::KNOWN_ADDRESS_DAYS),
        );
        let metrics = Metrics::new().map_err(|e| e.to_string())?;
        let group_commit = GroupCommit::new(
            settings.ledger.group_commit_max,
            settings.ledger.group_commit_writers,
        )
        .map_err(|e| e.to_string())?;
        for collector in group_commit.collectors() {
            metrics.register(collector).map_err(|e| e.to_string())?;
        }
        Ok(Self {
            pool,
            backend,
            settings: Arc::new(settings),
            metrics,
            auth,
            openapi_json,
            routes,
            schema_gate: Default::default(),
            response_tap: None,
            group_commit: Arc::new(group_commit),
        })
    }
}

/// Builds the HTTP server on an already-bound listener. SIGINT/SIGTERM stop it gracefully: the listener
/// closes and in-flight requests get `server.shutdown_timeout_secs` to finish.
pub fn build_server(state: web::Data<AppState>, listener: TcpListener) -> std::io::Result<Server> {
    build_server_with(state, listener, |_| {})
}

/// [`build_server`] with extra routes mounted beside the API (the test suite mounts probes of the shared
/// error plumbing this way; they are not part of the served API).
pub fn build_server_with(
    state: web::Data<AppState>,
    listener: TcpListener,
    extra_routes: fn(&mut web::ServiceConfig),
) -> std::io::Result<Server> {
    let server_settings = state.settings.server.clone();
    let (shutdown_secs, workers) = (server_settings.shutdown_timeout_secs, server_settings.workers);
    let mut server = HttpServer::new(move || {
        let (app, _) = App::new()
            .into_utoipa_app()
            .configure(configure_routes)
            .split_for_parts();
        app.app_data(state.clone())
            .app_data(extract::json_config(server_settings.json_limit_bytes))
            .app_data(extract::form_config())
            .app_data(extract::path_config())
            .app_data(extract::payload_config(server_settings.upload_limit_bytes))
            .configure(extra_routes)
            .configure(crate::console::configure)
            .route("/docs", web::get().to(redirect_to_docs))
            .service(SwaggerUi::new("/docs/{_:.*}").config(swagger_config()))
            .default_service(web::to(fallback))
            // Innermost first: authorization runs on the path the canonicalizer wrote, which the router
            // then matches; the request context (request id, problem bodies, metrics) wraps them all.
            .wrap(from_fn(crate::http::conditional::not_modified))
            .wrap(from_fn(crate::http::conditional::location_on_created))
            .wrap(from_fn(crate::http::authz::authorize))
            .wrap(from_fn(crate::http::schema_gate::require_current_schema))
            .wrap(from_fn(crate::http::canonical_path::canonicalize))
            .wrap(from_fn(crate::http::middleware::request_context))
            .wrap(from_fn(crate::http::tap::observe))
            // Outermost: gzip/brotli/zstd when the client asks (field offices are on satellite links).
            .wrap(actix_web::middleware::Compress::default())
    })
    .shutdown_timeout(shutdown_secs)
    .client_request_timeout(Duration::from_secs(30))
    .listen(listener)?;
    if workers > 0 {
        server = server.workers(workers);
    }
    Ok(server.run())
}

/// Swagger UI makes no request outside the service (no validator badge) and keeps the token across reloads.
fn swagger_config() -> SwaggerConfig<'static> {
    SwaggerConfig::new(["/api/v1/openapi.json"])
        .validator_url("none")
        .persist_authorization(true)
        .try_it_out_enabled(true)
}

/// `/docs` → `/docs/`, where Swagger UI is served.
async fn redirect_to_docs() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header((actix_web::http::header::LOCATION, "/docs/"))
        .finish()
}
