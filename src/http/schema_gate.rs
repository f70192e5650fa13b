//! The gate in front of the API while the database schema is behind the binary (`serve --no-migrate` with
//! pending migrations): API requests get a retryable 503 naming the fix instead of a 500 from a missing
//! table. Once the migrations are current the gate stays open for good (they never go backwards).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::app::AppState;
use crate::error::AppError;

/// How often a closed gate looks again (an operator may run `qip-pool migrate` beside the server).
const RECHECK_EVERY: Duration = Duration::from_secs(2);

/// Whether the schema is known to be current, and when a pending schema was last checked.
#[derive(Debug, Default)]
pub struct SchemaGate {
    current: AtomicBool,
    last_check: Mutex<Option<(Instant, bool)>>,
}

impl SchemaGate {
    /// Current or not, checking the database at most every [`RECHECK_EVERY`].
    fn is_current(&self, state: &AppState) -> bool {
        if self.current.load(Ordering::Relaxed) {
            return true;
        }
        let Ok(mut last) = self.last_check.lock() else {
            return false;
        };
        if let Some((at, pending)) = *last {
            if at.elapsed() < RECHECK_EVERY {
                return !pending;
            }
        }
        let pending = state
            .pool
            .get()
            .ok()
            .and_then(|mut conn| crate::db::has_pending_migrations(&mut conn).ok())
            .unwrap_or(true);
        *last = Some((Instant::now(), pending));
        if !pending {
            self.current.store(true, Ordering::Relaxed);
        }
        !pending
    }
}

/// Answers API requests with 503 while migrations are pending; probes, metrics, the document and the docs
/// stay served.
pub async fn require_current_schema(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let gated = req.path().starts_with("/api/") && req.path() != "/api/v1/openapi.json";
    let state = req.app_data::<web::Data<AppState>>().cloned();
    if let (true, Some(state)) = (gated, state) {
        let open = state.schema_gate.current.load(Ordering::Relaxed) || {
            let probe = state.clone();
            crate::telemetry::blocking(move || Ok(probe.schema_gate.is_current(&probe)))
                .await
                .unwrap_or(false)
        };
        if !open {
            return Ok(req.error_response(AppError::retryable(
                "The database schema is behind this version of the service (started with --no-migrate); \
                 an operator must run `qip-pool migrate`.",
            )));
        }
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}
