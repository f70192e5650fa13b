//! The audit trail: appending events inside the caller's transaction, sealing them into the hash chain
//! (the sealer job, off the writers' path), verifying the chain, and the audit API.

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
    AuditContext, Automatic, NewAuditEvent, Outcome, UnsealedTail, WhenBusy, append, append_concerning,
    appended, event_fields, event_row, hash_at, now_micros, seal_pending, unsealed_tail, verify_chain,
};
