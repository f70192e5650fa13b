//! HTTP routes of reference data: `/areas`, `/areas/import` (CSV), `/sectors`.

use actix_web::{HttpRequest, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::repo::{Area, Sector};
use super::service::{self, ImportSummary};
use crate::access::Actor;
use crate::app::AppState;
use crate::error::{AppResult, Problem};
use crate::http::extract::Query;
use crate::http::pagination::{Page, PageQuery};
use crate::http::with_conn;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(import_areas)
        .service(list_areas)
        .service(list_sectors);
}

/// Import a COD-style gazetteer (`text/csv`) of at most `imports.max_rows` rows: all rows or none; every faulty
/// line is listed in `errors` (the first 100, with `errors_total`).
#[utoipa::path(
    tag = "reference",
    security(("bearer" = [])),
    request_body(content = String, content_type = "text/csv", description = "ADM1_PCODE,ADM1_EN,ADM2_PCODE,ADM2_EN[,ADM3_PCODE,ADM3_EN][,LAT,LON]; names in any COD language column (ADM1_FR, …); an HXL row under the header is allowed; comma, semicolon or tab; UTF-8 or Latin-1"),
    responses(
        (status = 200, body = ImportSummary),
        (status = 413, description = "More data rows than `imports.max_rows` (named in `max_rows`); nothing written", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not text/csv", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Faulty lines, each named (the first 100, with `errors_total`)", body = Problem, content_type = "application/problem+json")
    )
)]
#[post("/areas/import")]
async fn import_areas(
    state: web::Data<AppState>,
    actor: Actor,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<web::Json<ImportSummary>> {
    crate::http::extract::require_csv(&req, "gazetteer")?;
    with_conn(&state, move |conn, s| {
        service::import_areas(conn, &actor, &body, s.settings.imports.max_rows)
    })
    .await
    .map(web::Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AreaFilter {
    /// Only the adm2 areas of this adm1 P-code.
    adm1: Option<String>,
    /// 1, 2 or 3.
    level: Option<i32>,
}

/// Admin areas by P-code.
#[utoipa::path(
    tag = "reference",
    security(("bearer" = [])),
    params(PageQuery, AreaFilter),
    responses((status = 200, body = Page<Area>))
)]
#[get("/areas")]
async fn list_areas(
    state: web::Data<AppState>,
    _actor: Actor,
    page: Query<PageQuery>,
    filter: Query<AreaFilter>,
) -> AppResult<web::Json<Page<Area>>> {
    let req = page.resolve::<String>(&state.settings.server)?;
    let filter = filter.into_inner();
    let rows = with_conn(&state, move |conn, _| {
        service::list_areas(
            conn,
            filter.adm1.as_deref(),
            filter.level,
            req.after.as_deref(),
            req.limit,
        )
    })
    .await?;
    Ok(web::Json(Page::from_rows(rows, req.limit, |a| a.pcode.clone())))
}

/// The sector code list: IASC clusters (IATI vocabulary 10) and QIP sectors.
#[utoipa::path(tag = "reference", security(("bearer" = [])), responses((status = 200, body = Vec<Sector>)))]
#[get("/sectors")]
async fn list_sectors(state: web::Data<AppState>, _actor: Actor) -> AppResult<web::Json<Vec<Sector>>> {
    with_conn(&state, |conn, _| service::list_sectors(conn))
        .await
        .map(web::Json)
}
