//! Reference-data use cases: the all-or-nothing gazetteer import, and reads.

use crate::features::audit::AuditAction;
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
    /// Data rows of the file (one per area of its finest level).
    pub rows: usize,
    pub adm1_areas: usize,
    pub adm2_areas: usize,
    /// Present in files with an ADM3 level.
    pub adm3_areas: usize,
    pub created: usize,
    pub updated: usize,
    /// `UTF-8` or `windows-1252` (Latin-1 files read as its superset).
    pub encoding: String,
}

fn column(headers: &[String], names: &[&str]) -> Option<usize> {
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

/// Areas of a level above the file's finest: P-code → (name, parent P-code, first line).
type UpperLevel = HashMap<String, (String, Option<String>, usize)>;

/// Languages of COD name columns (`ADM1_EN`, `ADM1_FR`, …), in the order a name is taken from.
const NAME_LANGUAGES: [&str; 7] = ["EN", "FR", "ES", "PT", "AR", "RU", "ZH"];

/// The P-code and name columns of one admin level: by COD header (`ADMn_PCODE`; `ADMn_EN`, `ADMn_FR`, … or
/// `ADMn_NAME`), else by HXL tag (`#admn+code`, `#admn+name`). Returns `(pcode column, name column, name
/// header)`.
fn level_columns(
    headers: &[String],
    tags: &[Option<crate::features::exchange::hxl::Tag>],
    level: usize,
) -> (Option<usize>, Option<(usize, String)>) {
    use crate::features::exchange::hxl::find_column;
    let pcode = column(headers, &[&format!("ADM{level}_PCODE")])
        .or_else(|| find_column(tags, &[&format!("#adm{level}+code")]));
    let mut name_headers: Vec<String> = NAME_LANGUAGES.iter().map(|l| format!("ADM{level}_{l}")).collect();
    name_headers.push(format!("ADM{level}_NAME"));
    let name = name_headers
        .iter()
        .find_map(|h| column(headers, &[h]).map(|c| (c, h.clone())))
        .or_else(|| {
            find_column(tags, &[&format!("#adm{level}+name")]).map(|c| {
                (
                    c,
                    headers
                        .get(c)
                        .cloned()
                        .unwrap_or_else(|| format!("#adm{level}+name")),
                )
            })
        });
    (pcode, name)
}

/// Parses a COD-style gazetteer CSV: `ADM1_PCODE, ADM1_EN, ADM2_PCODE, ADM2_EN`, optionally `ADM3_PCODE,
/// ADM3_EN` (then each row is an adm3 area) and latitude/longitude columns of the finest level's centroid.
/// Names may be in any COD language column (`ADM1_FR`, `ADM1_ES`, `ADM1_PT`, `ADM1_AR`, …; English first when
/// several are present). The file may carry an HXL hashtag row under the header (as HDX files do, and columns
/// are then also found by `#adm1+code`/`#adm1+name` …), be UTF-8 with or without BOM or Windows-1252/Latin-1,
/// and be separated by commas, semicolons or tabs. A file of more than `max_rows` data rows is refused whole
/// (413); every faulty line is reported, by line number, before anything is written.
pub fn parse_gazetteer(bytes: &[u8], max_rows: usize) -> AppResult<(Vec<Area>, &'static str)> {
    use crate::features::exchange::hxl;
    let decoded = hxl::decode(bytes);
    let delimiter = hxl::sniff_delimiter(&decoded.text);
    let records = hxl::records(&decoded.text, delimiter);
    let Some((header_line, header)) = records.first() else {
        return Err(AppError::invalid_field("line 1", "the file is empty"));
    };
    let headers = header.clone().map_err(|e| {
        AppError::invalid_field(
            format!("line {header_line}"),
            format!("cannot read the header row: {e}"),
        )
    })?;
    let mut skip = 1;
    let mut tags = Vec::new();
    if let Some((_, Ok(second))) = records.get(1) {
        if hxl::is_tag_row(second) {
            tags = hxl::tag_row(second);
            skip = 2;
        }
    }
    let levels = if level_columns(&headers, &tags, 3).0.is_some() {
        3
    } else {
        2
    };
    let mut cols: Vec<(usize, usize, String, String)> = Vec::new();
    let mut missing = Vec::new();
    for level in 1..=levels {
        let (pcode, name) = level_columns(&headers, &tags, level);
        match (pcode, name) {
            (Some(p), Some((n, header))) => cols.push((p, n, format!("ADM{level}_PCODE"), header)),
            (p, n) => {
                if p.is_none() {
                    missing.push(FieldError::new(
                        "line 1",
                        format!("the header has no ADM{level}_PCODE column"),
                    ));
                }
                if n.is_none() {
                    missing.push(FieldError::new(
                        "line 1",
                        format!(
                            "the header has no ADM{level}_EN column (or ADM{level}_FR, _ES, _PT, _AR, _NAME)"
                        ),
                    ));
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(AppError::validation(missing));
    }
    let lat_col = column(
        &headers,
        &["LAT", "LATITUDE", "CENTER_LAT", "ADM2_LAT", "ADM3_LAT", "Y"],
    )
    .or_else(|| hxl::find_column(&tags, &["#geo+lat"]));
    let lon_col = column(
        &headers,
        &[
            "LON",
            "LONG",
            "LONGITUDE",
            "CENTER_LON",
            "ADM2_LON",
            "ADM3_LON",
            "X",
        ],
    )
    .or_else(|| hxl::find_column(&tags, &["#geo+lon"]));
    let data = &records[skip.min(records.len())..];
    if data.len() > max_rows {
        return Err(too_many_rows("gazetteer", max_rows));
    }
    let mut errors = Vec::new();
    // Upper levels: pcode → (name, parent, first line); the finest level: pcode → first line.
    let mut upper: Vec<UpperLevel> = vec![HashMap::new(); levels - 1];
    let mut finest_seen: HashMap<String, usize> = HashMap::new();
    let mut finest = Vec::new();
    for (line, record) in data {
        let field = format!("line {line}");
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(FieldError::new(&field, e.clone()));
                continue;
            }
        };
        let get = |i: usize| record.get(i).cloned().unwrap_or_default();
        let values: Vec<(String, String)> = cols.iter().map(|(p, n, _, _)| (get(*p), get(*n))).collect();
        let mut line_errors = Vec::new();
        for ((code, name), (_, _, code_label, name_label)) in values.iter().zip(&cols) {
            if code.is_empty() {
                line_errors.push(format!("{code_label} is empty"));
            } else if !valid_pcode(code) {
                line_errors.push(format!(
                    "{code_label} `{code}` is not a P-code (letters, digits, - and _)"
                ));
            }
            if name.is_empty() {
                line_errors.push(format!("{name_label} is empty"));
            }
        }
        let coordinate =
            |col: Option<usize>, label: &str, limit: f64, errs: &mut Vec<String>| -> Option<f64> {
                let raw = col.and_then(|c| record.get(c)).cloned().unwrap_or_default();
                if raw.is_empty() {
                    return None;
                }
                let text = if delimiter == b',' {
                    raw.clone()
                } else {
                    raw.replace(',', ".")
                };
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() && v.abs() <= limit => Some(v),
                    _ => {
                        errs.push(format!(
                            "{label} `{raw}` is not a number between -{limit} and {limit}"
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
            for (i, known) in upper.iter().enumerate() {
                let (code, name) = &values[i];
                let parent = (i > 0).then(|| values[i - 1].0.clone());
                if let Some((first_name, first_parent, first)) = known.get(code) {
                    if first_name != name {
                        line_errors.push(format!(
                            "ADM{} {code} is named `{name}` here but `{first_name}` on line {first}",
                            i + 1
                        ));
                    } else if *first_parent != parent {
                        line_errors.push(format!(
                            "ADM{} {code} lies in another area here than on line {first}",
                            i + 1
                        ));
                    }
                }
            }
            let (code, _) = &values[levels - 1];
            if let Some(first) = finest_seen.get(code) {
                line_errors.push(format!(
                    "ADM{levels} {code} appears again (first on line {first})"
                ));
            }
            let mut codes: Vec<&String> = values.iter().map(|(c, _)| c).collect();
            codes.sort_unstable();
            codes.dedup();
            if codes.len() != levels {
                line_errors.push(format!("the P-codes of ADM1 to ADM{levels} must all differ"));
            }
        }
        if !line_errors.is_empty() {
            errors.extend(line_errors.into_iter().map(|m| FieldError::new(&field, m)));
            continue;
        }
        for (i, known) in upper.iter_mut().enumerate() {
            let (code, name) = &values[i];
            let parent = (i > 0).then(|| values[i - 1].0.clone());
            known.entry(code.clone()).or_insert((name.clone(), parent, *line));
        }
        let (code, name) = values[levels - 1].clone();
        finest_seen.insert(code.clone(), *line);
        finest.push(Area {
            pcode: code,
            level: i32::try_from(levels).unwrap_or(2),
            name,
            parent_pcode: Some(values[levels - 2].0.clone()),
            lat,
            lon,
        });
    }
    if finest.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            format!("line {}", skip + 1),
            "the file has no data rows",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let mut all = Vec::new();
    for (i, known) in upper.into_iter().enumerate() {
        let mut level: Vec<Area> = known
            .into_iter()
            .map(|(pcode, (name, parent, _))| Area {
                pcode,
                level: i32::try_from(i + 1).unwrap_or(1),
                name,
                parent_pcode: parent,
                lat: None,
                lon: None,
            })
            .collect();
        level.sort_by(|a, b| a.pcode.cmp(&b.pcode));
        all.extend(level);
    }
    all.extend(finest);
    Ok((all, decoded.encoding))
}

/// Imports a gazetteer of at most `max_rows` data rows: parsed and checked in full first, then written in one
/// transaction with its audit event.
pub fn import_areas(
    conn: &mut DbConn,
    actor: &Actor,
    bytes: &[u8],
    max_rows: usize,
) -> AppResult<ImportSummary> {
    let (areas, encoding) = parse_gazetteer(bytes, max_rows)?;
    let finest = areas.iter().map(|a| a.level).max().unwrap_or(2);
    db::write_tx(conn, |tx| {
        let mut summary = ImportSummary {
            rows: 0,
            adm1_areas: 0,
            adm2_areas: 0,
            adm3_areas: 0,
            created: 0,
            updated: 0,
            encoding: encoding.to_owned(),
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
            match area.level {
                1 => summary.adm1_areas += 1,
                2 => summary.adm2_areas += 1,
                _ => summary.adm3_areas += 1,
            }
            if area.level == finest {
                summary.rows += 1;
            }
        }
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::AreasImport, "gazetteer", None)
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
    if level.is_some_and(|l| !(1..=3).contains(&l)) {
        return Err(AppError::invalid_field("level", "must be 1, 2 or 3"));
    }
    Ok(repo::list_areas(conn, adm1, level, after, i64::from(limit) + 1)?)
}

pub fn list_sectors(conn: &mut DbConn) -> AppResult<Vec<Sector>> {
    Ok(repo::list_sectors(conn)?)
}
