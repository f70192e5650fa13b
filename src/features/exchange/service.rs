//! Exchange use cases: the pool's IATI activity file, and the pages of the HXL CSV exports (each page one
//! keyset query, rendered to CSV bytes, so an export streams in flat memory).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};

use super::csv_safe;
use super::iati::{self, Fund, Movement, Project, Publisher};
use super::repo::{self, MovementRow, ProposalFacts};
use crate::config::ExchangeSettings;
use crate::db::DbConn;
use crate::domain::ids::PoolId;
use crate::domain::ledger_rules::TransactionKind;
use crate::domain::lifecycle::State;
use crate::domain::money::format_amount;
use crate::domain::proposal::{Beneficiaries, ProposalContent};
use crate::domain::status::OrganizationKind;
use crate::error::{AppError, AppResult};
use crate::features::ledger::service::PoolRef;

/// Rows per page of a streamed export.
pub const EXPORT_PAGE_ROWS: i64 = 500;

/// States in which a proposal is published to IATI: from approval onward (a cancelled proposal was approved
/// first; withdrawn and rejected ones never became activities).
pub const PUBLISHED_STATES: [State; 5] = [
    State::Approved,
    State::InImplementation,
    State::Completed,
    State::Closed,
    State::Cancelled,
];

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}

fn publisher(settings: &ExchangeSettings) -> Publisher {
    Publisher {
        org_ref: settings.iati_reporting_org_ref.clone(),
        org_name: settings.iati_reporting_org_name.clone(),
        org_type: settings.iati_reporting_org_type.clone(),
        activity_prefix: settings.iati_activity_prefix.clone(),
        recipient_country: Some(settings.iati_recipient_country.trim().to_owned()).filter(|c| !c.is_empty()),
        recipient_region: settings.iati_recipient_region.clone(),
    }
}

/// The movement a ledger row counts as: a reversal counts as the kind of the transaction it reverses.
fn movement(row: &MovementRow) -> Movement {
    Movement {
        kind: row.original_kind.unwrap_or(row.kind),
        reversal: row.original_kind.is_some(),
        amount_minor: row.amount_minor,
        date: row.created_at.date(),
        contributor: row.contributor_name.clone(),
    }
}

