//! Writing CSV that is safe to open in a spreadsheet: cells that a spreadsheet would run as a formula are
//! neutralised (OWASP "CSV Injection"), and HXL files get their hashtag row under the header row.

use std::borrow::Cow;

/// Characters that make a spreadsheet treat a cell as a formula (or split it) when they come first.
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// The cell as written: a cell that begins with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`,
/// so a spreadsheet shows it as text instead of evaluating it (OWASP CSV injection guidance). Plain negative
/// numbers (`-12.50`) are left alone: they are amounts, not formulas, and a quote would break their sums.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    match cell.chars().next() {
        Some('-') if is_plain_number(cell) => Cow::Borrowed(cell),
        Some(c) if FORMULA_TRIGGERS.contains(&c) => Cow::Owned(format!("'{cell}")),
        _ => Cow::Borrowed(cell),
    }
}

/// `-123` or `-123.45`: digits with at most one decimal point, after the sign.
fn is_plain_number(cell: &str) -> bool {
    let digits = &cell[1..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// One CSV record (RFC 4180 quoting by the `csv` crate), every cell neutralised, ending in `\n`.
pub fn record<'a>(cells: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
    let row: Vec<Cow<'_, str>> = cells.into_iter().map(neutralise).collect();
    // Writing into a Vec cannot fail; an error would only lose this row, so it is ignored.
    let _ = writer.write_record(row.iter().map(|c| c.as_bytes()));
    writer.into_inner().unwrap_or_default()
}

/// The two first lines of an HXL file: the header row and the hashtag row (hashtags are never neutralised:
/// they start with `#`).
pub fn hxl_head(columns: &[(&str, &str)]) -> Vec<u8> {
    let mut out = record(columns.iter().map(|(header, _)| *header));
    out.extend(record(columns.iter().map(|(_, tag)| *tag)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_triggers_are_prefixed_with_a_quote() {
        for cell in [
            "=1+1",
            "+cmd",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "\rx",
            "=HYPERLINK(\"http://x\")",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn ordinary_cells_and_negative_amounts_are_kept() {
        for cell in ["Kalma", "", "12.50", "-12.50", "-3", "#org", "a=b"] {
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
        assert_eq!(neutralise("-"), "'-");
        assert_eq!(neutralise("-1-1"), "'-1-1");
    }

    #[test]
    fn records_are_quoted_and_neutralised() {
        let line = String::from_utf8(record(["a,b", "=cmd|' /C calc'!A0", "é"])).unwrap_or_default();
        assert_eq!(line, "\"a,b\",'=cmd|' /C calc'!A0,é\n");
        let head = String::from_utf8(hxl_head(&[("Org", "#org"), ("Sector", "#sector")])).unwrap_or_default();
        assert_eq!(head, "Org,Sector\n#org,#sector\n");
    }
}
