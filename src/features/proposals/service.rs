//! Proposal use cases, one transaction each: create a draft, edit it (`If-Match`), submit (checks, reference
//! code), withdraw, and reads that respect who may see what.

use chrono::Datelike;
use serde_json::{Map, Value, json};

use super::dto::{ComputedFigures, Proposal, ProposalQuery, ProposalSummary, ProposalVersion};
use super::repo::{self, ProposalFilter, ProposalRow, VersionRow};
use super::workflow::{self, By, Record};
use crate::access::{Actor, OpenStep, ProposalFacts, ProposalScope, acting_organization, offered_actions};
use crate::db::{self, DbConn};
use crate::domain::canonical_json::to_canonical_string;
use crate::domain::ids::{PoolId, ProposalId};
use crate::domain::lifecycle::{self, Action, State};
use crate::domain::money::{Currency, format_amount};
use crate::domain::pool_policy::LimitExceeded;
use crate::domain::proposal::{
    ProposalContent, ReferenceFacts, SERVER_OWNED_FIELDS, check_formats, check_submission,
};
use crate::domain::status::{StepStatus, VersionStatus};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, AuditAction, now_micros};
use crate::features::pools::service::{self as pools, LoadedPool};
use crate::features::reference::repo as reference;

fn not_found() -> AppError {
    AppError::not_found("No proposal with this id is visible to you.")
}

/// The visibility scope of the caller's hat.
pub fn scope_of(actor: &Actor) -> ProposalScope {
    match actor.hat() {
        Some(hat) => ProposalScope::for_hat(hat, &acting_organization(actor)),
        None => ProposalScope::Organization(String::new()),
    }
}

/// Loads a proposal the caller may see (404 otherwise, so existence does not leak).
pub fn load_visible(conn: &mut DbConn, actor: &Actor, id: &ProposalId) -> AppResult<ProposalRow> {
    visible(actor, repo::find_proposal(conn, id.as_str())?)
}

/// A proposal read (or not found) as the caller may see it: 404 when it is missing or outside their scope.
pub fn visible(actor: &Actor, row: Option<ProposalRow>) -> AppResult<ProposalRow> {
    let row = row.ok_or_else(not_found)?;
    if scope_of(actor).admits(&row.organization_id, row.lifecycle_state()? == State::Draft) {
        Ok(row)
    } else {
        Err(not_found())
    }
}

fn parse_content(value: Value) -> AppResult<ProposalContent> {
    serde_json::from_value(value).map_err(|e| AppError::invalid_field("body", e.to_string()))
}