/// The IATI 2.03 activity file of a pool: the fund and its projects from approval onward.
pub fn iati_activities(
    conn: &mut DbConn,
    settings: &ExchangeSettings,
    pool_id: &PoolId,
) -> AppResult<String> {
    let pool_ref = PoolRef::load(conn, pool_id)?;
    let pool_id = pool_id.as_str();
    let pool = crate::features::pools::repo::find_pool(conn, pool_id)?
        .ok_or_else(|| AppError::not_found("No pool with this id."))?;
    crate::db::snapshot_tx(conn, |tx| {
        let movements = repo::movements_for_publication(tx, pool_id)?;
        let mut projects_rows: Vec<ProposalFacts> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            // Every submitted proposal is read (and its state with it), then the published ones kept: a
            // state this code cannot read fails the file rather than dropping a project and its money.
            let page = repo::proposals_page(tx, pool_id, after.as_deref(), EXPORT_PAGE_ROWS)?;
            let done = page.len() < usize::try_from(EXPORT_PAGE_ROWS).unwrap_or(usize::MAX);
            after = page.last().map(|p| p.id.clone());
            projects_rows.extend(page.into_iter().filter(|p| PUBLISHED_STATES.contains(&p.state)));
            if done {
                break;
            }
        }
        let ids: Vec<String> = projects_rows.iter().map(|p| p.id.clone()).collect();
        let orgs = org_lookup(tx, projects_rows.iter().map(|p| p.organization_id.clone()))?;
        let areas = area_lookup(tx, projects_rows.iter().filter_map(|p| p.adm2_pcode.clone()))?;
        let sectors: HashMap<String, (String, bool)> = repo::all_sectors(tx)?
            .into_iter()
            .map(|(code, _, vocabulary, humanitarian)| (code, (vocabulary, humanitarian)))
            .collect();
        let mut closed: HashMap<String, NaiveDateTime> = HashMap::new();
        for chunk in ids.chunks(500) {
            closed.extend(repo::closed_on(tx, chunk)?);
        }
        let mut by_proposal: HashMap<String, Vec<Movement>> = HashMap::new();
        let mut contributions = Vec::new();
        let mut last_updated = pool.updated_at;
        for row in &movements {
            last_updated = last_updated.max(row.created_at);
            let m = movement(row);
            match (&row.proposal_id, m.kind) {
                (None, TransactionKind::Contribution) => contributions.push(m),
                (Some(p), _) => by_proposal.entry(p.clone()).or_default().push(m),
                _ => {}
            }
        }
        let fund = Fund {
            code: pool.code.clone(),
            name: pool.name.clone(),
            currency: pool_ref.currency,
            funding_start: pool.funding_start,
            funding_end: pool.funding_end,
            last_updated: utc(last_updated),
            contributions,
        };
        let projects = projects_rows
            .into_iter()
            .map(|p| {
                let state: State = p.state;
                let content = read_content(&p.content)?;
                let movements = by_proposal.remove(&p.id).unwrap_or_default();
                let actual_start = movements
                    .iter()
                    .filter(|m| m.kind == TransactionKind::Disbursement && !m.reversal)
                    .map(|m| m.date)
                    .min();
                let (vocabulary, humanitarian) = p
                    .sector_code
                    .as_ref()
                    .and_then(|s| sectors.get(s).cloned())
                    .map_or((None, false), |(v, h)| (Some(v), h));
                let last = movements
                    .iter()
                    .map(|m| m.date.and_hms_opt(0, 0, 0).unwrap_or_default())
                    .fold(p.updated_at, NaiveDateTime::max);
                // Every proposal from approval onward was given its reference at submission: one without is
                // a stored row this code never wrote, not a project to leave out of the file.
                let reference = p.reference.clone().ok_or_else(|| {
                    AppError::internal(format!("published proposal {} has no reference", p.id))
                })?;
                Ok(Project {
                    reference,
                    state,
                    title: p.title.clone(),
                    summary: content.summary.clone(),
                    objectives: content.objectives.clone(),
                    sector_code: p.sector_code.clone(),
                    sector_vocabulary: vocabulary,
                    humanitarian,
                    adm1_pcode: p.adm1_pcode.clone(),
                    adm2_name: p.adm2_pcode.as_ref().and_then(|c| areas.get(c).cloned()),
                    adm2_pcode: p.adm2_pcode.clone(),
                    lat: content.location.as_ref().and_then(|l| l.lat),
                    lon: content.location.as_ref().and_then(|l| l.lon),
                    submitting_org: orgs
                        .get(&p.organization_id)
                        .map(|o| o.1.clone())
                        .unwrap_or_default(),
                    partner: content
                        .implementing_partner
                        .as_ref()
                        .map(|ip| (ip.kind, ip.name.clone())),
                    planned_start: content.planned_start,
                    planned_end: content.planned_end,
                    actual_start,
                    actual_end: closed.get(&p.id).map(NaiveDateTime::date),
                    requested_minor: p.requested_minor,
                    last_updated: utc(last),
                    movements,
                })
            })
            .collect::<AppResult<Vec<_>>>()?;
        Ok(iati::activities_xml(
            &publisher(settings),
            &fund,
            &projects,
            Utc::now(),
        ))
    })
}

/// `id → (code, name, kind)` of the organisations named.
pub fn org_lookup(
    conn: &mut DbConn,
    ids: impl Iterator<Item = String>,
) -> AppResult<HashMap<String, (String, String, OrganizationKind)>> {
    let mut ids: Vec<String> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let mut out = HashMap::new();
    for chunk in ids.chunks(500) {
        for (id, code, name, kind) in repo::organizations_by_id(conn, chunk)? {
            out.insert(id, (code, name, kind));
        }
    }
    Ok(out)
}

fn area_lookup(
    conn: &mut DbConn,
    pcodes: impl Iterator<Item = String>,
) -> AppResult<HashMap<String, String>> {
    let mut codes: Vec<String> = pcodes.collect();
    codes.sort_unstable();
    codes.dedup();
    let mut out = HashMap::new();
    for chunk in codes.chunks(500) {
        out.extend(repo::area_names(conn, chunk)?);
    }
    Ok(out)
}

/// One page of a streamed CSV export: its bytes and the cursor of the next page (`None`: the last page).
pub struct CsvPage {
    pub bytes: Vec<u8>,
    pub next: Option<String>,
}

fn page_end<T>(rows: &[T], id: impl Fn(&T) -> String) -> Option<String> {
    (rows.len() >= usize::try_from(EXPORT_PAGE_ROWS).unwrap_or(usize::MAX))
        .then(|| rows.last().map(id))
        .flatten()
}

