//! Reading the files the field sends: text decoding (UTF-8 with or without BOM, else Windows-1252/Latin-1),
//! delimiter sniffing (comma, semicolon, tab) and HXL hashtag matching with attributes. Pure: no I/O.

/// A decoded file: its text and the encoding it was read in (`UTF-8` or `windows-1252`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub text: String,
    pub encoding: &'static str,
}

/// Decodes a file: a UTF-8 BOM is dropped; valid UTF-8 is taken as it is; anything else is read as
/// Windows-1252, the superset of Latin-1 that spreadsheets on Windows write (every byte decodes, so a Latin-1
/// file never fails; its accents come out right).
pub fn decode(bytes: &[u8]) -> Decoded {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Decoded {
            text: text.to_owned(),
            encoding: "UTF-8",
        },
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            Decoded {
                text: text.into_owned(),
                encoding: "windows-1252",
            }
        }
    }
}

/// The delimiter of a CSV text: of comma, semicolon and tab, the one that occurs most often outside quotes on
/// the first non-empty line (the header); comma when none does.
pub fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut counts = [(b',', 0usize), (b';', 0), (b'\t', 0)];
    let mut quoted = false;
    for b in first.bytes() {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(c) = counts.iter_mut().find(|(d, _)| *d == b) {
                c.1 += 1;
            }
        }
    }
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(d, n)| (*n, *d == b','))
        .map_or(b',', |(d, _)| *d)
}

/// The records of a CSV text with the given delimiter: `(line number, cells trimmed)`, blank lines skipped.
/// A record the reader cannot parse, or one holding U+0000, is returned as `Err(message)` with its line.
pub fn records(text: &str, delimiter: u8) -> Vec<(usize, Result<Vec<String>, String>)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut lines = LineCounter::new(text);
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        match record {
            Ok(r) => {
                let line = r.position().map_or(i + 1, |p| lines.line_at(p.byte()));
                if r.iter().all(str::is_empty) {
                    continue;
                }
                // PostgreSQL cannot store U+0000 and SQLite can: refused here, both answer the same.
                if r.iter().any(|cell| cell.contains('\0')) {
                    out.push((line, Err("a cell holds the NUL character (U+0000)".to_owned())));
                    continue;
                }
                out.push((line, Ok(r.iter().map(str::to_owned).collect())));
            }
            Err(e) => {
                let line = e.position().map_or(i + 1, |p| lines.line_at(p.byte()));
                out.push((line, Err(format!("unreadable CSV: {e}"))));
            }
        }
    }
    out
}

/// The 1-based line where a record starting at `byte` has its first cell: the reader's own line count skips
/// blank lines, and its record position includes the blank lines before the record, so both are corrected.
/// Line numbers of byte positions, counted incrementally: records come in file order, so each call scans only
/// the bytes since the previous one (a 5,000-row file is one pass, not 5,000).
struct LineCounter<'a> {
    bytes: &'a [u8],
    pos: usize,
    newlines: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            bytes: text.as_bytes(),
            pos: 0,
            newlines: 0,
        }
    }

    /// The 1-based line of the record starting at `byte` (line breaks just before it are skipped).
    fn line_at(&mut self, byte: u64) -> usize {
        let bytes = self.bytes;
        let mut end = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
        while end < bytes.len() && matches!(bytes[end], b'\n' | b'\r') {
            end += 1;
        }
        if end < self.pos {
            self.pos = 0;
            self.newlines = 0;
        }
        self.newlines += bytes[self.pos..end].iter().filter(|b| **b == b'\n').count();
        self.pos = end;
        self.newlines + 1
    }
}

/// An HXL hashtag with its attributes, lower-cased: `#Org +Acronym` → `#org` with `acronym`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub hashtag: String,
    pub attributes: Vec<String>,
}

impl Tag {
    /// Parses a cell of the hashtag row; `None` when it is not a hashtag (empty cells are allowed in HXL).
    pub fn parse(cell: &str) -> Option<Tag> {
        let compact: String = cell
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_lowercase();
        let rest = compact.strip_prefix('#')?;
        let mut parts = rest.split('+');
        let hashtag = parts.next().filter(|h| valid_name(h))?;
        let attributes: Vec<String> = parts.filter(|a| valid_name(a)).map(str::to_owned).collect();
        Some(Tag {
            hashtag: format!("#{hashtag}"),
            attributes,
        })
    }

    /// Whether this column's tag matches a pattern such as `#org+acronym` or `#activity-code`: the same
    /// hashtag, every `+attribute` of the pattern present and every `-attribute` absent (HXL tag patterns).
    pub fn matches(&self, pattern: &Pattern) -> bool {
        self.hashtag == pattern.hashtag
            && pattern.include.iter().all(|a| self.attributes.contains(a))
            && !pattern.exclude.iter().any(|a| self.attributes.contains(a))
    }
}

fn valid_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// An HXL tag pattern: hashtag, attributes required (`+`) and attributes refused (`-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub hashtag: String,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl Pattern {
    pub fn parse(pattern: &str) -> Pattern {
        let lower = pattern.to_lowercase();
        let mut hashtag = String::new();
        let (mut include, mut exclude) = (Vec::new(), Vec::new());
        let mut current = String::new();
        let mut sign = None;
        for c in lower.chars().chain(std::iter::once('+')) {
            if c == '+' || c == '-' {
                match sign {
                    None => hashtag = std::mem::take(&mut current),
                    Some('+') => include.push(std::mem::take(&mut current)),
                    Some(_) => exclude.push(std::mem::take(&mut current)),
                }
                sign = Some(c);
            } else {
                current.push(c);
            }
        }
        Pattern {
            hashtag,
            include,
            exclude,
        }
    }
}

