//! Resolving the hat an action is taken in (DESIGN.md §8): the one permitting hat the caller holds; or the
//! hat named in `Acting-Hat` when several could; ambiguity and mismatches are refused with their reason.
//! Reads are never ambiguous: without `Acting-Hat` a read is taken in the permitting hat that sees the most
//! ([`READ_PREFERENCE`]); what that hat may see (confidential notes) is still decided by `access`.

use chrono::NaiveDateTime;
use serde::Serialize;

use super::{Action, Hat, hat_list};

/// One grant of a hat to a user, with its scope and validity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HatGrant {
    pub id: String,
    pub hat: Hat,
    /// Limits the hat to acting for one organisation (e.g. a submitter for their unit).
    pub scope_organization_id: Option<String>,
    /// Limits the hat to one adm1 area (e.g. a head of office).
    pub scope_adm1: Option<String>,
    pub valid_from: Option<NaiveDateTime>,
    /// Exclusive end of validity.
    pub valid_until: Option<NaiveDateTime>,
    /// Held as officer-in-charge for someone else.
    pub acting: bool,
}

impl HatGrant {
    /// A hat outside its validity period gives no power.
    pub fn is_valid_at(&self, now: NaiveDateTime) -> bool {
        self.valid_from.is_none_or(|from| from <= now) && self.valid_until.is_none_or(|until| now < until)
    }
}

/// The hat an action is taken in, with every valid grant of it the caller holds (several grants can differ
/// in scope: a head of office for two areas).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedHat {
    pub hat: Hat,
    pub grants: Vec<HatGrant>,
}

impl ResolvedHat {
    /// True when any grant is held as officer-in-charge.
    pub fn acting(&self) -> bool {
        self.grants.iter().any(|g| g.acting)
    }
}

/// Why no hat could be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HatResolution {
    /// `Acting-Hat` does not name a hat at all (400).
    UnknownHat(String),
    /// Several held hats permit the action and none was named (400, lists them).
    Ambiguous(Vec<Hat>),
    /// No held hat permits the action (403).
    NotPermitted { permitted: Vec<Hat> },
    /// The named hat is not held (or not valid now) (403).
    NamedNotHeld(Hat),
    /// The named hat is held but does not permit the action (403).
    NamedDoesNotPermit { named: Hat, permitted: Vec<Hat> },
}

impl HatResolution {
    /// A sentence the caller can act on.
    pub fn message(&self) -> String {
        match self {
            HatResolution::UnknownHat(name) => format!("`Acting-Hat: {name}` does not name a hat."),
            HatResolution::Ambiguous(candidates) => format!(
                "More than one of your hats permits this ({}); name the one you act in with the `Acting-Hat` header.",
                hat_list(candidates)
            ),
            HatResolution::NotPermitted { permitted } => format!(
                "None of your current hats permits this; it needs one of: {}.",
                hat_list(permitted)
            ),
            HatResolution::NamedNotHeld(hat) => format!("You do not hold the hat `{hat}` now."),
            HatResolution::NamedDoesNotPermit { named, permitted } => format!(
                "The hat `{named}` does not permit this; it needs one of: {}.",
                hat_list(permitted)
            ),
        }
    }

    /// 400-class (the request is ambiguous or malformed) rather than a denial.
    pub fn is_bad_request(&self) -> bool {
        matches!(self, HatResolution::UnknownHat(_) | HatResolution::Ambiguous(_))
    }
}

/// The hat a read is taken in when several held hats permit it and none is named: the ones that read
/// confidential notes first (the note rule itself still applies), the organisation-scoped submitter last.
pub const READ_PREFERENCE: [Hat; 10] = [
    Hat::Hc,
    Hat::QipOfficer,
    Hat::Consultee,
    Hat::Dsrsg,
    Hat::Rc,
    Hat::Auditor,
    Hat::FinanceOfficer,
    Hat::HeadOfOffice,
    Hat::Admin,
    Hat::Submitter,
];