/// Columns of the proposals export: header and HXL hashtag.
pub const PROPOSAL_COLUMNS: [(&str, &str); 26] = [
    ("Reference", "#activity+code"),
    ("Title", "#activity+name"),
    ("Organisation code", "#org+code"),
    ("Organisation", "#org+name"),
    ("Sector code", "#sector+code"),
    ("Sector", "#sector+name"),
    ("Admin 1 P-code", "#adm1+code"),
    ("Admin 1", "#adm1+name"),
    ("Admin 2 P-code", "#adm2+code"),
    ("Admin 2", "#adm2+name"),
    ("Planned start", "#date+start+planned"),
    ("Planned end", "#date+end+planned"),
    ("State", "#status"),
    ("Currency", "#currency"),
    ("Requested", "#value+requested"),
    ("Committed", "#value+committed"),
    ("Disbursed", "#value+disbursed"),
    ("Refunded", "#value+refunded"),
    ("Women targeted", "#targeted+f+adults"),
    ("Men targeted", "#targeted+m+adults"),
    ("Girls targeted", "#targeted+f+children"),
    ("Boys targeted", "#targeted+m+children"),
    ("Women reached", "#reached+f+adults"),
    ("Men reached", "#reached+m+adults"),
    ("Girls reached", "#reached+f+children"),
    ("Boys reached", "#reached+m+children"),
];

fn beneficiary_cells(b: Option<&Beneficiaries>) -> [String; 4] {
    match b {
        Some(b) => [b.women, b.men, b.girls, b.boys].map(|n| n.to_string()),
        None => Default::default(),
    }
}

/// A proposal version's stored content; content this code cannot read is an error (500), never counted as
/// empty.
pub fn read_content(content: &str) -> AppResult<ProposalContent> {
    serde_json::from_str(content).map_err(|e| AppError::internal(format!("stored content unreadable: {e}")))
}

/// What the exchange reads of an accepted completion report's content (the report requires it).
#[derive(serde::Deserialize)]
struct CompletionContent {
    beneficiaries_reached: Beneficiaries,
}

/// Beneficiaries reached, from an accepted completion report's content; content without them is an error,
/// never counted as nobody reached.
pub fn reached_of(content: &str) -> AppResult<Beneficiaries> {
    serde_json::from_str::<CompletionContent>(content)
        .map(|c| c.beneficiaries_reached)
        .map_err(|e| AppError::internal(format!("stored completion report unreadable: {e}")))
}

/// A page of the proposals export (non-draft proposals of the pool, by id).
pub fn proposals_csv_page(conn: &mut DbConn, pool: &PoolRef, after: Option<&str>) -> AppResult<CsvPage> {
    let rows = repo::proposals_page(conn, &pool.id, after, EXPORT_PAGE_ROWS)?;
    let ids: Vec<String> = rows.iter().map(|p| p.id.clone()).collect();
    let mut money: HashMap<(String, TransactionKind), i64> = HashMap::new();
    for m in repo::money_of_proposals(conn, &ids)? {
        money.insert((m.proposal_id, m.kind), m.total);
    }
    let reached: HashMap<String, Beneficiaries> = repo::accepted_completions(conn, &ids)?
        .into_iter()
        .map(|(id, c)| reached_of(&c).map(|b| (id, b)))
        .collect::<AppResult<_>>()?;
    let orgs = org_lookup(conn, rows.iter().map(|p| p.organization_id.clone()))?;
    let areas = area_lookup(
        conn,
        rows.iter()
            .flat_map(|p| [p.adm1_pcode.clone(), p.adm2_pcode.clone()])
            .flatten(),
    )?;
    let sectors: HashMap<String, String> = repo::all_sectors(conn)?
        .into_iter()
        .map(|(code, name, _, _)| (code, name))
        .collect();
    let c = pool.currency;
    let amount = |id: &str, kinds: &[(TransactionKind, i64)]| -> String {
        let total: i64 = kinds
            .iter()
            .map(|(k, sign)| sign * money.get(&(id.to_owned(), *k)).copied().unwrap_or(0))
            .sum();
        format_amount(total, c)
    };
    let mut bytes = Vec::new();
    for p in &rows {
        let content = read_content(&p.content)?;
        let org = orgs.get(&p.organization_id);
        let name_of = |code: &Option<String>| {
            code.as_ref()
                .and_then(|c| areas.get(c).cloned())
                .unwrap_or_default()
        };
        let [tw, tm, tg, tb] = beneficiary_cells(content.beneficiaries.as_ref());
        let [rw, rm, rg, rb] = beneficiary_cells(reached.get(&p.id));
        let cells = [
            p.reference.clone().unwrap_or_default(),
            p.title.clone(),
            org.map(|o| o.0.clone()).unwrap_or_default(),
            org.map(|o| o.1.clone()).unwrap_or_default(),
            p.sector_code.clone().unwrap_or_default(),
            p.sector_code
                .as_ref()
                .and_then(|s| sectors.get(s).cloned())
                .unwrap_or_default(),
            p.adm1_pcode.clone().unwrap_or_default(),
            name_of(&p.adm1_pcode),
            p.adm2_pcode.clone().unwrap_or_default(),
            name_of(&p.adm2_pcode),
            content.planned_start.map(|d| d.to_string()).unwrap_or_default(),
            content.planned_end.map(|d| d.to_string()).unwrap_or_default(),
            p.state.as_str().to_owned(),
            c.code().to_owned(),
            p.requested_minor.map(|m| format_amount(m, c)).unwrap_or_default(),
            // Committed as it stands: commitments less releases.
            amount(
                &p.id,
                &[(TransactionKind::Commitment, 1), (TransactionKind::Release, -1)],
            ),
            amount(&p.id, &[(TransactionKind::Disbursement, 1)]),
            amount(&p.id, &[(TransactionKind::Refund, 1)]),
            tw,
            tm,
            tg,
            tb,
            rw,
            rm,
            rg,
            rb,
        ];
        bytes.extend(csv_safe::record(cells.iter().map(String::as_str)));
    }
    Ok(CsvPage {
        bytes,
        next: page_end(&rows, |p| p.id.clone()),
    })
}

