//! The pool ledger: double-entry accounts, the one posting function every money movement goes through, the
//! operations built on it (contribute, commit, release, disburse, refund, reverse), idempotent money-moving
//! requests, balances, statements and the invariant check.

pub mod check;
pub mod dto;
pub mod group_commit;
pub mod idempotency;
pub mod repo;
pub mod routes;
pub mod service;
