//! The proposal lifecycle as data: its states, the actions on it, and the one table of transitions
//! saying which action leads from which state to which, performed by which hat. Handlers, the deadline
//! sweeper and the UI ask this module instead of encoding the state machine themselves.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being written by the submitter; not visible to consultees yet.
    Draft,
    /// Submitted; the humanitarian consultation round is open.
    InConsultation,
    /// The consultation round closed with at least one open blocking flag.
    Flagged,
    /// Going through the approval chain.
    InReview,
    /// Finally approved; waiting for the first disbursement.
    Approved,
    /// Money has been disbursed; the project is running.
    InImplementation,
    /// Completion accepted; waiting for closure.
    Completed,
    /// Closed after completion. Final.
    Closed,
    /// Withdrawn by the submitter before approval. Final.
    Withdrawn,
    /// Rejected in the approval chain. Final.
    Rejected,
    /// Cancelled after approval. Final.
    Cancelled,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 11] = [
        State::Draft,
        State::InConsultation,
        State::Flagged,
        State::InReview,
        State::Approved,
        State::InImplementation,
        State::Completed,
        State::Closed,
        State::Withdrawn,
        State::Rejected,
        State::Cancelled,
    ];

    /// The snake_case name used in the API and the database (same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Draft => "draft",
            State::InConsultation => "in_consultation",
            State::Flagged => "flagged",
            State::InReview => "in_review",
            State::Approved => "approved",
            State::InImplementation => "in_implementation",
            State::Completed => "completed",
            State::Closed => "closed",
            State::Withdrawn => "withdrawn",
            State::Rejected => "rejected",
            State::Cancelled => "cancelled",
        }
    }

    /// A final state: no transition leaves it.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Closed | State::Withdrawn | State::Rejected | State::Cancelled
        )
    }

    /// The IATI ActivityStatus code: 1 pipeline/identification, 2 implementation, 3 finalisation,
    /// 4 closed, 5 cancelled (withdrawn and rejected proposals never became activities, which IATI
    /// also reports as 5).
    pub fn iati_activity_status(self) -> u8 {
        match self {
            State::Draft | State::InConsultation | State::Flagged | State::InReview | State::Approved => 1,
            State::InImplementation => 2,
            State::Completed => 3,
            State::Closed => 4,
            State::Withdrawn | State::Rejected | State::Cancelled => 5,
        }
    }

    /// Still on its way to approval (draft, consultation, flags, review): nothing is committed yet,
    /// and the submitter may still withdraw. False for approved-and-after and for final states.
    pub fn is_before_approval(self) -> bool {
        matches!(
            self,
            State::Draft | State::InConsultation | State::Flagged | State::InReview
        )
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<State, UnknownName> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownName::new("proposal state", text, State::ALL.map(State::as_str).as_slice()))
    }
}

/// Reading the stored state (diesel's `deserialize_as`): an unknown name fails the query.
impl TryFrom<String> for State {
    type Error = UnknownName;

    fn try_from(text: String) -> Result<State, UnknownName> {
        text.parse()
    }
}

/// Writing the stored state (diesel's `serialize_as`).
impl From<State> for String {
    fn from(state: State) -> String {
        state.as_str().to_owned()
    }
}

/// Something done to a proposal: by a person in a hat, or by the service itself (a round closing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Start a new proposal.
    Create,
    /// Change a draft.
    Edit,
    /// Send the draft to humanitarian consultation.
    Submit,
    /// Take the proposal back before approval.
    Withdraw,
    /// Close the consultation round with no open blocking flag.
    CloseConsultation,
    /// Close the consultation round with an open blocking flag.
    FlagConsultation,
    /// The raising organisation withdrew or resolved the last blocking flag.
    EndLastFlag,
    /// The HC overrides the open blocking flags.
    OverrideFlags,
    /// Open a new version to answer the flags.
    Revise,
    /// Approve an approval step that is not the last.
    ApproveStep,
    /// Approve the last approval step.
    FinalApprove,
    /// Send the proposal back to the submitter from review.
    ReturnForRevision,
    /// Reject the proposal in review.
    Reject,
    /// Record the first disbursement, which starts implementation.
    FirstDisbursement,
    /// Record a further disbursement.
    Disburse,
    /// Accept the completion report.
    AcceptCompletion,
    /// Close a completed project.
    Close,
    /// Cancel an approved or running project.
    Cancel,
}

