//! The audit trail: appending hash-chained events inside the caller's transaction, and verifying the chain.

pub mod repo;
pub mod service;

pub use service::{AuditContext, NewAuditEvent, Outcome, append, verify_chain};