/// Refuses server-owned keys by name (never silently dropped or applied).
fn refuse_server_owned(body: &Map<String, Value>, allowed_extra: &[&str]) -> AppResult<()> {
    let mut errors: Vec<FieldError> = body
        .keys()
        .filter(|k| SERVER_OWNED_FIELDS.contains(&k.as_str()) && !allowed_extra.contains(&k.as_str()))
        .map(|k| FieldError::new(k, "is set by the server and cannot be sent"))
        .collect();
    if let Some(Value::Array(lines)) = body.get("budget_lines") {
        for (i, line) in lines.iter().enumerate() {
            if line.get("total").is_some() {
                errors.push(FieldError::new(
                    format!("budget_lines[{i}].total"),
                    "is computed by the server and cannot be sent",
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
}

fn format_problems(content: &ProposalContent, currency: Currency) -> AppResult<()> {
    let (_, problems) = check_formats(content, currency);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(
            problems.into_iter().map(|(f, m)| FieldError::new(f, m)).collect(),
        ))
    }
}

fn content_json(content: &ProposalContent) -> String {
    to_canonical_string(&serde_json::to_value(content).unwrap_or_default())
}

/// A version's stored content: JSON this code wrote, so content it cannot read (an unknown partner kind, say)
/// is an error, never an empty default.
pub(crate) fn read_content(row: &VersionRow) -> AppResult<ProposalContent> {
    serde_json::from_str(&row.content)
        .map_err(|e| AppError::internal(format!("stored content unreadable: {e}")))
}

/// The searchable and filterable parts of the content, copied onto the proposal row.
struct ContentCopies {
    title: String,
    search_text: String,
    sector_code: Option<String>,
    adm1_pcode: Option<String>,
    adm2_pcode: Option<String>,
    requested_minor: Option<i64>,
}

fn content_copies(content: &ProposalContent, currency: Currency) -> ContentCopies {
    ContentCopies {
        title: content.title.clone().unwrap_or_default(),
        search_text: format!(
            "{} {}",
            content.title.as_deref().unwrap_or(""),
            content.summary.as_deref().unwrap_or("")
        )
        .to_lowercase(),
        sector_code: content.sector_code.clone(),
        adm1_pcode: content.location.as_ref().map(|l| l.adm1_pcode.clone()),
        adm2_pcode: content.location.as_ref().map(|l| l.adm2_pcode.clone()),
        requested_minor: check_formats(content, currency).0.requested_minor,
    }
}

fn computed_view(content: &ProposalContent, currency: Currency) -> ComputedFigures {
    let (c, _) = check_formats(content, currency);
    let money = |m: Option<i64>| m.map(|v| format_amount(v, currency));
    ComputedFigures {
        line_totals: c.line_totals.iter().map(|t| money(*t)).collect(),
        budget_total: money(c.budget_total_minor),
        overhead_total: money(c.overhead_minor),
        duration_days: c.duration_days,
    }
}

/// The pool limits a version's waiver covers. Stored JSON this code wrote: a limit it cannot read is an error,
/// never "nothing waived" (which would drop the waiver's DSRSG step).
pub(crate) fn waived(row: &VersionRow) -> AppResult<Vec<LimitExceeded>> {
    row.waiver_reasons.as_deref().map_or(Ok(Vec::new()), |t| {
        serde_json::from_str(t)
            .map_err(|e| AppError::internal(format!("stored waived limits unreadable: {e}")))
    })
}

/// What the caller may do with the proposal now (`access::offered_actions`), from the facts its state needs:
/// the open approval step in review, the raisers of open blocking flags when flagged, and who decided a step
/// once money can move.
fn offered_to(conn: &mut DbConn, actor: &Actor, row: &ProposalRow, state: State) -> AppResult<Vec<Action>> {
    let steps = match state {
        State::InReview | State::Approved | State::InImplementation | State::Completed => {
            crate::features::approval::repo::steps_of(conn, &row.id)?
        }
        _ => Vec::new(),
    };
    let open_step = match state {
        State::InReview => {
            let current: Vec<_> = steps
                .iter()
                .filter(|s| s.version_number == row.current_version)
                .collect();
            current
                .iter()
                .position(|s| s.status == StepStatus::Pending && s.opened_at.is_some())
                .map(|index| OpenStep {
                    hat: current[index].hat,
                    last: index + 1 == current.len(),
                })
        }
        _ => None,
    };
    let raisers = if state == State::Flagged {
        crate::features::consultation::repo::open_blocking_flag_organizations(conn, &row.id)?
    } else {
        Vec::new()
    };
    let deciders: Vec<String> = steps.into_iter().filter_map(|s| s.decided_by).collect();
    Ok(offered_actions(
        actor,
        &ProposalFacts {
            state,
            organization_id: &row.organization_id,
            created_by: &row.created_by,
            submitted_by: row.submitted_by.as_deref(),
            adm1_pcode: row.adm1_pcode.as_deref(),
            open_step,
            open_blocking_flag_organizations: &raisers,
            step_deciders: &deciders,
        },
    ))
}

fn view(conn: &mut DbConn, actor: &Actor, row: &ProposalRow) -> AppResult<Proposal> {
    let pool = pools::load(conn, &row.pool())?;
    let version = repo::find_version(conn, &row.id, row.current_version)?
        .ok_or_else(|| AppError::internal("current version missing"))?;
    let content = read_content(&version)?;
    let state = row.lifecycle_state()?;
    Ok(Proposal {
        id: row.id.clone(),
        reference: row.reference.clone(),
        pool_id: row.pool_id.clone(),
        organization_id: row.organization_id.clone(),
        state,
        iati_activity_status: state.iati_activity_status(),
        version: row.version,
        current_version: row.current_version,
        computed: computed_view(&content, pool.currency),
        content,
        pool_settings_version: version.pool_settings_version,
        waived_limits: waived(&version)?,
        allowed_actions: offered_to(conn, actor, row, state)?,
        created_by: row.created_by.clone(),
        created_at: row.created_at.and_utc(),
        updated_at: row.updated_at.and_utc(),
        first_submitted_at: row.first_submitted_at.map(|t| t.and_utc()),
        submitted_at: row.submitted_at.map(|t| t.and_utc()),
        submitted_by: row.submitted_by.clone(),
    })
}

/// Creates a draft for the organisation the submitter acts for. Body: `pool_id` plus any content fields.
pub fn create_proposal(
    conn: &mut DbConn,
    actor: &Actor,
    mut body: Map<String, Value>,
) -> AppResult<Proposal> {
    refuse_server_owned(&body, &["pool_id"])?;
    let pool_id = match body.remove("pool_id") {
        Some(Value::String(id)) => PoolId::from(id),
        _ => {
            return Err(AppError::invalid_field(
                "pool_id",
                "is required: the pool the proposal asks money from",
            ));
        }
    };
    let content = parse_content(Value::Object(body))?;
    let pool =
        pools::load(conn, &pool_id).map_err(|_| AppError::invalid_field("pool_id", "no pool has this id"))?;
    format_problems(&content, pool.currency)?;
    let now = now_micros();
    let organization_id = acting_organization(actor);
    db::write_tx(conn, |tx| {
        let copies = content_copies(&content, pool.currency);
        let row = ProposalRow {
            id: uuid::Uuid::now_v7().to_string(),
            pool_id: pool_id.clone().into_string(),
            organization_id,
            reference: None,
            state: lifecycle::initial().to,
            current_version: 1,
            version: 1,
            title: copies.title,
            search_text: copies.search_text,
            sector_code: copies.sector_code,
            adm1_pcode: copies.adm1_pcode,
            adm2_pcode: copies.adm2_pcode,
            requested_minor: copies.requested_minor,
            pool_settings_version: None,
            created_by: actor.user_id.clone(),
            created_at: now,
            updated_at: now,
            first_submitted_at: None,
            submitted_at: None,
            submitted_by: None,
        };
        repo::insert_proposal(tx, &row)?;
        repo::insert_version(
            tx,
            &VersionRow {
                proposal_id: row.id.clone(),
                number: 1,
                status: VersionStatus::Draft,
                content: content_json(&content),
                budget_total_minor: None,
                requested_minor: None,
                duration_days: None,
                waiver_reasons: None,
                pool_settings_version: None,
                created_by: actor.user_id.clone(),
                created_at: now,
                submitted_by: None,
                submitted_at: None,
            },
        )?;
        let proposal = view(tx, actor, &row)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ProposalCreate, "proposal", Some(&row.id))
                .after(json!(proposal.content)),
        )?;
        Ok(proposal)
    })
}

/// Merges `patch` into the draft's content (top-level keys replace; `null` clears), under `If-Match`.
pub fn edit_proposal(
    conn: &mut DbConn,
    actor: &Actor,
    id: &ProposalId,
    expected_version: i64,
    patch: Map<String, Value>,
) -> AppResult<Proposal> {
    refuse_server_owned(&patch, &[])?;
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock_visible(tx, actor, id, Some(expected_version))?;
        locked.check(Action::Edit)?;
        let pool = pools::load(tx, &locked.row().pool())?;
        let mut version = repo::find_version(tx, id.as_str(), locked.row().current_version)?
            .ok_or_else(|| AppError::internal("current version missing"))?;
        let before = read_content(&version)?;
        let mut merged = match serde_json::to_value(&before) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        for (key, value) in patch {
            if value.is_null() {
                merged.remove(&key);
            } else {
                merged.insert(key, value);
            }
        }
        let content = parse_content(Value::Object(merged))?;
        format_problems(&content, pool.currency)?;
        version.content = content_json(&content);
        if repo::save_draft_version(tx, &version)? != 1 {
            return Err(AppError::conflict(
                "This version was submitted meanwhile and can no longer change.",
            ));
        }
        let copies = content_copies(&content, pool.currency);
        locked.columns().set_content_copies(
            copies.title,
            copies.search_text,
            copies.sector_code,
            copies.adm1_pcode,
            copies.adm2_pcode,
            copies.requested_minor,
        );
        let ctx = actor.audit();
        workflow::apply(
            tx,
            &mut locked,
            Action::Edit,
            By::Person(&ctx),
            AuditAction::ProposalEdit,
            |_, _, _| Record {
                before: Some(json!(before)),
                after: Some(json!(content)),
                ..Record::default()
            },
        )?;
        view(tx, actor, locked.row())
    })
}

