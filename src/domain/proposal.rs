//! A proposal's content (DESIGN.md §2 "Proposal content"), the figures the server computes from it (line
//! totals, budget total, overhead, duration) and the checks at submission, which list every problem at once.
//! Pure: reference-data facts are looked up by the caller and passed in.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::money::{Currency, format_amount, parse_positive_amount};
use super::pool_policy::{LimitExceeded, PoolPolicy, exceeded_limits};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Location {
    #[schema(example = "XY01")]
    pub adm1_pcode: String,
    #[schema(example = "XY0102")]
    pub adm2_pcode: String,
    /// Given with `lon`.
    #[schema(minimum = -90.0, maximum = 90.0, example = 13.53)]
    pub lat: Option<f64>,
    /// Given with `lat`.
    #[schema(minimum = -180.0, maximum = 180.0, example = 24.98)]
    pub lon: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PartnerKind {
    LocalAuthority,
    Ngo,
    CommunityOrganisation,
    /// The submitting unit implements the project itself (paid by reimbursement against reports).
    UnitItself,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImplementingPartner {
    pub kind: PartnerKind,
    pub name: String,
}

/// People the project means to reach, by sex and age.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Beneficiaries {
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub women: u32,
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub men: u32,
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub girls: u32,
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub boys: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetCategory {
    Materials,
    Labour,
    Equipment,
    Transport,
    Overhead,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetLine {
    /// Not blank.
    #[schema(min_length = 1, pattern = "\\S", example = "Solar fridge")]
    pub description: String,
    pub category: BudgetCategory,
    /// Decimal string greater than zero and below 10^9, up to 3 decimals (`"12"`, `"2.5"`).
    #[schema(
        pattern = "^(?:[1-9][0-9]{0,8}(?:\\.[0-9]{1,3})?|0\\.(?:[1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$",
        example = "1"
    )]
    pub quantity: String,
    /// Money string in the pool's currency, greater than zero.
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "6500.00"
    )]
    pub unit_cost: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    /// The local authority that takes the result over.
    pub local_authority: String,
    /// Who maintains it afterwards, and how.
    pub maintenance: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssistanceType {
    Direct,
    Indirect,
}

/// The civil-military screening answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Screening {
    /// Does a civilian actor already do or plan this?
    pub civilian_actor_present: Option<bool>,
    pub civilian_actor_details: Option<String>,
    /// What unique capability the military brings.
    pub unique_military_capability: Option<String>,
    /// Time-limited, with a handover?
    pub time_limited_with_handover: Option<bool>,
    pub assistance_type: Option<AssistanceType>,
    /// Risk to humanitarian access or perception, and how it is mitigated.
    pub humanitarian_access_risk: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// Why exceeding the pool's limits is justified; adds a `dsrsg` approval step.
    pub reason: String,
}

/// Everything the submitter writes. Every field may be missing while drafting; submission needs them all
/// (except the optional ones noted).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProposalContent {
    /// At most 200 characters.
    #[schema(max_length = 200, example = "Solar fridge for Tawila health post")]
    pub title: Option<String>,
    /// At most 10,000 characters (as every text of the content).
    #[schema(max_length = 10000, example = "Vaccine cold chain for the health post")]
    pub summary: Option<String>,
    #[schema(max_length = 10000, example = "Keep vaccines cold")]
    pub objectives: Option<String>,
    #[schema(max_length = 10000, example = "Trust with the health committee")]
    pub confidence_building_purpose: Option<String>,
    /// A sector of the code list (`GET /sectors`); checked at submission.
    #[schema(max_length = 10000, example = "HEA")]
    pub sector_code: Option<String>,
    pub location: Option<Location>,
    pub implementing_partner: Option<ImplementingPartner>,
    pub beneficiaries: Option<Beneficiaries>,
    pub planned_start: Option<NaiveDate>,
    pub planned_end: Option<NaiveDate>,
    /// At most 200 lines.
    #[schema(max_items = 200)]
    pub budget_lines: Option<Vec<BudgetLine>>,
    /// Money string greater than zero; must equal the budget total at submission.
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "6500.00"
    )]
    pub requested_amount: Option<String>,
    pub handover: Option<Handover>,
    /// Community and local-authority endorsement.
    #[schema(max_length = 10000, example = "Requested by the health committee")]
    pub local_ownership: Option<String>,
    pub screening: Option<Screening>,
    /// Optional.
    #[schema(max_length = 10000)]
    pub visibility_note: Option<String>,
    /// Needed only when a pool limit is exceeded.
    pub waiver: Option<Waiver>,
}

