//! Request and response bodies of the pools API. Amounts are decimal strings with exactly the pool currency's
//! minor digits; they are converted to and from the domain's minor units here.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Hat;
use crate::domain::money::{Currency, format_amount, parse_positive_amount};
use crate::domain::pool_policy::{
    AuthorityBand, PoolPolicy, StepCondition, StepRule, TrancheCondition, TrancheRule,
};
use crate::error::FieldError;

/// When an approval step applies.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepApplies {
    Always,
    AmountAtLeast {
        #[schema(
            pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
            max_length = 16,
            example = "10000.00"
        )]
        amount: String,
    },
    SectorIn {
        #[schema(min_items = 1)]
        sectors: Vec<String>,
    },
    WaiverPresent,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepSetting {
    pub hat: Hat,
    pub applies: StepApplies,
    #[schema(minimum = 1, maximum = 90)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub sla_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BandSetting {
    /// Largest amount this band decides (inclusive).
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "25000.00"
    )]
    pub max_amount: String,
    pub hat: Hat,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrancheSetting {
    #[schema(minimum = 1, maximum = 100)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub percent: u32,
    pub condition: TrancheCondition,
}

/// A pool's QIP policy settings.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Ceiling per project.
    #[schema(
        pattern = "^(?:[0-9]*[1-9][0-9]*(?:\\.[0-9]{1,2})?|[0-9]+\\.(?:[1-9][0-9]?|0[1-9]))$",
        max_length = 16,
        example = "50000.00"
    )]
    pub ceiling: String,
    #[schema(minimum = 1, maximum = 1095)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub max_duration_days: u32,
    #[schema(minimum = 0, maximum = 100)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub overhead_cap_percent: u32,
    #[schema(minimum = 1, maximum = 60)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub consultation_window_days: u32,
    pub silence_is_consent: bool,
    #[schema(minimum = 0, maximum = 500)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub overlap_radius_km: u32,
    /// Review steps before the financial decision, in order.
    pub approval_steps: Vec<StepSetting>,
    /// Delegated financial authority, ascending; the first band covering the amount decides; the last
    /// covers the ceiling.
    #[schema(min_items = 1)]
    pub authority_bands: Vec<BandSetting>,
    #[schema(minimum = 1, maximum = 90)]
    #[serde(deserialize_with = "crate::domain::whole_number::deserialize")]
    pub financial_step_sla_days: u32,
    /// Percentages of the commitment, each above 0, adding up to 100.
    #[schema(min_items = 1)]
    pub tranche_plan: Vec<TrancheSetting>,
}

impl PolicySettings {
    pub fn from_domain(p: &PoolPolicy, currency: Currency) -> Self {
        let money = |m: i64| format_amount(m, currency);
        Self {
            ceiling: money(p.ceiling_minor),
            max_duration_days: p.max_duration_days,
            overhead_cap_percent: p.overhead_cap_percent,
            consultation_window_days: p.consultation_window_days,
            silence_is_consent: p.silence_is_consent,
            overlap_radius_km: p.overlap_radius_km,
            approval_steps: p
                .approval_steps
                .iter()
                .map(|s| StepSetting {
                    hat: s.hat,
                    sla_days: s.sla_days,
                    applies: match &s.condition {
                        StepCondition::Always => StepApplies::Always,
                        StepCondition::AmountAtLeast { amount_minor } => StepApplies::AmountAtLeast {
                            amount: money(*amount_minor),
                        },
                        StepCondition::SectorIn { sectors } => StepApplies::SectorIn {
                            sectors: sectors.clone(),
                        },
                        StepCondition::WaiverPresent => StepApplies::WaiverPresent,
                    },
                })
                .collect(),
            authority_bands: p
                .authority_bands
                .iter()
                .map(|b| BandSetting {
                    max_amount: money(b.max_minor),
                    hat: b.hat,
                })
                .collect(),
            financial_step_sla_days: p.financial_step_sla_days,
            tranche_plan: p
                .tranche_plan
                .iter()
                .map(|t| TrancheSetting {
                    percent: t.percent,
                    condition: t.condition,
                })
                .collect(),
        }
    }

