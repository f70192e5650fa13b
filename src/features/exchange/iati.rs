//! The IATI 2.03 activity file of a pool (docs/EXCHANGE.md gives the field-by-field mapping and its reasons):
//! the fund as the parent activity with its contributions, each project from approval onward as a child
//! activity. Pure: the caller loads the facts; this module maps and writes them, escaping every text.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::ledger_rules::TransactionKind;
use crate::domain::lifecycle::State;
use crate::domain::money::{Currency, format_amount};
use crate::domain::proposal::PartnerKind;

/// Who publishes, from `[exchange]` settings.
#[derive(Debug, Clone)]
pub struct Publisher {
    pub org_ref: String,
    pub org_name: String,
    pub org_type: String,
    pub activity_prefix: String,
    /// ISO 3166-1 alpha-2; `None`: `recipient_region` is named instead.
    pub recipient_country: Option<String>,
    pub recipient_region: String,
}

/// One ledger movement as IATI sees it.
#[derive(Debug, Clone)]
pub struct Movement {
    /// The transaction's own kind; for a reversal, the kind of the transaction it reverses.
    pub kind: TransactionKind,
    /// A reversal: reported with the sign flipped.
    pub reversal: bool,
    pub amount_minor: i64,
    pub date: NaiveDate,
    /// The contributor's name (contributions).
    pub contributor: Option<String>,
}

/// IATI TransactionType code and sign of a ledger movement. Money coming back is reported in the direction it
/// was first reported, negated: a refund is a negative disbursement (3), a release a negative commitment (2),
/// a reversal the reversed movement negated. Type 7 "Reimbursement" is an outgoing payment covering money the
/// recipient has spent (TransactionType codelist), the opposite direction, and 2.03 has no incoming refund type.
pub fn transaction_type(kind: TransactionKind, reversal: bool) -> Option<(u8, i64)> {
    let (code, sign) = match kind {
        TransactionKind::Contribution => (1, 1),
        TransactionKind::Commitment => (2, 1),
        TransactionKind::Release => (2, -1),
        TransactionKind::Disbursement => (3, 1),
        TransactionKind::Refund => (3, -1),
        TransactionKind::Reversal => return None,
    };
    Some((code, if reversal { -sign } else { sign }))
}

/// The fund (the pool) as the parent activity.
#[derive(Debug, Clone)]
pub struct Fund {
    pub code: String,
    pub name: String,
    pub currency: Currency,
    pub funding_start: NaiveDate,
    pub funding_end: NaiveDate,
    pub last_updated: DateTime<Utc>,
    /// Contributions and their reversals, oldest first.
    pub contributions: Vec<Movement>,
}

/// A project (a proposal from approval onward) as a child activity.
#[derive(Debug, Clone)]
pub struct Project {
    pub reference: String,
    pub state: State,
    pub title: String,
    pub summary: Option<String>,
    pub objectives: Option<String>,
    pub sector_code: Option<String>,
    /// `10` (IASC global clusters) or `99` (the reporting organisation's own QIP sectors).
    pub sector_vocabulary: Option<String>,
    pub humanitarian: bool,
    pub adm1_pcode: Option<String>,
    pub adm2_pcode: Option<String>,
    pub adm2_name: Option<String>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub submitting_org: String,
    pub partner: Option<(PartnerKind, String)>,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
    pub actual_start: Option<NaiveDate>,
    pub actual_end: Option<NaiveDate>,
    pub requested_minor: Option<i64>,
    pub last_updated: DateTime<Utc>,
    pub movements: Vec<Movement>,
}

/// IATI OrganisationType of an implementing partner (local authority 11, NGO 22 national, community
/// organisation 24 partner-country based NGO); the unit itself is a public body of a troop contributor (10).
pub fn partner_org_type(kind: PartnerKind) -> &'static str {
    match kind {
        PartnerKind::LocalAuthority => "11",
        PartnerKind::Ngo => "22",
        PartnerKind::CommunityOrganisation => "24",
        PartnerKind::UnitItself => "10",
    }
}