fn reference_facts(tx: &mut DbConn, content: &ProposalContent) -> AppResult<ReferenceFacts> {
    let mut facts = ReferenceFacts::default();
    if let Some(code) = &content.sector_code {
        facts.sector_known = reference::sector_exists(tx, code)?;
    }
    if let Some(loc) = &content.location {
        facts.adm1_level = reference::find_area(tx, &loc.adm1_pcode)?.map(|a| a.level);
        facts.adm2_parent = reference::find_area(tx, &loc.adm2_pcode)?
            .map(|a| if a.level == 2 { a.parent_pcode } else { None });
    }
    Ok(facts)
}

/// Submits the current draft version: every check of DESIGN.md §2 against the pool's current settings (all
/// problems listed at once); the first submission takes the next gap-free reference of the pool and year.
/// The version becomes immutable.
pub fn submit_proposal(
    conn: &mut DbConn,
    actor: &Actor,
    id: &ProposalId,
    expected_version: i64,
) -> AppResult<Proposal> {
    let now = now_micros();
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock_visible(tx, actor, id, Some(expected_version))?;
        locked.check(Action::Submit)?;
        let pool: LoadedPool = pools::load(tx, &locked.row().pool())?;
        let mut version = repo::find_version(tx, id.as_str(), locked.row().current_version)?
            .ok_or_else(|| AppError::internal("current version missing"))?;
        let content = read_content(&version)?;
        let facts = reference_facts(tx, &content)?;
        let figures = check_submission(&content, pool.currency, &pool.policy, &facts, now.date())
            .map_err(|p| AppError::validation(p.into_iter().map(|(f, m)| FieldError::new(f, m)).collect()))?;
        if locked.row().reference.is_none() {
            let year = now.year();
            let number = repo::next_reference_number(tx, &pool.row.id, year)?;
            locked
                .columns()
                .set_reference(format!("QIP-{}-{year}-{number:04}", pool.row.code), now);
        }
        version.status = VersionStatus::Submitted;
        version.budget_total_minor = Some(figures.budget_total_minor);
        version.requested_minor = Some(figures.requested_minor);
        version.duration_days = i32::try_from(figures.duration_days).ok();
        version.waiver_reasons = Some(to_canonical_string(&json!(figures.waived)));
        version.pool_settings_version = Some(pool.row.settings_version);
        version.submitted_at = Some(now);
        version.submitted_by = Some(actor.user_id.clone());
        if repo::save_draft_version(tx, &version)? != 1 {
            return Err(AppError::conflict("This version was submitted already."));
        }
        locked.columns().set_submission(
            &actor.user_id,
            now,
            pool.row.settings_version,
            figures.requested_minor,
        );
        // Entering `in_consultation` opens the round (the workflow's side effect, as the system).
        let ctx = actor.audit();
        workflow::apply(
            tx,
            &mut locked,
            Action::Submit,
            By::Person(&ctx),
            AuditAction::ProposalSubmit,
            |row, _, to| Record {
                after: Some(json!({
                    "reference": row.reference, "version": version.number, "state": to,
                    "requested_amount": format_amount(figures.requested_minor, pool.currency),
                    "pool_settings_version": pool.row.settings_version, "waived_limits": figures.waived,
                })),
                ..Record::default()
            },
        )?;
        view(tx, actor, locked.row())
    })
}

