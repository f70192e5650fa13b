//! The pool report for the DSRSG office and donors: proposals and money by state, sector, adm1 and submitting
//! organisation; money totals that reconcile with the ledger statement of the same period; beneficiaries
//! targeted and reached; consultation outcomes and flags by category; approval turnaround per step and hat.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::csv_safe;
use super::repo;
use super::service::{org_lookup, reached_of, read_content};
use crate::db::DbConn;
use crate::domain::ids::PoolId;
use crate::domain::ledger_rules::TransactionKind;
use crate::domain::money::{Currency, format_amount};
use crate::domain::proposal::Beneficiaries;
use crate::error::{AppError, AppResult};
use crate::features::ledger::service::PoolRef;

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day (inclusive); absent: from the beginning.
    pub from: Option<NaiveDate>,
    /// Last day (inclusive); absent: up to now.
    pub to: Option<NaiveDate>,
    /// `json` (default) or `csv` (HXL-tagged; `Accept: text/csv` does the same).
    pub format: Option<String>,
}

/// Money of the period, net of reversals, in the pool's currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Money {
    pub contributed: String,
    pub committed: String,
    pub released: String,
    pub disbursed: String,
    pub refunded: String,
}

/// One line of a breakdown: proposals first submitted in the period (count, requested) and the money moved
/// in the period on the proposals of this key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Line {
    pub key: String,
    /// A readable name of the key (organisation name), where there is one.
    pub name: Option<String>,
    pub proposals: i64,
    pub requested: String,
    #[serde(flatten)]
    pub money: Money,
}

