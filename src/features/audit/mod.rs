//! The audit trail: appending hash-chained events inside the caller's transaction, verifying the chain, and
//! the audit API.

pub mod action;
pub mod bounds;
pub mod denials;
pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;

pub use action::AuditAction;
pub use denials::deny;
pub use service::{
    AuditContext, Automatic, NewAuditEvent, Outcome, append, hash_at, now_micros, verify_chain,
};
