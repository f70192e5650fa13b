//! The access policy, in one place: the hats, the actions, the `(hat, action)` table, which route needs which
//! action, how the hat an action is taken in is resolved, and object-level scoping rules. No permission check
//! is written anywhere else. Pure: no actix, no diesel.

pub mod actor;
pub mod offers;
pub mod policy;
pub mod resolve;

pub use actor::Actor;
pub use offers::{OpenStep, ProposalFacts, offered_actions};
pub use policy::{Action, Requirement, requirement_for_route};
pub use resolve::{HatGrant, HatResolution, ResolvedHat, resolve_hat};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A role a user holds; every action is taken in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Hat {
    Submitter,
    QipOfficer,
    Consultee,
    Hc,
    Rc,
    Dsrsg,
    HeadOfOffice,
    FinanceOfficer,
    Auditor,
    Admin,
}

impl Hat {
    pub const ALL: [Hat; 10] = [
        Hat::Submitter,
        Hat::QipOfficer,
        Hat::Consultee,
        Hat::Hc,
        Hat::Rc,
        Hat::Dsrsg,
        Hat::HeadOfOffice,
        Hat::FinanceOfficer,
        Hat::Auditor,
        Hat::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Hat::Submitter => "submitter",
            Hat::QipOfficer => "qip_officer",
            Hat::Consultee => "consultee",
            Hat::Hc => "hc",
            Hat::Rc => "rc",
            Hat::Dsrsg => "dsrsg",
            Hat::HeadOfOffice => "head_of_office",
            Hat::FinanceOfficer => "finance_officer",
            Hat::Auditor => "auditor",
            Hat::Admin => "admin",
        }
    }

    /// Hats whose grant takes effect only when a second administrator confirms it (DESIGN.md §12): power over
    /// people, money and decisions.
    pub fn needs_second_administrator(self) -> bool {
        matches!(
            self,
            Hat::Admin | Hat::FinanceOfficer | Hat::Dsrsg | Hat::Hc | Hat::Rc | Hat::HeadOfOffice
        )
    }

    /// Hats that may read confidential consultation notes (DESIGN.md §3).
    pub fn sees_confidential_notes(self) -> bool {
        matches!(self, Hat::Consultee | Hat::Hc | Hat::QipOfficer)
    }
}

impl fmt::Display for Hat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Hat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Hat::ALL
            .into_iter()
            .find(|h| h.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not a hat; hats are {}", hat_list(&Hat::ALL)))
    }
}

// Stored as its name: a hat this code does not know fails the query, so a grant or request holding one is an
// error (a 500 with the cause logged), never skipped.
crate::domain::status::stored_name!(Hat, "hat", |text| Hat::ALL
    .into_iter()
    .find(|h| h.as_str() == text));

/// `a, b, c` for messages.
pub fn hat_list(hats: &[Hat]) -> String {
    hats.iter().map(|h| h.as_str()).collect::<Vec<_>>().join(", ")
}

/// Whether the caller may read the confidential notes on a proposal submitted by `submitting_org`: the hat
/// they act in must be one that reads notes (DESIGN.md §3), AND they must not belong to the submitting
/// organisation — neither as a member nor through a hat scoped to it. A battalion officer who also holds `hc`
/// or a `consultee` hat still never reads what was written about their battalion's proposal in confidence.
/// The one rule for every read that can carry a note.
pub fn may_read_confidential_notes(actor: &Actor, submitting_org: &str) -> bool {
    actor.hat().is_some_and(Hat::sees_confidential_notes) && !belongs_to_organization(actor, submitting_org)
}

/// A member of `org`, or holding any hat scoped to act for it.
fn belongs_to_organization(actor: &Actor, org: &str) -> bool {
    actor.organization_id == org
        || actor
            .grants
            .iter()
            .any(|g| g.scope_organization_id.as_deref() == Some(org))
}

#[cfg(test)]
mod confidential_note_tests {
    use super::*;

