//! Pure rules of the service: no actix, no diesel, no I/O; unit- and property-tested.

pub mod approval_policy;
pub mod canonical_json;
pub mod hash_chain;
pub mod ids;
pub mod ledger_rules;
pub mod lifecycle;
pub mod lockout;
pub mod money;
pub mod password_policy;
pub mod periods;
pub mod pool_policy;
pub mod proposal;
pub mod screening;
pub mod status;
pub mod tranches;
pub mod whole_number;