/// Top-level keys the server owns; sending one is refused, never silently ignored.
pub const SERVER_OWNED_FIELDS: [&str; 20] = [
    "id",
    "reference",
    "state",
    "version",
    "current_version",
    "pool_id",
    "organization_id",
    "budget_total",
    "line_totals",
    "overhead_total",
    "duration_days",
    "submitted_by",
    "submitted_at",
    "first_submitted_at",
    "created_by",
    "created_at",
    "updated_at",
    "pool_settings_version",
    "iati_activity_status",
    "allowed_actions",
];

/// One validation problem: a JSON path and a message.
pub type Problem = (String, String);

/// Figures the server derives from the content.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Computed {
    pub line_totals: Vec<Option<i64>>,
    pub budget_total_minor: Option<i64>,
    pub overhead_minor: Option<i64>,
    pub requested_minor: Option<i64>,
    pub duration_days: Option<i64>,
}

const MAX_TEXT: usize = 10_000;

/// Quantity × unit cost, rounded half-even to minor units.
pub fn line_total(quantity: &str, unit_cost: &str, currency: Currency) -> Result<i64, Problem> {
    let q: Decimal = quantity.parse().map_err(|_| {
        (
            "quantity".to_owned(),
            "must be a decimal number like 12 or 2.5".to_owned(),
        )
    })?;
    if q <= Decimal::ZERO || q.scale() > 3 || q > Decimal::from(1_000_000_000_u64) {
        return Err((
            "quantity".into(),
            "must be greater than zero, with at most 3 decimals".into(),
        ));
    }
    let cost =
        parse_positive_amount(unit_cost, currency).map_err(|e| ("unit_cost".to_owned(), e.to_string()))?;
    (q * Decimal::from(cost))
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointNearestEven)
        .to_i64()
        .ok_or_else(|| ("unit_cost".to_owned(), "the line total is too large".to_owned()))
}

/// Checks the format of whatever is present (any time a draft is saved) and computes the figures.
pub fn check_formats(content: &ProposalContent, currency: Currency) -> (Computed, Vec<Problem>) {
    let mut problems: Vec<Problem> = Vec::new();
    let mut computed = Computed::default();
    let texts: [(&str, &Option<String>); 7] = [
        ("title", &content.title),
        ("summary", &content.summary),
        ("objectives", &content.objectives),
        (
            "confidence_building_purpose",
            &content.confidence_building_purpose,
        ),
        ("local_ownership", &content.local_ownership),
        ("visibility_note", &content.visibility_note),
        ("sector_code", &content.sector_code),
    ];
    for (field, value) in texts {
        if value.as_ref().is_some_and(|v| v.chars().count() > MAX_TEXT) {
            problems.push((field.into(), format!("must be at most {MAX_TEXT} characters")));
        }
    }
    if content.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
        problems.push(("title".into(), "must be at most 200 characters".into()));
    }
    if let Some(loc) = &content.location {
        if loc.lat.is_some() != loc.lon.is_some() {
            problems.push(("location".into(), "lat and lon must be given together".into()));
        }
        if loc.lat.is_some_and(|v| !v.is_finite() || v.abs() > 90.0) {
            problems.push(("location.lat".into(), "must be between -90 and 90".into()));
        }
        if loc.lon.is_some_and(|v| !v.is_finite() || v.abs() > 180.0) {
            problems.push(("location.lon".into(), "must be between -180 and 180".into()));
        }
    }
    if let Some(lines) = &content.budget_lines {
        if lines.len() > 200 {
            problems.push(("budget_lines".into(), "must have at most 200 lines".into()));
        }
        let mut total: Option<i64> = Some(0);
        let mut overhead: Option<i64> = Some(0);
        for (i, line) in lines.iter().enumerate() {
            if line.description.trim().is_empty() {
                problems.push((
                    format!("budget_lines[{i}].description"),
                    "must not be empty".into(),
                ));
            }
            match line_total(&line.quantity, &line.unit_cost, currency) {
                Ok(t) => {
                    computed.line_totals.push(Some(t));
                    total = total.and_then(|s| s.checked_add(t));
                    if line.category == BudgetCategory::Overhead {
                        overhead = overhead.and_then(|s| s.checked_add(t));
                    }
                }
                Err((field, message)) => {
                    computed.line_totals.push(None);
                    total = None;
                    overhead = None;
                    problems.push((format!("budget_lines[{i}].{field}"), message));
                }
            }
        }
        computed.budget_total_minor = total;
        computed.overhead_minor = overhead;
    }
    if let Some(requested) = &content.requested_amount {
        match parse_positive_amount(requested, currency) {
            Ok(v) => computed.requested_minor = Some(v),
            Err(e) => problems.push(("requested_amount".into(), e.to_string())),
        }
    }
    if let (Some(start), Some(end)) = (content.planned_start, content.planned_end) {
        computed.duration_days = Some((end - start).num_days());
    }
    (computed, problems)
}