    /// Converts to the domain form and validates it; every fault is listed, under `prefix`.
    pub fn to_domain(&self, currency: Currency, prefix: &str) -> Result<PoolPolicy, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut money = |field: String, text: &str| match parse_positive_amount(text, currency) {
            Ok(v) => v,
            Err(e) => {
                errors.push(FieldError::new(format!("{prefix}{field}"), e.to_string()));
                0
            }
        };
        let ceiling_minor = money("ceiling".into(), &self.ceiling);
        let approval_steps = self
            .approval_steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepRule {
                hat: s.hat,
                sla_days: s.sla_days,
                condition: match &s.applies {
                    StepApplies::Always => StepCondition::Always,
                    StepApplies::AmountAtLeast { amount } => StepCondition::AmountAtLeast {
                        amount_minor: money(format!("approval_steps[{i}].applies.amount"), amount),
                    },
                    StepApplies::SectorIn { sectors } => StepCondition::SectorIn {
                        sectors: sectors.clone(),
                    },
                    StepApplies::WaiverPresent => StepCondition::WaiverPresent,
                },
            })
            .collect();
        let authority_bands = self
            .authority_bands
            .iter()
            .enumerate()
            .map(|(i, b)| AuthorityBand {
                max_minor: money(format!("authority_bands[{i}].max_amount"), &b.max_amount),
                hat: b.hat,
            })
            .collect();
        let policy = PoolPolicy {
            ceiling_minor,
            max_duration_days: self.max_duration_days,
            overhead_cap_percent: self.overhead_cap_percent,
            consultation_window_days: self.consultation_window_days,
            silence_is_consent: self.silence_is_consent,
            overlap_radius_km: self.overlap_radius_km,
            approval_steps,
            authority_bands,
            financial_step_sla_days: self.financial_step_sla_days,
            tranche_plan: self
                .tranche_plan
                .iter()
                .map(|t| TrancheRule {
                    percent: t.percent,
                    condition: t.condition,
                })
                .collect(),
        };
        if errors.is_empty() {
            errors.extend(
                policy
                    .problems()
                    .into_iter()
                    .map(|(f, m)| FieldError::new(format!("{prefix}{f}"), m)),
            );
        }
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPool {
    /// 2–12 of A–Z and 0–9; appears in proposal references (`QIP-<CODE>-2026-0001`).
    #[schema(
        min_length = 2,
        max_length = 12,
        pattern = "^[A-Z0-9]{2,12}$",
        example = "DFP"
    )]
    pub code: String,
    /// 1–200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "\\S",
        example = "Darfur QIP pool"
    )]
    pub name: String,
    /// ISO 4217 code of a currency this service knows.
    #[schema(example = "USD")]
    pub currency: String,
    #[schema(example = "2026-01-01")]
    pub funding_start: NaiveDate,
    /// After `funding_start`.
    #[schema(example = "2027-12-31")]
    pub funding_end: NaiveDate,
    /// Absent: the defaults of DESIGN.md in the pool's currency.
    pub settings: Option<PolicySettings>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolUpdate {
    /// 1–200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "\\S",
        example = "Darfur QIP pool 2026–2027"
    )]
    pub name: Option<String>,
    /// Replaces the settings as a new settings version; proposals already checked keep theirs.
    pub settings: Option<PolicySettings>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Pool {
    pub id: String,
    pub code: String,
    pub name: String,
    pub currency: String,
    pub funding_start: NaiveDate,
    pub funding_end: NaiveDate,
    pub settings: PolicySettings,
    pub settings_version: i32,
    /// Changes with every update; send it back in `If-Match`.
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Ledger balances (minor-unit exact, as decimal strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<PoolBalances>,
}

/// The pool's money, from the ledger's balance rows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PoolBalances {
    pub contributed: String,
    pub unallocated: String,
    pub committed: String,
    pub disbursed: String,
}
