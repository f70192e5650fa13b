//! The HTTP layer: route registration, the request middleware, extractor error mapping, the fallback that
//! answers unknown routes and wrong methods, and the operational endpoints.

pub mod extract;
pub mod fallback;
pub mod middleware;
pub mod ops;
pub mod pagination;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Registers every route of the service. Routes registered here (and only here) appear in the OpenAPI
/// document, which is generated from these same registrations.
pub fn configure_routes(cfg: &mut ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(scope::scope("/api/v1").service(ops::openapi_json));
}
