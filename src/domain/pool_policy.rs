//! A pool's QIP policy settings (DESIGN.md §2, §4, §5): limits a proposal is checked against at submission,
//! consultation settings, the approval policy with delegated-authority bands, and the tranche plan — and the
//! rules that make a set of settings valid. Amounts are minor units of the pool's currency.

use serde::{Deserialize, Serialize};

use crate::access::Hat;

/// When an approval step applies to a proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepCondition {
    Always,
    /// The requested amount is at or above this many minor units.
    AmountAtLeast {
        amount_minor: i64,
    },
    /// The proposal's sector is one of these codes.
    SectorIn {
        sectors: Vec<String>,
    },
    /// The proposal exceeds a pool limit under a waiver.
    WaiverPresent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRule {
    pub hat: Hat,
    pub condition: StepCondition,
    /// Target turnaround in days.
    pub sla_days: u32,
}

/// Delegated financial authority: the first band whose maximum covers the amount names the deciding hat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorityBand {
    pub max_minor: i64,
    pub hat: Hat,
}

/// When a tranche becomes payable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TrancheCondition {
    OnApproval,
    OnProgressReportAccepted,
    OnCompletionReportAccepted,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrancheRule {
    pub percent: u32,
    pub condition: TrancheCondition,
}

/// Everything a pool decides about the projects it funds. Stored as canonical JSON, one row per version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolPolicy {
    pub ceiling_minor: i64,
    pub max_duration_days: u32,
    /// Share of the budget that may be overhead, in whole percent.
    pub overhead_cap_percent: u32,
    pub consultation_window_days: u32,
    /// A consultee who does not answer by the deadline counts as "no objection".
    pub silence_is_consent: bool,
    /// Overlap screening radius when both sides have coordinates.
    pub overlap_radius_km: u32,
    /// Ordered review steps before the financial decision.
    pub approval_steps: Vec<StepRule>,
    pub authority_bands: Vec<AuthorityBand>,
    pub financial_step_sla_days: u32,
    pub tranche_plan: Vec<TrancheRule>,
}

/// Hats that may decide approval steps.
pub const DECIDING_HATS: [Hat; 4] = [Hat::Hc, Hat::Rc, Hat::HeadOfOffice, Hat::Dsrsg];

impl PoolPolicy {
    /// DESIGN.md's defaults, with amounts in units of a currency with `minor_digits` decimals:
    /// ceiling 50,000; bands head_of_office ≤ 15,000, dsrsg ≤ ceiling; hc clearance, then rc clearance from
    /// 25,000; 180 days; no overhead; 5-day consultation, silence is consent; 60 % on approval, 40 % on the
    /// accepted completion report.
    pub fn default_for(minor_digits: u8) -> Self {
        let unit = 10_i64.pow(u32::from(minor_digits));
        PoolPolicy {
            ceiling_minor: 50_000 * unit,
            max_duration_days: 180,
            overhead_cap_percent: 0,
            consultation_window_days: 5,
            silence_is_consent: true,
            overlap_radius_km: 10,
            approval_steps: vec![
                StepRule {
                    hat: Hat::Hc,
                    condition: StepCondition::Always,
                    sla_days: 5,
                },
                StepRule {
                    hat: Hat::Rc,
                    condition: StepCondition::AmountAtLeast {
                        amount_minor: 25_000 * unit,
                    },
                    sla_days: 5,
                },
            ],
            authority_bands: vec![
                AuthorityBand {
                    max_minor: 15_000 * unit,
                    hat: Hat::HeadOfOffice,
                },
                AuthorityBand {
                    max_minor: 50_000 * unit,
                    hat: Hat::Dsrsg,
                },
            ],
            financial_step_sla_days: 5,
            tranche_plan: vec![
                TrancheRule {
                    percent: 60,
                    condition: TrancheCondition::OnApproval,
                },
                TrancheRule {
                    percent: 40,
                    condition: TrancheCondition::OnCompletionReportAccepted,
                },
            ],
        }
    }