    fn actor(org: &str, hat: Option<Hat>, scoped_to: Option<&str>) -> Actor {
        let grant = |hat: Hat| HatGrant {
            id: "g".into(),
            hat,
            scope_organization_id: scoped_to.map(str::to_owned),
            scope_adm1: None,
            valid_from: None,
            valid_until: None,
            acting: false,
        };
        let grants: Vec<HatGrant> = hat.into_iter().map(grant).collect();
        Actor {
            user_id: "u".into(),
            username: "u".into(),
            organization_id: org.into(),
            acting_in: hat.map(|h| ResolvedHat {
                hat: h,
                grants: grants.clone(),
            }),
            grants,
            request_id: "r".into(),
            client_addr: None,
        }
    }

    #[test]
    fn reading_hats_of_another_organisation_read_notes() {
        for hat in [Hat::Hc, Hat::Consultee, Hat::QipOfficer] {
            assert!(
                may_read_confidential_notes(&actor("ocha", Some(hat), None), "battalion"),
                "{hat}"
            );
        }
    }

    #[test]
    fn the_submitting_organisation_never_reads_notes_whatever_its_hats() {
        for hat in Hat::ALL {
            assert!(
                !may_read_confidential_notes(&actor("battalion", Some(hat), None), "battalion"),
                "{hat}"
            );
            // A hat scoped to act for the submitting organisation counts as belonging to it.
            assert!(
                !may_read_confidential_notes(&actor("ocha", Some(hat), Some("battalion")), "battalion"),
                "{hat} scoped to the submitter"
            );
        }
    }

    #[test]
    fn other_hats_and_no_hat_read_no_notes() {
        for hat in Hat::ALL.into_iter().filter(|h| !h.sees_confidential_notes()) {
            assert!(
                !may_read_confidential_notes(&actor("ocha", Some(hat), None), "battalion"),
                "{hat}"
            );
        }
        assert!(!may_read_confidential_notes(
            &actor("ocha", None, None),
            "battalion"
        ));
    }
}

/// Entity types whose audit events an `admin` may read (their own domain); auditors read everything.
pub const ADMIN_AUDIT_ENTITY_TYPES: [&str; 5] =
    ["organization", "user", "hat", "hat_grant_request", "session"];

/// Which audit events the caller may read in `hat`: `None` = all; `Some(types)` = only these entity types.
pub fn audit_entity_scope(hat: Hat) -> Option<&'static [&'static str]> {
    match hat {
        Hat::Admin => Some(&ADMIN_AUDIT_ENTITY_TYPES),
        _ => None,
    }
}

/// Separation of duties for administration: nobody changes their own hats.
pub fn may_change_hats_of(actor_user_id: &str, target_user_id: &str) -> Result<(), &'static str> {
    if actor_user_id == target_user_id {
        Err("An administrator cannot grant or revoke their own hats; ask another administrator.")
    } else {
        Ok(())
    }
}

/// Four-eyes on power: a pending grant of a privileged hat is confirmed by an administrator who is neither the
/// one who asked for it nor the one who would hold it. (Confirming from the server's console is the other way,
/// for a mission with one administrator; it does not pass through here.)
pub fn may_confirm_hat_grant(
    confirmer_user_id: &str,
    requested_by: &str,
    grantee_user_id: &str,
) -> Result<(), &'static str> {
    if confirmer_user_id == requested_by {
        Err("You asked for this grant; a second administrator must confirm it.")
    } else if confirmer_user_id == grantee_user_id {
        Err("This grant is for you; an administrator other than you and the requester must confirm it.")
    } else {
        Ok(())
    }
}

