//! The HTTP layer: route registration, the request middleware, extractor error mapping, the fallback that
//! answers unknown routes and wrong methods, and the operational endpoints.

pub mod authz;
pub mod canonical_path;
pub mod client_addr;
pub mod conditional;
pub mod extract;
pub mod fallback;
pub mod middleware;
pub mod openapi;
pub mod ops;
pub mod pagination;
pub mod preconditions;
pub mod problems;
pub mod schema_gate;
pub mod tap;

use actix_web::web;
use utoipa_actix_web::scope;

use crate::app::AppState;
use crate::db::DbConn;
use crate::error::AppResult;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route of the service. Routes registered here (and only here) appear in the OpenAPI
/// document, which is generated from these same registrations.
pub fn configure_routes(cfg: &mut ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(problems::problem_page)
        .service(
            scope::scope("/api/v1")
                .service(ops::openapi_json)
                .configure(crate::features::identity::routes::configure)
                .configure(crate::features::audit::routes::configure)
                .configure(crate::features::reference::routes::configure)
                .configure(crate::features::pools::routes::configure)
                .configure(crate::features::proposals::routes::configure)
                .configure(crate::features::ledger::routes::configure)
                .configure(crate::features::consultation::routes::configure)
                .configure(crate::features::approval::routes::configure)
                .configure(crate::features::implementation::routes::configure)
                .configure(crate::features::exchange::routes::configure)
                .configure(crate::features::notifications::routes::configure),
        );
}

/// Runs a service call on the blocking pool with a pooled connection (handlers stay one line): the one the
/// request's authorization checked out when it handed it on, else a fresh checkout.
pub async fn with_conn<T, F>(state: &web::Data<AppState>, f: F) -> AppResult<T>
where
    F: FnOnce(&mut DbConn, &AppState) -> AppResult<T> + Send + 'static,
    T: Send + 'static,
{
    let state = state.clone();
    let handed = authz::take_handed_conn();
    crate::telemetry::blocking(move || {
        let mut conn = match handed {
            Some(conn) => conn,
            None => state.pool.get()?,
        };
        f(&mut conn, &state)
    })
    .await
}
