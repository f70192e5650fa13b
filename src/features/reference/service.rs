//! Reference-data use cases: the all-or-nothing gazetteer import, and reads.

use std::collections::HashMap;

use serde_json::json;

use super::repo::{self, Area, Sector};
use crate::access::Actor;
use crate::db::{self, DbConn};
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit;
use crate::features::consultation::activities::too_many_rows;

/// What an import did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    pub rows: usize,
    pub adm1_areas: usize,
    pub adm2_areas: usize,
    pub created: usize,
    pub updated: usize,
}

fn column(headers: &csv::StringRecord, names: &[&str]) -> Option<usize> {
    headers
        .iter()
        .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
}

fn valid_pcode(code: &str) -> bool {
    (2..=32).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Parses a COD-style CSV (`ADM1_PCODE, ADM1_EN, ADM2_PCODE, ADM2_EN`, optional latitude/longitude columns of the
/// adm2 centroid). A file of more than `max_rows` data rows is refused whole (413); every faulty line is
/// reported, by line number, before anything is written.
pub fn parse_gazetteer(bytes: &[u8], max_rows: usize) -> AppResult<Vec<Area>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| AppError::invalid_field("line 1", format!("cannot read the header row: {e}")))?
        .clone();
    let required = [
        ("ADM1_PCODE", &["ADM1_PCODE"][..]),
        ("ADM1_EN", &["ADM1_EN"]),
        ("ADM2_PCODE", &["ADM2_PCODE"]),
        ("ADM2_EN", &["ADM2_EN"]),
    ];
    let mut idx = Vec::new();
    let mut missing = Vec::new();
    for (name, aliases) in required {
        match column(&headers, aliases) {
            Some(i) => idx.push(i),
            None => missing.push(FieldError::new(
                "line 1",
                format!("the header has no {name} column"),
            )),
        }
    }
    if !missing.is_empty() {
        return Err(AppError::validation(missing));
    }
    let lat_col = column(&headers, &["LAT", "LATITUDE", "CENTER_LAT", "ADM2_LAT", "Y"]);
    let lon_col = column(
        &headers,
        &["LON", "LONG", "LONGITUDE", "CENTER_LON", "ADM2_LON", "X"],
    );
    let mut errors = Vec::new();
    let mut adm1: HashMap<String, (String, usize)> = HashMap::new();
    let mut adm2: HashMap<String, usize> = HashMap::new();
    let mut out_adm2 = Vec::new();
    let mut data_rows = 0usize;
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        if record.as_ref().is_ok_and(|r| r.iter().all(str::is_empty)) {
            continue;
        }
        data_rows += 1;
        if data_rows > max_rows {
            return Err(too_many_rows("gazetteer", max_rows));
        }
        let field = format!("line {line}");
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(FieldError::new(&field, format!("unreadable: {e}")));
                continue;
            }
        };
        if record.iter().all(|c| c.is_empty()) {
            continue;
        }
        let get = |i: usize| record.get(i).unwrap_or("").to_owned();
        let (a1, a1_name, a2, a2_name) = (get(idx[0]), get(idx[1]), get(idx[2]), get(idx[3]));
        let mut line_errors = Vec::new();
        for (label, value) in [("ADM1_PCODE", &a1), ("ADM2_PCODE", &a2)] {
            if value.is_empty() {
                line_errors.push(format!("{label} is empty"));
            } else if !valid_pcode(value) {
                line_errors.push(format!(
                    "{label} `{value}` is not a P-code (letters, digits, - and _)"
                ));
            }
        }
        for (label, value) in [("ADM1_EN", &a1_name), ("ADM2_EN", &a2_name)] {
            if value.is_empty() {
                line_errors.push(format!("{label} is empty"));
            }
        }
        let coordinate =
            |col: Option<usize>, label: &str, limit: f64, errs: &mut Vec<String>| -> Option<f64> {
                let text = col.and_then(|c| record.get(c)).unwrap_or("");
                if text.is_empty() {
                    return None;
                }
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() && v.abs() <= limit => Some(v),
                    _ => {
                        errs.push(format!(
                            "{label} `{text}` is not a number between -{limit} and {limit}"
                        ));
                        None
                    }
                }
            };
        let lat = coordinate(lat_col, "latitude", 90.0, &mut line_errors);
        let lon = coordinate(lon_col, "longitude", 180.0, &mut line_errors);
        if lat.is_some() != lon.is_some() && line_errors.is_empty() {
            line_errors.push("latitude and longitude must be given together".into());
        }
        if line_errors.is_empty() {
            if let Some((name, first)) = adm1.get(&a1) {
                if *name != a1_name {
                    line_errors.push(format!(
                        "ADM1 {a1} is named `{a1_name}` here but `{name}` on line {first}"
                    ));
                }
            }
            if let Some(first) = adm2.get(&a2) {
                line_errors.push(format!("ADM2 {a2} appears again (first on line {first})"));
            }
            if a1 == a2 {
                line_errors.push("ADM2_PCODE must differ from ADM1_PCODE".into());
            }
        }
        if !line_errors.is_empty() {
            errors.extend(line_errors.into_iter().map(|m| FieldError::new(&field, m)));
            continue;
        }
        adm1.entry(a1.clone()).or_insert((a1_name, line));
        adm2.insert(a2.clone(), line);
        out_adm2.push(Area {
            pcode: a2,
            level: 2,
            name: a2_name,
            parent_pcode: Some(a1),
            lat,
            lon,
        });
    }
    if out_adm2.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("line 2", "the file has no data rows"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut all: Vec<Area> = adm1
        .into_iter()
        .map(|(pcode, (name, _))| Area {
            pcode,
            level: 1,
            name,
            parent_pcode: None,
            lat: None,
            lon: None,
        })
        .collect();
    all.sort_by(|a, b| a.pcode.cmp(&b.pcode));
    all.extend(out_adm2);
    Ok(all)
}

