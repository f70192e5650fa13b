//! The ledger's rules (DESIGN.md §5), pure: account kinds and which may go negative, transaction kinds and
//! the legs each moves, the guards every posting must pass — legs non-zero and summing to zero, no
//! guarded account below zero afterwards — and which transactions may be reversed raw.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    /// The outside world's side of a contribution; may be negative.
    Contributor,
    Unallocated,
    Commitment,
    Disbursed,
}

impl AccountKind {
    pub const ALL: [AccountKind; 4] = [
        AccountKind::Contributor,
        AccountKind::Unallocated,
        AccountKind::Commitment,
        AccountKind::Disbursed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::Contributor => "contributor",
            AccountKind::Unallocated => "unallocated",
            AccountKind::Commitment => "commitment",
            AccountKind::Disbursed => "disbursed",
        }
    }

    pub fn parse(s: &str) -> Option<AccountKind> {
        AccountKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Only a contributor's account may go below zero.
    pub fn may_go_negative(self) -> bool {
        self == AccountKind::Contributor
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    Contribution,
    Commitment,
    Disbursement,
    Release,
    Refund,
    Reversal,
}

impl TransactionKind {
    pub const ALL: [TransactionKind; 6] = [
        TransactionKind::Contribution,
        TransactionKind::Commitment,
        TransactionKind::Disbursement,
        TransactionKind::Release,
        TransactionKind::Refund,
        TransactionKind::Reversal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TransactionKind::Contribution => "contribution",
            TransactionKind::Commitment => "commitment",
            TransactionKind::Disbursement => "disbursement",
            TransactionKind::Release => "release",
            TransactionKind::Refund => "refund",
            TransactionKind::Reversal => "reversal",
        }
    }

    pub fn parse(s: &str) -> Option<TransactionKind> {
        TransactionKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The IATI transaction type code, where there is one. Money coming back is reported in the direction it
    /// first went, with a negative value: a refund is a negative disbursement (3), a release a negative
    /// commitment (2). Type 7 "Reimbursement" is an outgoing payment for money the recipient has spent — the
    /// opposite direction — and IATI 2.03 has no incoming refund type (docs/EXCHANGE.md).
    pub fn iati_transaction_type(self) -> Option<u8> {
        match self {
            TransactionKind::Contribution => Some(1),
            TransactionKind::Commitment | TransactionKind::Release => Some(2),
            TransactionKind::Disbursement | TransactionKind::Refund => Some(3),
            TransactionKind::Reversal => None,
        }
    }

    /// The (from, to) account kinds an amount X moves between: `from` − X, `to` + X.
    pub fn movement(self) -> Option<(AccountKind, AccountKind)> {
        match self {
            TransactionKind::Contribution => Some((AccountKind::Contributor, AccountKind::Unallocated)),
            TransactionKind::Commitment => Some((AccountKind::Unallocated, AccountKind::Commitment)),
            TransactionKind::Disbursement => Some((AccountKind::Commitment, AccountKind::Disbursed)),
            TransactionKind::Release => Some((AccountKind::Commitment, AccountKind::Unallocated)),
            TransactionKind::Refund => Some((AccountKind::Disbursed, AccountKind::Unallocated)),
            TransactionKind::Reversal => None,
        }
    }
}

// Stored as their names; an unknown stored kind fails the query on the money path, it is never skipped or
// summed as something else.
super::status::stored_name!(AccountKind, "ledger account kind", AccountKind::parse);

super::status::stored_name!(TransactionKind, "ledger transaction kind", TransactionKind::parse);

/// Why a transaction may not be reversed by a raw reversal, and what corrects it instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReversalRefused {
    /// A reversal is not reversed; the movement is posted again instead.
    IsReversal,
    /// The transaction moves a proposal's money. Negating its entries would leave the proposal's state and
    /// tranches saying otherwise (an `approved` proposal with nothing committed, a tranche `paid` with
    /// nothing disbursed), so the correction goes through the proposal's own use case.
    MovesProposalMoney(TransactionKind),
}

impl ReversalRefused {
    /// The operation that corrects the transaction instead (a stable token for clients).
    pub fn correction(self) -> &'static str {
        match self {
            ReversalRefused::IsReversal => "post_again",
            ReversalRefused::MovesProposalMoney(TransactionKind::Commitment) => "cancel_proposal",
            ReversalRefused::MovesProposalMoney(TransactionKind::Disbursement) => "refund",
            ReversalRefused::MovesProposalMoney(_) => "none",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            ReversalRefused::IsReversal => {
                "A reversal cannot itself be reversed; post the movement again instead."
            }
            ReversalRefused::MovesProposalMoney(TransactionKind::Commitment) => {
                "A commitment is a proposal's approval and cannot be reversed on its own: cancel the proposal \
                 (POST /api/v1/proposals/{id}/cancel), which releases what is unpaid and voids its tranches."
            }
            ReversalRefused::MovesProposalMoney(TransactionKind::Disbursement) => {
                "A disbursement is a tranche payment and cannot be reversed on its own: book the money that \
                 comes back as a refund (POST /api/v1/proposals/{id}/refunds)."
            }
            ReversalRefused::MovesProposalMoney(TransactionKind::Release) => {
                "A release ends a cancelled or closed proposal's commitment and cannot be reversed: the proposal \
                 it belongs to has ended."
            }
            ReversalRefused::MovesProposalMoney(_) => {
                "A refund is money a partner returned on a proposal and cannot be reversed: a reversal would \
                 change the proposal's disbursed money behind its back."
            }
        }
    }
}