/// What the caller looked up about the content's references.
#[derive(Debug, Clone, Default)]
pub struct ReferenceFacts {
    pub sector_known: bool,
    /// `Some(level)` when the adm1 P-code exists.
    pub adm1_level: Option<i32>,
    /// `Some(parent)` when the adm2 P-code exists.
    pub adm2_parent: Option<Option<String>>,
}

/// The outcome of a successful submission check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionFigures {
    pub budget_total_minor: i64,
    pub requested_minor: i64,
    pub duration_days: i64,
    /// Limits exceeded under the waiver (empty when none).
    pub waived: Vec<LimitExceeded>,
}

fn require<T>(value: &Option<T>, field: &str, problems: &mut Vec<Problem>) -> bool {
    if value.is_none() {
        problems.push((field.into(), "is required to submit".into()));
    }
    value.is_some()
}

fn require_text(value: &Option<String>, field: &str, problems: &mut Vec<Problem>) {
    if value.as_ref().is_none_or(|v| v.trim().is_empty()) {
        problems.push((field.into(), "is required to submit".into()));
    }
}

/// Every check of DESIGN.md §2 at submission: completeness, references, dates, budget, the pool's limits
/// (exceeding one needs a waiver with a reason). All problems are returned together.
pub fn check_submission(
    content: &ProposalContent,
    currency: Currency,
    policy: &PoolPolicy,
    facts: &ReferenceFacts,
    today: NaiveDate,
) -> Result<SubmissionFigures, Vec<Problem>> {
    let (computed, mut problems) = check_formats(content, currency);
    for (field, value) in [
        ("title", &content.title),
        ("summary", &content.summary),
        ("objectives", &content.objectives),
        (
            "confidence_building_purpose",
            &content.confidence_building_purpose,
        ),
        ("local_ownership", &content.local_ownership),
    ] {
        require_text(value, field, &mut problems);
    }
    if require(&content.sector_code, "sector_code", &mut problems) && !facts.sector_known {
        problems.push((
            "sector_code".into(),
            "is not a sector of the code list (GET /api/v1/sectors)".into(),
        ));
    }
    if let Some(loc) = &content.location {
        match facts.adm1_level {
            Some(1) => {}
            Some(_) => problems.push((
                "location.adm1_pcode".into(),
                format!("{} is not an adm1 area", loc.adm1_pcode),
            )),
            None => problems.push((
                "location.adm1_pcode".into(),
                format!("unknown P-code {}", loc.adm1_pcode),
            )),
        }
        match &facts.adm2_parent {
            Some(Some(parent)) if *parent == loc.adm1_pcode => {}
            Some(_) => problems.push((
                "location.adm2_pcode".into(),
                format!("{} does not lie in {}", loc.adm2_pcode, loc.adm1_pcode),
            )),
            None => problems.push((
                "location.adm2_pcode".into(),
                format!("unknown P-code {}", loc.adm2_pcode),
            )),
        }
    } else {
        problems.push(("location".into(), "is required to submit".into()));
    }
    if let Some(partner) = &content.implementing_partner {
        if partner.name.trim().is_empty() {
            problems.push(("implementing_partner.name".into(), "is required to submit".into()));
        }
    } else {
        problems.push(("implementing_partner".into(), "is required to submit".into()));
    }
    if let Some(b) = &content.beneficiaries {
        if u64::from(b.women) + u64::from(b.men) + u64::from(b.girls) + u64::from(b.boys) == 0 {
            problems.push(("beneficiaries".into(), "must count at least one person".into()));
        }
    } else {
        problems.push(("beneficiaries".into(), "is required to submit".into()));
    }
    let start_ok = require(&content.planned_start, "planned_start", &mut problems);
    let end_ok = require(&content.planned_end, "planned_end", &mut problems);
    if let (true, true, Some(start), Some(end)) =
        (start_ok, end_ok, content.planned_start, content.planned_end)
    {
        if end <= start {
            problems.push(("planned_end".into(), "must be after planned_start".into()));
        }
        if end < today {
            problems.push(("planned_end".into(), "is in the past".into()));
        }
    }
    match &content.budget_lines {
        Some(lines) if !lines.is_empty() => {}
        _ => problems.push(("budget_lines".into(), "needs at least one line to submit".into())),
    }
    require(&content.requested_amount, "requested_amount", &mut problems);
    if let (Some(total), Some(requested)) = (computed.budget_total_minor, computed.requested_minor) {
        if total != requested {
            problems.push((
                "requested_amount".into(),
                format!(
                    "must equal the budget total {} (is {})",
                    format_amount(total, currency),
                    format_amount(requested, currency)
                ),
            ));
        }
    }
    match &content.handover {
        Some(h) => {
            if h.local_authority.trim().is_empty() {
                problems.push(("handover.local_authority".into(), "is required to submit".into()));
            }
            if h.maintenance.trim().is_empty() {
                problems.push(("handover.maintenance".into(), "is required to submit".into()));
            }
        }
        None => problems.push(("handover".into(), "is required to submit".into())),
    }
    let screening = content.screening.clone().unwrap_or_default();
    require(
        &screening.civilian_actor_present,
        "screening.civilian_actor_present",
        &mut problems,
    );
    if screening.civilian_actor_present == Some(true) {
        require_text(
            &screening.civilian_actor_details,
            "screening.civilian_actor_details",
            &mut problems,
        );
    }
    require_text(
        &screening.unique_military_capability,
        "screening.unique_military_capability",
        &mut problems,
    );
    require(
        &screening.time_limited_with_handover,
        "screening.time_limited_with_handover",
        &mut problems,
    );
    require(
        &screening.assistance_type,
        "screening.assistance_type",
        &mut problems,
    );
    require_text(
        &screening.humanitarian_access_risk,
        "screening.humanitarian_access_risk",
        &mut problems,
    );

    if let (Some(total), Some(requested), Some(days)) = (
        computed.budget_total_minor,
        computed.requested_minor,
        computed.duration_days,
    ) {
        let exceeded = exceeded_limits(
            policy,
            requested,
            days,
            computed.overhead_minor.unwrap_or(0),
            total,
        );
        let waiver_ok = content
            .waiver
            .as_ref()
            .is_some_and(|w| w.reason.trim().len() >= 20);
        if !exceeded.is_empty() && !waiver_ok {
            for limit in &exceeded {
                let (field, message) = match limit {
                    LimitExceeded::Ceiling => (
                        "requested_amount",
                        format!(
                            "exceeds the pool's ceiling of {} per project",
                            format_amount(policy.ceiling_minor, currency)
                        ),
                    ),
                    LimitExceeded::Duration => (
                        "planned_end",
                        format!(
                            "the project runs {days} days; the pool allows {}",
                            policy.max_duration_days
                        ),
                    ),
                    LimitExceeded::Overhead => (
                        "budget_lines",
                        format!(
                            "overhead exceeds the pool's cap of {}%",
                            policy.overhead_cap_percent
                        ),
                    ),
                };
                problems.push((
                    field.into(),
                    format!("{message}; exceeding it needs `waiver: {{reason}}` (at least 20 characters)"),
                ));
            }
        }
        if exceeded.is_empty() && content.waiver.is_some() {
            problems.push((
                "waiver".into(),
                "no pool limit is exceeded; remove the waiver".into(),
            ));
        }
        if problems.is_empty() {
            return Ok(SubmissionFigures {
                budget_total_minor: total,
                requested_minor: requested,
                duration_days: days,
                waived: exceeded,
            });
        }
    }
    if problems.is_empty() {
        problems.push(("budget_lines".into(), "the budget could not be computed".into()));
    }
    Err(problems)
}

