//! The pool at a glance (`/console/pools`, `/console/pools/{id}`): the ledger's balances (the statement's
//! closing line, as `GET /api/v1/pools/{id}/statement`), and charts drawn on the server from the pool report
//! (`GET /api/v1/pools/{id}/report`) and the daily ledger totals: balances over time, committed and disbursed by
//! sector and by adm1, proposals by state, approval turnaround.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::charts::{self, Bar, Group, Lines};
use super::labels;
use super::pages::{Chrome, layout};
use super::read_page;
use crate::app::AppState;
use crate::domain::ids::PoolId;
use crate::domain::money::format_amount;
use crate::features::exchange::report::{self, PoolReport};
use crate::features::ledger::dto::Statement;
use crate::features::ledger::service as ledger;
use crate::features::pools::dto::Pool;
use crate::features::pools::service as pools;
use crate::features::read_models::pool_glance::{self, BalancePoint};

/// The policy lines the pages share: the pool list, and the pool report (the ledger-reading hats).
const POOLS_ROUTE: (&str, &str) = ("GET", "/api/v1/pools");
const REPORT_ROUTE: (&str, &str) = ("GET", "/api/v1/pools/{id}/report");
/// Points on the balances-over-time chart (a page stays small however long the history).
const BALANCE_POINTS: usize = 60;
/// Pools listed on the console's pool page.
const POOLS_PAGE: u32 = 100;

/// The list of pools, each linking to its page (`pools::service::list_pools`, as `GET /api/v1/pools`).
pub async fn list(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let load =
        |conn: &mut crate::db::DbConn, _: &crate::access::Actor| pools::list_pools(conn, None, POOLS_PAGE);
    read_page(&req, &state, POOLS_ROUTE, load, |chrome, list| {
        pools_page(chrome, &list)
    })
    .await
}

fn pools_page(chrome: &Chrome<'_>, list: &[Pool]) -> Markup {
    layout(
        "Pools",
        Some(chrome),
        html! {
            h1 { "Pools" }
            @if list.is_empty() { p { "No pool yet." } }
            ul {
                @for p in list {
                    li { a href=(format!("/console/pools/{}", p.id)) { (p.code) " — " (p.name) } " (" (p.currency) ")" }
                }
            }
        },
    )
}

struct Glance {
    pool: Pool,
    statement: Statement,
    report: PoolReport,
    balances: Vec<BalancePoint>,
    currency: crate::domain::money::Currency,
}

/// One pool at a glance.
pub async fn show(req: HttpRequest, state: web::Data<AppState>, id: web::Path<String>) -> HttpResponse {
    let id = id.into_inner();
    let load = move |conn: &mut crate::db::DbConn, _: &crate::access::Actor| {
        let pool_id = PoolId::from(id.as_str());
        let pool = pools::get_pool(conn, &pool_id)?;
        let statement = ledger::statement(conn, &pool_id, None, None)?;
        let report = report::pool_report(conn, &pool_id, None, None)?;
        let balances = pool_glance::balances_over_time(conn, &pool_id, BALANCE_POINTS)?;
        let currency = ledger::PoolRef::load(conn, &pool_id)?.currency;
        Ok(Glance {
            currency,
            pool,
            statement,
            report,
            balances,
        })
    };
    read_page(&req, &state, REPORT_ROUTE, load, |chrome, g| {
        glance_page(chrome, &g)
    })
    .await
}

/// A formatted amount (`"1234.50"`) as a number for a chart's scale; text that is no number draws nothing.
fn number(amount: &str) -> f64 {
    amount.parse::<f64>().unwrap_or(0.0)
}

fn money_groups(lines: &[report::Line]) -> Vec<Group> {
    lines
        .iter()
        .filter(|l| number(&l.money.committed) != 0.0 || number(&l.money.disbursed) != 0.0)
        .map(|l| Group {
            label: l.name.clone().unwrap_or_else(|| l.key.clone()),
            bars: vec![
                (number(&l.money.committed), l.money.committed.clone()),
                (number(&l.money.disbursed), l.money.disbursed.clone()),
            ],
        })
        .collect()
}

