//! Pure rules of the service: no actix, no diesel, no I/O; unit- and property-tested.

pub mod canonical_json;
pub mod hash_chain;
pub mod lockout;
pub mod password_policy;