/// Picks the hat for `action` from the caller's grants at `now`, honouring an `Acting-Hat` header.
pub fn resolve_hat(
    action: Action,
    grants: &[HatGrant],
    acting_hat_header: Option<&str>,
    now: NaiveDateTime,
) -> Result<ResolvedHat, HatResolution> {
    let valid: Vec<&HatGrant> = grants.iter().filter(|g| g.is_valid_at(now)).collect();
    let permitted = action.permitted_hats().to_vec();
    let grants_of = |hat: Hat| -> Vec<HatGrant> {
        valid
            .iter()
            .filter(|g| g.hat == hat)
            .map(|g| (*g).clone())
            .collect()
    };
    // A header sent empty names no hat: refused like any other unknown name, never taken as absent.
    if let Some(name) = acting_hat_header.map(str::trim) {
        let named: Hat = name
            .parse()
            .map_err(|_| HatResolution::UnknownHat(name.to_owned()))?;
        let held = grants_of(named);
        if held.is_empty() {
            return Err(HatResolution::NamedNotHeld(named));
        }
        if !action.permits(named) {
            return Err(HatResolution::NamedDoesNotPermit { named, permitted });
        }
        return Ok(ResolvedHat {
            hat: named,
            grants: held,
        });
    }
    let mut candidates: Vec<Hat> = valid
        .iter()
        .map(|g| g.hat)
        .filter(|h| action.permits(*h))
        .collect();
    candidates.sort();
    candidates.dedup();
    if action.is_read() && candidates.len() > 1 {
        candidates.sort_by_key(|h| READ_PREFERENCE.iter().position(|p| p == h));
        candidates.truncate(1);
    }
    match candidates.as_slice() {
        [] => Err(HatResolution::NotPermitted { permitted }),
        [only] => Ok(ResolvedHat {
            hat: *only,
            grants: grants_of(*only),
        }),
        _ => Err(HatResolution::Ambiguous(candidates)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(day: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, day)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap_or_default()
    }

    fn grant(hat: Hat) -> HatGrant {
        HatGrant {
            id: format!("g-{hat}"),
            hat,
            scope_organization_id: None,
            scope_adm1: None,
            valid_from: None,
            valid_until: None,
            acting: false,
        }
    }

    #[test]
    fn single_permitting_hat_is_used() {
        let grants = [grant(Hat::Admin), grant(Hat::Submitter)];
        let r = resolve_hat(Action::UserCreate, &grants, None, at(1));
        assert_eq!(r.map(|r| r.hat), Ok(Hat::Admin));
    }

    #[test]
    fn two_hats_permitting_a_write_need_the_header() {
        let grants = [grant(Hat::Hc), grant(Hat::Dsrsg)];
        assert_eq!(
            resolve_hat(Action::ApprovalDecide, &grants, None, at(1)),
            Err(HatResolution::Ambiguous(vec![Hat::Hc, Hat::Dsrsg]))
        );
        let r = resolve_hat(Action::ApprovalDecide, &grants, Some("dsrsg"), at(1));
        assert_eq!(r.map(|r| r.hat), Ok(Hat::Dsrsg));
    }

    #[test]
    fn a_read_needs_no_header_and_can_still_name_a_hat() {
        let grants = [grant(Hat::Admin), grant(Hat::Auditor)];
        let r = resolve_hat(Action::AuditRead, &grants, None, at(1));
        assert_eq!(r.map(|r| r.hat), Ok(Hat::Auditor));
        let r = resolve_hat(Action::AuditRead, &grants, Some("admin"), at(1));
        assert_eq!(r.map(|r| r.hat), Ok(Hat::Admin));
        let dsrsg = [grant(Hat::Rc), grant(Hat::Dsrsg), grant(Hat::Hc)];
        let r = resolve_hat(Action::ReferenceRead, &dsrsg, None, at(1));
        assert_eq!(r.map(|r| r.hat), Ok(Hat::Hc));
    }

    #[test]
    fn named_hat_must_be_held_and_permit() {
        let grants = [grant(Hat::Submitter), grant(Hat::Auditor)];
        assert_eq!(
            resolve_hat(Action::UserCreate, &grants, Some("admin"), at(1)),
            Err(HatResolution::NamedNotHeld(Hat::Admin))
        );
        assert!(matches!(
            resolve_hat(Action::UserCreate, &grants, Some("submitter"), at(1)),
            Err(HatResolution::NamedDoesNotPermit {
                named: Hat::Submitter,
                ..
            })
        ));
        assert!(matches!(
            resolve_hat(Action::UserCreate, &grants, Some("king"), at(1)),
            Err(HatResolution::UnknownHat(_))
        ));
    }

    #[test]
    fn hats_outside_their_validity_give_no_power() {
        let mut g = grant(Hat::Admin);
        g.valid_from = Some(at(10));
        g.valid_until = Some(at(20));
        let grants = [g];
        assert!(resolve_hat(Action::UserCreate, &grants, None, at(9)).is_err());
        assert!(resolve_hat(Action::UserCreate, &grants, None, at(10)).is_ok());
        assert!(resolve_hat(Action::UserCreate, &grants, None, at(19)).is_ok());
        assert!(resolve_hat(Action::UserCreate, &grants, None, at(20)).is_err());
    }

    proptest! {
        /// Whatever the caller holds and names, a resolved hat is held, valid and permits the action.
        #[test]
        fn a_resolved_hat_is_always_held_valid_and_permitting(
            held in prop::collection::vec(0usize..10, 0..5),
            named in prop::option::of(0usize..10),
            action_idx in 0usize..super::super::policy::POLICY.len(),
        ) {
            let grants: Vec<HatGrant> = held.iter().map(|i| grant(Hat::ALL[*i])).collect();
            let action = super::super::policy::POLICY[action_idx].0;
            let header = named.map(|i| Hat::ALL[i].as_str());
            if let Ok(r) = resolve_hat(action, &grants, header, at(1)) {
                prop_assert!(action.permits(r.hat));
                prop_assert!(grants.iter().any(|g| g.hat == r.hat));
                prop_assert!(!r.grants.is_empty());
            }
        }
    }
}