fn balance_lines(points: &[BalancePoint], currency: crate::domain::money::Currency) -> Lines {
    let series = |name: &str, pick: fn(&BalancePoint) -> i64| {
        (
            name.to_owned(),
            points
                .iter()
                .map(|p| (pick(p) as f64, format_amount(pick(p), currency)))
                .collect(),
        )
    };
    Lines {
        x_labels: points.iter().map(|p| p.day.to_string()).collect(),
        series: vec![
            series("Unallocated", |p| p.unallocated),
            series("Committed", |p| p.committed),
            series("Disbursed", |p| p.disbursed),
            series("Contributed", |p| p.contributed),
        ],
    }
}

fn glance_page(chrome: &Chrome<'_>, g: &Glance) -> Markup {
    let c = &g.statement.closing;
    let cur = &g.statement.currency;
    let states: Vec<Bar> = g
        .report
        .by_state
        .iter()
        .filter(|l| l.proposals > 0)
        .map(|l| Bar {
            label: l.key.replace('_', " "),
            value: l.proposals as f64,
            shown: l.proposals.to_string(),
        })
        .collect();
    let turnaround: Vec<Bar> = g
        .report
        .approval_turnaround
        .iter()
        .map(|t| Bar {
            label: format!(
                "Step {} · {}",
                t.step.replace(':', " "),
                t.hat.as_str().replace('_', " ")
            ),
            value: t.average_days,
            shown: format!(
                "{:.2} days on average ({} decided, longest {:.2})",
                t.average_days, t.decided, t.max_days
            ),
        })
        .collect();
    layout(
        &format!("{} at a glance", g.pool.name),
        Some(chrome),
        html! {
            p class="crumbs" { a href="/console/pools" { "Pools" } " › " (g.pool.code) }
            h1 { (g.pool.name) " at a glance" }
            p class="meta" { "Funding " (g.pool.funding_start) " to " (g.pool.funding_end) " · amounts in " (cur) }
            section aria-labelledby="balances" {
                h2 id="balances" { "Balances (from the ledger)" }
                dl class="figures" id="ledger-balances" {
                    dt { "Contributed" } dd data-figure="contributed" { (c.contributed) " " (cur) }
                    dt { "Unallocated" } dd data-figure="unallocated" { (c.unallocated) " " (cur) }
                    dt { "Committed" } dd data-figure="committed" { (c.committed) " " (cur) }
                    dt { "Disbursed" } dd data-figure="disbursed" { (c.disbursed) " " (cur) }
                }
                @if !g.statement.reconciles {
                    p class="error" role="alert" { "The ledger statement does not reconcile; tell the finance officer." }
                }
                (charts::line_chart("Balances over time", &balance_lines(&g.balances, g.currency)))
            }
            section aria-labelledby="by-sector" {
                h2 id="by-sector" { "Committed and disbursed by sector" }
                (charts::grouped_bar_chart("Committed and disbursed by sector", &["Committed", "Disbursed"], &money_groups(&g.report.by_sector)))
            }
            section aria-labelledby="by-adm1" {
                h2 id="by-adm1" { "Committed and disbursed by region (adm1)" }
                (charts::grouped_bar_chart("Committed and disbursed by region (adm1)", &["Committed", "Disbursed"], &money_groups(&g.report.by_adm1)))
            }
            section aria-labelledby="by-state" {
                h2 id="by-state" { "Proposals by state" }
                p { (labels::count(g.report.proposals, "proposal", "proposals")) " submitted, " (g.report.requested) " " (cur) " requested." }
                (charts::bar_chart("Proposals by state", "Proposals", &states))
            }
            section aria-labelledby="turnaround" {
                h2 id="turnaround" { "Approval turnaround" }
                (charts::bar_chart("Approval turnaround (average days from step opening to decision)", "Days", &turnaround))
            }
        },
    )
}
