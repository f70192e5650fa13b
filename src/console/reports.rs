//! Progress and completion reports (`/console/proposals/{id}/reports`): the list, the submitting unit's form
//! (`implementation::service::submit_report`, as `POST /api/v1/proposals/{id}/reports`) and the QIP officer's
//! accept / return (`implementation::service::decide_report`, as `POST /api/v1/reports/{id}/accept|return`).

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{Chrome, layout};
use super::{error_page, held_hats_permitting, read_page, write_form};
use crate::access::Action;
use crate::app::AppState;
use crate::domain::ids::ProposalId;
use crate::domain::proposal::Beneficiaries;
use crate::domain::status::ReportStatus;
use crate::error::{AppError, FieldError};
use crate::features::implementation::dto::{Handover, NewReport, Report, ReportDecision};
use crate::features::implementation::service as implementation;
use crate::http::extract::Form;
use crate::http::extract::Query;

const LIST_ROUTE: (&str, &str) = ("GET", "/api/v1/proposals/{id}/reports");
const SUBMIT_ROUTE: (&str, &str) = ("POST", "/api/v1/proposals/{id}/reports");
const ACCEPT_ROUTE: (&str, &str) = ("POST", "/api/v1/reports/{id}/accept");
const RETURN_ROUTE: (&str, &str) = ("POST", "/api/v1/reports/{id}/return");

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

/// The reports of a proposal, with the forms the caller's hats allow.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Query<ListQuery>,
) -> HttpResponse {
    let id = id.into_inner();
    let notice = query.done.as_deref().and_then(|d| match d {
        "submitted" => Some("Your report is submitted."),
        "accepted" => Some("The report is accepted."),
        "returned" => Some("The report is returned to the unit."),
        _ => None,
    });
    let pid = ProposalId::from(id.as_str());
    let load = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        let may_submit = !held_hats_permitting(&actor.grants, Action::ReportSubmit).is_empty();
        let may_decide = !held_hats_permitting(&actor.grants, Action::ReportDecide).is_empty();
        Ok((
            implementation::list_reports(conn, actor, &pid)?,
            may_submit,
            may_decide,
        ))
    };
    read_page(
        &req,
        &state,
        LIST_ROUTE,
        load,
        |chrome, (list, may_submit, may_decide)| {
            reports_page(chrome, &id, &list, may_submit, may_decide, notice)
        },
    )
    .await
}

fn report_row(r: &Report, csrf: &str, may_decide: bool) -> Markup {
    let text = |k: &str| r.content.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    html! {
        li class="report" {
            strong { (if r.kind == crate::domain::status::ReportKind::Completion { "Completion report" } else { "Progress report" }) }
            " · " (r.status) " · submitted " (r.submitted_at.format("%Y-%m-%d %H:%M UTC"))
            dl {
                @if let Some(n) = text("narrative") { dt { "Narrative" } dd { (n) } }
                @if let Some(p) = r.content.get("percent_complete") { dt { "Complete" } dd { (p) " %" } }
                @if let Some(e) = &r.expenditure_to_date { dt { "Spent to date" } dd { (e) } }
                @if let Some(b) = r.content.get("beneficiaries_reached") {
                    dt { "People reached" } dd {
                        "women " (b["women"]) ", men " (b["men"]) ", girls " (b["girls"]) ", boys " (b["boys"])
                    }
                }
                @if let Some(h) = r.content.get("handover") {
                    dt { "Handed over to" } dd { (h["local_authority"].as_str().unwrap_or("")) " on " (h["date"].as_str().unwrap_or("")) }
                    dt { "Maintenance" } dd { (h["maintenance"].as_str().unwrap_or("")) }
                }
                @if let Some(reason) = &r.decision_reason { dt { "Reason given" } dd { (reason) } }
            }
            @if may_decide && r.status == ReportStatus::Submitted {
                form method="post" class="stack" action=(format!("/console/reports/{}/decision", r.id)) {
                    input type="hidden" name="csrf" value=(csrf);
                    label for=(format!("reason-{}", r.id)) { "Reason (required to return it)" }
                    textarea id=(format!("reason-{}", r.id)) name="reason" rows="2" {}
                    div class="buttons" {
                        button type="submit" name="decision" value="accept" { "Accept the report" }
                        button type="submit" name="decision" value="return" class="secondary" { "Return it to the unit" }
                    }
                }
            }
        }
    }
}

fn submit_form(id: &str, csrf: &str) -> Markup {
    html! {
        section aria-labelledby="new-report" {
            h2 id="new-report" { "Submit a report" }
            form method="post" class="stack" action=(format!("/console/proposals/{id}/reports")) {
                input type="hidden" name="csrf" value=(csrf);
                fieldset {
                    legend { "Kind of report" }
                    label class="inline" { input type="radio" name="kind" value="progress" checked; " Progress report" }
                    label class="inline" { input type="radio" name="kind" value="completion"; " Completion report (the project is finished and handed over)" }
                }
                label for="narrative" { "What was done" }
                textarea id="narrative" name="narrative" rows="4" {}
                label for="expenditure_to_date" { "Spent to date (amount in the pool's currency, e.g. 1200.00)" }
                input id="expenditure_to_date" name="expenditure_to_date" type="text" inputmode="decimal" required;
                label for="percent_complete" { "Per cent complete (progress report)" }
                input id="percent_complete" name="percent_complete" type="number" min="0" max="100";
                fieldset {
                    legend { "Completion report only" }
                    label for="women" { "Women reached" }
                    input id="women" name="women" type="number" min="0";
                    label for="men" { "Men reached" }
                    input id="men" name="men" type="number" min="0";
                    label for="girls" { "Girls reached" }
                    input id="girls" name="girls" type="number" min="0";
                    label for="boys" { "Boys reached" }
                    input id="boys" name="boys" type="number" min="0";
                    label for="local_authority" { "Handed over to (local authority)" }
                    input id="local_authority" name="local_authority" type="text";
                    label for="handover_date" { "Handover date" }
                    input id="handover_date" name="handover_date" type="date";
                    label for="maintenance" { "Who maintains it" }
                    input id="maintenance" name="maintenance" type="text";
                }
                button type="submit" { "Submit the report" }
            }
        }
    }
}

