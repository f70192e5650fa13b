//! A proposal's history from the audit trail (`/console/proposals/{id}/history`): who did what, in which hat,
//! when — on the proposal, its flags and its reports. The flag and report ids come from the consultation and
//! implementation services (as the caller may read them); the events from
//! `audit::service::list_events_of_entities`, under the same policy line as `GET /api/v1/audit/events`
//! (auditors; administrators only within their own domain) and with the same `audit.read` event.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::pages::{Chrome, layout};
use super::read_page;
use crate::app::AppState;
use crate::domain::ids::ProposalId;
use crate::features::audit::dto::AuditEvent;
use crate::features::audit::service as audit;
use crate::features::consultation::service as consultation;
use crate::features::implementation::service as implementation;
use crate::http::extract::Query;

const AUDIT_ROUTE: (&str, &str) = ("GET", "/api/v1/audit/events");
/// Events per page, newest first.
const HISTORY_PAGE: u32 = 100;

#[derive(Deserialize)]
pub struct HistoryQuery {
    /// Show events older than this event number (the "older" link).
    before: Option<i64>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Query<HistoryQuery>,
) -> HttpResponse {
    let id = id.into_inner();
    let before = query.before;
    let pid = ProposalId::from(id.as_str());
    let load = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        // The proposal's flags and reports, as far as the caller may read them (a refusal leaves them out: the
        // audit scope below still decides which events are shown).
        let mut entities = vec![pid.to_string()];
        if let Ok(c) = consultation::get_consultation(conn, actor, &pid) {
            entities.extend(c.flags.into_iter().map(|f| f.id));
        }
        if let Ok(reports) = implementation::list_reports(conn, actor, &pid) {
            entities.extend(reports.into_iter().map(|r| r.id));
        }
        audit::list_events_of_entities(conn, actor, entities, before, HISTORY_PAGE)
    };
    read_page(&req, &state, AUDIT_ROUTE, load, |chrome, mut events| {
        let more = events.len() > HISTORY_PAGE as usize;
        events.truncate(HISTORY_PAGE as usize);
        history_page(chrome, &id, &events, more)
    })
    .await
}

/// A readable name for the recorded action; unknown ones are shown as stored.
pub fn action_label(action: &str) -> String {
    let known = match action {
        "proposal.create" => "Created",
        "proposal.edit" => "Edited",
        "proposal.submit" => "Submitted",
        "proposal.revise" => "Revision started",
        "proposal.withdraw" => "Withdrawn",
        "consultation.open" => "Consultation opened",
        "consultation.respond" => "Consultation answered",
        "consultation.lapse" => "Consultation lapsed",
        "consultation.resolution_confirmed" => "Flags resolved after revision",
        "approval.steps_instantiated" => "Approval steps set",
        "approval.decide" => "Decision",
        "implementation.refund" => "Refund booked",
        "proposal.flags_cleared" => "Flags cleared",
        "proposal.cancel" => "Cancelled",
        "proposal.close" => "Closed",
        "consultation.close" => "Consultation closed",
        "consultation.add_consultee" => "Consultee added",
        _ => "",
    };
    if known.is_empty() {
        action.replace(['_', '.'], " ")
    } else {
        known.to_owned()
    }
}

fn history_page(chrome: &Chrome<'_>, id: &str, events: &[AuditEvent], more: bool) -> Markup {
    layout(
        "Proposal history",
        Some(chrome),
        html! {
            p class="crumbs" { a href="/console/tasks" { "My tasks" } " › " a href=(format!("/console/proposals/{id}")) { "Proposal" } " › history" }
            h1 { "History of the proposal" }
            p class="meta" { "From the audit trail, newest first. Reading it is itself recorded." }
            @if events.is_empty() {
                p { "No recorded event is visible to you." }
            } @else {
                div class="scroll" {
                    table class="history" {
                        caption { "Recorded events" }
                        thead { tr {
                            th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "Hat" }
                            th scope="col" { "What" } th scope="col" { "Outcome" } th scope="col" { "Reason" }
                        } }
                        tbody {
                            @for e in events {
                                tr {
                                    td { (e.occurred_at.format("%Y-%m-%d %H:%M:%S")) }
                                    td { (e.actor_username.as_deref().or(e.actor_id.as_deref()).unwrap_or("system")) }
                                    td class="hat" { (e.hat.as_deref().unwrap_or("—")) @if e.acting { " (acting)" } }
                                    td { (action_label(&e.action)) br; code { (e.action) } }
                                    td { (e.outcome) }
                                    td { (e.reason.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                @if more {
                    @if let Some(last) = events.last() {
                        p { a href=(format!("/console/proposals/{id}/history?before={}", last.event_no)) { "Older events" } }
                    }
                }
            }
        },
    )
}
