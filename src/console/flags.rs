//! Flags in the console: ending a flag from the brief page — the raising organisation withdraws it or confirms
//! a revision resolved it, the HC overrides it — through `consultation::service::end_flag` (as `POST
//! /api/v1/flags/{id}/withdraw|resolve|override`), and the extra flag slots of the consultation answer form
//! (the API takes several flags per answer).

use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::{enum_field, error_page, write_form};
use crate::access::{Action, Actor};
use crate::app::AppState;
use crate::domain::status::FlagStatus;
use crate::error::AppError;
use crate::features::consultation::dto::{Flag, FlagEnding, FlagInput};
use crate::features::consultation::service::{self as consultation, FlagEnd};
use crate::http::extract::Form;

/// Flag slots in the answer form beyond the first (which keeps its `flag_…` names).
pub const EXTRA_FLAG_SLOTS: [usize; 2] = [2, 3];

/// What the caller may do about flags and their proposal, from the policy table and their organisation; the
/// services decide again when the form comes back.
#[derive(Debug, Clone, Default)]
pub struct Powers {
    pub organization_id: String,
    /// Holds a hat that may withdraw or resolve flags (the raising organisation's consultee).
    pub ends_own_flags: bool,
    /// Holds a hat that may override flags (the HC).
    pub overrides: bool,
    /// Holds a hat that may submit and revise proposals (the unit's submitter).
    pub submits: bool,
    /// Holds a hat that may read the audit trail (the history page).
    pub reads_history: bool,
}

impl Powers {
    pub fn of(actor: &Actor) -> Self {
        let holds = |action: Action| actor.grants.iter().any(|g| action.permits(g.hat));
        Self {
            organization_id: actor.organization_id.clone(),
            ends_own_flags: holds(Action::FlagWithdraw),
            overrides: holds(Action::FlagOverride),
            submits: holds(Action::ProposalSubmit),
            reads_history: holds(Action::AuditRead),
        }
    }
}

/// The forms that end one open flag, for whoever may end it.
pub fn actions(flag: &Flag, csrf: &str, powers: &Powers) -> Markup {
    let own =
        powers.ends_own_flags && flag.organization_id.as_deref() == Some(powers.organization_id.as_str());
    let open = flag.status == FlagStatus::Open;
    html! {
        @if open && (own || powers.overrides) {
            div class="flag-actions" {
                @if own {
                    form method="post" class="inline-form" action=(format!("/console/flags/{}/withdraw", flag.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" class="secondary" { "Withdraw this flag" }
                    }
                    form method="post" class="inline-form" action=(format!("/console/flags/{}/resolve", flag.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" class="secondary" { "Confirm the revision resolves it" }
                    }
                }
                @if powers.overrides {
                    form method="post" class="stack" action=(format!("/console/flags/{}/override", flag.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        label for=(format!("justification-{}", flag.id)) { "Override justification (at least 20 characters)" }
                        textarea id=(format!("justification-{}", flag.id)) name="justification" rows="2" required {}
                        button type="submit" { "Override this flag as HC" }
                    }
                }
            }
        }
    }
}

/// The answer form's extra flag slots (2 and 3), each optional.
pub fn more_flag_fields() -> Markup {
    html! {
        @for n in EXTRA_FLAG_SLOTS {
            fieldset {
                legend { "Another flag (optional, " (n) ")" }
                label for=(format!("flag{n}_category")) { "Category" }
                select id=(format!("flag{n}_category")) name=(format!("flag{n}_category")) {
                    option value="" { "— no flag —" }
                    @for c in FLAG_CATEGORIES { option value=(c) { (c.replace('_', " ")) } }
                }
                label for=(format!("flag{n}_severity")) { "Severity" }
                select id=(format!("flag{n}_severity")) name=(format!("flag{n}_severity")) {
                    option value="advisory" { "advisory" }
                    option value="blocking" { "blocking" }
                }
                label for=(format!("flag{n}_description")) { "Description (shared with the submitting unit)" }
                textarea id=(format!("flag{n}_description")) name=(format!("flag{n}_description")) rows="2" {}
                label for=(format!("flag{n}_note")) { "Confidential note (never shown to the submitting unit)" }
                textarea id=(format!("flag{n}_note")) name=(format!("flag{n}_note")) rows="2" {}
            }
        }
    }
}

const FLAG_CATEGORIES: [&str; 8] = [
    "duplication",
    "humanitarian_space",
    "do_no_harm",
    "local_capacity",
    "protection_risk",
    "sustainability",
    "already_funded",
    "other",
];

/// One flag slot of the answer form read as the API's `FlagInput`; an empty slot is no flag.
pub fn flag_slot(
    prefix: &str,
    category: &str,
    severity: &str,
    description: &str,
    note: &str,
) -> Result<Option<FlagInput>, AppError> {
    if category.trim().is_empty() && description.trim().is_empty() {
        return Ok(None);
    }
    Ok(Some(FlagInput {
        category: enum_field(&format!("{prefix}_category"), category)?,
        severity: enum_field(
            &format!("{prefix}_severity"),
            if severity.trim().is_empty() {
                "advisory"
            } else {
                severity
            },
        )?,
        description: description.to_owned(),
        confidential_note: Some(note.to_owned()).filter(|n| !n.trim().is_empty()),
    }))
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    justification: String,
}

/// Ends a flag (`how` from the path) through `consultation::service::end_flag`, authorized by the policy line
/// of the matching API route; same `flag.withdraw|resolve|override` events.
pub async fn end(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    form: Form<EndForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (flag_id, how) = path.into_inner();
    let (how, template) = match how.as_str() {
        "withdraw" => (FlagEnd::Withdraw, "/api/v1/flags/{id}/withdraw"),
        "resolve" => (FlagEnd::Resolve, "/api/v1/flags/{id}/resolve"),
        "override" => (FlagEnd::Override, "/api/v1/flags/{id}/override"),
        _ => return error_page(None, &AppError::not_found("No such page.")),
    };
    let input = FlagEnding {
        justification: Some(form.justification).filter(|j| !j.trim().is_empty()),
    };
    let write = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        let id = crate::domain::ids::FlagId::from(flag_id.as_str());
        consultation::end_flag(conn, actor, &id, how, &input)
    };
    write_form(
        &req,
        &state,
        ("POST", template),
        &form.csrf,
        write,
        |flag, hat| format!("/console/proposals/{}?hat={hat}&done=flag", flag.proposal_id),
    )
    .await
}
