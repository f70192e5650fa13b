//! HTTP routes of data exchange: the pool's IATI activity file, the HXL CSV exports (streamed page by page),
//! and the pool report (JSON or HXL CSV).

use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use super::csv_safe;
use super::report::{self, PoolReport, ReportQuery};
use super::service::{self, CsvPage};
use crate::access::Actor;
use crate::app::AppState;
use crate::db::DbConn;
use crate::domain::ids::PoolId;
use crate::error::{AppResult, Problem};
use crate::features::ledger::service::PoolRef;
use crate::http::extract::Query;
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(iati_activities)
        .service(proposals_csv)
        .service(transactions_csv)
        .service(activities_csv)
        .service(pool_report);
}

const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";

type PageFn = Arc<dyn Fn(&mut DbConn, Option<&str>) -> AppResult<CsvPage> + Send + Sync>;

/// A CSV body streamed page by page: the HXL head, then one keyset page at a time, each fetched on the
/// blocking pool when the client is ready for it, so memory stays flat however many rows there are.
fn csv_stream(state: web::Data<AppState>, head: Vec<u8>, filename: &str, fetch: PageFn) -> HttpResponse {
    let body = futures_util::stream::unfold(Some((Some(head), None::<String>)), move |step| {
        let (state, fetch) = (state.clone(), fetch.clone());
        async move {
            let (head, cursor) = step?;
            let page = with_conn(&state, move |conn, _| fetch(conn, cursor.as_deref())).await;
            match page {
                Ok(page) => {
                    let mut bytes = head.unwrap_or_default();
                    bytes.extend(page.bytes);
                    let next = page.next.map(|n| (None, Some(n)));
                    Some((Ok::<_, actix_web::Error>(Bytes::from(bytes)), next))
                }
                Err(e) => {
                    tracing::error!(error = %e, "CSV export stopped");
                    Some((Err(actix_web::Error::from(e)), None))
                }
            }
        }
    });
    HttpResponse::Ok()
        .content_type(CSV_CONTENT_TYPE)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .streaming(body)
}

/// The pool's IATI 2.03 activity file: the fund as parent activity with its contributions, each project from
/// approval onward as a child activity (mapping in docs/EXCHANGE.md). Publishable data: no confidential notes,
/// flag texts or people's names.
#[utoipa::path(
    tag = "exchange",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Pool id")),
    responses(
        (status = 200, description = "IATI 2.03 `iati-activities` XML", body = String, content_type = "application/xml"),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/pools/{id}/exports/iati-activities.xml")]
async fn iati_activities(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let pool_id = PoolId::from(id.into_inner());
    let xml = with_conn(&state, move |conn, s| {
        service::iati_activities(conn, &s.settings.exchange, &pool_id)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/xml; charset=utf-8")
        .body(xml))
}

async fn load_pool(state: &web::Data<AppState>, pool_id: PoolId) -> AppResult<PoolRef> {
    with_conn(state, move |conn, _| PoolRef::load(conn, &pool_id)).await
}

/// The pool's proposals (all but drafts) as HXL-tagged CSV: reference, title, organisation, sector, adm1/adm2
/// codes and names, planned dates, state, requested/committed/disbursed/refunded, beneficiaries targeted and
/// reached by sex and age. Streamed; cells a spreadsheet would evaluate are neutralised.
#[utoipa::path(
    tag = "exchange",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Pool id")),
    responses(
        (status = 200, description = "Header row, HXL hashtag row, one row per proposal", body = String, content_type = "text/csv"),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/pools/{id}/exports/proposals.csv")]
async fn proposals_csv(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let pool = load_pool(&state, PoolId::from(id.into_inner())).await?;
    let fetch: PageFn = Arc::new(move |conn, after| service::proposals_csv_page(conn, &pool, after));
    Ok(csv_stream(
        state,
        csv_safe::hxl_head(&service::PROPOSAL_COLUMNS),
        "proposals.csv",
        fetch,
    ))
}

/// The pool's ledger transactions as HXL-tagged CSV, oldest first, with the IATI transaction type and the
/// amount signed as IATI reports it (refunds and releases negative). Streamed.
#[utoipa::path(
    tag = "exchange",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Pool id")),
    responses(
        (status = 200, description = "Header row, HXL hashtag row, one row per transaction", body = String, content_type = "text/csv"),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/pools/{id}/exports/transactions.csv")]
async fn transactions_csv(
    state: web::Data<AppState>,
    _actor: Actor,
    id: web::Path<String>,
) -> AppResult<HttpResponse> {
    let pool = load_pool(&state, PoolId::from(id.into_inner())).await?;
    let fetch: PageFn = Arc::new(move |conn, after| service::transactions_csv_page(conn, &pool, after));
    Ok(csv_stream(
        state,
        csv_safe::hxl_head(&service::TRANSACTION_COLUMNS),
        "transactions.csv",
        fetch,
    ))
}

/// The 3W registry as HXL-tagged CSV, in the shape `POST /activities/import` takes back (re-importing it
/// changes nothing). Streamed.
#[utoipa::path(
    tag = "exchange",
    security(("bearer" = [])),
    responses((status = 200, description = "Header row, HXL hashtag row, one row per activity", body = String, content_type = "text/csv"))
)]
#[get("/activities/exports/3w.csv")]
async fn activities_csv(state: web::Data<AppState>, _actor: Actor) -> AppResult<HttpResponse> {
    let fetch: PageFn = Arc::new(service::activities_csv_page);
    Ok(csv_stream(
        state,
        csv_safe::hxl_head(&service::ACTIVITY_COLUMNS),
        "3w.csv",
        fetch,
    ))
}

fn wants_csv(req: &HttpRequest, format: Option<&str>) -> bool {
    match format {
        Some(f) => f.eq_ignore_ascii_case("csv"),
        None => req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/csv")),
    }
}

/// The pool report of a period: proposals and money by state, sector, adm1 and submitting organisation;
/// contributed, committed, released, disbursed and refunded (each equal to the statement's movement for the
/// same `from`/`to`); beneficiaries targeted and reached; consultation outcomes; flags by category; approval
/// turnaround per step and hat. JSON, or HXL CSV with `format=csv` or `Accept: text/csv`.
#[utoipa::path(
    tag = "exchange",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Pool id"), ReportQuery),
    responses(
        (status = 200, description = "JSON; or `text/csv` (HXL) when asked", content((PoolReport = "application/json"), (String = "text/csv"))),
        (status = 404, description = "No such pool", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`to` before `from`, or an unknown `format`", body = Problem, content_type = "application/problem+json")
    )
)]
#[get("/pools/{id}/report")]
async fn pool_report(
    state: web::Data<AppState>,
    _actor: Actor,
    req: HttpRequest,
    id: web::Path<String>,
    query: Query<ReportQuery>,
) -> AppResult<HttpResponse> {
    let query = query.into_inner();
    if let Some(f) = query.format.as_deref() {
        if !f.eq_ignore_ascii_case("csv") && !f.eq_ignore_ascii_case("json") {
            return Err(crate::error::AppError::invalid_field(
                "format",
                "must be json or csv",
            ));
        }
    }
    let csv = wants_csv(&req, query.format.as_deref());
    let pool_id = PoolId::from(id.into_inner());
    let (from, to) = (query.from, query.to);
    let report = with_conn(&state, move |conn, _| {
        report::pool_report(conn, &pool_id, from, to)
    })
    .await?;
    if csv {
        Ok(HttpResponse::Ok()
            .content_type(CSV_CONTENT_TYPE)
            .body(report::report_csv(&report)))
    } else {
        Ok(HttpResponse::Ok().json(report))
    }
}