fn reports_page(
    chrome: &Chrome<'_>,
    id: &str,
    list: &[Report],
    may_submit: bool,
    may_decide: bool,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Reports",
        Some(chrome),
        html! {
            p class="crumbs" { a href="/console/tasks" { "My tasks" } " › " a href=(format!("/console/proposals/{id}")) { "Proposal" } " › reports" }
            h1 { "Progress and completion reports" }
            @if let Some(n) = notice { p class="notice" role="status" { (n) } }
            @if list.is_empty() { p { "No report yet." } }
            ul class="tasks" { @for r in list { (report_row(r, chrome.csrf, may_decide)) } }
            @if may_submit { (submit_form(id, chrome.csrf)) }
        },
    )
}

#[derive(Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    narrative: String,
    #[serde(default)]
    expenditure_to_date: String,
    #[serde(default)]
    percent_complete: String,
    #[serde(default)]
    women: String,
    #[serde(default)]
    men: String,
    #[serde(default)]
    girls: String,
    #[serde(default)]
    boys: String,
    #[serde(default)]
    local_authority: String,
    #[serde(default)]
    handover_date: String,
    #[serde(default)]
    maintenance: String,
}

/// A whole number from a form field (empty is 0); bad text is a field error.
fn count(field: &str, value: &str, errors: &mut Vec<FieldError>) -> u32 {
    let v = value.trim();
    if v.is_empty() {
        return 0;
    }
    v.parse().unwrap_or_else(|_| {
        errors.push(FieldError::new(field, "must be a whole number, 0 or more"));
        0
    })
}

impl ReportForm {
    /// The body `POST …/reports` takes; the service checks the rest (required texts, amounts, state).
    fn input(&self) -> Result<NewReport, AppError> {
        let mut errors = Vec::new();
        let report = match self.kind.as_str() {
            "progress" => NewReport::Progress {
                narrative: self.narrative.clone(),
                percent_complete: count("percent_complete", &self.percent_complete, &mut errors),
                expenditure_to_date: self.expenditure_to_date.trim().to_owned(),
            },
            "completion" => {
                let date =
                    NaiveDate::parse_from_str(self.handover_date.trim(), "%Y-%m-%d").unwrap_or_else(|_| {
                        errors.push(FieldError::new("handover.date", "must be a date (YYYY-MM-DD)"));
                        NaiveDate::default()
                    });
                NewReport::Completion {
                    narrative: Some(self.narrative.clone()).filter(|n| !n.trim().is_empty()),
                    beneficiaries_reached: Beneficiaries {
                        women: count("women", &self.women, &mut errors),
                        men: count("men", &self.men, &mut errors),
                        girls: count("girls", &self.girls, &mut errors),
                        boys: count("boys", &self.boys, &mut errors),
                    },
                    handover: Handover {
                        local_authority: self.local_authority.clone(),
                        date,
                        maintenance: self.maintenance.clone(),
                    },
                    expenditure_to_date: self.expenditure_to_date.trim().to_owned(),
                }
            }
            _ => {
                return Err(AppError::invalid_field(
                    "kind",
                    "choose a progress or a completion report",
                ));
            }
        };
        if errors.is_empty() {
            Ok(report)
        } else {
            Err(AppError::validation(errors))
        }
    }
}

/// Submits a report through `implementation::service::submit_report` (same `report.submit` event).
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form<ReportForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let id = id.into_inner();
    let pid = ProposalId::from(id.as_str());
    let csrf = form.csrf.clone();
    let write = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        implementation::submit_report(conn, actor, &pid, &form.input()?)
    };
    write_form(&req, &state, SUBMIT_ROUTE, &csrf, write, |_, _| {
        format!("/console/proposals/{id}/reports?done=submitted")
    })
    .await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    reason: String,
}

/// Accepts or returns a report through `implementation::service::decide_report` (same `report.accept` /
/// `report.return` events), authorized by the policy line of the matching API route.
pub async fn decide(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    form: Form<DecisionForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let report_id = id.into_inner();
    let accept = match form.decision.as_str() {
        "accept" => true,
        "return" => false,
        _ => {
            let e = AppError::invalid_field("decision", "accept or return");
            return error_page(None, &e);
        }
    };
    let route = if accept { ACCEPT_ROUTE } else { RETURN_ROUTE };
    let input = ReportDecision {
        reason: Some(form.reason).filter(|r| !r.trim().is_empty()),
    };
    let write = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        let id = crate::domain::ids::ReportId::from(report_id.as_str());
        implementation::decide_report(conn, actor, &id, accept, &input)
    };
    write_form(&req, &state, route, &form.csrf, write, |r, _| {
        format!(
            "/console/proposals/{}/reports?done={}",
            r.proposal_id,
            if accept { "accepted" } else { "returned" }
        )
    })
    .await
}