#[cfg(test)]
#[expect(
    clippy::inconsistent_digit_grouping,
    reason = "amounts are written units_cents, like money"
)]
mod tests {
    use super::*;
    use crate::domain::money::currency;

    fn usd() -> Currency {
        currency("USD").unwrap_or_else(|| unreachable!())
    }

    pub fn complete() -> ProposalContent {
        ProposalContent {
            title: Some("Borehole for Kalma school".into()),
            summary: Some("A borehole with hand pump".into()),
            objectives: Some("Safe water for 600 pupils".into()),
            confidence_building_purpose: Some("Trust between the battalion and the community".into()),
            sector_code: Some("WSH".into()),
            location: Some(Location {
                adm1_pcode: "XY01".into(),
                adm2_pcode: "XY0101".into(),
                lat: None,
                lon: None,
            }),
            implementing_partner: Some(ImplementingPartner {
                kind: PartnerKind::LocalAuthority,
                name: "Water board".into(),
            }),
            beneficiaries: Some(Beneficiaries {
                women: 10,
                men: 10,
                girls: 300,
                boys: 300,
            }),
            planned_start: NaiveDate::from_ymd_opt(2027, 1, 1),
            planned_end: NaiveDate::from_ymd_opt(2027, 3, 1),
            budget_lines: Some(vec![
                BudgetLine {
                    description: "Drilling".into(),
                    category: BudgetCategory::Labour,
                    quantity: "1".into(),
                    unit_cost: "8000.00".into(),
                },
                BudgetLine {
                    description: "Pump".into(),
                    category: BudgetCategory::Equipment,
                    quantity: "2.5".into(),
                    unit_cost: "1000.01".into(),
                },
            ]),
            requested_amount: Some("10500.02".into()),
            handover: Some(Handover {
                local_authority: "District council".into(),
                maintenance: "Water committee".into(),
            }),
            local_ownership: Some("Endorsed by the council on 3 Nov".into()),
            screening: Some(Screening {
                civilian_actor_present: Some(false),
                civilian_actor_details: None,
                unique_military_capability: Some("Drilling rig".into()),
                time_limited_with_handover: Some(true),
                assistance_type: Some(AssistanceType::Indirect),
                humanitarian_access_risk: Some("Low; no armed escort".into()),
            }),
            visibility_note: None,
            waiver: None,
        }
    }

