//! The submitting unit's actions on its proposal page: submit the current draft, start a revision of a flagged
//! proposal — through `proposals::service::submit_proposal` / `revise_proposal` (the workflow's checks and
//! events, as `POST /api/v1/proposals/{id}/submit|revise` with `If-Match` from the page's version) — and the
//! page's links to the proposal's history and reports — and the list of proposals the caller may read
//! (`/console/proposals`, as `GET /api/v1/proposals`), where a unit finds its drafts.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::flags::Powers;
use super::pages::Chrome;
use super::pages::layout;
use super::{error_page, read_page, write_form};
use crate::app::AppState;
use crate::domain::ids::ProposalId;
use crate::domain::lifecycle::State;
use crate::error::AppError;
use crate::features::proposals::dto::{ProposalQuery, ProposalSummary};
use crate::features::proposals::service as proposals;
use crate::http::extract::Form;
use crate::http::extract::Query;

const LIST_ROUTE: (&str, &str) = ("GET", "/api/v1/proposals");
/// Proposals listed on the console's page (the newest; the API pages further).
const LIST_PAGE: u32 = 100;

#[derive(Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

/// The proposals the caller may read (the service applies the scope: a unit sees its own), newest first.
pub async fn list(req: HttpRequest, state: web::Data<AppState>, query: Query<ListQuery>) -> HttpResponse {
    let filter = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(ProposalQuery::default()),
        Some(s) => super::enum_field::<State>("state", s).map(|st| ProposalQuery {
            state: Some(st),
            ..ProposalQuery::default()
        }),
    };
    let load = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        proposals::list_proposals(conn, actor, &filter?, None, LIST_PAGE)
    };
    read_page(&req, &state, LIST_ROUTE, load, |chrome, list| {
        list_page(chrome, &list)
    })
    .await
}

fn list_page(chrome: &Chrome<'_>, list: &[ProposalSummary]) -> Markup {
    layout(
        "Proposals",
        Some(chrome),
        html! {
            h1 { "Proposals" }
            @if list.is_empty() { p { "No proposal is visible to you." } }
            ul class="tasks" {
                @for p in list {
                    li class="task" {
                        a href=(format!("/console/proposals/{}", p.id)) {
                            (p.reference.as_deref().unwrap_or("(draft)")) " — " (p.title)
                        }
                        div class="meta" {
                            "State: " strong { (p.state) }
                            @if let Some(a) = &p.requested_amount { " · " (a) }
                            @if let Some(adm1) = &p.adm1_pcode { " · " (adm1) }
                        }
                    }
                }
            }
        },
    )
}

/// The unit's buttons for a proposal in `state` (shown to a submitter; the workflow decides on submission),
/// and links to the history and reports pages.
pub fn actions(proposal_id: &str, state: State, version: i64, csrf: &str, powers: &Powers) -> Markup {
    let submittable = matches!(state, State::Draft);
    let revisable = matches!(state, State::Flagged);
    html! {
        nav class="page-links" aria-label="About this proposal" {
            @if powers.reads_history {
                a href=(format!("/console/proposals/{proposal_id}/history")) { "History (audit trail)" }
            }
            a href=(format!("/console/proposals/{proposal_id}/reports")) { "Reports" }
            a href=(format!("/console/proposals/{proposal_id}/tranches")) { "Tranches and payments" }
        }
        @if powers.submits && (submittable || revisable) {
            section aria-labelledby="unit-actions" {
                h2 id="unit-actions" { "Your unit's next step" }
                @if submittable {
                    form method="post" class="stack" action=(format!("/console/proposals/{proposal_id}/submit")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="version" value=(version);
                        p { "Submitting checks the proposal against the pool's rules and opens the consultation." }
                        button type="submit" { "Submit this proposal" }
                    }
                }
                @if revisable {
                    form method="post" class="stack" action=(format!("/console/proposals/{proposal_id}/revise")) {
                        input type="hidden" name="csrf" value=(csrf);
                        input type="hidden" name="version" value=(version);
                        p { "A flag stops this proposal. Revising opens a new draft; on the next submission the flags' raisers confirm whether it resolves them." }
                        button type="submit" { "Revise this proposal" }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct VersionForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: String,
}

/// `submit` or `revise` (from the path) through the proposals service, authorized by the API route's line.
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: Form<VersionForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (id, what) = path.into_inner();
    let (submit, template) = match what.as_str() {
        "submit" => (true, "/api/v1/proposals/{id}/submit"),
        "revise" => (false, "/api/v1/proposals/{id}/revise"),
        _ => return error_page(None, &AppError::not_found("No such page.")),
    };
    let pid = ProposalId::from(id.as_str());
    let version = form.version;
    let write = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        let Ok(expected) = version.trim().parse::<i64>() else {
            return Err(AppError::precondition_required(
                "The form lost the proposal's version; reload the page.",
            ));
        };
        if submit {
            proposals::submit_proposal(conn, actor, &pid, expected)
        } else {
            proposals::revise_proposal(conn, actor, &pid, expected)
        }
    };
    write_form(&req, &state, ("POST", template), &form.csrf, write, |_, hat| {
        format!(
            "/console/proposals/{id}?hat={hat}&done={}",
            if submit { "submitted" } else { "revising" }
        )
    })
    .await
}
