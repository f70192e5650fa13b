//! Instantiating a pool's approval policy on a proposal (DESIGN.md §4): the review steps whose conditions
//! apply, in order; a `dsrsg` step when a limit is waived; and the financial decision by the first band of
//! delegated authority that covers the amount.

use serde::{Deserialize, Serialize};

use super::pool_policy::{PoolPolicy, StepCondition};
use crate::access::Hat;

/// Why a step is on the proposal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepReason {
    Always,
    AmountAtLeast {
        amount_minor: i64,
    },
    SectorIn {
        sectors: Vec<String>,
    },
    Waiver,
    /// The financial decision under delegated authority, by the band up to `max_minor`.
    FinancialBand {
        max_minor: i64,
    },
}

impl StepReason {
    /// The reason's kind, as its serde tag names it (`amount_at_least`, …): how reports and the turnaround
    /// group steps.
    pub fn kind_name(&self) -> &'static str {
        match self {
            StepReason::Always => "always",
            StepReason::AmountAtLeast { .. } => "amount_at_least",
            StepReason::SectorIn { .. } => "sector_in",
            StepReason::Waiver => "waiver",
            StepReason::FinancialBand { .. } => "financial_band",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    pub hat: Hat,
    pub reason: StepReason,
    pub sla_days: u32,
    pub financial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// No band covers the amount and no waiver lets the `dsrsg` decide beyond the bands.
    NoBandCovers { amount_minor: i64 },
}

/// The steps for a proposal of `amount_minor` in `sector`, with or without a waiver, in decision order.
pub fn plan_steps(
    policy: &PoolPolicy,
    amount_minor: i64,
    sector: &str,
    waiver: bool,
) -> Result<Vec<StepPlan>, PlanError> {
    let mut steps: Vec<StepPlan> = policy
        .approval_steps
        .iter()
        .filter_map(|rule| {
            let reason = match &rule.condition {
                StepCondition::Always => StepReason::Always,
                StepCondition::AmountAtLeast { amount_minor: min } if amount_minor >= *min => {
                    StepReason::AmountAtLeast { amount_minor: *min }
                }
                StepCondition::SectorIn { sectors } if sectors.iter().any(|s| s == sector) => {
                    StepReason::SectorIn {
                        sectors: sectors.clone(),
                    }
                }
                StepCondition::WaiverPresent if waiver => StepReason::Waiver,
                _ => return None,
            };
            Some(StepPlan {
                hat: rule.hat,
                reason,
                sla_days: rule.sla_days,
                financial: false,
            })
        })
        .collect();
    if waiver && !steps.iter().any(|s| s.reason == StepReason::Waiver) {
        steps.push(StepPlan {
            hat: Hat::Dsrsg,
            reason: StepReason::Waiver,
            sla_days: policy.financial_step_sla_days,
            financial: false,
        });
    }
    let band = policy
        .authority_bands
        .iter()
        .find(|b| amount_minor <= b.max_minor);
    let financial = match band {
        Some(b) => StepPlan {
            hat: b.hat,
            reason: StepReason::FinancialBand {
                max_minor: b.max_minor,
            },
            sla_days: policy.financial_step_sla_days,
            financial: true,
        },
        // Beyond every band only under a waiver: the waiver's authority, the dsrsg, decides.
        None if waiver => StepPlan {
            hat: Hat::Dsrsg,
            reason: StepReason::Waiver,
            sla_days: policy.financial_step_sla_days,
            financial: true,
        },
        None => return Err(PlanError::NoBandCovers { amount_minor }),
    };
    steps.push(financial);
    Ok(steps)
}

#[cfg(test)]
#[expect(
    clippy::inconsistent_digit_grouping,
    reason = "amounts are written units_cents, like money"
)]
mod tests {
    use super::*;

    fn hats(steps: &[StepPlan]) -> Vec<Hat> {
        steps.iter().map(|s| s.hat).collect()
    }

    #[test]
    fn a_reasons_kind_name_is_its_serde_tag() {
        for reason in [
            StepReason::Always,
            StepReason::AmountAtLeast { amount_minor: 1 },
            StepReason::SectorIn {
                sectors: vec!["wash".into()],
            },
            StepReason::Waiver,
            StepReason::FinancialBand { max_minor: 1 },
        ] {
            let tagged = serde_json::to_value(&reason).expect("serialises");
            assert_eq!(tagged["kind"], reason.kind_name());
        }
    }

    #[test]
    fn band_edges_pick_the_right_financial_hat() {
        let p = PoolPolicy::default_for(2);
        for (amount, expected) in [
            (14_999_99, Hat::HeadOfOffice),
            (15_000_00, Hat::HeadOfOffice),
            (15_000_01, Hat::Dsrsg),
            (50_000_00, Hat::Dsrsg),
        ] {
            let steps = plan_steps(&p, amount, "WSH", false).unwrap_or_default();
            assert_eq!(steps.last().map(|s| s.hat), Some(expected), "{amount}");
            assert!(steps.last().is_some_and(|s| s.financial));
        }
        assert_eq!(
            plan_steps(&p, 50_000_01, "WSH", false),
            Err(PlanError::NoBandCovers {
                amount_minor: 50_000_01
            })
        );
    }

    #[test]
    fn rc_clearance_starts_at_the_threshold() {
        let p = PoolPolicy::default_for(2);
        assert_eq!(
            hats(&plan_steps(&p, 24_999_99, "WSH", false).unwrap_or_default()),
            [Hat::Hc, Hat::Dsrsg]
        );
        assert_eq!(
            hats(&plan_steps(&p, 25_000_00, "WSH", false).unwrap_or_default()),
            [Hat::Hc, Hat::Rc, Hat::Dsrsg]
        );
        assert_eq!(
            hats(&plan_steps(&p, 10_000_00, "WSH", false).unwrap_or_default()),
            [Hat::Hc, Hat::HeadOfOffice]
        );
    }

    #[test]
    fn a_waiver_adds_a_dsrsg_step_and_covers_amounts_beyond_the_bands() {
        let p = PoolPolicy::default_for(2);
        let steps = plan_steps(&p, 10_000_00, "WSH", true).unwrap_or_default();
        assert_eq!(hats(&steps), [Hat::Hc, Hat::Dsrsg, Hat::HeadOfOffice]);
        assert_eq!(steps[1].reason, StepReason::Waiver);
        let steps = plan_steps(&p, 60_000_00, "WSH", true).unwrap_or_default();
        assert_eq!(hats(&steps), [Hat::Hc, Hat::Rc, Hat::Dsrsg, Hat::Dsrsg]);
        assert!(steps[3].financial);
    }
}