/// Only movements that touch no proposal may be reversed raw: contributions (money into the pool). Every other
/// kind changes a proposal's committed or disbursed money, and is corrected through the proposal (cancel,
/// refund), so the proposal, its tranches and the ledger never disagree.
pub fn may_reverse(kind: TransactionKind) -> Result<(), ReversalRefused> {
    match kind {
        TransactionKind::Contribution => Ok(()),
        TransactionKind::Reversal => Err(ReversalRefused::IsReversal),
        TransactionKind::Commitment
        | TransactionKind::Disbursement
        | TransactionKind::Release
        | TransactionKind::Refund => Err(ReversalRefused::MovesProposalMoney(kind)),
    }
}

/// Why a posting was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardError {
    NoLegs,
    ZeroLeg,
    NotBalanced {
        sum: i128,
    },
    NotPositive,
    /// A guarded account would go below zero; `available` is its balance before the posting.
    Insufficient {
        kind: AccountKind,
        available: i64,
        needed: i64,
    },
    Overflow,
}

/// Legs must be non-empty, non-zero and sum to zero.
pub fn check_legs(amounts: &[i64]) -> Result<(), GuardError> {
    if amounts.is_empty() {
        return Err(GuardError::NoLegs);
    }
    if amounts.contains(&0) {
        return Err(GuardError::ZeroLeg);
    }
    let sum: i128 = amounts.iter().map(|a| i128::from(*a)).sum();
    if sum != 0 {
        return Err(GuardError::NotBalanced { sum });
    }
    Ok(())
}

/// Applies a leg to a balance, refusing to take a guarded account below zero.
pub fn apply_leg(kind: AccountKind, balance: i64, amount: i64) -> Result<i64, GuardError> {
    let after = balance.checked_add(amount).ok_or(GuardError::Overflow)?;
    if after < 0 && !kind.may_go_negative() {
        return Err(GuardError::Insufficient {
            kind,
            available: balance,
            needed: -amount,
        });
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn legs_must_balance_and_be_non_zero() {
        assert_eq!(check_legs(&[]), Err(GuardError::NoLegs));
        assert_eq!(check_legs(&[5, -5, 0]), Err(GuardError::ZeroLeg));
        assert_eq!(check_legs(&[5, -4]), Err(GuardError::NotBalanced { sum: 1 }));
        assert_eq!(check_legs(&[i64::MAX, i64::MAX, i64::MIN, i64::MIN + 2]), Ok(()));
        assert!(check_legs(&[-7, 3, 4]).is_ok());
    }

    #[test]
    fn only_contributors_go_negative() {
        assert_eq!(apply_leg(AccountKind::Contributor, 0, -100), Ok(-100));
        assert_eq!(
            apply_leg(AccountKind::Unallocated, 40, -100),
            Err(GuardError::Insufficient {
                kind: AccountKind::Unallocated,
                available: 40,
                needed: 100
            })
        );
        assert_eq!(apply_leg(AccountKind::Commitment, 100, -100), Ok(0));
    }

    #[test]
    fn only_movements_that_touch_no_proposal_are_reversed_raw() {
        assert_eq!(may_reverse(TransactionKind::Contribution), Ok(()));
        assert_eq!(
            may_reverse(TransactionKind::Reversal),
            Err(ReversalRefused::IsReversal)
        );
        for kind in TransactionKind::ALL {
            let touches_proposal = kind.movement().is_some_and(|(from, to)| {
                [from, to]
                    .iter()
                    .any(|k| matches!(k, AccountKind::Commitment | AccountKind::Disbursed))
            });
            if touches_proposal {
                let refused = may_reverse(kind).unwrap_err();
                assert_eq!(refused, ReversalRefused::MovesProposalMoney(kind));
                assert!(!refused.message().is_empty());
            }
        }
        assert_eq!(
            may_reverse(TransactionKind::Commitment).unwrap_err().correction(),
            "cancel_proposal"
        );
        assert_eq!(
            may_reverse(TransactionKind::Disbursement)
                .unwrap_err()
                .correction(),
            "refund"
        );
    }

    proptest! {
        /// Any sequence of movements applied through the guards keeps every guarded balance ≥ 0 and the
        /// books balanced: contributions = unallocated + committed + disbursed.
        #[test]
        fn guarded_movements_keep_the_books_balanced(ops in prop::collection::vec((0usize..5, 1i64..10_000), 1..200)) {
            let mut bal = std::collections::HashMap::new();
            let kinds = [TransactionKind::Contribution, TransactionKind::Commitment, TransactionKind::Disbursement, TransactionKind::Release, TransactionKind::Refund];
            for (k, amount) in ops {
                let Some((from, to)) = kinds[k].movement() else { continue };
                let f = *bal.get(&from).unwrap_or(&0);
                let t = *bal.get(&to).unwrap_or(&0);
                if let (Ok(f2), Ok(t2)) = (apply_leg(from, f, -amount), apply_leg(to, t, amount)) {
                    prop_assert!(check_legs(&[-amount, amount]).is_ok());
                    bal.insert(from, f2);
                    bal.insert(to, t2);
                }
                for kind in AccountKind::ALL {
                    prop_assert!(kind.may_go_negative() || *bal.get(&kind).unwrap_or(&0) >= 0);
                }
                let contributed = -bal.get(&AccountKind::Contributor).unwrap_or(&0);
                let held: i64 = [AccountKind::Unallocated, AccountKind::Commitment, AccountKind::Disbursed].iter().map(|k| bal.get(k).unwrap_or(&0)).sum();
                prop_assert_eq!(contributed, held);
            }
        }
    }
}