/// Columns of the transactions export.
pub const TRANSACTION_COLUMNS: [(&str, &str); 10] = [
    ("Transaction id", "#meta+id"),
    ("Date", "#date+posted"),
    ("Kind", "#meta+kind"),
    ("IATI transaction type", "#meta+iati_type"),
    ("Amount (signed as IATI reports it)", "#value"),
    ("Currency", "#currency"),
    ("Project reference", "#activity+code"),
    ("Contributor", "#org+code+funder"),
    ("Reference", "#meta+reference"),
    ("Reverses", "#meta+reversal_of"),
];

/// A page of the transactions export (all the pool's transactions, oldest first).
pub fn transactions_csv_page(conn: &mut DbConn, pool: &PoolRef, after: Option<&str>) -> AppResult<CsvPage> {
    let rows = repo::movements_page(conn, &pool.id, after, EXPORT_PAGE_ROWS)?;
    let mut bytes = Vec::new();
    for r in &rows {
        let m = movement(r);
        let typed = iati::transaction_type(m.kind, m.reversal);
        let cells = [
            r.id.clone(),
            r.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            r.kind.as_str().to_owned(),
            typed.map(|(code, _)| code.to_string()).unwrap_or_default(),
            format_amount(typed.map_or(1, |(_, sign)| sign) * r.amount_minor, pool.currency),
            pool.currency.code().to_owned(),
            r.proposal_reference.clone().unwrap_or_default(),
            r.contributor_code.clone().unwrap_or_default(),
            r.reference.clone().unwrap_or_default(),
            r.reversal_of.clone().unwrap_or_default(),
        ];
        bytes.extend(csv_safe::record(cells.iter().map(String::as_str)));
    }
    Ok(CsvPage {
        bytes,
        next: page_end(&rows, |r| r.id.clone()),
    })
}

/// Columns of the 3W export; the file imports back through `POST /activities/import` unchanged.
pub const ACTIVITY_COLUMNS: [(&str, &str); 11] = [
    ("Activity code", "#activity+code"),
    ("Organisation", "#org+acronym"),
    ("Activity", "#activity+name"),
    ("Sector", "#sector+code"),
    ("Admin 1 P-code", "#adm1+code"),
    ("Admin 2 P-code", "#adm2+code"),
    ("Latitude", "#geo+lat"),
    ("Longitude", "#geo+lon"),
    ("Start", "#date+start"),
    ("End", "#date+end"),
    ("Status", "#status"),
];

/// A page of the 3W registry export.
pub fn activities_csv_page(conn: &mut DbConn, after: Option<&str>) -> AppResult<CsvPage> {
    let rows = repo::activities_page(conn, after, EXPORT_PAGE_ROWS)?;
    let orgs = org_lookup(conn, rows.iter().map(|a| a.organization_id.clone()))?;
    let mut bytes = Vec::new();
    for a in &rows {
        // The file's own id when the row came from a file with one, else the registry's id: either finds the
        // same activity on re-import.
        let code = a
            .import_key
            .as_deref()
            .and_then(|k| k.strip_prefix("id:"))
            .map_or_else(|| a.id.clone(), str::to_owned);
        let cells = [
            code,
            orgs.get(&a.organization_id)
                .map(|o| o.0.clone())
                .unwrap_or_default(),
            a.title.clone(),
            a.sector_code.clone(),
            a.adm1_pcode.clone(),
            a.adm2_pcode.clone(),
            a.lat.map(|v| v.to_string()).unwrap_or_default(),
            a.lon.map(|v| v.to_string()).unwrap_or_default(),
            a.start_date.to_string(),
            a.end_date.map(|d| d.to_string()).unwrap_or_default(),
            a.status.as_str().to_owned(),
        ];
        bytes.extend(csv_safe::record(cells.iter().map(String::as_str)));
    }
    Ok(CsvPage {
        bytes,
        next: page_end(&rows, |a| a.id.clone()),
    })
}