#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct People {
    pub women: u64,
    pub men: u64,
    pub girls: u64,
    pub boys: u64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportTurnaround {
    /// Step position in the chain and its reason kind (`base`, `waiver`, …).
    pub step: String,
    pub hat: crate::access::Hat,
    pub decided: usize,
    pub average_days: f64,
    pub max_days: f64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolReport {
    pub pool_id: String,
    pub currency: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Totals of the period; each equals the corresponding movement of `GET /pools/{id}/statement` for the
    /// same `from`/`to`.
    pub totals: Money,
    pub requested: String,
    pub proposals: i64,
    pub by_state: Vec<Line>,
    pub by_sector: Vec<Line>,
    pub by_adm1: Vec<Line>,
    pub by_organization: Vec<Line>,
    pub beneficiaries_targeted: People,
    pub beneficiaries_reached: People,
    /// Consultation rounds opened in the period, by outcome (`open` while running).
    pub consultation_outcomes: BTreeMap<String, i64>,
    /// Flags raised in the period, by category (texts never appear).
    pub flags_by_category: BTreeMap<String, i64>,
    pub approval_turnaround: Vec<ReportTurnaround>,
}

#[derive(Default)]
struct Acc {
    proposals: i64,
    requested: i64,
    money: BTreeMap<TransactionKind, i64>,
}

/// The money columns of a line from its net totals per transaction kind (reversals are already counted as
/// the kind they reverse, so `TransactionKind::Reversal` has no column).
fn money_of(m: &BTreeMap<TransactionKind, i64>, c: Currency) -> Money {
    let get = |k: TransactionKind| format_amount(m.get(&k).copied().unwrap_or(0), c);
    Money {
        contributed: get(TransactionKind::Contribution),
        committed: get(TransactionKind::Commitment),
        released: get(TransactionKind::Release),
        disbursed: get(TransactionKind::Disbursement),
        refunded: get(TransactionKind::Refund),
    }
}

/// The key of a dimension line: its stored text, or `none` for a proposal without one.
fn key_or_none(key: Option<String>) -> String {
    key.unwrap_or_else(|| "none".into())
}

fn add(people: &mut People, b: &Beneficiaries) {
    people.women += u64::from(b.women);
    people.men += u64::from(b.men);
    people.girls += u64::from(b.girls);
    people.boys += u64::from(b.boys);
}

/// The report of `[from, to]` (dates inclusive, as the statement's).
pub fn pool_report(
    conn: &mut DbConn,
    pool_id: &PoolId,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<PoolReport> {
    let pool = PoolRef::load(conn, pool_id)?;
    let pool_id = pool_id.as_str();
    if let (Some(f), Some(t)) = (from, to) {
        if t < f {
            return Err(AppError::invalid_field("to", "must not be before from"));
        }
    }
    let start: Option<NaiveDateTime> = from.and_then(|d| d.and_hms_opt(0, 0, 0));
    let end: Option<NaiveDateTime> = to.and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(0, 0, 0));
    crate::db::snapshot_tx(conn, |tx| {
        let c = pool.currency;
        let mut dims: [BTreeMap<String, Acc>; 4] = Default::default();
        let mut totals: BTreeMap<TransactionKind, i64> = BTreeMap::new();
        for row in repo::money_by_dimension(tx, pool_id, start, end)? {
            *totals.entry(row.kind).or_insert(0) += row.total;
            // Money of no proposal (contributions) is in the totals only.
            let Some(state) = row.state else {
                continue;
            };
            let keys = [
                Some(state.as_str().to_owned()),
                row.sector_code,
                row.adm1_pcode,
                row.organization_id,
            ];
            for (dim, key) in dims.iter_mut().zip(keys) {
                let acc = dim.entry(key_or_none(key)).or_default();
                *acc.money.entry(row.kind).or_insert(0) += row.total;
            }
        }
        let (mut count, mut requested) = (0, 0);
        for row in repo::proposal_counts(tx, pool_id, start, end)? {
            count += row.proposals;
            requested += row.requested;
            let keys = [
                Some(row.state.as_str().to_owned()),
                row.sector_code,
                row.adm1_pcode,
                Some(row.organization_id),
            ];
            for (dim, key) in dims.iter_mut().zip(keys) {
                let acc = dim.entry(key_or_none(key)).or_default();
                acc.proposals += row.proposals;
                acc.requested += row.requested;
            }
        }
        let [by_state, by_sector, by_adm1, by_org] = dims;
        let orgs = org_lookup(tx, by_org.keys().cloned())?;
        let lines = |dim: BTreeMap<String, Acc>, named: bool| -> Vec<Line> {
            dim.into_iter()
                .map(|(key, acc)| Line {
                    name: named.then(|| orgs.get(&key).map(|o| o.1.clone())).flatten(),
                    key: if named {
                        orgs.get(&key).map_or(key.clone(), |o| o.0.clone())
                    } else {
                        key
                    },
                    proposals: acc.proposals,
                    requested: format_amount(acc.requested, c),
                    money: money_of(&acc.money, c),
                })
                .collect()
        };
        let (targeted_src, reached_src) = repo::beneficiary_sources(tx, pool_id, start, end)?;
        let mut targeted = People::default();
        for content in &targeted_src {
            if let Some(b) = &read_content(content)?.beneficiaries {
                add(&mut targeted, b);
            }
        }
        let mut reached = People::default();
        for content in &reached_src {
            add(&mut reached, &reached_of(content)?);
        }
        let mut turnaround: BTreeMap<(String, crate::access::Hat), Vec<f64>> = BTreeMap::new();
        for s in repo::decided_steps(tx, pool_id, start, end)? {
            let days = (s.decided_at - s.opened_at).num_seconds() as f64 / 86_400.0;
            turnaround
                .entry((format!("{}:{}", s.position, s.reason.kind_name()), s.hat))
                .or_default()
                .push(days);
        }
        Ok(PoolReport {
            pool_id: pool_id.to_owned(),
            currency: c.code().to_owned(),
            from,
            to,
            totals: money_of(&totals, c),
            requested: format_amount(requested, c),
            proposals: count,
            by_state: lines(by_state, false),
            by_sector: lines(by_sector, false),
            by_adm1: lines(by_adm1, false),
            by_organization: lines(by_org, true),
            beneficiaries_targeted: targeted,
            beneficiaries_reached: reached,
            consultation_outcomes: repo::round_outcomes(tx, pool_id, start, end)?
                .into_iter()
                .map(|(outcome, count)| (outcome.map_or("open", |o| o.as_str()).to_owned(), count))
                .collect(),
            flags_by_category: repo::flag_categories(tx, pool_id, start, end)?
                .into_iter()
                .map(|(category, count)| (category.as_str().to_owned(), count))
                .collect(),
            approval_turnaround: turnaround
                .into_iter()
                .map(|((step, hat), days)| ReportTurnaround {
                    step,
                    hat,
                    decided: days.len(),
                    average_days: round2(days.iter().sum::<f64>() / days.len().max(1) as f64),
                    max_days: round2(days.iter().copied().fold(0.0, f64::max)),
                })
                .collect(),
        })
    })
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Columns of the report as HXL CSV: one row per figure, in long form.
pub const REPORT_COLUMNS: [(&str, &str); 10] = [
    ("Section", "#meta+section"),
    ("Key", "#meta+key"),
    ("Name", "#meta+name"),
    ("Proposals", "#indicator+proposals+num"),
    ("Requested", "#value+requested"),
    ("Committed", "#value+committed"),
    ("Released", "#value+released"),
    ("Disbursed", "#value+disbursed"),
    ("Refunded", "#value+refunded"),
    ("Figure", "#indicator+num"),
];

/// The report as an HXL-tagged CSV.
pub fn report_csv(report: &PoolReport) -> Vec<u8> {
    let mut out = csv_safe::hxl_head(&REPORT_COLUMNS);
    let mut row = |cells: [&str; 10]| out.extend(csv_safe::record(cells));
    let t = &report.totals;
    row([
        "totals",
        "pool",
        "",
        &report.proposals.to_string(),
        &report.requested,
        &t.committed,
        &t.released,
        &t.disbursed,
        &t.refunded,
        "",
    ]);
    row([
        "totals",
        "contributed",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        &t.contributed,
    ]);
    for (section, lines) in [
        ("state", &report.by_state),
        ("sector", &report.by_sector),
        ("adm1", &report.by_adm1),
        ("organization", &report.by_organization),
    ] {
        for l in lines {
            row([
                section,
                &l.key,
                l.name.as_deref().unwrap_or(""),
                &l.proposals.to_string(),
                &l.requested,
                &l.money.committed,
                &l.money.released,
                &l.money.disbursed,
                &l.money.refunded,
                "",
            ]);
        }
    }
    for (section, p) in [
        ("beneficiaries_targeted", &report.beneficiaries_targeted),
        ("beneficiaries_reached", &report.beneficiaries_reached),
    ] {
        for (key, n) in [
            ("women", p.women),
            ("men", p.men),
            ("girls", p.girls),
            ("boys", p.boys),
        ] {
            row([section, key, "", "", "", "", "", "", "", &n.to_string()]);
        }
    }
    for (section, map) in [
        ("consultation_outcome", &report.consultation_outcomes),
        ("flag_category", &report.flags_by_category),
    ] {
        for (key, n) in map {
            row([section, key, "", "", "", "", "", "", "", &n.to_string()]);
        }
    }
    for a in &report.approval_turnaround {
        row([
            "approval_turnaround_days",
            &a.step,
            a.hat.as_str(),
            &a.decided.to_string(),
            "",
            "",
            "",
            "",
            "",
            &a.average_days.to_string(),
        ]);
    }
    out
}
