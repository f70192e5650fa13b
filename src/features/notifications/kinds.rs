//! Which audit actions are worth telling someone about, and as what kind of notification. Pure: no I/O.
//! Matched on the audit action strings (DESIGN.md §7), so it keeps working whatever type carries them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a notification is about; the `type` of webhook payloads and the `kind` of feed items.
// Stored in the outbox and the feed by its name (`as_str`, also the serde name); reading an unknown stored name
// is an error (`UnknownStored`), never a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = NotificationKind)]
pub enum Kind {
    #[serde(rename = "consultation.requested")]
    ConsultationRequested,
    #[serde(rename = "consultation.deadline_soon")]
    ConsultationDeadlineSoon,
    #[serde(rename = "consultation.lapsed")]
    ConsultationLapsed,
    #[serde(rename = "flag.raised")]
    FlagRaised,
    #[serde(rename = "flag.withdrawn")]
    FlagWithdrawn,
    #[serde(rename = "flag.resolved")]
    FlagResolved,
    #[serde(rename = "flag.overridden")]
    FlagOverridden,
    #[serde(rename = "approval.step_awaiting_decision")]
    StepAwaitingDecision,
    #[serde(rename = "approval.step_decided")]
    StepDecided,
    #[serde(rename = "proposal.returned")]
    ProposalReturned,
    #[serde(rename = "proposal.rejected")]
    ProposalRejected,
    #[serde(rename = "proposal.approved")]
    ProposalApproved,
    #[serde(rename = "tranche.payable")]
    TranchePayable,
    #[serde(rename = "tranche.paid")]
    TranchePaid,
    #[serde(rename = "report.due")]
    ReportDue,
    #[serde(rename = "report.overdue")]
    ReportOverdue,
    #[serde(rename = "report.submitted")]
    ReportSubmitted,
    #[serde(rename = "report.accepted")]
    ReportAccepted,
    #[serde(rename = "report.returned")]
    ReportReturned,
    #[serde(rename = "proposal.cancelled")]
    ProposalCancelled,
    #[serde(rename = "proposal.closed")]
    ProposalClosed,
    #[serde(rename = "hat_grant.pending")]
    HatGrantPending,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [Kind] = &[
        Kind::ConsultationRequested,
        Kind::ConsultationDeadlineSoon,
        Kind::ConsultationLapsed,
        Kind::FlagRaised,
        Kind::FlagWithdrawn,
        Kind::FlagResolved,
        Kind::FlagOverridden,
        Kind::StepAwaitingDecision,
        Kind::StepDecided,
        Kind::ProposalReturned,
        Kind::ProposalRejected,
        Kind::ProposalApproved,
        Kind::TranchePayable,
        Kind::TranchePaid,
        Kind::ReportDue,
        Kind::ReportOverdue,
        Kind::ReportSubmitted,
        Kind::ReportAccepted,
        Kind::ReportReturned,
        Kind::ProposalCancelled,
        Kind::ProposalClosed,
        Kind::HatGrantPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ConsultationRequested => "consultation.requested",
            Kind::ConsultationDeadlineSoon => "consultation.deadline_soon",
            Kind::ConsultationLapsed => "consultation.lapsed",
            Kind::FlagRaised => "flag.raised",
            Kind::FlagWithdrawn => "flag.withdrawn",
            Kind::FlagResolved => "flag.resolved",
            Kind::FlagOverridden => "flag.overridden",
            Kind::StepAwaitingDecision => "approval.step_awaiting_decision",
            Kind::StepDecided => "approval.step_decided",
            Kind::ProposalReturned => "proposal.returned",
            Kind::ProposalRejected => "proposal.rejected",
            Kind::ProposalApproved => "proposal.approved",
            Kind::TranchePayable => "tranche.payable",
            Kind::TranchePaid => "tranche.paid",
            Kind::ReportDue => "report.due",
            Kind::ReportOverdue => "report.overdue",
            Kind::ReportSubmitted => "report.submitted",
            Kind::ReportAccepted => "report.accepted",
            Kind::ReportReturned => "report.returned",
            Kind::ProposalCancelled => "proposal.cancelled",
            Kind::ProposalClosed => "proposal.closed",
            Kind::HatGrantPending => "hat_grant.pending",
        }
    }

    /// A neutral one-line summary, safe for every recipient: never the text of a flag, note or comment.
    pub fn summary(self, reference: &str) -> String {
        match self {
            Kind::ConsultationRequested => format!("Your organisation is consulted on proposal {reference}."),
            Kind::ConsultationDeadlineSoon => {
                format!("The consultation on proposal {reference} closes within 24 hours.")
            }
            Kind::ConsultationLapsed => {
                format!("The consultation on proposal {reference} closed at its deadline.")
            }
            Kind::FlagRaised => format!("A concern was raised on proposal {reference}."),
            Kind::FlagWithdrawn => format!("A concern on proposal {reference} was withdrawn."),
            Kind::FlagResolved => format!("A concern on proposal {reference} was resolved."),
            Kind::FlagOverridden => format!("Concerns on proposal {reference} were overridden."),
            Kind::StepAwaitingDecision => format!("Proposal {reference} awaits your decision."),
            Kind::StepDecided => format!("An approval step on proposal {reference} was decided."),
            Kind::ProposalReturned => format!("Proposal {reference} was returned for revision."),
            Kind::ProposalRejected => format!("Proposal {reference} was rejected."),
            Kind::ProposalApproved => format!("Proposal {reference} was approved and its funds committed."),
            Kind::TranchePayable => format!("A tranche of proposal {reference} is payable."),
            Kind::TranchePaid => format!("A tranche of proposal {reference} was paid."),
            Kind::ReportDue => format!("A report on proposal {reference} is due."),
            Kind::ReportOverdue => format!("A report on proposal {reference} is overdue."),
            Kind::ReportSubmitted => format!("A report on proposal {reference} awaits acceptance."),
            Kind::ReportAccepted => format!("A report on proposal {reference} was accepted."),
            Kind::ReportReturned => format!("A report on proposal {reference} was returned."),
            Kind::ProposalCancelled => format!("Proposal {reference} was cancelled."),
            Kind::ProposalClosed => format!("Proposal {reference} was closed."),
            Kind::HatGrantPending => {
                "A grant of a privileged hat waits for a second administrator.".to_owned()
            }
        }
    }
}

