//! The 3W registry (who does what where when): a humanitarian organisation registers, edits and closes its own
//! activities, others read them; bulk import from an HXL-tagged CSV, all rows or none.

use crate::features::audit::AuditAction;
use serde_json::json;

use super::dto::{Activity, ActivityInput, ActivityStatus};
use super::repo::{self, ActivityRow};
use crate::access::{Actor, Hat, acting_organization};
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, now_micros};
use crate::features::identity::service::deny;
use crate::features::reference::repo as reference;

/// Every problem of an activity's fields, with `prefix` before field names (`line 4: ` for imports).
fn problems(conn: &mut DbConn, input: &ActivityInput, prefix: &str) -> AppResult<Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut add = |f: &str, m: &str| errors.push(FieldError::new(format!("{prefix}{f}"), m));
    if input.title.trim().is_empty() || input.title.chars().count() > 300 {
        add("title", "must be 1–300 characters");
    }
    if !reference::sector_exists(conn, &input.sector_code)? {
        add("sector_code", "is not a sector of the code list");
    }
    match reference::find_area(conn, &input.adm1_pcode)? {
        Some(a) if a.level == 1 => {}
        _ => add("adm1_pcode", "is not an adm1 P-code of the gazetteer"),
    }
    match reference::find_area(conn, &input.adm2_pcode)? {
        Some(a) if a.level == 2 && a.parent_pcode.as_deref() == Some(input.adm1_pcode.as_str()) => {}
        Some(a) if a.level == 2 => add("adm2_pcode", "does not lie in the adm1 area given"),
        _ => add("adm2_pcode", "is not an adm2 P-code of the gazetteer"),
    }
    if input.lat.is_some() != input.lon.is_some() {
        add("lat", "lat and lon must be given together");
    }
    if input.lat.is_some_and(|v| !v.is_finite() || v.abs() > 90.0) {
        add("lat", "must be between -90 and 90");
    }
    if input.lon.is_some_and(|v| !v.is_finite() || v.abs() > 180.0) {
        add("lon", "must be between -180 and 180");
    }
    if input.end_date.is_some_and(|end| end < input.start_date) {
        add("end_date", "must not be before start_date");
    }
    if input.status == Some(ActivityStatus::Closed) {
        add("status", "close an activity with POST /activities/{id}/close");
    }
    Ok(errors)
}

fn row_from(input: &ActivityInput, id: String, org: String, by: &str, version: i64) -> ActivityRow {
    let now = now_micros();
    ActivityRow {
        id,
        organization_id: org,
        title: input.title.trim().to_owned(),
        sector_code: input.sector_code.clone(),
        adm1_pcode: input.adm1_pcode.clone(),
        adm2_pcode: input.adm2_pcode.clone(),
        lat: input.lat,
        lon: input.lon,
        start_date: input.start_date,
        end_date: input.end_date,
        status: input.status.unwrap_or(ActivityStatus::Planned),
        version,
        created_by: by.to_owned(),
        created_at: now,
        updated_at: now,
        import_key: None,
    }
}

pub fn create_activity(conn: &mut DbConn, actor: &Actor, input: &ActivityInput) -> AppResult<Activity> {
    let errors = problems(conn, input, "")?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let org = acting_organization(actor);
    db::write_tx(conn, |tx| {
        let row = row_from(
            input,
            uuid::Uuid::now_v7().to_string(),
            org.clone(),
            &actor.user_id,
            1,
        );
        repo::insert_activity(tx, &row)?;
        let activity = Activity::from(row);
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ActivityCreate, "activity", Some(&activity.id))
                .after(json!(activity)),
        )?;
        Ok(activity)
    })
}

fn own_activity(conn: &mut DbConn, actor: &Actor, id: &str, action: AuditAction) -> AppResult<ActivityRow> {
    let row =
        repo::find_activity(conn, id)?.ok_or_else(|| AppError::not_found("No activity with this id."))?;
    if row.organization_id != acting_organization(actor) {
        return Err(deny(
            conn,
            actor,
            action,
            "activity",
            id,
            "Only the organisation that registered an activity can change it.",
        ));
    }
    Ok(row)
}

/// Replaces an activity's fields (its organisation only, `If-Match`).
pub fn update_activity(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    expected: i64,
    input: &ActivityInput,
) -> AppResult<Activity> {
    own_activity(conn, actor, id, AuditAction::ActivityUpdate)?;
    let errors = problems(conn, input, "")?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "activities", id)?;
        let before =
            repo::find_activity(tx, id)?.ok_or_else(|| AppError::not_found("No activity with this id."))?;
        if before.version != expected {
            return Err(AppError::stale(before.version));
        }
        if before.status == ActivityStatus::Closed {
            return Err(AppError::conflict("This activity is closed."));
        }
        let mut row = row_from(
            input,
            id.to_owned(),
            before.organization_id.clone(),
            &before.created_by,
            before.version + 1,
        );
        row.created_at = before.created_at;
        repo::save_activity(tx, &row)?;
        let (b, a) = (Activity::from(before), Activity::from(row));
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ActivityUpdate, "activity", Some(id))
                .before(json!(b))
                .after(json!(a)),
        )?;
        Ok(a)
    })
}

