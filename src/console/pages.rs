//! The console's HTML: one layout and one function per page, rendered on the server with maud (every value
//! escaped). No script, no inline style, one stylesheet served by the binary.

use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use crate::access::Hat;
use crate::features::approval::dto::{Approval, Brief, Step, Task};

pub const STYLESHEET_PATH: &str = "/console/static/console.css";

/// Who is signed in, for the header, and the CSRF token for the sign-out form.
pub struct Chrome<'a> {
    pub username: &'a str,
    pub csrf: &'a str,
}

pub fn layout(title: &str, chrome: Option<&Chrome<'_>>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · QIP pool" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/console/tasks" { "QIP pool" }
                    @if let Some(c) = chrome {
                        nav aria-label="Main" {
                            a href="/console/tasks" { "My tasks" }
                            a href="/console/proposals" { "Proposals" }
                            a href="/console/pools" { "Pools" }
                        }
                        form class="signout" method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(c.csrf);
                            span class="who" { "Signed in as " strong { (c.username) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

pub fn sign_in(csrf: &str, username: &str, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            h1 { "Sign in" }
            @if let Some(e) = error {
                p class="error" role="alert" { (e) }
            }
            form method="post" action="/console/sign-in" class="stack" {
                input type="hidden" name="csrf" value=(csrf);
                label for="username" { "Username" }
                input id="username" name="username" type="text" autocomplete="username" required value=(username);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        },
    )
}

pub fn message(chrome: Option<&Chrome<'_>>, title: &str, text: &str) -> Markup {
    layout(
        title,
        chrome,
        html! {
            h1 { (title) }
            p class="error" role="alert" { (text) }
            p { a href="/console/tasks" { "Back to my tasks" } }
        },
    )
}

fn kind_label(kind: &str) -> &str {
    match kind {
        "consultation_response" => "Consultation to answer",
        "approval_step" => "Decision to take",
        "flag_on_my_proposal" => "Flag on my proposal",
        other => other,
    }
}

fn date(d: Option<chrono::DateTime<chrono::Utc>>) -> String {
    d.map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| "—".to_owned())
}

pub fn tasks(chrome: &Chrome<'_>, tasks: &[Task]) -> Markup {
    layout(
        "My tasks",
        Some(chrome),
        html! {
            h1 { "My tasks" }
            @if tasks.is_empty() {
                p { "Nothing waits for you." }
            } @else {
                p { (tasks.len()) " waiting, overdue first." }
                ul class="tasks" {
                    @for t in tasks {
                        li class=(if t.overdue { "task overdue" } else { "task" }) {
                            a href=(format!("/console/proposals/{}?hat={}", t.proposal_id, t.hat)) {
                                (t.reference.as_deref().unwrap_or("(no reference)")) " — " (t.title)
                            }
                            div class="meta" {
                                span { (kind_label(t.kind.as_str())) }
                                " · as " span class="hat" { (t.hat) }
                                " · due " (date(t.due_at))
                                @if t.overdue { " · " strong { "overdue" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The hats the caller could read a brief in, when more than one could and none was named.
pub fn choose_hat(chrome: &Chrome<'_>, proposal_id: &str, hats: &[Hat]) -> Markup {
    layout(
        "Choose a hat",
        Some(chrome),
        html! {
            h1 { "In which hat do you read this proposal?" }
            p { "More than one of your hats may read it; what you see can depend on the hat." }
            ul {
                @for h in hats {
                    li { a href=(format!("/console/proposals/{proposal_id}?hat={h}")) { (h) } }
                }
            }
        },
    )
}

/// Renders a JSON object (screening, waiver, …) as a definition list, field names made readable.
fn fields(value: &Value) -> Markup {
    html! {
        @if let Value::Object(map) = value {
            dl {
                @for (k, v) in map {
                    @if !v.is_null() {
                        dt { (super::labels::field(k)) }
                        dd {
                            @match v {
                                Value::String(s) => (super::labels::value(s)),
                                Value::Bool(b) => (if *b { "yes" } else { "no" }),
                                Value::Object(_) => (fields(v)),
                                other => (other.to_string()),
                            }
                        }
                    }
                }
            }
        }
    }
}

fn step_row(s: &Step) -> Markup {
    html! {
        tr {
            td { (s.position) }
            td { (s.hat) }
            td { (s.status) @if s.current { " (current)" } }
            td { (date(s.due_at)) @if s.overdue { " " strong { "overdue" } } }
            td {
                @if let Some(d) = &s.decision {
                    (d) " by " (s.decided_by.as_deref().unwrap_or("?"))
                    " as " (s.decided_hat.map_or("?", |h| h.as_str()))
                    @if s.acting { " (acting)" }
                    @if let Some(c) = &s.comment { br; "“" (c) "”" }
                }
            }
        }
    }
}

/// What the decision form needs beyond the brief.
pub struct DecisionForm<'a> {
    pub csrf: &'a str,
    /// The caller's hats that the policy lets decide approval steps.
    pub deciding_hats: Vec<Hat>,
    /// The caller's organisation is asked in the open consultation round and has not answered yet.
    pub answering: bool,
    /// What the caller may do about flags and the proposal (unit actions, history link).
    pub powers: super::flags::Powers,
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

/// The consultation answer: kind, comment and (for an objection) one flag with an optional confidential note.
fn answer_form(proposal_id: &str, csrf: &str) -> Markup {
    html! {
        section aria-labelledby="answer" {
            h2 id="answer" { "Answer the consultation" }
            form method="post" class="stack" action=(format!("/console/proposals/{proposal_id}/consultation")) {
                input type="hidden" name="csrf" value=(csrf);
                fieldset {
                    legend { "Your answer" }
                    label class="inline" { input type="radio" name="kind" value="no_objection" checked; " No objection" }
                    label class="inline" { input type="radio" name="kind" value="comment"; " Comment" }
                    label class="inline" { input type="radio" name="kind" value="objection"; " Objection (needs a flag)" }
                }
                label for="answer-comment" { "Comment (optional)" }
                textarea id="answer-comment" name="comment" rows="3" {}
                fieldset {
                    legend { "Flag (with an objection)" }
                    label for="flag_category" { "Category" }
                    select id="flag_category" name="flag_category" {
                        option value="" { "— no flag —" }
                        @for c in FLAG_CATEGORIES { option value=(c) { (c.replace('_', " ")) } }
                    }
                    label for="flag_severity" { "Severity" }
                    select id="flag_severity" name="flag_severity" {
                        option value="advisory" { "advisory" }
                        option value="blocking" { "blocking" }
                    }
                    label for="flag_description" { "Description (shared with the submitting unit)" }
                    textarea id="flag_description" name="flag_description" rows="3" {}
                    label for="flag_note" { "Confidential note (never shown to the submitting unit)" }
                    textarea id="flag_note" name="flag_note" rows="2" {}
                }
                (super::flags::more_flag_fields())
                button type="submit" { "Send answer" }
            }
        }
    }
}

pub fn proposal(
    chrome: &Chrome<'_>,
    brief: &Brief,
    approval: &Approval,
    read_as: Hat,
    form: &DecisionForm<'_>,
    notice: Option<&str>,
) -> Markup {
    let title = brief.title.clone().unwrap_or_else(|| "(untitled)".to_owned());
    let current = approval.steps.iter().find(|s| s.current);
    layout(
        &title,
        Some(chrome),
        html! {
            p class="crumbs" { a href="/console/tasks" { "My tasks" } " › " (brief.reference.as_deref().unwrap_or(&brief.proposal_id)) }
            h1 { (title) }
            @if let Some(n) = notice { p class="notice" role="status" { (n) } }
            p class="meta" { "State: " strong { (brief.state) } " · read as " span class="hat" { (read_as) } }
            (super::unit::actions(&brief.proposal_id, brief.state, approval.version, form.csrf, &form.powers))
            @if form.answering { (answer_form(&brief.proposal_id, form.csrf)) }
            section aria-labelledby="money" {
                h2 id="money" { "Money" }
                dl class="figures" {
                    dt { "Requested" } dd { (brief.amount.as_deref().unwrap_or("—")) " " (brief.currency) }
                    dt { "Pool unallocated now" } dd { (brief.pool_unallocated_before) " " (brief.currency) }
                    dt { "After this proposal" } dd { (brief.pool_unallocated_after.as_deref().unwrap_or("—")) " " (brief.currency) }
                }
                @if !brief.waived_limits.is_empty() {
                    p class="warn" { (brief.waived_limits.len()) " pool limit(s) waived." }
                }
            }
            section aria-labelledby="summary" {
                h2 id="summary" { "Summary" }
                p { (brief.summary.as_deref().unwrap_or("—")) }
                @if let Some(o) = &brief.objectives { h3 { "Objectives" } p { (o) } }
                @if let Some(p) = &brief.confidence_building_purpose { h3 { "Confidence-building purpose" } p { (p) } }
                dl {
                    dt { "Sector" } dd { (brief.sector_code.as_deref().unwrap_or("—")) }
                    @if let Some(l) = &brief.location { dt { "Location" } dd { (l.adm1_pcode) " / " (l.adm2_pcode) } }
                    dt { "Planned" } dd {
                        (brief.planned_start.map(|d| d.to_string()).unwrap_or_else(|| "—".into()))
                        " to " (brief.planned_end.map(|d| d.to_string()).unwrap_or_else(|| "—".into()))
                    }
                }
            }
            section aria-labelledby="consultation" {
                h2 id="consultation" { "Consultation" }
                p { "Deadline: " (date(brief.consultation_deadline)) }
                @if brief.consultation.is_empty() { p { "No consultation round." } }
                ul {
                    @for c in &brief.consultation {
                        li { (c.organization_id) ": " strong { (c.status) } @if let Some(t) = &c.comment { " — " (t) } }
                    }
                }
                h3 { "Flags (" (brief.flags_total) ")" }
                @if brief.flags.is_empty() { p { "No flags." } }
                ul class="flags" {
                    @for f in &brief.flags {
                        li {
                            strong { (f.severity) } " · " (f.category) " — " (f.description)
                            @if let Some(n) = &f.confidential_note { br; em { "Confidential note: " } (n) }
                            " (" (f.status) ")"
                            (super::flags::actions(f, form.csrf, &form.powers))
                        }
                    }
                }
            }
            @if let Some(p) = &brief.implementing_partner {
                section aria-labelledby="partner" {
                    h2 id="partner" { "Implementing partner" }
                    (fields(&serde_json::to_value(p).unwrap_or(Value::Null)))
                }
            }
            @if let Some(b) = &brief.beneficiaries {
                section aria-labelledby="beneficiaries" {
                    h2 id="beneficiaries" { "Beneficiaries" }
                    (fields(&serde_json::to_value(b).unwrap_or(Value::Null)))
                }
            }
            @if let Some(s) = &brief.screening {
                section aria-labelledby="screening" {
                    h2 id="screening" { "Screening" }
                    (fields(&serde_json::to_value(s).unwrap_or(Value::Null)))
                }
            }
            @if let Some(w) = &brief.waiver {
                section aria-labelledby="waiver" {
                    h2 id="waiver" { "Waiver" }
                    (fields(&serde_json::to_value(w).unwrap_or(Value::Null)))
                }
            }
            section aria-labelledby="steps" {
                h2 id="steps" { "Approval steps" }
                div class="scroll" {
                    table {
                        thead { tr { th scope="col" { "#" } th scope="col" { "Hat" } th scope="col" { "Status" } th scope="col" { "Due" } th scope="col" { "Decision" } } }
                        tbody { @for s in &brief.steps { (step_row(s)) } }
                    }
                }
            }
            @if let Some(step) = current {
                section aria-labelledby="decide" {
                    h2 id="decide" { "Decide step " (step.position) " (" (step.hat) ")" }
                    @if form.deciding_hats.is_empty() {
                        p { "None of your hats decides approval steps." }
                    } @else {
                        form method="post" class="stack"
                            action=(format!("/console/proposals/{}/steps/{}/decision", brief.proposal_id, step.id)) {
                            input type="hidden" name="csrf" value=(form.csrf);
                            input type="hidden" name="version" value=(approval.version);
                            label for="hat" { "Decide in the hat" }
                            select id="hat" name="hat" {
                                @for h in &form.deciding_hats {
                                    option value=(h) selected[*h == step.hat] { (h) }
                                }
                            }
                            fieldset {
                                legend { "Decision" }
                                label class="inline" { input type="radio" name="decision" value="approve" checked; " Approve" }
                                label class="inline" { input type="radio" name="decision" value="return"; " Return to the submitter" }
                                label class="inline" { input type="radio" name="decision" value="reject"; " Reject" }
                            }
                            label for="comment" { "Comment (reasons are required to return or reject)" }
                            textarea id="comment" name="comment" rows="3" {}
                            label for="conditions" { "Conditions (optional)" }
                            textarea id="conditions" name="conditions" rows="2" {}
                            label class="inline" for="acknowledge" {
                                input id="acknowledge" type="checkbox" name="acknowledge" value="yes";
                                " I decided an earlier step of this proposal in another hat and knowingly decide again in this one"
                            }
                            button type="submit" { "Record decision" }
                        }
                    }
                }
            }
        },
    )
}

/// The vendored stylesheet (no web fonts, system font stack; contrast ≥ 4.5:1).
pub const STYLESHEET: &str = include_str!("console.css");
