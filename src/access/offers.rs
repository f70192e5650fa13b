//! What a caller may do with one proposal now: the lifecycle's actions in its state, narrowed to the caller's
//! hats, the organisation they act for, the scope of their hats and separation of duties. The one answer for
//! a proposal's `allowed_actions`; it asks the same rules the use cases enforce (`may_decide_on`,
//! `grants_reach_adm1`, the payer who approved) rather than restating them.

use super::{Actor, Hat, HatGrant, grants_reach_adm1, may_decide_on, may_pay};
use crate::domain::lifecycle::{self, Action, Performer, State, TRANSITIONS};

/// The approval step open now on the proposal's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenStep {
    /// The hat that decides it.
    pub hat: Hat,
    /// The last step of the version: approving it is the final approval.
    pub last: bool,
}

/// The facts about a proposal that decide what a caller may do with it, read by the caller of [`offered_actions`].
#[derive(Debug, Clone, Copy)]
pub struct ProposalFacts<'a> {
    pub state: State,
    /// The submitting organisation.
    pub organization_id: &'a str,
    pub created_by: &'a str,
    pub submitted_by: Option<&'a str>,
    pub adm1_pcode: Option<&'a str>,
    /// The step waiting for a decision (only in `in_review`).
    pub open_step: Option<OpenStep>,
    /// The raising organisation of each open blocking flag (`None` for a system flag without one).
    pub open_blocking_flag_organizations: &'a [Option<String>],
    /// Everyone who decided an approval step of the proposal (any version): they never pay it.
    pub step_deciders: &'a [String],
}

/// The organisation a grant acts for: its organisation scope, else the holder's organisation.
fn acts_for<'a>(actor: &'a Actor, grant: &'a HatGrant) -> &'a str {
    grant
        .scope_organization_id
        .as_deref()
        .unwrap_or(actor.organization_id.as_str())
}

fn grants_of(actor: &Actor, hat: Hat) -> Vec<&HatGrant> {
    actor.grants.iter().filter(|g| g.hat == hat).collect()
}

/// Whether `actor`, wearing any hat they hold now, may perform `action` through the transition row
/// `performer` on a proposal with these facts.
fn may_perform(actor: &Actor, facts: &ProposalFacts<'_>, action: Action, performer: Performer) -> bool {
    match performer {
        // Rounds close by themselves; nobody is offered to close one.
        Performer::System => false,
        Performer::ApprovalStepDecider => {
            let Some(step) = facts.open_step else {
                return false;
            };
            let fits_step = match action {
                Action::ApproveStep => !step.last,
                Action::FinalApprove => step.last,
                _ => true,
            };
            fits_step
                && grants_reach_adm1(&grants_of(actor, step.hat), facts.adm1_pcode)
                && may_decide_on(
                    &actor.user_id,
                    &actor.organization_id,
                    facts.organization_id,
                    facts.created_by,
                    facts.submitted_by,
                )
        }
        Performer::Hat(name) => {
            let Ok(hat) = name.parse::<Hat>() else {
                return false;
            };
            let grants = grants_of(actor, hat);
            match hat {
                // A submitter acts for one organisation: only its own proposals.
                Hat::Submitter => grants.iter().any(|g| acts_for(actor, g) == facts.organization_id),
                // Ending the last blocking flag: every open blocking flag is the caller's organisation's.
                Hat::Consultee => grants.iter().any(|g| {
                    let org = acts_for(actor, g);
                    !facts.open_blocking_flag_organizations.is_empty()
                        && facts
                            .open_blocking_flag_organizations
                            .iter()
                            .all(|raiser| raiser.as_deref() == Some(org))
                }),
                // Overriding flags is a decision on the proposal: separation of duties as for approval steps.
                Hat::Hc if action == Action::OverrideFlags => {
                    !grants.is_empty()
                        && may_decide_on(
                            &actor.user_id,
                            &actor.organization_id,
                            facts.organization_id,
                            facts.created_by,
                            facts.submitted_by,
                        )
                }
                // Whoever decided an approval step of the proposal does not pay it.
                Hat::FinanceOfficer => !grants.is_empty() && may_pay(&actor.user_id, facts.step_deciders),
                _ => !grants.is_empty(),
            }
        }
    }
}