/// The hashtag row's tags, one per column (`None` for an untagged column).
pub fn tag_row(cells: &[String]) -> Vec<Option<Tag>> {
    cells.iter().map(|c| Tag::parse(c)).collect()
}

/// Whether a row is an HXL hashtag row: at least one cell is a hashtag and every non-empty cell is one.
pub fn is_tag_row(cells: &[String]) -> bool {
    cells.iter().any(|c| c.trim_start().starts_with('#'))
        && cells
            .iter()
            .filter(|c| !c.trim().is_empty())
            .all(|c| Tag::parse(c).is_some())
}

/// The column for the first of `patterns` (most specific first) that any column matches; among several
/// columns matching that pattern, the one with the fewest attributes beyond the pattern's (the closest fit),
/// then the leftmost.
pub fn find_column(tags: &[Option<Tag>], patterns: &[&str]) -> Option<usize> {
    patterns.iter().find_map(|p| {
        let pattern = Pattern::parse(p);
        tags.iter()
            .enumerate()
            .filter_map(|(i, t)| {
                t.as_ref()
                    .filter(|t| t.matches(&pattern))
                    .map(|t| (i, t.attributes.len()))
            })
            .min_by_key(|(i, extra)| (*extra, *i))
            .map(|(i, _)| i)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(cells: &[&str]) -> Vec<Option<Tag>> {
        tag_row(&cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn tags_parse_with_attributes_in_any_case_and_spacing() {
        assert_eq!(
            Tag::parse(" #Org +Acronym"),
            Some(Tag {
                hashtag: "#org".into(),
                attributes: vec!["acronym".into()]
            })
        );
        assert_eq!(Tag::parse("Organisation"), None);
        assert_eq!(Tag::parse("#"), None);
    }

    #[test]
    fn a_pattern_matches_tags_with_more_attributes() {
        let t = Tag::parse("#org+acronym+impl").unwrap_or_else(|| panic!("tag"));
        assert!(t.matches(&Pattern::parse("#org")));
        assert!(t.matches(&Pattern::parse("#org+acronym")));
        assert!(!t.matches(&Pattern::parse("#org+code")));
        assert!(!t.matches(&Pattern::parse("#org-impl")));
        assert!(!t.matches(&Pattern::parse("#sector")));
    }

    #[test]
    fn the_most_specific_pattern_and_closest_column_win() {
        let row = tags(&[
            "#org+name",
            "#org+acronym",
            "#sector+cluster",
            "#activity+code",
            "#activity+name",
        ]);
        assert_eq!(find_column(&row, &["#org+code", "#org+acronym", "#org"]), Some(1));
        assert_eq!(find_column(&row, &["#sector+code", "#sector"]), Some(2));
        assert_eq!(find_column(&row, &["#activity-code-id"]), Some(4));
        assert_eq!(find_column(&row, &["#activity+code", "#activity+id"]), Some(3));
        let plain = tags(&["#org+name+type", "#org"]);
        assert_eq!(find_column(&plain, &["#org"]), Some(1), "fewest extra attributes");
        assert_eq!(find_column(&plain, &["#adm1+code"]), None);
    }

    #[test]
    fn hashtag_rows_are_recognised() {
        let row = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(is_tag_row(&row(&["#adm1+code", "", "#adm1+name"])));
        assert!(!is_tag_row(&row(&["ADM1_PCODE", "#adm1"])));
        assert!(!is_tag_row(&row(&["XY01", "North"])));
    }

    #[test]
    fn delimiters_are_sniffed_from_the_header() {
        assert_eq!(sniff_delimiter("a,b,c\n1,2,3"), b',');
        assert_eq!(sniff_delimiter("a;b;c\n1,5;2;3"), b';');
        assert_eq!(sniff_delimiter("\n\na\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter("\"a;x\",b\n"), b',');
        assert_eq!(sniff_delimiter("single"), b',');
    }

    #[test]
    fn a_row_with_a_nul_character_is_a_faulty_line() {
        let rows = records("a,b\nx,y\0z\nc,d\n", b',');
        assert_eq!(rows[0], (1, Ok(vec!["a".to_owned(), "b".to_owned()])));
        assert_eq!(
            rows[1],
            (2, Err("a cell holds the NUL character (U+0000)".to_owned()))
        );
        assert_eq!(rows[2], (3, Ok(vec!["c".to_owned(), "d".to_owned()])));
    }

    #[test]
    fn utf8_with_bom_and_latin1_decode() {
        assert_eq!(decode(b"\xEF\xBB\xBFcaf\xC3\xA9").text, "café");
        assert_eq!(decode(b"caf\xC3\xA9").encoding, "UTF-8");
        let latin = decode(b"Sant\xE9;\x80");
        assert_eq!(latin.text, "Santé;€");
        assert_eq!(latin.encoding, "windows-1252");
    }

    #[test]
    fn records_carry_line_numbers_and_skip_blank_lines() {
        let recs = records("a;b\n\n1;2\n", b';');
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[1].0, 3);
        assert_eq!(
            recs[1].1.as_deref().ok(),
            Some(&["1".to_owned(), "2".to_owned()][..])
        );
    }
}
