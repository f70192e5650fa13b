//! Tranches (DESIGN.md §5): the schedule made at approval from the pool's tranche plan (the last tranche
//! absorbs rounding, so the sum is the commitment exactly), and when and how much of a tranche is payable.

use serde::{Deserialize, Serialize};

use super::money::split_by_percent;
use super::pool_policy::{TrancheCondition, TrancheRule};

/// When a tranche may be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayCondition {
    OnApproval,
    OnProgressReportAccepted,
    OnCompletionReportAccepted,
    /// Reimbursement mode (the unit implements itself): pay up to accepted reports' expenditure.
    AgainstAcceptedReports,
}

impl From<TrancheCondition> for PayCondition {
    fn from(c: TrancheCondition) -> Self {
        match c {
            TrancheCondition::OnApproval => PayCondition::OnApproval,
            TrancheCondition::OnProgressReportAccepted => PayCondition::OnProgressReportAccepted,
            TrancheCondition::OnCompletionReportAccepted => PayCondition::OnCompletionReportAccepted,
        }
    }
}

impl PayCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            PayCondition::OnApproval => "on_approval",
            PayCondition::OnProgressReportAccepted => "on_progress_report_accepted",
            PayCondition::OnCompletionReportAccepted => "on_completion_report_accepted",
            PayCondition::AgainstAcceptedReports => "against_accepted_reports",
        }
    }

    pub fn parse(s: &str) -> Option<PayCondition> {
        [
            PayCondition::OnApproval,
            PayCondition::OnProgressReportAccepted,
            PayCondition::OnCompletionReportAccepted,
            PayCondition::AgainstAcceptedReports,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

// Stored as its name: on the money path an unknown condition fails the query; it never becomes "payable on
// approval".
super::status::stored_name!(PayCondition, "tranche pay condition", PayCondition::parse);

/// One planned tranche: percent, amount in minor units, condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedTranche {
    pub percent: u32,
    pub amount_minor: i64,
    pub condition: PayCondition,
}

/// The schedule for a commitment of `total_minor`. Reimbursement mode is one tranche paid against reports.
pub fn schedule(total_minor: i64, plan: &[TrancheRule], reimbursement: bool) -> Vec<PlannedTranche> {
    if reimbursement {
        return vec![PlannedTranche {
            percent: 100,
            amount_minor: total_minor,
            condition: PayCondition::AgainstAcceptedReports,
        }];
    }
    let percents: Vec<u32> = plan.iter().map(|t| t.percent).collect();
    match split_by_percent(total_minor, &percents) {
        Ok(parts) => plan
            .iter()
            .zip(parts)
            .map(|(rule, amount)| PlannedTranche {
                percent: rule.percent,
                amount_minor: amount,
                condition: rule.condition.into(),
            })
            .collect(),
        Err(_) => vec![PlannedTranche {
            percent: 100,
            amount_minor: total_minor,
            condition: PayCondition::OnApproval,
        }],
    }
}

/// What the proposal's history says about tranche conditions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PayFacts {
    /// Approved and not cancelled or closed.
    pub payable_state: bool,
    pub progress_report_accepted: bool,
    pub completion_report_accepted: bool,
    /// The highest expenditure-to-date of accepted reports.
    pub accepted_expenditure_minor: i64,
    /// Paid so far on the whole proposal.
    pub paid_total_minor: i64,
}

/// How much of a tranche can be paid now (0 when its condition does not hold).
pub fn payable_now(condition: PayCondition, amount_minor: i64, paid_minor: i64, facts: &PayFacts) -> i64 {
    if !facts.payable_state {
        return 0;
    }
    let remaining = (amount_minor - paid_minor).max(0);
    match condition {
        PayCondition::OnApproval => remaining,
        PayCondition::OnProgressReportAccepted
            if facts.progress_report_accepted || facts.completion_report_accepted =>
        {
            remaining
        }
        PayCondition::OnCompletionReportAccepted if facts.completion_report_accepted => remaining,
        PayCondition::AgainstAcceptedReports => {
            remaining.min((facts.accepted_expenditure_minor - facts.paid_total_minor).max(0))
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn default_plan() -> Vec<TrancheRule> {
        vec![
            TrancheRule {
                percent: 60,
                condition: TrancheCondition::OnApproval,
            },
            TrancheRule {
                percent: 40,
                condition: TrancheCondition::OnCompletionReportAccepted,
            },
        ]
    }

    #[test]
    fn sixty_forty_with_the_last_absorbing_rounding() {
        let s = schedule(1_001, &default_plan(), false);
        assert_eq!(s.iter().map(|t| t.amount_minor).collect::<Vec<_>>(), [600, 401]);
        assert_eq!(s[1].condition, PayCondition::OnCompletionReportAccepted);
    }

    #[test]
    fn conditions_gate_payment() {
        let facts = PayFacts {
            payable_state: true,
            ..PayFacts::default()
        };
        assert_eq!(payable_now(PayCondition::OnApproval, 600, 100, &facts), 500);
        assert_eq!(
            payable_now(PayCondition::OnCompletionReportAccepted, 400, 0, &facts),
            0
        );
        let done = PayFacts {
            completion_report_accepted: true,
            ..facts
        };
        assert_eq!(
            payable_now(PayCondition::OnCompletionReportAccepted, 400, 0, &done),
            400
        );
        let reimb = PayFacts {
            accepted_expenditure_minor: 300,
            paid_total_minor: 100,
            ..facts
        };
        assert_eq!(
            payable_now(PayCondition::AgainstAcceptedReports, 1_000, 100, &reimb),
            200
        );
        assert_eq!(
            payable_now(PayCondition::OnApproval, 600, 0, &PayFacts::default()),
            0
        );
    }

    proptest! {
        #[test]
        fn a_schedule_sums_to_the_commitment(total in 0i64..10_000_000_000, a in 1u32..99) {
            let plan = vec![
                TrancheRule { percent: a, condition: TrancheCondition::OnApproval },
                TrancheRule { percent: 100 - a, condition: TrancheCondition::OnCompletionReportAccepted },
            ];
            let s = schedule(total, &plan, false);
            prop_assert_eq!(s.iter().map(|t| t.amount_minor).sum::<i64>(), total);
        }
    }
}