/// Imports a gazetteer of at most `max_rows` data rows: parsed and checked in full first, then written in one
/// transaction with its audit event.
pub fn import_areas(
    conn: &mut DbConn,
    actor: &Actor,
    bytes: &[u8],
    max_rows: usize,
) -> AppResult<ImportSummary> {
    let areas = parse_gazetteer(bytes, max_rows)?;
    db::write_tx(conn, |tx| {
        let mut summary = ImportSummary {
            rows: 0,
            adm1_areas: 0,
            adm2_areas: 0,
            created: 0,
            updated: 0,
        };
        for area in &areas {
            if let Some(existing) = repo::find_area(tx, &area.pcode)? {
                if existing.level != area.level {
                    return Err(AppError::invalid_field(
                        "file",
                        format!(
                            "{} is an adm{} area already and cannot become adm{}",
                            area.pcode, existing.level, area.level
                        ),
                    ));
                }
            }
            if repo::upsert_area(tx, area)? {
                summary.created += 1;
            } else {
                summary.updated += 1;
            }
            if area.level == 1 {
                summary.adm1_areas += 1;
            } else {
                summary.adm2_areas += 1;
                summary.rows += 1;
            }
        }
        audit::append(
            tx,
            actor
                .audit()
                .event("areas.import", "gazetteer", None)
                .after(json!(summary)),
        )?;
        Ok(summary)
    })
}

pub fn list_areas(
    conn: &mut DbConn,
    adm1: Option<&str>,
    level: Option<i32>,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<Area>> {
    if level.is_some_and(|l| !(1..=2).contains(&l)) {
        return Err(AppError::invalid_field("level", "must be 1 or 2"));
    }
    Ok(repo::list_areas(conn, adm1, level, after, i64::from(limit) + 1)?)
}

pub fn list_sectors(conn: &mut DbConn) -> AppResult<Vec<Sector>> {
    Ok(repo::list_sectors(conn)?)
}