/// Dual control reaches the password too: a privileged grant asked for by the administrator who issued the
/// setup token the grantee signs in with (the one that set the current password, or one still waiting to be
/// used) would let that administrator alone hold the power — they could have used the token themselves. So such
/// a grant is not confirmed over the API until an administrator other than the requester has issued a fresh
/// token (a reset) and the person has set their password with it. `token_issuers` are the administrators who
/// issued those tokens (console-issued ones are not listed: console access is full control anyway).
///
/// Together with a reset suspending the privileged hats of the account it resets (they go back to pending
/// requests by the resetting administrator), a privileged hat is effective only when two administrators took
/// part: the one who asked for it and one who did not issue the holder's password token — or the console.
pub fn may_confirm_given_password_origin<'a>(
    requested_by: &str,
    token_issuers: impl IntoIterator<Item = &'a str>,
) -> Result<(), &'static str> {
    if token_issuers.into_iter().any(|issuer| issuer == requested_by) {
        Err(
            "The grantee's password was set (or is about to be set) with a setup token issued by the \
             administrator who asked for this grant, who could have used it themselves. Reset the grantee's \
             password yourself, hand the new setup token to the person, and confirm once they have set their \
             password with it.",
        )
    } else {
        Ok(())
    }
}

/// Which proposals a caller may see, as one rule used for single reads and for list queries alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalScope {
    /// Every proposal, drafts included (the QIP secretariat, auditors).
    All,
    /// Only this organisation's proposals, in any state (a submitter).
    Organization(String),
    /// Every proposal that has left draft (consultees, deciders, finance).
    Submitted,
}

impl ProposalScope {
    /// The scope of the hat the caller acts in; `acting_org` is the organisation the hat acts for.
    pub fn for_hat(hat: Hat, acting_org: &str) -> ProposalScope {
        match hat {
            Hat::QipOfficer | Hat::Auditor => ProposalScope::All,
            Hat::Submitter => ProposalScope::Organization(acting_org.to_owned()),
            _ => ProposalScope::Submitted,
        }
    }

    /// Whether a proposal of `organization_id` in state `state` is visible. Invisible ones are answered
    /// with 404, so their existence does not leak.
    pub fn admits(&self, organization_id: &str, is_draft: bool) -> bool {
        match self {
            ProposalScope::All => true,
            ProposalScope::Organization(org) => org == organization_id,
            ProposalScope::Submitted => !is_draft,
        }
    }
}

/// The organisation a caller acts for in `hat`: the hat's organisation scope when it has one, else the
/// caller's own organisation.
pub fn acting_organization(actor: &Actor) -> String {
    actor
        .acting_in
        .as_ref()
        .and_then(|r| r.grants.iter().find_map(|g| g.scope_organization_id.clone()))
        .unwrap_or_else(|| actor.organization_id.clone())
}

/// Separation of duties for paying: whoever decided an approval step of a proposal (any version) never pays it.
/// One rule for refusing a payment and for not offering it.
pub fn may_pay(payer_user_id: &str, step_deciders: &[String]) -> bool {
    !step_deciders.iter().any(|d| d == payer_user_id)
}

/// Separation of duties for deciding (DESIGN.md §4): nobody decides on a proposal that they or their
/// organisation submitted. One rule for refusing a decision and for not offering it as a task.
pub fn may_decide_on(
    decider_user_id: &str,
    decider_org: &str,
    proposal_org: &str,
    created_by: &str,
    submitted_by: Option<&str>,
) -> bool {
    decider_org != proposal_org && decider_user_id != created_by && submitted_by != Some(decider_user_id)
}

/// Multi-hatted decisions are explicit (DESIGN.md §4): deciding a step needs an acknowledgement when the same
/// person already decided another step of the *same proposal version* (in another hat, as the DSRSG who is
/// also HC and RC does). Steps of an earlier version do not count: the HC who returned version 1 and now
/// clears version 2 wears the same hat on a new version. `decided` lists, for every step of the proposal, who
/// decided it (if anyone) and the version it belongs to.
pub fn needs_multi_hat_acknowledgement<'a>(
    decider_user_id: &str,
    version_number: i32,
    decided: impl IntoIterator<Item = (Option<&'a str>, i32)>,
) -> bool {
    decided
        .into_iter()
        .any(|(by, version)| version == version_number && by == Some(decider_user_id))
}