impl Action {
    /// Every action, in table order.
    pub const ALL: [Action; 18] = [
        Action::Create,
        Action::Edit,
        Action::Submit,
        Action::Withdraw,
        Action::CloseConsultation,
        Action::FlagConsultation,
        Action::EndLastFlag,
        Action::OverrideFlags,
        Action::Revise,
        Action::ApproveStep,
        Action::FinalApprove,
        Action::ReturnForRevision,
        Action::Reject,
        Action::FirstDisbursement,
        Action::Disburse,
        Action::AcceptCompletion,
        Action::Close,
        Action::Cancel,
    ];

    /// The snake_case name used in the API, audit log and messages (same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Edit => "edit",
            Action::Submit => "submit",
            Action::Withdraw => "withdraw",
            Action::CloseConsultation => "close_consultation",
            Action::FlagConsultation => "flag_consultation",
            Action::EndLastFlag => "end_last_flag",
            Action::OverrideFlags => "override_flags",
            Action::Revise => "revise",
            Action::ApproveStep => "approve_step",
            Action::FinalApprove => "final_approve",
            Action::ReturnForRevision => "return_for_revision",
            Action::Reject => "reject",
            Action::FirstDisbursement => "first_disbursement",
            Action::Disburse => "disburse",
            Action::AcceptCompletion => "accept_completion",
            Action::Close => "close",
            Action::Cancel => "cancel",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = UnknownName;

    fn from_str(text: &str) -> Result<Action, UnknownName> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or_else(|| UnknownName::new("action", text, Action::ALL.map(Action::as_str).as_slice()))
    }
}

/// A name that is not a known [`State`] or [`Action`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// What was being parsed: `"proposal state"` or `"action"`.
    pub kind: &'static str,
    /// The text that was given.
    pub given: String,
    /// The names that would have been accepted, comma-separated.
    pub expected: String,
}

impl UnknownName {
    fn new(kind: &'static str, given: &str, expected: &[&str]) -> UnknownName {
        UnknownName {
            kind,
            given: given.to_owned(),
            expected: expected.join(", "),
        }
    }
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a known {}; expected one of: {}",
            self.given, self.kind, self.expected
        )
    }
}

impl std::error::Error for UnknownName {}

/// The name of a hat (a role held in a context). A plain string so this module does not depend on the
/// access module; the names are listed in [`hat`].
pub type HatName = &'static str;

/// The hat names the transition table uses.
pub mod hat {
    use super::HatName;

    /// Writes and owns the proposal.
    pub const SUBMITTER: HatName = "submitter";
    /// The QIP secretariat.
    pub const QIP_OFFICER: HatName = "qip_officer";
    /// A humanitarian organisation consulted on the proposal.
    pub const CONSULTEE: HatName = "consultee";
    /// Humanitarian Coordinator.
    pub const HC: HatName = "hc";
    /// Resident Coordinator.
    pub const RC: HatName = "rc";
    /// Deputy Special Representative of the Secretary-General.
    pub const DSRSG: HatName = "dsrsg";
    /// Head of the field office.
    pub const HEAD_OF_OFFICE: HatName = "head_of_office";
    /// Records disbursements.
    pub const FINANCE_OFFICER: HatName = "finance_officer";

    /// Every hat name.
    pub const ALL: [HatName; 8] = [
        SUBMITTER,
        QIP_OFFICER,
        CONSULTEE,
        HC,
        RC,
        DSRSG,
        HEAD_OF_OFFICE,
        FINANCE_OFFICER,
    ];

    /// The hats an approval step may name (see [`super::Performer::ApprovalStepDecider`]).
    pub const APPROVAL_STEP_DECIDERS: [HatName; 4] = [HC, RC, HEAD_OF_OFFICE, DSRSG];
}

/// Who may perform a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Performer {
    /// Anyone wearing this hat for the proposal.
    Hat(HatName),
    /// The hat named by the current step of the proposal's approval snapshot (one of
    /// [`hat::APPROVAL_STEP_DECIDERS`]); which one depends on the snapshot, not on this table.
    ApprovalStepDecider,
    /// The service itself, never a person: a consultation round closes on its last answer or at its deadline
    /// (audited as the system, with the triggering event linked). Never offered to a caller.
    System,
}

/// One row of the state machine: `action` in `from` leads to `to`, performed by `performer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// The state the action applies in; `None` only for [`Action::Create`], which has no prior state.
    pub from: Option<State>,
    /// The action.
    pub action: Action,
    /// The state afterwards (may equal `from` for edits, intermediate approvals and disbursements).
    pub to: State,
    /// Who may perform it.
    pub performer: Performer,
}