/// The actions `actor` may take on the proposal now, in the lifecycle table's order: a subset of
/// [`lifecycle::allowed_actions`] of its state.
pub fn offered_actions(actor: &Actor, facts: &ProposalFacts<'_>) -> Vec<Action> {
    lifecycle::allowed_actions(facts.state)
        .into_iter()
        .filter(|&action| {
            TRANSITIONS
                .iter()
                .filter(|t| t.from == Some(facts.state) && t.action == action)
                .any(|t| may_perform(actor, facts, action, t.performer))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(hat: Hat, scope_org: Option<&str>, scope_adm1: Option<&str>) -> HatGrant {
        HatGrant {
            id: format!("g-{hat}"),
            hat,
            scope_organization_id: scope_org.map(str::to_owned),
            scope_adm1: scope_adm1.map(str::to_owned),
            valid_from: None,
            valid_until: None,
            acting: false,
        }
    }

    fn actor(user: &str, org: &str, grants: Vec<HatGrant>) -> Actor {
        Actor {
            user_id: user.into(),
            username: user.into(),
            organization_id: org.into(),
            grants,
            acting_in: None,
            request_id: "r".into(),
            client_addr: None,
        }
    }

    fn facts(state: State) -> ProposalFacts<'static> {
        ProposalFacts {
            state,
            organization_id: "battalion",
            created_by: "cimic",
            submitted_by: Some("cimic"),
            adm1_pcode: Some("XY01"),
            open_step: None,
            open_blocking_flag_organizations: &[],
            step_deciders: &[],
        }
    }

    #[test]
    fn the_submitter_is_offered_its_own_proposals_actions_and_never_an_override() {
        let cimic = actor("cimic", "battalion", vec![grant(Hat::Submitter, None, None)]);
        assert_eq!(
            offered_actions(&cimic, &facts(State::Draft)),
            [Action::Edit, Action::Submit, Action::Withdraw]
        );
        assert_eq!(
            offered_actions(&cimic, &facts(State::Flagged)),
            [Action::Withdraw, Action::Revise]
        );
        assert_eq!(
            offered_actions(&cimic, &facts(State::InConsultation)),
            [Action::Withdraw]
        );
        let other_unit = actor("sapper", "engineers", vec![grant(Hat::Submitter, None, None)]);
        assert!(offered_actions(&other_unit, &facts(State::Draft)).is_empty());
        // A submitter hat scoped to the battalion acts for it, whatever the holder's own organisation.
        let seconded = actor(
            "liaison",
            "office",
            vec![grant(Hat::Submitter, Some("battalion"), None)],
        );
        assert_eq!(offered_actions(&seconded, &facts(State::Draft)).len(), 3);
    }

    #[test]
    fn step_decisions_respect_the_open_step_scope_and_separation_of_duties() {
        let mut review = facts(State::InReview);
        review.open_step = Some(OpenStep {
            hat: Hat::HeadOfOffice,
            last: true,
        });
        let north = actor(
            "hoo",
            "office",
            vec![grant(Hat::HeadOfOffice, None, Some("XY01"))],
        );
        let south = actor(
            "hoo2",
            "office",
            vec![grant(Hat::HeadOfOffice, None, Some("XY02"))],
        );
        let insider = actor("boss", "battalion", vec![grant(Hat::HeadOfOffice, None, None)]);
        let hc = actor("hc", "office", vec![grant(Hat::Hc, None, None)]);
        assert_eq!(
            offered_actions(&north, &review),
            [Action::FinalApprove, Action::ReturnForRevision, Action::Reject]
        );
        assert!(offered_actions(&south, &review).is_empty(), "out of scope");
        assert!(offered_actions(&insider, &review).is_empty(), "own organisation");
        assert!(
            offered_actions(&hc, &review).is_empty(),
            "not the open step's hat"
        );
        review.open_step = Some(OpenStep {
            hat: Hat::Hc,
            last: false,
        });
        assert_eq!(
            offered_actions(&hc, &review),
            [Action::ApproveStep, Action::ReturnForRevision, Action::Reject]
        );
    }

    #[test]
    fn flags_end_by_their_raiser_or_the_hc_and_rounds_close_by_themselves() {
        let raisers = [Some("unicef".to_owned())];
        let mut flagged = facts(State::Flagged);
        flagged.open_blocking_flag_organizations = &raisers;
        let unicef = actor("wash", "unicef", vec![grant(Hat::Consultee, None, None)]);
        let ocha = actor("ocha", "ocha", vec![grant(Hat::Consultee, None, None)]);
        let hc = actor("hc", "office", vec![grant(Hat::Hc, None, None)]);
        assert_eq!(offered_actions(&unicef, &flagged), [Action::EndLastFlag]);
        assert!(offered_actions(&ocha, &flagged).is_empty());
        assert_eq!(offered_actions(&hc, &flagged), [Action::OverrideFlags]);
        let hc_of_the_unit = actor("hc2", flagged.organization_id, vec![grant(Hat::Hc, None, None)]);
        assert!(
            offered_actions(&hc_of_the_unit, &flagged).is_empty(),
            "no override on one's own organisation's proposal"
        );
        let qip = actor("qip", "office", vec![grant(Hat::QipOfficer, None, None)]);
        assert!(offered_actions(&qip, &facts(State::InConsultation)).is_empty());
    }

    #[test]
    fn whoever_approved_does_not_pay() {
        let deciders = ["dsrsg".to_owned()];
        let mut approved = facts(State::Approved);
        approved.step_deciders = &deciders;
        let finance = actor("fo", "office", vec![grant(Hat::FinanceOfficer, None, None)]);
        let both = actor(
            "dsrsg",
            "office",
            vec![
                grant(Hat::FinanceOfficer, None, None),
                grant(Hat::Dsrsg, None, None),
            ],
        );
        assert_eq!(offered_actions(&finance, &approved), [Action::FirstDisbursement]);
        assert_eq!(offered_actions(&both, &approved), [Action::Cancel]);
    }

    #[test]
    fn offers_are_always_allowed_by_the_state() {
        let everything: Vec<HatGrant> = Hat::ALL.into_iter().map(|h| grant(h, None, None)).collect();
        let all_hats = actor("all", "office", everything);
        let raisers = [Some("office".to_owned())];
        for state in State::ALL {
            let mut f = facts(state);
            f.open_blocking_flag_organizations = &raisers;
            f.open_step = Some(OpenStep {
                hat: Hat::Dsrsg,
                last: false,
            });
            let offered = offered_actions(&all_hats, &f);
            let allowed = lifecycle::allowed_actions(state);
            assert!(
                offered.iter().all(|a| allowed.contains(a)),
                "{state}: {offered:?}"
            );
        }
    }
}