pub fn close_activity(conn: &mut DbConn, actor: &Actor, id: &str) -> AppResult<Activity> {
    own_activity(conn, actor, id, AuditAction::ActivityClose)?;
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "activities", id)?;
        let mut row =
            repo::find_activity(tx, id)?.ok_or_else(|| AppError::not_found("No activity with this id."))?;
        if row.status == ActivityStatus::Closed {
            return Err(AppError::conflict("This activity is closed already."));
        }
        row.status = ActivityStatus::Closed;
        row.version += 1;
        row.updated_at = now_micros();
        repo::save_activity(tx, &row)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ActivityClose, "activity", Some(id)),
        )?;
        Ok(Activity::from(row))
    })
}

pub fn get_activity(conn: &mut DbConn, id: &str) -> AppResult<Activity> {
    repo::find_activity(conn, id)?
        .map(Activity::from)
        .ok_or_else(|| AppError::not_found("No activity with this id."))
}

pub fn list_activities(
    conn: &mut DbConn,
    organization_id: Option<&str>,
    sector: Option<&str>,
    adm2: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<Activity>> {
    Ok(
        repo::list_activities(conn, organization_id, sector, adm2, after, i64::from(limit) + 1)?
            .into_iter()
            .map(Activity::from)
            .collect(),
    )
}

/// What an import did. Re-importing a file finds its rows again by their natural key: nothing is duplicated.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ActivityImport {
    /// Data rows in the file (each one created, updated or unchanged).
    pub imported: usize,
    pub created: usize,
    pub updated: usize,
    /// Rows that matched a registered activity already, with the same content (or that activity is closed).
    pub unchanged: usize,
}

/// HXL tag patterns of each column, most specific first (`#org+acronym` matches a `#org` pattern; `-x`
/// excludes columns tagged `+x`). The organisation column holds codes, acronyms or names; `+impl` and
/// `+type` columns describe other organisations and are never read as the registering one.
const ORG_TAGS: &[&str] = &["#org+code", "#org+acronym", "#org-type-impl", "#org-type"];
const SECTOR_TAGS: &[&str] = &["#sector+code", "#sector+cluster", "#sector-type"];
const ADM1_TAGS: &[&str] = &["#adm1+code"];
const ADM2_TAGS: &[&str] = &["#adm2+code"];
const LAT_TAGS: &[&str] = &["#geo+lat"];
const LON_TAGS: &[&str] = &["#geo+lon"];
const START_TAGS: &[&str] = &["#date+start"];
const END_TAGS: &[&str] = &["#date+end"];
const TITLE_TAGS: &[&str] = &["#activity+name", "#activity+description", "#activity-code-id"];
/// Columns that carry the file's own stable activity id, the preferred natural key.
const ID_TAGS: &[&str] = &["#activity+code", "#activity+id"];

/// A 413 naming the limit: the file is refused whole, nothing is read further or written.
pub fn too_many_rows(kind: &str, max_rows: usize) -> AppError {
    AppError::new(
        crate::error::ErrorKind::PayloadTooLarge,
        format!("A {kind} import takes at most {max_rows} data rows; split the file."),
    )
    .with_extension("max_rows", json!(max_rows))
}

/// The natural key of an imported row within its organisation: the file's activity id when it has one, else a
/// hash of the row's normalised content (so the same row imported again is recognised).
fn import_key(file_id: &str, input: &ActivityInput) -> String {
    use sha2::{Digest, Sha256};
    if !file_id.is_empty() {
        return format!("id:{file_id}");
    }
    let title = input
        .title
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let canonical = json!([
        title,
        input.sector_code.to_ascii_uppercase(),
        input.adm1_pcode.to_ascii_uppercase(),
        input.adm2_pcode.to_ascii_uppercase(),
        input.lat,
        input.lon,
        input.start_date,
        input.end_date,
    ]);
    format!("sha256:{}", hex::encode(Sha256::digest(canonical.to_string())))
}

/// Whether an imported row would change the activity it matched.
fn same_content(row: &ActivityRow, input: &ActivityInput) -> bool {
    row.title == input.title.trim()
        && row.sector_code == input.sector_code
        && row.adm1_pcode == input.adm1_pcode
        && row.adm2_pcode == input.adm2_pcode
        && row.lat == input.lat
        && row.lon == input.lon
        && row.start_date == input.start_date
        && row.end_date == input.end_date
}

