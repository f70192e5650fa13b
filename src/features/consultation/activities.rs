//! The 3W registry (who does what where when): a humanitarian organisation registers, edits and closes its own
//! activities, others read them; bulk import from an HXL-tagged CSV, all rows or none.

use serde_json::json;

use super::dto::{Activity, ActivityInput, ActivityStatus};
use super::repo::{self, ActivityRow};
use crate::access::{Actor, Hat, acting_organization};
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, now_micros};
use crate::features::identity::service::deny;
use crate::features::reference::repo as reference;
use crate::http::preconditions::stale;

/// Every problem of an activity's fields, with `prefix` before field names (`line 4: ` for imports).
fn problems(conn: &mut DbConn, input: &ActivityInput, prefix: &str) -> AppResult<Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut add = |f: &str, m: &str| errors.push(FieldError::new(format!("{prefix}{f}"), m));
    if input.title.trim().is_empty() || input.title.len() > 300 {
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
        status: input
            .status
            .unwrap_or(ActivityStatus::Planned)
            .as_str()
            .to_owned(),
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
                .event("activity.create", "activity", Some(&activity.id))
                .after(json!(activity)),
        )?;
        Ok(activity)
    })
}

fn own_activity(conn: &mut DbConn, actor: &Actor, id: &str, action: &str) -> AppResult<ActivityRow> {
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
    own_activity(conn, actor, id, "activity.update")?;
    let errors = problems(conn, input, "")?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "activities", id)?;
        let before =
            repo::find_activity(tx, id)?.ok_or_else(|| AppError::not_found("No activity with this id."))?;
        if before.version != expected {
            return Err(stale(before.version));
        }
        if before.status == "closed" {
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
                .event("activity.update", "activity", Some(id))
                .before(json!(b))
                .after(json!(a)),
        )?;
        Ok(a)
    })
}

pub fn close_activity(conn: &mut DbConn, actor: &Actor, id: &str) -> AppResult<Activity> {
    own_activity(conn, actor, id, "activity.close")?;
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "activities", id)?;
        let mut row =
            repo::find_activity(tx, id)?.ok_or_else(|| AppError::not_found("No activity with this id."))?;
        if row.status == "closed" {
            return Err(AppError::conflict("This activity is closed already."));
        }
        row.status = "closed".into();
        row.version += 1;
        row.updated_at = now_micros();
        repo::save_activity(tx, &row)?;
        audit::append(tx, actor.audit().event("activity.close", "activity", Some(id)))?;
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

const HXL_TAGS: [&str; 9] = [
    "#org",
    "#sector",
    "#adm1+code",
    "#adm2+code",
    "#geo+lat",
    "#geo+lon",
    "#date+start",
    "#date+end",
    "#activity",
];

/// Columns that carry the file's own stable activity id, the preferred natural key.
const ID_TAGS: [&str; 2] = ["#activity+code", "#activity+id"];

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

/// Imports an HXL-tagged CSV (`#org`, `#sector`, `#adm1+code`, `#adm2+code`, `#geo+lat`, `#geo+lon`,
/// `#date+start`, `#date+end`, `#activity`, optionally `#activity+code` as the row's stable id). `#org` holds
/// organisation codes; a consultee imports only for its own organisation. A file of more than `max_rows` data
/// rows is refused whole; every faulty line is reported before anything is written; a row imported before is
/// updated (or left unchanged), never duplicated.
pub fn import_activities(
    conn: &mut DbConn,
    actor: &Actor,
    bytes: &[u8],
    max_rows: usize,
) -> AppResult<ActivityImport> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut rows: Vec<(usize, csv::StringRecord)> = Vec::new();
    let mut tag_index = None;
    let mut data_rows = 0usize;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| AppError::invalid_field("file", format!("unreadable CSV: {e}")))?;
        match tag_index {
            None if record.iter().any(|c| c.starts_with('#')) => tag_index = Some(rows.len()),
            Some(_) if !record.iter().all(str::is_empty) => {
                data_rows += 1;
                if data_rows > max_rows {
                    return Err(too_many_rows("3W", max_rows));
                }
            }
            _ => {}
        }
        rows.push((i + 1, record));
    }
    let Some(tag_index) = tag_index else {
        return Err(AppError::invalid_field(
            "line 1",
            "no HXL hashtag row (#org, #sector, …) found",
        ));
    };
    let tags: Vec<String> = rows[tag_index]
        .1
        .iter()
        .map(|t| t.replace(' ', "").to_ascii_lowercase())
        .collect();
    let find = |tag: &str| tags.iter().position(|t| t == tag);
    let mut missing = Vec::new();
    for tag in [
        "#org",
        "#sector",
        "#adm1+code",
        "#adm2+code",
        "#date+start",
        "#activity",
    ] {
        if find(tag).is_none() {
            missing.push(FieldError::new(
                format!("line {}", rows[tag_index].0),
                format!("no {tag} column"),
            ));
        }
    }
    if !missing.is_empty() {
        return Err(AppError::validation(missing));
    }
    let idx: Vec<Option<usize>> = HXL_TAGS.iter().map(|t| find(t)).collect();
    let id_col = ID_TAGS.iter().find_map(|t| find(t));
    let own = acting_organization(actor);
    let may_import_for_others = actor.hat() == Some(Hat::QipOfficer);
    let orgs = crate::features::identity::repo::list_organizations(conn, None, 100_000)?;
    let mut errors = Vec::new();
    let mut parsed: Vec<(String, String, ActivityInput)> = Vec::new();
    let mut seen: std::collections::HashMap<(String, String), usize> = std::collections::HashMap::new();
    for (line, record) in rows.iter().skip(tag_index + 1) {
        if record.iter().all(str::is_empty) {
            continue;
        }
        let get = |i: usize| idx[i].and_then(|c| record.get(c)).unwrap_or("").to_owned();
        let prefix = format!("line {line}: ");
        let mut line_errors = Vec::new();
        let org = orgs.iter().find(|o| o.code == get(0)).map(|o| o.id.clone());
        match &org {
            None => line_errors.push(FieldError::new(
                format!("line {line}"),
                format!("#org `{}` is not an organisation code", get(0)),
            )),
            Some(id) if *id != own && !may_import_for_others => line_errors.push(FieldError::new(
                format!("line {line}"),
                "you can import only your own organisation's activities",
            )),
            _ => {}
        }
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
        let file_id = id_col.and_then(|c| record.get(c)).unwrap_or("").to_owned();
        if file_id.chars().count() > 128 {
            line_errors.push(FieldError::new(
                format!("line {line}"),
                "the activity id must be at most 128 characters",
            ));
        }
        if let (Some(org), Some(start)) = (org, start) {
            let input = ActivityInput {
                title: get(8),
                sector_code: get(1),
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
                        parsed.push((org, key, input));
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
        for (org, key, input) in &parsed {
            match repo::find_imported_activity(tx, org, key)? {
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
                Some(existing) if existing.status == "closed" || same_content(&existing, input) => {
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
                    row.status = existing.status.clone();
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
                .event("activity.import", "activity", None)
                .after(json!(summary)),
        )?;
        Ok(summary)
    })
}