/// Whether grants of one hat reach a proposal in `adm1`: any unscoped grant does; scoped ones must name it.
pub fn grants_reach_adm1(grants: &[&HatGrant], adm1: Option<&str>) -> bool {
    grants
        .iter()
        .any(|g| g.scope_adm1.is_none() || g.scope_adm1.as_deref() == adm1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(scope: Option<&str>) -> HatGrant {
        HatGrant {
            id: "g".into(),
            hat: Hat::HeadOfOffice,
            scope_organization_id: None,
            scope_adm1: scope.map(str::to_owned),
            valid_from: None,
            valid_until: None,
            acting: false,
        }
    }

    #[test]
    fn exactly_the_powerful_hats_need_a_second_administrator() {
        let privileged: Vec<Hat> = Hat::ALL
            .into_iter()
            .filter(|h| h.needs_second_administrator())
            .collect();
        assert_eq!(
            privileged,
            [
                Hat::Hc,
                Hat::Rc,
                Hat::Dsrsg,
                Hat::HeadOfOffice,
                Hat::FinanceOfficer,
                Hat::Admin
            ]
        );
    }

    #[test]
    fn a_grant_is_confirmed_by_a_third_person_only() {
        assert!(may_confirm_hat_grant("c", "a", "b").is_ok());
        assert!(may_confirm_hat_grant("a", "a", "b").is_err(), "the requester");
        assert!(may_confirm_hat_grant("b", "a", "b").is_err(), "the grantee");
        assert!(may_confirm_hat_grant("a", "a", "a").is_err(), "both");
    }

    #[test]
    fn the_requester_of_a_grant_must_not_hold_the_grantees_password_token() {
        assert!(
            may_confirm_given_password_origin("a", ["b"]).is_ok(),
            "another admin issued it"
        );
        assert!(
            may_confirm_given_password_origin("a", []).is_ok(),
            "no token: console or not set"
        );
        assert!(
            may_confirm_given_password_origin("a", ["a"]).is_err(),
            "the requester issued it"
        );
        assert!(
            may_confirm_given_password_origin("a", ["b", "a"]).is_err(),
            "a live token of the requester could still replace the password"
        );
    }

    #[test]
    fn nobody_changes_their_own_hats() {
        assert!(may_change_hats_of("a", "a").is_err());
        assert!(may_change_hats_of("a", "b").is_ok());
    }

    #[test]
    fn nobody_decides_on_their_own_organisations_proposal() {
        assert!(may_decide_on("u1", "org-a", "org-b", "u2", Some("u3")));
        assert!(
            !may_decide_on("u1", "org-b", "org-b", "u2", Some("u3")),
            "same organisation"
        );
        assert!(!may_decide_on("u1", "org-a", "org-b", "u1", None), "drafted it");
        assert!(
            !may_decide_on("u1", "org-a", "org-b", "u2", Some("u1")),
            "submitted it"
        );
    }

    #[test]
    fn only_another_step_of_the_same_version_needs_an_acknowledgement() {
        // The HC returned version 1 and clears version 2: the same hat on a new version.
        assert!(!needs_multi_hat_acknowledgement(
            "hc",
            2,
            [(Some("hc"), 1), (None, 2)]
        ));
        // The DSRSG cleared as HC and now decides as RC on the same version.
        assert!(needs_multi_hat_acknowledgement(
            "dsrsg",
            2,
            [(Some("dsrsg"), 2), (None, 2)]
        ));
        // Somebody else's decisions never count.
        assert!(!needs_multi_hat_acknowledgement(
            "rc",
            1,
            [(Some("hc"), 1), (None, 1)]
        ));
        assert!(!needs_multi_hat_acknowledgement("rc", 1, []));
    }

    #[test]
    fn scoped_grants_reach_only_their_area() {
        let north = grant(Some("XY01"));
        let anywhere = grant(None);
        assert!(grants_reach_adm1(&[&north], Some("XY01")));
        assert!(!grants_reach_adm1(&[&north], Some("XY02")));
        assert!(grants_reach_adm1(&[&north, &anywhere], Some("XY02")));
        assert!(!grants_reach_adm1(&[], Some("XY01")));
    }
}