/// Starts a revision of a `flagged` proposal (its submitter, `If-Match`): a new draft version copied from the
/// current one, back in the state the lifecycle names for `revise`. The open flags stay open; on the next
/// submission their raisers are asked to confirm that the revision resolves them (DESIGN.md §3).
pub fn revise_proposal(
    conn: &mut DbConn,
    actor: &Actor,
    id: &ProposalId,
    expected_version: i64,
) -> AppResult<Proposal> {
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock_visible(tx, actor, id, Some(expected_version))?;
        let revised = locked.row().current_version;
        let ctx = actor.audit();
        // `revise` opens the next draft version (the workflow's side effect).
        workflow::apply(
            tx,
            &mut locked,
            Action::Revise,
            By::Person(&ctx),
            AuditAction::ProposalRevise,
            |row, from, to| Record {
                before: Some(json!({"state": from, "current_version": revised})),
                after: Some(json!({"state": to, "current_version": row.current_version})),
                ..Record::default()
            },
        )?;
        view(tx, actor, locked.row())
    })
}

/// Withdraws a proposal before approval (its submitter).
pub fn withdraw_proposal(
    conn: &mut DbConn,
    actor: &Actor,
    id: &ProposalId,
    expected_version: i64,
    reason: Option<String>,
) -> AppResult<Proposal> {
    db::write_tx(conn, |tx| {
        let mut locked = workflow::lock_visible(tx, actor, id, Some(expected_version))?;
        let ctx = actor.audit();
        workflow::apply(
            tx,
            &mut locked,
            Action::Withdraw,
            By::Person(&ctx),
            AuditAction::ProposalWithdraw,
            |_, from, to| Record {
                before: Some(json!({"state": from})),
                after: Some(json!({"state": to})),
                reason: reason.filter(|r| !r.trim().is_empty()),
                ..Record::default()
            },
        )?;
        view(tx, actor, locked.row())
    })
}

