//! Implementation, from approval to close: the tranche schedule, progress and completion reports, tranche
//! payments (idempotent), refunds, cancellation and close-out.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