/// A minimal XML writer: elements are opened and closed in order, every attribute and text escaped.
struct Xml {
    out: String,
    open: Vec<&'static str>,
}

fn escape(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than written invalid.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

impl Xml {
    fn new() -> Self {
        Xml {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
            open: Vec::new(),
        }
    }

    fn start(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.indent();
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape(v, &mut self.out);
            self.out.push('"');
        }
    }

    fn open(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push_str(">\n");
        self.open.push(name);
    }

    fn empty(&mut self, name: &'static str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.out.push_str("/>\n");
    }

    fn text(&mut self, name: &'static str, attrs: &[(&str, &str)], text: &str) {
        self.start(name, attrs);
        self.out.push('>');
        escape(text, &mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
    }

    fn close(&mut self) {
        if let Some(name) = self.open.pop() {
            self.indent();
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push_str(">\n");
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.push_str("  ");
        }
    }

    /// An element holding one narrative.
    fn narrative(&mut self, name: &'static str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        self.text("narrative", &[], text);
        self.close();
    }
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn datetime(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Publisher {
    fn fund_identifier(&self, fund: &Fund) -> String {
        format!("{}{}", self.activity_prefix, fund.code)
    }

    fn project_identifier(&self, project: &Project) -> String {
        format!("{}{}", self.activity_prefix, project.reference)
    }

    fn reporting_org(&self, x: &mut Xml) {
        x.narrative(
            "reporting-org",
            &[("ref", &self.org_ref), ("type", &self.org_type)],
            &self.org_name,
        );
    }

    fn recipient(&self, x: &mut Xml) {
        match &self.recipient_country {
            Some(country) => x.empty("recipient-country", &[("code", country), ("percentage", "100")]),
            None => x.empty(
                "recipient-region",
                &[
                    ("code", &self.recipient_region),
                    ("vocabulary", "1"),
                    ("percentage", "100"),
                ],
            ),
        }
    }
}

fn transaction(
    x: &mut Xml,
    currency: Currency,
    code: u8,
    value_minor: i64,
    day: NaiveDate,
    provider: Option<(&str, Option<&str>)>,
    receiver: Option<(&str, Option<&str>)>,
) {
    let day = date(day);
    x.open("transaction", &[]);
    x.empty("transaction-type", &[("code", &code.to_string())]);
    x.empty("transaction-date", &[("iso-date", &day)]);
    x.text(
        "value",
        &[("currency", currency.code()), ("value-date", &day)],
        &format_amount(value_minor, currency),
    );
    for (element, party) in [("provider-org", provider), ("receiver-org", receiver)] {
        let Some((name, activity)) = party else { continue };
        let key = if element == "provider-org" {
            "provider-activity-id"
        } else {
            "receiver-activity-id"
        };
        let attrs: Vec<(&str, &str)> = activity.map(|a| (key, a)).into_iter().collect();
        match element {
            "provider-org" => x.narrative("provider-org", &attrs, name),
            _ => x.narrative("receiver-org", &attrs, name),
        }
    }
    x.close();
}

/// The fund's status from its funding period on `today`: pipeline before, implementation during,
/// finalisation after.
pub fn fund_status(fund: &Fund, today: NaiveDate) -> u8 {
    if today < fund.funding_start {
        1
    } else if today <= fund.funding_end {
        2
    } else {
        3
    }
}

/// The whole `iati-activities` document: the fund first, then its projects.
pub fn activities_xml(
    publisher: &Publisher,
    fund: &Fund,
    projects: &[Project],
    now: DateTime<Utc>,
) -> String {
    let mut x = Xml::new();
    let generated = datetime(now);
    x.open(
        "iati-activities",
        &[("version", "2.03"), ("generated-datetime", &generated)],
    );
    write_fund(&mut x, publisher, fund, projects, now.date_naive());
    for p in projects {
        write_project(&mut x, publisher, fund, p);
    }
    x.close();
    x.out
}

fn write_fund(x: &mut Xml, publisher: &Publisher, fund: &Fund, projects: &[Project], today: NaiveDate) {
    let id = publisher.fund_identifier(fund);
    let updated = datetime(fund.last_updated);
    x.open(
        "iati-activity",
        &[
            ("last-updated-datetime", &updated),
            ("xml:lang", "en"),
            ("default-currency", fund.currency.code()),
            ("humanitarian", "1"),
            ("hierarchy", "1"),
        ],
    );
    x.text("iati-identifier", &[], &id);
    publisher.reporting_org(x);
    x.narrative("title", &[], &fund.name);
    x.narrative(
        "description",
        &[("type", "1")],
        &format!(
            "{}: pooled fund for Quick Impact Projects, small rapid projects that answer needs communities name \
             and build confidence in the peace process.",
            fund.name
        ),
    );
    let mut contributors: Vec<&str> = fund
        .contributions
        .iter()
        .filter_map(|m| m.contributor.as_deref())
        .collect();
    contributors.sort_unstable();
    contributors.dedup();
    for name in &contributors {
        x.narrative("participating-org", &[("role", "1")], name);
    }
    x.narrative(
        "participating-org",
        &[
            ("ref", &publisher.org_ref),
            ("type", &publisher.org_type),
            ("role", "2"),
        ],
        &publisher.org_name,
    );
    x.empty(
        "activity-status",
        &[("code", &fund_status(fund, today).to_string())],
    );
    x.empty(
        "activity-date",
        &[("iso-date", &date(fund.funding_start)), ("type", "1")],
    );
    if let Some(first) = fund.contributions.iter().map(|m| m.date).min() {
        if first <= today {
            x.empty("activity-date", &[("iso-date", &date(first)), ("type", "2")]);
        }
    }
    x.empty(
        "activity-date",
        &[("iso-date", &date(fund.funding_end)), ("type", "3")],
    );
    publisher.recipient(x);
    for m in &fund.contributions {
        let Some((_, sign)) = transaction_type(m.kind, m.reversal) else {
            continue;
        };
        let provider = m.contributor.as_deref().map(|n| (n, None));
        let receiver = Some((publisher.org_name.as_str(), Some(id.as_str())));
        // Money is booked when it arrives: each contribution is both the contributor's firm commitment to the
        // fund (11 incoming commitment) and the funds received (1 incoming funds).
        for code in [11, 1] {
            transaction(
                x,
                fund.currency,
                code,
                sign * m.amount_minor,
                m.date,
                provider,
                receiver,
            );
        }
    }
    for p in projects {
        x.empty(
            "related-activity",
            &[("ref", &publisher.project_identifier(p)), ("type", "2")],
        );
    }
    x.close();
}

fn write_project(x: &mut Xml, publisher: &Publisher, fund: &Fund, p: &Project) {
    let fund_id = publisher.fund_identifier(fund);
    let id = publisher.project_identifier(p);
    let updated = datetime(p.last_updated);
    let mut attrs = vec![
        ("last-updated-datetime", updated.as_str()),
        ("xml:lang", "en"),
        ("default-currency", fund.currency.code()),
    ];
    if p.humanitarian {
        attrs.push(("humanitarian", "1"));
    }
    attrs.push(("hierarchy", "2"));
    x.open("iati-activity", &attrs);
    x.text("iati-identifier", &[], &id);
    publisher.reporting_org(x);
    x.narrative("title", &[], &p.title);
    x.narrative(
        "description",
        &[("type", "1")],
        p.summary
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(&p.title),
    );
    if let Some(objectives) = p.objectives.as_deref().filter(|s| !s.trim().is_empty()) {
        x.narrative("description", &[("type", "2")], objectives);
    }
    x.narrative(
        "participating-org",
        &[
            ("ref", &publisher.org_ref),
            ("type", &publisher.org_type),
            ("role", "1"),
            ("activity-id", &fund_id),
        ],
        &publisher.org_name,
    );
    x.narrative("participating-org", &[("role", "2")], &p.submitting_org);
    match &p.partner {
        Some((PartnerKind::UnitItself, _)) | None => {
            x.narrative("participating-org", &[("role", "4")], &p.submitting_org)
        }
        Some((kind, name)) => x.narrative(
            "participating-org",
            &[("type", partner_org_type(*kind)), ("role", "4")],
            name,
        ),
    }
    x.empty(
        "activity-status",
        &[("code", &p.state.iati_activity_status().to_string())],
    );
    let dates = [
        (p.planned_start, "1"),
        (p.actual_start, "2"),
        (p.planned_end, "3"),
        (p.actual_end, "4"),
    ];
    let mut any_date = false;
    for (d, kind) in dates {
        if let Some(d) = d {
            x.empty("activity-date", &[("iso-date", &date(d)), ("type", kind)]);
            any_date = true;
        }
    }
    if !any_date {
        x.empty(
            "activity-date",
            &[("iso-date", &date(p.last_updated.date_naive())), ("type", "1")],
        );
    }
    publisher.recipient(x);
    if let Some(adm2) = &p.adm2_pcode {
        // COD P-codes have no IATI GeographicVocabulary code (A1–A3 are other gazetteers with other codes), so
        // the P-code is the location's `ref` and the area is described by its class and feature designation.
        x.open("location", &[("ref", adm2)]);
        x.empty("location-reach", &[("code", "1")]);
        x.narrative("name", &[], p.adm2_name.as_deref().unwrap_or(adm2));
        if let Some(adm1) = &p.adm1_pcode {
            x.narrative(
                "description",
                &[],
                &format!("adm2 P-code {adm2} in adm1 P-code {adm1} (COD)"),
            );
        }
        if let (Some(lat), Some(lon)) = (p.lat, p.lon) {
            x.open(
                "point",
                &[("srsName", "http://www.opengis.net/def/crs/EPSG/0/4326")],
            );
            x.text("pos", &[], &format!("{lat} {lon}"));
            x.close();
            x.empty("exactness", &[("code", "1")]);
        } else {
            x.empty("exactness", &[("code", "2")]);
        }
        x.empty("location-class", &[("code", "1")]);
        x.empty("feature-designation", &[("code", "ADM2")]);
        x.close();
    }
    if let (Some(code), Some(vocabulary)) = (&p.sector_code, &p.sector_vocabulary) {
        x.empty(
            "sector",
            &[("vocabulary", vocabulary), ("code", code), ("percentage", "100")],
        );
    }
    if let (Some(requested), Some(start), Some(end)) = (p.requested_minor, p.planned_start, p.planned_end) {
        let status = if p.state == State::Approved || p.state.iati_activity_status() > 1 {
            "2"
        } else {
            "1"
        };
        x.open("budget", &[("type", "1"), ("status", status)]);
        x.empty("period-start", &[("iso-date", &date(start))]);
        x.empty("period-end", &[("iso-date", &date(end))]);
        x.text(
            "value",
            &[("currency", fund.currency.code()), ("value-date", &date(start))],
            &format_amount(requested, fund.currency),
        );
        x.close();
    }
    let partner = match &p.partner {
        Some((PartnerKind::UnitItself, _)) | None => p.submitting_org.as_str(),
        Some((_, name)) => name.as_str(),
    };
    for m in &p.movements {
        let Some((code, sign)) = transaction_type(m.kind, m.reversal) else {
            continue;
        };
        let fund_side = (publisher.org_name.as_str(), Some(fund_id.as_str()));
        let (provider, receiver) = match code {
            // A negative disbursement (refund) still names the parties of the disbursement it reverses.
            3 | 2 => (Some(fund_side), Some((partner, None))),
            _ => (Some(fund_side), None),
        };
        transaction(
            x,
            fund.currency,
            code,
            sign * m.amount_minor,
            m.date,
            provider,
            receiver,
        );
    }
    x.empty("related-activity", &[("ref", &fund_id), ("type", "1")]);
    x.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::currency;

    #[test]
    fn refunds_are_negative_disbursements_never_reimbursements() {
        assert_eq!(transaction_type(TransactionKind::Refund, false), Some((3, -1)));
        assert_eq!(
            transaction_type(TransactionKind::Disbursement, false),
            Some((3, 1))
        );
        assert_eq!(transaction_type(TransactionKind::Release, false), Some((2, -1)));
        assert_eq!(
            transaction_type(TransactionKind::Contribution, true),
            Some((1, -1))
        );
        for kind in TransactionKind::ALL {
            assert_ne!(transaction_type(kind, false).map(|t| t.0), Some(7), "{kind:?}");
        }
    }

    fn publisher() -> Publisher {
        Publisher {
            org_ref: "XI-TEST".into(),
            org_name: "Fund & <Co>".into(),
            org_type: "40".into(),
            activity_prefix: "XI-TEST-".into(),
            recipient_country: None,
            recipient_region: "998".into(),
        }
    }

    #[test]
    fn the_document_links_parent_and_children_and_escapes_text() {
        let usd = currency("USD").unwrap_or_else(|| panic!("USD"));
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
        let now = DateTime::<Utc>::from_timestamp(1_790_000_000, 0).unwrap_or_default();
        let fund = Fund {
            code: "P1".into(),
            name: "Pool \"one\"".into(),
            currency: usd,
            funding_start: day,
            funding_end: day,
            last_updated: now,
            contributions: vec![Movement {
                kind: TransactionKind::Contribution,
                reversal: false,
                amount_minor: 10_000,
                date: day,
                contributor: Some("Donor A".into()),
            }],
        };
        let project = Project {
            reference: "QIP-P1-2026-0001".into(),
            state: State::InImplementation,
            title: "Well <b>".into(),
            summary: None,
            objectives: None,
            sector_code: Some("WSH".into()),
            sector_vocabulary: Some("10".into()),
            humanitarian: true,
            adm1_pcode: Some("XY01".into()),
            adm2_pcode: Some("XY0101".into()),
            adm2_name: Some("Kalma".into()),
            lat: None,
            lon: None,
            submitting_org: "Unit".into(),
            partner: Some((PartnerKind::Ngo, "NGO".into())),
            planned_start: Some(day),
            planned_end: Some(day),
            actual_start: None,
            actual_end: None,
            requested_minor: Some(5_000),
            last_updated: now,
            movements: vec![Movement {
                kind: TransactionKind::Refund,
                reversal: false,
                amount_minor: 1_250,
                date: day,
                contributor: None,
            }],
        };
        let xml = activities_xml(&publisher(), &fund, &[project], now);
        assert!(xml.contains("<iati-identifier>XI-TEST-P1</iati-identifier>"));
        assert!(xml.contains("<iati-identifier>XI-TEST-QIP-P1-2026-0001</iati-identifier>"));
        assert!(xml.contains("<related-activity ref=\"XI-TEST-QIP-P1-2026-0001\" type=\"2\"/>"));
        assert!(xml.contains("<related-activity ref=\"XI-TEST-P1\" type=\"1\"/>"));
        assert!(xml.contains("Fund &amp; &lt;Co&gt;"));
        assert!(xml.contains("Well &lt;b&gt;"));
        assert!(xml.contains(">-12.50</value>"), "refund negative: {xml}");
        assert!(xml.contains("<transaction-type code=\"11\"/>"));
        assert!(!xml.contains("code=\"7\""));
        assert!(xml.contains("<sector vocabulary=\"10\" code=\"WSH\""));
        assert!(xml.contains("<location ref=\"XY0101\">"));
    }
}