pub fn get_proposal(conn: &mut DbConn, actor: &Actor, id: &ProposalId) -> AppResult<Proposal> {
    let row = load_visible(conn, actor, id)?;
    view(conn, actor, &row)
}

fn version_view(row: &VersionRow, currency: Currency) -> AppResult<ProposalVersion> {
    let content = read_content(row)?;
    Ok(ProposalVersion {
        proposal_id: row.proposal_id.clone(),
        number: row.number,
        status: row.status,
        computed: computed_view(&content, currency),
        content,
        pool_settings_version: row.pool_settings_version,
        waived_limits: waived(row)?,
        created_by: row.created_by.clone(),
        created_at: row.created_at.and_utc(),
        submitted_by: row.submitted_by.clone(),
        submitted_at: row.submitted_at.map(|t| t.and_utc()),
    })
}

/// Every version, oldest first. Hats that see only submitted proposals see only submitted versions.
pub fn list_versions(conn: &mut DbConn, actor: &Actor, id: &ProposalId) -> AppResult<Vec<ProposalVersion>> {
    let row = load_visible(conn, actor, id)?;
    let pool = pools::load(conn, &row.pool())?;
    let drafts_visible = scope_of(actor) != ProposalScope::Submitted;
    repo::list_versions(conn, id.as_str())?
        .iter()
        .filter(|v| drafts_visible || v.status != VersionStatus::Draft)
        .map(|v| version_view(v, pool.currency))
        .collect()
}

pub fn get_version(
    conn: &mut DbConn,
    actor: &Actor,
    id: &ProposalId,
    number: i32,
) -> AppResult<ProposalVersion> {
    list_versions(conn, actor, id)?
        .into_iter()
        .find(|v| v.number == number)
        .ok_or_else(|| AppError::not_found("This proposal has no such version visible to you."))
}

pub fn list_proposals(
    conn: &mut DbConn,
    actor: &Actor,
    query: &ProposalQuery,
    before: Option<&str>,
    limit: u32,
) -> AppResult<Vec<ProposalSummary>> {
    let filter = ProposalFilter {
        state: query.state.map(|s| s.as_str().to_owned()),
        pool_id: query.pool_id.clone(),
        organization_id: query.organization_id.clone(),
        sector_code: query.sector.clone(),
        adm1_pcode: query.adm1.clone(),
        adm2_pcode: query.adm2.clone(),
        words: query
            .q
            .as_deref()
            .unwrap_or("")
            .split_whitespace()
            .take(8)
            .map(str::to_lowercase)
            .collect(),
        submitted_from: query.submitted_from.map(|t| t.naive_utc()),
        submitted_to: query.submitted_to.map(|t| t.naive_utc()),
    };
    let rows = repo::list_proposals(conn, &scope_of(actor), &filter, before, i64::from(limit) + 1)?;
    let mut currencies: std::collections::HashMap<String, Currency> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let currency = match currencies.get(&row.pool_id) {
            Some(c) => *c,
            None => {
                let c = pools::load(conn, &row.pool())?.currency;
                currencies.insert(row.pool_id.clone(), c);
                c
            }
        };
        out.push(ProposalSummary {
            state: row.lifecycle_state()?,
            requested_amount: row.requested_minor.map(|m| format_amount(m, currency)),
            id: row.id,
            reference: row.reference,
            title: row.title,
            pool_id: row.pool_id,
            organization_id: row.organization_id,
            sector_code: row.sector_code,
            adm1_pcode: row.adm1_pcode,
            adm2_pcode: row.adm2_pcode,
            version: row.version,
            first_submitted_at: row.first_submitted_at.map(|t| t.and_utc()),
            updated_at: row.updated_at.and_utc(),
        });
    }
    Ok(out)
}