    /// Every reason these settings are unusable, as `(field, message)`; empty when valid.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = Vec::new();
        let mut add = |f: &str, m: &str| p.push((f.to_owned(), m.to_owned()));
        if self.ceiling_minor <= 0 {
            add("ceiling", "must be greater than zero");
        }
        if !(1..=1_095).contains(&self.max_duration_days) {
            add("max_duration_days", "must be between 1 and 1095");
        }
        if self.overhead_cap_percent > 100 {
            add("overhead_cap_percent", "must be between 0 and 100");
        }
        if !(1..=60).contains(&self.consultation_window_days) {
            add("consultation_window_days", "must be between 1 and 60");
        }
        if self.overlap_radius_km > 500 {
            add("overlap_radius_km", "must be at most 500");
        }
        if !(1..=90).contains(&self.financial_step_sla_days) {
            add("financial_step_sla_days", "must be between 1 and 90");
        }
        for (i, step) in self.approval_steps.iter().enumerate() {
            if !DECIDING_HATS.contains(&step.hat) {
                add(
                    &format!("approval_steps[{i}].hat"),
                    "must be hc, rc, head_of_office or dsrsg",
                );
            }
            if !(1..=90).contains(&step.sla_days) {
                add(
                    &format!("approval_steps[{i}].sla_days"),
                    "must be between 1 and 90",
                );
            }
            match &step.condition {
                StepCondition::AmountAtLeast { amount_minor } if *amount_minor <= 0 => add(
                    &format!("approval_steps[{i}].condition.amount"),
                    "must be greater than zero",
                ),
                StepCondition::SectorIn { sectors } if sectors.is_empty() => add(
                    &format!("approval_steps[{i}].condition.sectors"),
                    "must name at least one sector",
                ),
                _ => {}
            }
        }
        if self.authority_bands.is_empty() {
            add("authority_bands", "must have at least one band");
        }
        for (i, band) in self.authority_bands.iter().enumerate() {
            if !DECIDING_HATS.contains(&band.hat) {
                add(
                    &format!("authority_bands[{i}].hat"),
                    "must be hc, rc, head_of_office or dsrsg",
                );
            }
            if band.max_minor <= 0 {
                add(
                    &format!("authority_bands[{i}].max_amount"),
                    "must be greater than zero",
                );
            }
            if i > 0 && band.max_minor <= self.authority_bands[i - 1].max_minor {
                add(
                    &format!("authority_bands[{i}].max_amount"),
                    "must be larger than the band before it",
                );
            }
        }
        if self
            .authority_bands
            .last()
            .is_some_and(|b| b.max_minor < self.ceiling_minor)
        {
            add(
                "authority_bands",
                "the last band must cover the ceiling per project",
            );
        }
        if self.tranche_plan.is_empty() {
            add("tranche_plan", "must have at least one tranche");
        }
        if self.tranche_plan.iter().any(|t| t.percent == 0) {
            add("tranche_plan", "every tranche must be more than 0 percent");
        }
        if self
            .tranche_plan
            .iter()
            .map(|t| u64::from(t.percent))
            .sum::<u64>()
            != 100
        {
            add("tranche_plan", "tranche percents must sum to 100");
        }
        p
    }

    /// The hat of the financial decision for `amount_minor`: the first band that covers it.
    pub fn financial_hat(&self, amount_minor: i64) -> Option<Hat> {
        self.authority_bands
            .iter()
            .find(|b| amount_minor <= b.max_minor)
            .map(|b| b.hat)
    }
}

/// Which pool limits a proposal exceeds (each needs a waiver with a written reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitExceeded {
    Ceiling,
    Duration,
    Overhead,
}

/// Checks a proposal's figures against the pool's limits.
pub fn exceeded_limits(
    policy: &PoolPolicy,
    requested_minor: i64,
    duration_days: i64,
    overhead_minor: i64,
    budget_total_minor: i64,
) -> Vec<LimitExceeded> {
    let mut out = Vec::new();
    if requested_minor > policy.ceiling_minor {
        out.push(LimitExceeded::Ceiling);
    }
    if duration_days > i64::from(policy.max_duration_days) {
        out.push(LimitExceeded::Duration);
    }
    // overhead / total > cap%  ⇔  overhead × 100 > cap × total (integers, no rounding).
    if budget_total_minor > 0
        && i128::from(overhead_minor) * 100
            > i128::from(policy.overhead_cap_percent) * i128::from(budget_total_minor)
    {
        out.push(LimitExceeded::Overhead);
    }
    out
}

#[cfg(test)]
#[expect(
    clippy::inconsistent_digit_grouping,
    reason = "amounts are written units_cents, like money"
)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_common_currencies() {
        for digits in [0, 2, 3] {
            assert_eq!(PoolPolicy::default_for(digits).problems(), Vec::new());
        }
    }

    #[test]
    fn bands_must_cover_the_ceiling_and_increase() {
        let mut p = PoolPolicy::default_for(2);
        p.authority_bands[1].max_minor = 40_000_00;
        assert!(p.problems().iter().any(|(_, m)| m.contains("cover the ceiling")));
        p.authority_bands[1].max_minor = 10_000_00;
        assert!(
            p.problems()
                .iter()
                .any(|(f, _)| f == "authority_bands[1].max_amount")
        );
    }

    #[test]
    fn tranches_must_sum_to_one_hundred() {
        let mut p = PoolPolicy::default_for(2);
        p.tranche_plan[1].percent = 30;
        assert!(p.problems().iter().any(|(_, m)| m.contains("sum to 100")));
    }

    #[test]
    fn band_edges_pick_the_right_hat() {
        let p = PoolPolicy::default_for(2);
        assert_eq!(p.financial_hat(15_000_00 - 1), Some(Hat::HeadOfOffice));
        assert_eq!(p.financial_hat(15_000_00), Some(Hat::HeadOfOffice));
        assert_eq!(p.financial_hat(15_000_00 + 1), Some(Hat::Dsrsg));
        assert_eq!(p.financial_hat(50_000_00), Some(Hat::Dsrsg));
        assert_eq!(p.financial_hat(50_000_00 + 1), None);
    }

    #[test]
    fn limits_are_checked_exactly() {
        let p = PoolPolicy::default_for(2);
        assert!(exceeded_limits(&p, 50_000_00, 180, 0, 50_000_00).is_empty());
        assert_eq!(
            exceeded_limits(&p, 50_000_01, 181, 1, 50_000_01),
            vec![
                LimitExceeded::Ceiling,
                LimitExceeded::Duration,
                LimitExceeded::Overhead
            ]
        );
        let mut p = p;
        p.overhead_cap_percent = 7;
        assert!(exceeded_limits(&p, 100_00, 10, 7_00, 100_00).is_empty());
        assert_eq!(
            exceeded_limits(&p, 100_00, 10, 7_01, 100_00),
            vec![LimitExceeded::Overhead]
        );
    }
}
