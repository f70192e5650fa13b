//! Request and response bodies of consultation, the 3W registry and consultation rules.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::repo::{ActivityRow, FlagRow, RuleRow};

pub use crate::domain::status::{
    ConsulteeStatus, FlagCategory, FlagStatus, ReasonKind, ResponseKind, RoundClosedBy, RoundOutcome,
    Severity,
};

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagInput {
    pub category: FlagCategory,
    pub severity: Severity,
    /// Shared with the submitting unit; 1–2,000 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = "\\S",
        example = "The borehole site is 300 m from the UNICEF one"
    )]
    pub description: String,
    /// Seen only by `consultee`, `hc` and `qip_officer` hats; never shown to the submitting unit (at most
    /// 4,000 characters).
    #[schema(max_length = 4000)]
    pub confidential_note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseInput {
    pub kind: ResponseKind,
    /// At most 4,000 characters.
    #[schema(max_length = 4000, example = "No overlap with our programme")]
    pub comment: Option<String>,
    /// Required for (and only with) an objection; at most 20.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub flags: Vec<FlagInput>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddConsultee {
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "\\S",
        example = "0195a3c8-5b1e-7c4d-9f00-3a2b1c0d9e8f"
    )]
    pub organization_id: String,
    /// Why they are asked: at least 5 characters once trimmed, at most 2,000.
    #[schema(
        min_length = 5,
        max_length = 2000,
        pattern = "\\S[\\s\\S]{3,}\\S",
        example = "Runs the water points in Tawila"
    )]
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FlagEnding {
    /// Required for an HC override (at least 20 characters); optional otherwise; at most 4,000 characters.
    #[schema(
        max_length = 4000,
        example = "The site was moved 2 km north; no overlap remains"
    )]
    pub justification: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Flag {
    pub id: String,
    pub proposal_id: String,
    pub round_id: String,
    /// The proposal version the flag was raised on.
    pub version_number: i32,
    /// The raising organisation (`null` for a system-raised flag without one).
    pub organization_id: Option<String>,
    pub system_raised: bool,
    pub category: FlagCategory,
    pub severity: Severity,
    pub description: String,
    /// Present only for `consultee`, `hc` and `qip_officer` hats outside the submitting organisation
    /// (`access::may_read_confidential_notes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidential_note: Option<String>,
    /// The 3W activity a duplication flag points at (for a system flag: the nearest of `matched_activities`).
    pub activity_id: Option<String>,
    /// A system duplication flag's overlapping 3W activities, nearest first, at most 20.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_activities: Option<Vec<MatchedActivity>>,
    /// How many 3W activities overlap in all (more than `matched_activities` lists when capped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_activities_total: Option<i32>,
    /// `open`, `withdrawn`, `resolved` or `overridden`.
    pub status: FlagStatus,
    pub ended_by: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The HC's written justification for an override (shown in the decision brief forever).
    pub end_justification: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Flag {
    pub fn from_row(r: FlagRow, show_confidential: bool) -> Self {
        Self {
            id: r.id,
            proposal_id: r.proposal_id,
            round_id: r.round_id,
            version_number: r.version_number,
            organization_id: r.organization_id,
            system_raised: r.system_raised,
            category: r.category,
            severity: r.severity,
            description: r.description,
            confidential_note: if show_confidential {
                r.confidential_note
            } else {
                None
            },
            activity_id: r.activity_id,
            matched_activities: r.matched_activities.and_then(|m| serde_json::from_str(&m).ok()),
            matched_activities_total: r.matched_activities_total,
            status: r.status,
            ended_by: r.ended_by,
            ended_at: r.ended_at.map(|t| t.and_utc()),
            end_justification: r.end_justification,
            created_at: r.created_at.and_utc(),
        }
    }
}

/// One 3W activity a proposal overlaps, as a duplication flag lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MatchedActivity {
    pub activity_id: String,
    pub organization_id: String,
    pub title: String,
    /// `same_adm2` or `within_radius`.
    pub basis: String,
    /// Distance between the activity and the proposal, for `within_radius`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
}

