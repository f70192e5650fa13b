//! Tranches and payments (`/console/proposals/{id}/tranches`): the tranches of an approved proposal
//! (`implementation::service::list_tranches`, as `GET /api/v1/proposals/{id}/tranches`) and the finance
//! officer's payment form (`implementation::service::disbursement_request`, as `POST …/tranches/{n}/
//! disbursements`). The form carries an idempotency key made once when the page is drawn, so sending the same
//! form twice (a double click, a retry on a bad link) pays once — the same rule as the API's `Idempotency-Key`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::pages::{Chrome, layout};
use super::session::{self, Caller};
use super::{
    call, csrf_for, error_page, held_hats_permitting, no_caller, read_page, see_other, with_cookies,
};
use crate::access::Action;
use crate::app::AppState;
use crate::domain::ids::ProposalId;
use crate::domain::status::TrancheStatus;
use crate::error::AppError;
use crate::features::implementation::dto::{NewDisbursement, Tranche};
use crate::features::implementation::service as implementation;
use crate::features::ledger::idempotency::IdempotentRequest;
use crate::http::extract::Form;
use crate::http::extract::Query;

const LIST_ROUTE: (&str, &str) = ("GET", "/api/v1/proposals/{id}/tranches");
const PAY_ROUTE: (&str, &str) = ("POST", "/api/v1/proposals/{id}/tranches/{n}/disbursements");

#[derive(Deserialize)]
pub struct ListQuery {
    done: Option<String>,
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: Query<ListQuery>,
) -> HttpResponse {
    let id = id.into_inner();
    let notice = query
        .done
        .as_deref()
        .filter(|d| *d == "paid")
        .map(|_| "The payment is recorded.");
    let pid = ProposalId::from(id.as_str());
    let load = move |conn: &mut crate::db::DbConn, actor: &crate::access::Actor| {
        let pays = !held_hats_permitting(&actor.grants, Action::Disburse).is_empty();
        Ok((implementation::list_tranches(conn, actor, &pid)?, pays))
    };
    read_page(&req, &state, LIST_ROUTE, load, |chrome, (list, pays)| {
        tranches_page(chrome, &id, &list, pays, notice)
    })
    .await
}

fn pay_form(id: &str, t: &Tranche, csrf: &str) -> Markup {
    let n = t.number;
    html! {
        form method="post" class="stack" action=(format!("/console/proposals/{id}/tranches/{n}/disbursements")) {
            input type="hidden" name="csrf" value=(csrf);
            // One key per drawn form: sending it again replays the first payment instead of paying twice.
            input type="hidden" name="idempotency_key" value=(uuid::Uuid::now_v7().to_string());
            label for=(format!("amount-{n}")) { "Amount to pay (at most " (t.payable_now) ")" }
            input id=(format!("amount-{n}")) name="amount" type="text" inputmode="decimal" required value=(t.payable_now);
            label for=(format!("paid_on-{n}")) { "Paid on" }
            input id=(format!("paid_on-{n}")) name="paid_on" type="date" required value=(chrono::Utc::now().date_naive());
            label for=(format!("reference-{n}")) { "Payment reference (bank or payment system)" }
            input id=(format!("reference-{n}")) name="payment_reference" type="text" required;
            button type="submit" { "Record the payment of tranche " (n) }
        }
    }
}

fn tranches_page(
    chrome: &Chrome<'_>,
    id: &str,
    list: &[Tranche],
    pays: bool,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Tranches and payments",
        Some(chrome),
        html! {
            p class="crumbs" { a href="/console/tasks" { "My tasks" } " › " a href=(format!("/console/proposals/{id}")) { "Proposal" } " › tranches" }
            h1 { "Tranches and payments" }
            @if let Some(n) = notice { p class="notice" role="status" { (n) } }
            @if list.is_empty() { p { "No tranche yet (tranches are set when the proposal is approved)." } }
            @for t in list {
                section aria-labelledby=(format!("tranche-{}", t.number)) class="report" {
                    h2 id=(format!("tranche-{}", t.number)) { "Tranche " (t.number) " · " (t.percent) " %" }
                    dl {
                        dt { "Amount" } dd { (t.amount) }
                        dt { "Paid" } dd { (t.paid) }
                        dt { "Remaining" } dd { (t.remaining) }
                        dt { "Payable now" } dd { (t.payable_now) }
                        dt { "Status" } dd { (t.status) }
                        dt { "Condition" } dd { (serde_json::to_value(t.condition).ok().and_then(|v| v.as_str().map(|s| s.replace('_', " "))).unwrap_or_default()) }
                    }
                    @if pays && t.status == TrancheStatus::Scheduled && t.payable_now.parse::<f64>().is_ok_and(|v| v > 0.0) {
                        (pay_form(id, t, chrome.csrf))
                    }
                }
            }
        },
    )
}

#[derive(Deserialize)]
pub struct PayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    idempotency_key: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    paid_on: String,
    #[serde(default)]
    payment_reference: String,
}

/// Pays (part of) a tranche through `implementation::service::disbursement_request` (same ledger posting,
/// separation of duties and `implementation.disburse` event as the API), once per form.
pub async fn pay(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i32)>,
    form: Form<PayForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let (id, n) = path.into_inner();
    let Caller { actor, renewed, .. } =
        match session::authorize_form(&req, &state, PAY_ROUTE.0, PAY_ROUTE.1, None, &form.csrf).await {
            Ok(c) => c,
            Err(why) => return no_caller(&req, why),
        };
    let (csrf, csrf_cookie) = csrf_for(&req);
    let username = actor.username.clone();
    let chrome = Chrome {
        username: &username,
        csrf: &csrf,
    };
    let Ok(paid_on) = NaiveDate::parse_from_str(form.paid_on.trim(), "%Y-%m-%d") else {
        let e = AppError::invalid_field("paid_on", "must be a date (YYYY-MM-DD)");
        return with_cookies(error_page(Some(&chrome), &e), [renewed, csrf_cookie]);
    };
    let input = NewDisbursement {
        amount: form.amount.trim().to_owned(),
        paid_on,
        payment_reference: form.payment_reference.trim().to_owned(),
    };
    // Fingerprinted as the API's request would be: same path and body.
    let body =
        json!({"amount": input.amount, "paid_on": paid_on, "payment_reference": input.payment_reference});
    let api_path = format!("/api/v1/proposals/{id}/tranches/{n}/disbursements");
    let idem = match IdempotentRequest::new(
        &actor.user_id,
        Some(&form.idempotency_key),
        "POST",
        &api_path,
        &body,
    ) {
        Ok(i) => i,
        Err(e) => return with_cookies(error_page(Some(&chrome), &e), [renewed, csrf_cookie]),
    };
    let retention = chrono::Duration::days(i64::from(state.settings.ledger.idempotency_retention_days));
    let pid = ProposalId::from(id.as_str());
    let paid = call(&state, move |conn| {
        implementation::disbursement_request(conn, retention, &actor, &pid, n, &input, &idem)
    })
    .await;
    let res = match paid {
        Ok(stored) if stored.status < 300 => {
            see_other(&format!("/console/proposals/{id}/tranches?done=paid"))
        }
        Ok(_) => error_page(
            Some(&chrome),
            &AppError::conflict(
                "This payment form was already used for a request that failed; reload the page.",
            ),
        ),
        Err(e) => error_page(Some(&chrome), &e),
    };
    with_cookies(res, [renewed, csrf_cookie])
}