    fn facts() -> ReferenceFacts {
        ReferenceFacts {
            sector_known: true,
            adm1_level: Some(1),
            adm2_parent: Some(Some("XY01".into())),
        }
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default()
    }

    #[test]
    fn a_complete_proposal_passes_with_computed_figures() {
        let policy = PoolPolicy::default_for(2);
        let figures = check_submission(&complete(), usd(), &policy, &facts(), today()).unwrap();
        // 2.5 × 1000.01 = 2500.025 → 2500.02 (half-even) + 8000.00
        assert_eq!(figures.budget_total_minor, 10_500_02);
        assert_eq!(figures.duration_days, 59);
        assert!(figures.waived.is_empty());
    }

    #[test]
    fn every_fault_is_listed_at_once() {
        let mut c = complete();
        c.title = None;
        c.sector_code = Some("NOPE".into());
        c.planned_end = NaiveDate::from_ymd_opt(2026, 12, 1);
        c.requested_amount = Some("1.001".into());
        c.screening = None;
        let f = ReferenceFacts {
            sector_known: false,
            adm1_level: Some(1),
            adm2_parent: Some(Some("XY02".into())),
        };
        let problems = check_submission(&c, usd(), &PoolPolicy::default_for(2), &f, today()).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
        for expected in [
            "title",
            "sector_code",
            "planned_end",
            "requested_amount",
            "location.adm2_pcode",
            "screening.civilian_actor_present",
            "screening.assistance_type",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
        }
    }

    #[test]
    fn exceeding_the_ceiling_needs_a_waiver() {
        let mut c = complete();
        c.budget_lines = Some(vec![BudgetLine {
            description: "Bridge".into(),
            category: BudgetCategory::Materials,
            quantity: "1".into(),
            unit_cost: "60000.00".into(),
        }]);
        c.requested_amount = Some("60000.00".into());
        let policy = PoolPolicy::default_for(2);
        let problems = check_submission(&c, usd(), &policy, &facts(), today()).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|(f, m)| f == "requested_amount" && m.contains("ceiling"))
        );
        c.waiver = Some(Waiver {
            reason: "Only crossing for 40 km; the ceiling cannot cover a bridge".into(),
        });
        let figures = check_submission(&c, usd(), &policy, &facts(), today()).unwrap();
        assert_eq!(figures.waived, vec![LimitExceeded::Ceiling]);
    }
}