/// Imports an HXL-tagged CSV of 3W rows. The file may be UTF-8 (with or without BOM) or Windows-1252/Latin-1,
/// separated by commas, semicolons or tabs (sniffed from the header), with the hashtag row anywhere above the
/// data (HDX files put it on line 2). Columns are found by HXL tag patterns with attributes (see `ORG_TAGS`
/// and the others); organisations and sectors are matched by code, acronym or name, ignoring case, and an
/// unknown organisation is reported, never created. A consultee imports only its own organisation's rows; a
/// coordination organisation (OCHA, which compiles the 3W) or a QIP officer imports anyone's. A file of more
/// than `max_rows` data rows is refused whole; every faulty line is reported before anything is written; a
/// row imported before (same `#activity+code`, or the registry id an export wrote, or the same content) is
/// updated or left unchanged, never duplicated.
pub fn import_activities(
    conn: &mut DbConn,
    actor: &Actor,
    bytes: &[u8],
    max_rows: usize,
) -> AppResult<ActivityImport> {
    use crate::features::exchange::hxl;
    let decoded = hxl::decode(bytes);
    let delimiter = hxl::sniff_delimiter(&decoded.text);
    let records = hxl::records(&decoded.text, delimiter);
    let Some(tag_pos) = records
        .iter()
        .position(|(_, r)| r.as_ref().is_ok_and(|cells| hxl::is_tag_row(cells)))
    else {
        return Err(AppError::invalid_field(
            "line 1",
            "no HXL hashtag row (#org, #sector, …) found",
        ));
    };
    let data_rows = records.len() - tag_pos - 1;
    if data_rows > max_rows {
        return Err(too_many_rows("3W", max_rows));
    }
    let (tag_line, tag_cells) = match &records[tag_pos] {
        (line, Ok(cells)) => (*line, cells.clone()),
        (line, Err(e)) => return Err(AppError::invalid_field(format!("line {line}"), e.clone())),
    };
    let tags = hxl::tag_row(&tag_cells);
    let col = |patterns: &[&str]| hxl::find_column(&tags, patterns);
    let mut missing = Vec::new();
    for (name, patterns) in [
        ("#org", ORG_TAGS),
        ("#sector", SECTOR_TAGS),
        ("#adm1+code", ADM1_TAGS),
        ("#adm2+code", ADM2_TAGS),
        ("#date+start", START_TAGS),
        ("#activity", TITLE_TAGS),
    ] {
        if col(patterns).is_none() {
            missing.push(FieldError::new(
                format!("line {tag_line}"),
                format!("no {name} column"),
            ));
        }
    }
    if !missing.is_empty() {
        return Err(AppError::validation(missing));
    }
    let idx: Vec<Option<usize>> = [
        ORG_TAGS,
        SECTOR_TAGS,
        ADM1_TAGS,
        ADM2_TAGS,
        LAT_TAGS,
        LON_TAGS,
        START_TAGS,
        END_TAGS,
        TITLE_TAGS,
    ]
    .iter()
    .map(|p| col(p))
    .collect();
    let id_col = col(ID_TAGS);
    let own = acting_organization(actor);
    let orgs = crate::features::identity::repo::list_organizations(conn, None, 100_000)?;
    let may_import_for_others = actor.hat() == Some(Hat::QipOfficer)
        || orgs
            .iter()
            .any(|o| o.id == own && o.kind == crate::domain::status::OrganizationKind::Coordination);
    let sectors = reference::list_sectors(conn)?;
    let mut errors = Vec::new();
    let mut parsed: Vec<(String, String, String, ActivityInput)> = Vec::new();
    let mut seen: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    for (line, record) in records.iter().skip(tag_pos + 1) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(FieldError::new(format!("line {line}"), e.clone()));
                continue;
            }
        };
        let get = |i: usize| idx[i].and_then(|c| record.get(c)).cloned().unwrap_or_default();
        let prefix = format!("line {line}: ");
        let mut line_errors = Vec::new();
        let org_text = get(0);
        let org = orgs
            .iter()
            .find(|o| o.code.eq_ignore_ascii_case(&org_text))
            .or_else(|| orgs.iter().find(|o| o.name.eq_ignore_ascii_case(&org_text)))
            .map(|o| o.id.clone());
        match &org {
            None => line_errors.push(FieldError::new(
                format!("line {line}"),
                format!(
                    "#org `{org_text}` is not a registered organisation (code, acronym or name); it is not created"
                ),
            )),
            Some(id) if *id != own && !may_import_for_others => line_errors.push(FieldError::new(
                format!("line {line}"),
                "you can import only your own organisation's activities",
            )),
            _ => {}
        }
        let sector_text = get(1);
        let sector_code = sectors
            .iter()
            .find(|s| s.code.eq_ignore_ascii_case(&sector_text) || s.name.eq_ignore_ascii_case(&sector_text))
            .map_or(sector_text.clone(), |s| s.code.clone());
        let date = |i: usize, label: &str, errs: &mut Vec<FieldError>| -> Option<chrono::NaiveDate> {
            let text = get(i);
            if text.is_empty() {
                return None;
            }
            chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                .map_err(|_| {
                    errs.push(FieldError::new(
                        format!("line {line}"),
                        format!("{label} `{text}` is not a YYYY-MM-DD date"),
                    ))
                })
                .ok()
        };
        let number = |i: usize, label: &str, errs: &mut Vec<FieldError>| -> Option<f64> {
            let text = get(i);
            if text.is_empty() {
                return None;
            }
            // A decimal comma is the norm where files are separated by semicolons or tabs.
            let text = if delimiter == b',' {
                text
            } else {
                text.replace(',', ".")
            };
            text.parse::<f64>()
                .map_err(|_| {
                    errs.push(FieldError::new(
                        format!("line {line}"),
                        format!("{label} `{text}` is not a number"),
                    ))
                })
                .ok()
        };
        let start = date(6, "#date+start", &mut line_errors);
        let end = date(7, "#date+end", &mut line_errors);
        let lat = number(4, "#geo+lat", &mut line_errors);
        let lon = number(5, "#geo+lon", &mut line_errors);
        if start.is_none() && line_errors.iter().all(|e| !e.message.contains("#date+start")) {
            line_errors.push(FieldError::new(format!("line {line}"), "#date+start is required"));
        }
        let file_id = id_col.and_then(|c| record.get(c)).cloned().unwrap_or_default();
        if file_id.chars().count() > 128 {
            line_errors.push(FieldError::new(
                format!("line {line}"),
                "the activity id must be at most 128 characters",
            ));
        }
        if let (Some(org), Some(start)) = (org, start) {
            let input = ActivityInput {
                title: get(8),
                sector_code,
                adm1_pcode: get(2),
                adm2_pcode: get(3),
                lat,
                lon,
                start_date: start,
                end_date: end,
                status: Some(ActivityStatus::Ongoing),
            };
            let field_problems = problems(conn, &input, &prefix)?;
            line_errors.extend(field_problems.into_iter().map(|e| {
                let (l, f) = e.field.split_once(": ").unwrap_or((&e.field, ""));
                FieldError::new(l, format!("{f} {}", e.message))
            }));
            if line_errors.is_empty() {
                let key = import_key(&file_id, &input);
                match seen.get(&(org.clone(), key.clone())) {
                    Some(first) => line_errors.push(FieldError::new(
                        format!("line {line}"),
                        format!("the same activity as line {first}"),
                    )),
                    None => {
                        seen.insert((org.clone(), key.clone()), *line);
                        parsed.push((org, key, file_id, input));
                    }
                }
            }
        }
        errors.extend(line_errors);
    }
    if parsed.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("file", "no data rows after the hashtag row"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        let mut summary = ActivityImport {
            imported: parsed.len(),
            created: 0,
            updated: 0,
            unchanged: 0,
        };
        for (org, key, file_id, input) in &parsed {
            // An exported file carries the registry's own id for activities that were not imported with one.
            let registered = match file_id.is_empty() {
                true => None,
                false => repo::find_activity(tx, file_id)?.filter(|a| a.organization_id == *org),
            };
            let existing = match registered {
                Some(a) => Some(a),
                None => repo::find_imported_activity(tx, org, key)?,
            };
            match existing {
                None => {
                    let mut row = row_from(
                        input,
                        uuid::Uuid::now_v7().to_string(),
                        org.clone(),
                        &actor.user_id,
                        1,
                    );
                    row.import_key = Some(key.clone());
                    repo::insert_activity(tx, &row)?;
                    summary.created += 1;
                }
                Some(existing)
                    if existing.status == ActivityStatus::Closed || same_content(&existing, input) =>
                {
                    summary.unchanged += 1;
                }
                Some(existing) => {
                    let mut row = row_from(
                        input,
                        existing.id.clone(),
                        existing.organization_id.clone(),
                        &existing.created_by,
                        existing.version + 1,
                    );
                    row.status = existing.status;
                    row.created_at = existing.created_at;
                    repo::save_activity(tx, &row)?;
                    summary.updated += 1;
                }
            }
        }
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::ActivityImport, "activity", None)
                .after(json!(summary)),
        )?;
        Ok(summary)
    })
}