const fn row(from: State, action: Action, to: State, performer: Performer) -> Transition {
    Transition {
        from: Some(from),
        action,
        to,
        performer,
    }
}

const SUBMITTER: Performer = Performer::Hat(hat::SUBMITTER);
const QIP_OFFICER: Performer = Performer::Hat(hat::QIP_OFFICER);
const CONSULTEE: Performer = Performer::Hat(hat::CONSULTEE);
const HC: Performer = Performer::Hat(hat::HC);
const DSRSG: Performer = Performer::Hat(hat::DSRSG);
const FINANCE_OFFICER: Performer = Performer::Hat(hat::FINANCE_OFFICER);
const STEP_DECIDER: Performer = Performer::ApprovalStepDecider;
const SYSTEM: Performer = Performer::System;

/// The whole state machine. Its order is the order [`allowed_actions`] reports in.
pub const TRANSITIONS: &[Transition] = &[
    Transition {
        from: None,
        action: Action::Create,
        to: State::Draft,
        performer: SUBMITTER,
    },
    row(State::Draft, Action::Edit, State::Draft, SUBMITTER),
    row(State::Draft, Action::Submit, State::InConsultation, SUBMITTER),
    row(State::Draft, Action::Withdraw, State::Withdrawn, SUBMITTER),
    row(
        State::InConsultation,
        Action::Withdraw,
        State::Withdrawn,
        SUBMITTER,
    ),
    row(State::Flagged, Action::Withdraw, State::Withdrawn, SUBMITTER),
    row(State::InReview, Action::Withdraw, State::Withdrawn, SUBMITTER),
    // A round closes by itself, on its last awaited answer or at its deadline.
    row(
        State::InConsultation,
        Action::CloseConsultation,
        State::InReview,
        SYSTEM,
    ),
    row(
        State::InConsultation,
        Action::FlagConsultation,
        State::Flagged,
        SYSTEM,
    ),
    row(State::Flagged, Action::EndLastFlag, State::InReview, CONSULTEE),
    row(State::Flagged, Action::OverrideFlags, State::InReview, HC),
    row(State::Flagged, Action::Revise, State::Draft, SUBMITTER),
    row(
        State::InReview,
        Action::ApproveStep,
        State::InReview,
        STEP_DECIDER,
    ),
    row(
        State::InReview,
        Action::FinalApprove,
        State::Approved,
        STEP_DECIDER,
    ),
    row(
        State::InReview,
        Action::ReturnForRevision,
        State::Draft,
        STEP_DECIDER,
    ),
    row(State::InReview, Action::Reject, State::Rejected, STEP_DECIDER),
    row(
        State::Approved,
        Action::FirstDisbursement,
        State::InImplementation,
        FINANCE_OFFICER,
    ),
    row(
        State::InImplementation,
        Action::Disburse,
        State::InImplementation,
        FINANCE_OFFICER,
    ),
    row(
        State::InImplementation,
        Action::AcceptCompletion,
        State::Completed,
        QIP_OFFICER,
    ),
    // The final tranche is paid once the completion report is accepted.
    row(
        State::Completed,
        Action::Disburse,
        State::Completed,
        FINANCE_OFFICER,
    ),
    row(State::Completed, Action::Close, State::Closed, QIP_OFFICER),
    row(State::Approved, Action::Cancel, State::Cancelled, DSRSG),
    row(State::InImplementation, Action::Cancel, State::Cancelled, DSRSG),
];

/// The Create row, checked at compile time: indexing a constant is evaluated by the compiler.
const INITIAL: &Transition = &TRANSITIONS[0];

/// The row creating a proposal (`None → Draft`).
pub fn initial() -> &'static Transition {
    INITIAL
}

/// The transition for `action` in state `from`, or why it is refused (with what is allowed instead).
pub fn transition(from: State, action: Action) -> Result<&'static Transition, TransitionError> {
    TRANSITIONS
        .iter()
        .find(|t| t.from == Some(from) && t.action == action)
        .ok_or_else(|| TransitionError {
            state: from,
            action,
            allowed: allowed_actions(from),
        })
}

/// The actions possible in `state`, in table order, without duplicates. Empty exactly for final states.
pub fn allowed_actions(state: State) -> Vec<Action> {
    let mut actions = Vec::new();
    for t in TRANSITIONS.iter().filter(|t| t.from == Some(state)) {
        if !actions.contains(&t.action) {
            actions.push(t.action);
        }
    }
    actions
}