// Stored as its name: an unknown name fails the query.
crate::domain::status::stored_name!(Kind, "notification kind", |text| Kind::ALL
    .iter()
    .copied()
    .find(|k| k.as_str() == text));

/// Whether an audit action may give rise to a notification at all (the cheap test `capture` makes first).
pub fn watched(action: &str) -> bool {
    matches!(
        action.split('.').next(),
        Some("consultation" | "flag" | "approval" | "implementation" | "report" | "proposal" | "hat")
    )
}

/// The notifications one audit event gives rise to (often none; an approval can both decide a step and open
/// the next one). `after` is the event's recorded after-state.
pub fn kinds_for(action: &str, outcome: &str, after: Option<&Value>) -> Vec<Kind> {
    use crate::domain::lifecycle::State;
    use crate::domain::status::Decision;
    use crate::features::audit::AuditAction as A;
    use crate::features::audit::Outcome;

    if outcome != Outcome::Success.as_str() {
        return Vec::new();
    }
    // An action that is not an `AuditAction` (none is recorded) gives no notification.
    let Ok(action) = action.parse::<A>() else {
        return Vec::new();
    };
    let field = |name: &str| after.and_then(|a| a.get(name)).and_then(Value::as_str);
    match action {
        A::ConsultationOpen | A::ConsultationAddConsultee => vec![Kind::ConsultationRequested],
        A::ConsultationLapse => vec![Kind::ConsultationLapsed],
        A::ConsultationRespond => {
            let raised = after
                .and_then(|a| a.get("flags"))
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            if raised {
                vec![Kind::FlagRaised]
            } else {
                Vec::new()
            }
        }
        A::FlagWithdraw => vec![Kind::FlagWithdrawn],
        A::FlagResolve => vec![Kind::FlagResolved],
        A::FlagOverride => vec![Kind::FlagOverridden],
        A::ApprovalStepsInstantiated => vec![Kind::StepAwaitingDecision],
        A::ApprovalDecide => {
            let decision = field("decision").and_then(|d| d.parse::<Decision>().ok());
            let state = field("state").and_then(|s| s.parse::<State>().ok());
            match (decision, state) {
                (Some(Decision::Approve), Some(State::Approved)) => {
                    vec![Kind::ProposalApproved, Kind::TranchePayable]
                }
                (Some(Decision::Approve), _) => vec![Kind::StepDecided, Kind::StepAwaitingDecision],
                (Some(Decision::Return), _) => vec![Kind::ProposalReturned],
                (Some(Decision::Reject), _) => vec![Kind::ProposalRejected],
                (None, _) => Vec::new(),
            }
        }
        A::ImplementationDisburse => vec![Kind::TranchePaid],
        A::ReportSubmit => vec![Kind::ReportSubmitted],
        A::ReportAccept => vec![Kind::ReportAccepted, Kind::TranchePayable],
        A::ReportReturn => vec![Kind::ReportReturned],
        A::ProposalCancel => vec![Kind::ProposalCancelled],
        A::ProposalClose => vec![Kind::ProposalClosed],
        A::HatGrantRequest => vec![Kind::HatGrantPending],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_events_of_the_issue_are_notified() {
        assert_eq!(
            kinds_for("consultation.open", "success", None),
            [Kind::ConsultationRequested]
        );
        assert_eq!(
            kinds_for("consultation.add_consultee", "success", None),
            [Kind::ConsultationRequested]
        );
        assert_eq!(
            kinds_for("flag.override", "success", None),
            [Kind::FlagOverridden]
        );
        assert_eq!(
            kinds_for(
                "approval.decide",
                "success",
                Some(&json!({"decision": "approve", "state": "approved"}))
            ),
            [Kind::ProposalApproved, Kind::TranchePayable]
        );
        assert_eq!(
            kinds_for(
                "approval.decide",
                "success",
                Some(&json!({"decision": "approve", "state": "in_review"}))
            ),
            [Kind::StepDecided, Kind::StepAwaitingDecision]
        );
        assert_eq!(
            kinds_for("approval.decide", "success", Some(&json!({"decision": "return"}))),
            [Kind::ProposalReturned]
        );
        assert_eq!(
            kinds_for("hat.grant_request", "success", None),
            [Kind::HatGrantPending]
        );
    }

    #[test]
    fn answers_without_flags_denials_and_reads_are_not_notified() {
        assert!(kinds_for("consultation.respond", "success", Some(&json!({"flags": []}))).is_empty());
        assert_eq!(
            kinds_for(
                "consultation.respond",
                "success",
                Some(&json!({"flags": [{"category": "x"}]}))
            ),
            [Kind::FlagRaised]
        );
        assert!(kinds_for("consultation.open", "denied", None).is_empty());
        assert!(kinds_for("audit.read", "success", None).is_empty());
        assert!(kinds_for("auth.login", "success", None).is_empty());
    }

    #[test]
    fn every_kind_round_trips_through_its_stored_name_and_serde() {
        for kind in Kind::ALL {
            assert_eq!(Kind::try_from(kind.as_str().to_owned()), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        assert!(Kind::try_from("report.lost".to_owned()).is_err());
    }

    #[test]
    fn summaries_name_the_reference_and_nothing_else() {
        for kind in [Kind::FlagRaised, Kind::FlagOverridden, Kind::ProposalReturned] {
            let s = kind.summary("QIP-2026-001");
            assert!(s.contains("QIP-2026-001"), "{s}");
        }
    }
}