impl From<&crate::domain::screening::OverlapMatch> for MatchedActivity {
    fn from(m: &crate::domain::screening::OverlapMatch) -> Self {
        use crate::domain::screening::OverlapBasis;
        let (basis, distance_km) = match m.basis {
            OverlapBasis::SameAdm2 => ("same_adm2", None),
            OverlapBasis::WithinRadius { distance_km } => ("within_radius", Some(distance_km)),
        };
        Self {
            activity_id: m.activity_id.clone(),
            organization_id: m.organization_id.clone(),
            title: m.title.clone(),
            basis: basis.to_owned(),
            distance_km,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsulteeReason {
    /// `rule`, `always_consult`, `overlap`, `manual`, `earlier_objection` or `confirm_resolution` (after a
    /// revision: the organisation holds open blocking flags and is asked to confirm that the revision resolves
    /// them; resolving or withdrawing the last of them answers the round).
    pub kind: ReasonKind,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consultee {
    pub organization_id: String,
    pub reasons: Vec<ConsulteeReason>,
    /// `pending`, `no_objection`, `comment`, `objection`, `lapsed`, or `resolved` (asked to confirm the
    /// resolution of its blocking flags, the organisation ended the last of them).
    pub status: ConsulteeStatus,
    pub responded_by: Option<String>,
    pub responded_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseRecord {
    pub organization_id: String,
    pub responded_by: String,
    pub kind: ResponseKind,
    pub comment: Option<String>,
    /// From an organisation that was not asked: recorded, cannot block.
    pub unsolicited: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Round {
    pub id: String,
    pub round_number: i32,
    pub version_number: i32,
    pub opened_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub silence_is_consent: bool,
    pub closed_at: Option<DateTime<Utc>>,
    /// `all_answered` or `deadline`.
    pub closed_by: Option<RoundClosedBy>,
    /// `clear` or `flagged`.
    pub outcome: Option<RoundOutcome>,
    pub consultees: Vec<Consultee>,
    /// Every response in order, changes and unsolicited ones included (the latest 50).
    pub responses: Vec<ResponseRecord>,
    /// How many responses the round has in all.
    pub responses_total: usize,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Consultation {
    pub proposal_id: String,
    pub state: crate::domain::lifecycle::State,
    pub rounds: Vec<Round>,
    /// In order of raising; at most 100 (open flags kept first, then the latest ended ones).
    pub flags: Vec<Flag>,
    /// How many flags the proposal has in all.
    pub flags_total: usize,
}

pub use crate::domain::status::ActivityStatus;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityInput {
    /// 1–300 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = "\\S",
        example = "Water point rehabilitation, Tawila"
    )]
    pub title: String,
    /// A sector of the code list (`GET /sectors`).
    #[schema(example = "WSH")]
    pub sector_code: String,
    #[schema(example = "XY01")]
    pub adm1_pcode: String,
    /// An adm2 P-code inside `adm1_pcode`.
    #[schema(example = "XY0102")]
    pub adm2_pcode: String,
    /// With `lon`.
    #[schema(minimum = -90.0, maximum = 90.0, example = 13.53)]
    pub lat: Option<f64>,
    /// With `lat`.
    #[schema(minimum = -180.0, maximum = 180.0, example = 24.98)]
    pub lon: Option<f64>,
    #[schema(example = "2026-10-01")]
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    /// `planned` (default) or `ongoing`; close with `POST /activities/{id}/close`.
    pub status: Option<ActivityStatus>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Activity {
    pub id: String,
    pub organization_id: String,
    pub title: String,
    pub sector_code: String,
    pub adm1_pcode: String,
    pub adm2_pcode: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub start_date: NaiveDate,
    pub end_date: Option<NaiveDate>,
    pub status: ActivityStatus,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ActivityRow> for Activity {
    fn from(r: ActivityRow) -> Self {
        Self {
            id: r.id,
            organization_id: r.organization_id,
            title: r.title,
            sector_code: r.sector_code,
            adm1_pcode: r.adm1_pcode,
            adm2_pcode: r.adm2_pcode,
            lat: r.lat,
            lon: r.lon,
            start_date: r.start_date,
            end_date: r.end_date,
            status: r.status,
            version: r.version,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRule {
    pub organization_id: String,
    /// The rule applies to proposals of this sector (absent with `always_consult`).
    pub sector_code: Option<String>,
    /// Optionally only in this adm1 area.
    pub adm1_pcode: Option<String>,
    /// Consult this organisation on every proposal (OCHA-style coordinators).
    #[serde(default)]
    pub always_consult: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rule {
    pub id: String,
    pub organization_id: String,
    pub sector_code: Option<String>,
    pub adm1_pcode: Option<String>,
    pub always_consult: bool,
    pub created_at: DateTime<Utc>,
}

impl From<RuleRow> for Rule {
    fn from(r: RuleRow) -> Self {
        Self {
            id: r.id,
            organization_id: r.organization_id,
            sector_code: r.sector_code,
            adm1_pcode: r.adm1_pcode,
            always_consult: r.always_consult,
            created_at: r.created_at.and_utc(),
        }
    }
}