/// An action that the table does not allow in the proposal's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionError {
    /// The proposal's state when the action was attempted.
    pub state: State,
    /// The refused action.
    pub action: Action,
    /// What is allowed in `state` instead (empty when it is final).
    pub allowed: Vec<Action>,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not allowed while the proposal is `{}`; allowed now: ",
            self.action, self.state
        )?;
        if self.allowed.is_empty() {
            return f.write_str("none: the proposal is in a final state");
        }
        let names: Vec<&str> = self.allowed.iter().map(|a| a.as_str()).collect();
        f.write_str(&names.join(", "))
    }
}

impl std::error::Error for TransitionError {}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use proptest::prelude::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::{Error as DeError, StrDeserializer};

    use super::*;

    fn states_reachable_from(start: State) -> BTreeSet<State> {
        let mut seen = BTreeSet::from([start]);
        let mut queue = vec![start];
        while let Some(state) = queue.pop() {
            for t in TRANSITIONS.iter().filter(|t| t.from == Some(state)) {
                if seen.insert(t.to) {
                    queue.push(t.to);
                }
            }
        }
        seen
    }

    #[test]
    fn the_stored_state_is_read_strictly() {
        for state in State::ALL {
            assert_eq!(State::try_from(state.as_str().to_owned()), Ok(state));
            assert_eq!(String::from(state), state.as_str());
        }
        let err = State::try_from("teleported".to_owned()).unwrap_err();
        assert_eq!(err.given, "teleported");
        assert!(State::try_from("Draft".to_owned()).is_err());
    }

    #[test]
    fn initial_is_the_only_row_without_a_from_state() {
        let first = initial();
        assert_eq!(
            (first.from, first.action, first.to),
            (None, Action::Create, State::Draft)
        );
        assert_eq!(first.performer, Performer::Hat(hat::SUBMITTER));
        assert_eq!(TRANSITIONS.iter().filter(|t| t.from.is_none()).count(), 1);
        assert!(
            TRANSITIONS
                .iter()
                .all(|t| (t.action == Action::Create) == t.from.is_none())
        );
    }

    #[test]
    fn terminal_states_have_no_way_out() {
        for state in State::ALL {
            let outgoing = TRANSITIONS.iter().filter(|t| t.from == Some(state)).count();
            assert_eq!(state.is_terminal(), outgoing == 0, "{state}");
            assert_eq!(state.is_terminal(), allowed_actions(state).is_empty(), "{state}");
        }
        let terminal: Vec<State> = State::ALL.into_iter().filter(|s| s.is_terminal()).collect();
        assert_eq!(
            terminal,
            [State::Closed, State::Withdrawn, State::Rejected, State::Cancelled]
        );
    }

    #[test]
    fn the_table_is_deterministic() {
        let mut seen = HashSet::new();
        for t in TRANSITIONS {
            assert!(
                seen.insert((t.from, t.action)),
                "duplicate row for {:?} {}",
                t.from,
                t.action
            );
        }
    }

    #[test]
    fn every_performer_is_a_known_hat_or_the_step_decider() {
        for t in TRANSITIONS {
            match t.performer {
                Performer::Hat(name) => assert!(hat::ALL.contains(&name), "{name}"),
                // Only the approval chain defers to the snapshot's current step.
                Performer::ApprovalStepDecider => assert_eq!(t.from, Some(State::InReview), "{t:?}"),
                // Only rounds close by themselves.
                Performer::System => assert_eq!(t.from, Some(State::InConsultation), "{t:?}"),
            }
        }
        let review_decisions = [
            Action::ApproveStep,
            Action::FinalApprove,
            Action::ReturnForRevision,
            Action::Reject,
        ];
        for action in review_decisions {
            let t = transition(State::InReview, action).expect("review decision");
            assert_eq!(t.performer, Performer::ApprovalStepDecider, "{action}");
        }
    }

    #[test]
    fn table_rows_match_the_specification() {
        use Action as A;
        use State as S;
        let wears = |name| Performer::Hat(name);
        let expected = [
            (S::Draft, A::Edit, S::Draft, wears(hat::SUBMITTER)),
            (S::Draft, A::Submit, S::InConsultation, wears(hat::SUBMITTER)),
            (S::Draft, A::Withdraw, S::Withdrawn, wears(hat::SUBMITTER)),
            (
                S::InConsultation,
                A::Withdraw,
                S::Withdrawn,
                wears(hat::SUBMITTER),
            ),
            (S::Flagged, A::Withdraw, S::Withdrawn, wears(hat::SUBMITTER)),
            (S::InReview, A::Withdraw, S::Withdrawn, wears(hat::SUBMITTER)),
            (
                S::InConsultation,
                A::CloseConsultation,
                S::InReview,
                Performer::System,
            ),
            (
                S::InConsultation,
                A::FlagConsultation,
                S::Flagged,
                Performer::System,
            ),
            (S::Flagged, A::EndLastFlag, S::InReview, wears(hat::CONSULTEE)),
            (S::Flagged, A::OverrideFlags, S::InReview, wears(hat::HC)),
            (S::Flagged, A::Revise, S::Draft, wears(hat::SUBMITTER)),
            (
                S::InReview,
                A::ApproveStep,
                S::InReview,
                Performer::ApprovalStepDecider,
            ),
            (
                S::InReview,
                A::FinalApprove,
                S::Approved,
                Performer::ApprovalStepDecider,
            ),
            (
                S::InReview,
                A::ReturnForRevision,
                S::Draft,
                Performer::ApprovalStepDecider,
            ),
            (
                S::InReview,
                A::Reject,
                S::Rejected,
                Performer::ApprovalStepDecider,
            ),
            (
                S::Approved,
                A::FirstDisbursement,
                S::InImplementation,
                wears(hat::FINANCE_OFFICER),
            ),
            (
                S::InImplementation,
                A::Disburse,
                S::InImplementation,
                wears(hat::FINANCE_OFFICER),
            ),
            (
                S::InImplementation,
                A::AcceptCompletion,
                S::Completed,
                wears(hat::QIP_OFFICER),
            ),
            (
                S::Completed,
                A::Disburse,
                S::Completed,
                wears(hat::FINANCE_OFFICER),
            ),
            (S::Completed, A::Close, S::Closed, wears(hat::QIP_OFFICER)),
            (S::Approved, A::Cancel, S::Cancelled, wears(hat::DSRSG)),
            (S::InImplementation, A::Cancel, S::Cancelled, wears(hat::DSRSG)),
        ];
        assert_eq!(TRANSITIONS.len(), expected.len() + 1);
        for (from, action, to, performer) in expected {
            let t = transition(from, action).expect("row exists");
            assert_eq!((t.to, t.performer), (to, performer), "{from} {action}");
        }
        assert!(transition(State::Draft, Action::Create).is_err());
    }

    #[test]
    fn iati_status_is_total_and_in_range() {
        for state in State::ALL {
            assert!((1..=5).contains(&state.iati_activity_status()), "{state}");
        }
        let codes: Vec<u8> = State::ALL.map(State::iati_activity_status).to_vec();
        assert_eq!(codes, [1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 5]);
    }

    #[test]
    fn before_approval_is_the_open_pipeline() {
        let before: Vec<State> = State::ALL
            .into_iter()
            .filter(|s| s.is_before_approval())
            .collect();
        assert_eq!(
            before,
            [
                State::Draft,
                State::InConsultation,
                State::Flagged,
                State::InReview
            ]
        );
        // The submitter may withdraw exactly while the proposal is before approval.
        for state in State::ALL {
            assert_eq!(
                transition(state, Action::Withdraw).is_ok(),
                state.is_before_approval(),
                "{state}"
            );
        }
    }

    #[test]
    fn every_open_state_has_a_way_out_and_every_state_is_reachable() {
        for state in State::ALL.into_iter().filter(|s| !s.is_terminal()) {
            let leaves = TRANSITIONS.iter().any(|t| t.from == Some(state) && t.to != state);
            assert!(leaves, "{state} can only loop");
            // And a final state can always still be reached from it.
            assert!(
                states_reachable_from(state).iter().any(|s| s.is_terminal()),
                "{state}"
            );
        }
        let reachable = states_reachable_from(State::Draft);
        assert_eq!(reachable, State::ALL.into_iter().collect());
    }

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
            assert_eq!(state.to_string(), state.as_str());
            let de: StrDeserializer<'_, DeError> = state.as_str().into_deserializer();
            assert_eq!(State::deserialize(de), Ok(state));
        }
        for action in Action::ALL {
            assert_eq!(action.as_str().parse::<Action>(), Ok(action));
            assert_eq!(action.to_string(), action.as_str());
            let de: StrDeserializer<'_, DeError> = action.as_str().into_deserializer();
            assert_eq!(Action::deserialize(de), Ok(action));
        }
        let unique_states: HashSet<&str> = State::ALL.map(State::as_str).into_iter().collect();
        let unique_actions: HashSet<&str> = Action::ALL.map(Action::as_str).into_iter().collect();
        assert_eq!(
            (unique_states.len(), unique_actions.len()),
            (State::ALL.len(), Action::ALL.len())
        );
    }

    #[test]
    fn unknown_names_are_refused_with_the_alternatives() {
        let error = "In_Review".parse::<State>().expect_err("case-sensitive");
        assert_eq!(error.kind, "proposal state");
        assert!(
            error
                .to_string()
                .starts_with("`In_Review` is not a known proposal state; expected one of: draft, ")
        );
        assert!("approve".parse::<Action>().is_err());
        assert!("".parse::<Action>().is_err());
    }

    /// The enum names an OpenAPI schema lists (empty if it is not a plain string enum).
    fn schema_names(schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>) -> Vec<String> {
        use utoipa::openapi::{RefOr, schema::Schema};
        match schema {
            RefOr::T(Schema::Object(object)) => object
                .enum_values
                .unwrap_or_default()
                .iter()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn schema_lists_the_snake_case_names() {
        let states = schema_names(<State as utoipa::PartialSchema>::schema());
        assert_eq!(states, State::ALL.map(State::as_str));
        let actions = schema_names(<Action as utoipa::PartialSchema>::schema());
        assert_eq!(actions, Action::ALL.map(Action::as_str));
    }

    #[test]
    fn refusals_explain_what_is_allowed() {
        let error = transition(State::InReview, Action::Submit).expect_err("not allowed");
        assert_eq!(
            error.to_string(),
            "`submit` is not allowed while the proposal is `in_review`; allowed now: \
             withdraw, approve_step, final_approve, return_for_revision, reject"
        );
        let error = transition(State::Closed, Action::Edit).expect_err("final");
        assert_eq!(error.allowed, Vec::<Action>::new());
        assert_eq!(
            error.to_string(),
            "`edit` is not allowed while the proposal is `closed`; allowed now: none: the proposal is in a final state"
        );
    }

    #[test]
    fn allowed_actions_are_in_table_order() {
        assert_eq!(
            allowed_actions(State::Draft),
            [Action::Edit, Action::Submit, Action::Withdraw]
        );
        assert_eq!(
            allowed_actions(State::InImplementation),
            [Action::Disburse, Action::AcceptCompletion, Action::Cancel]
        );
    }

    fn any_state() -> impl Strategy<Value = State> {
        proptest::sample::select(State::ALL.to_vec())
    }

    fn any_action() -> impl Strategy<Value = Action> {
        proptest::sample::select(Action::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn random_walks_stay_in_the_table_and_final_states_stick(
            actions in proptest::collection::vec(any_action(), 0..60),
        ) {
            let targets: HashSet<State> = TRANSITIONS.iter().map(|t| t.to).collect();
            let mut state = initial().to;
            for action in actions {
                let before = state;
                if let Ok(t) = transition(state, action) {
                    prop_assert_eq!(t.from, Some(before));
                    state = t.to;
                }
                prop_assert!(targets.contains(&state), "{}", state);
                if before.is_terminal() {
                    prop_assert_eq!(state, before);
                }
            }
        }

        #[test]
        fn allowed_actions_are_exactly_the_accepted_ones(state in any_state()) {
            let accepted: Vec<Action> =
                Action::ALL.into_iter().filter(|&a| transition(state, a).is_ok()).collect();
            let allowed = allowed_actions(state);
            let unique: HashSet<Action> = allowed.iter().copied().collect();
            prop_assert_eq!(unique.len(), allowed.len());
            prop_assert_eq!(unique, accepted.into_iter().collect::<HashSet<_>>());
        }

        #[test]
        fn refusals_carry_the_allowed_actions(state in any_state(), action in any_action()) {
            match transition(state, action) {
                Ok(t) => prop_assert_eq!((t.from, t.action), (Some(state), action)),
                Err(error) => {
                    prop_assert_eq!(&error.allowed, &allowed_actions(state));
                    prop_assert!(!error.allowed.contains(&action));
                    let prefix = format!("`{}` is not allowed while the proposal is `{}`", action, state);
                    prop_assert!(error.to_string().starts_with(&prefix));
                }
            }
        }
    }
}
