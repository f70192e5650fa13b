//! Proposals: drafting, editing under `If-Match`, versions, submission checks, gap-free reference codes,
//! withdrawal and visibility-respecting lists. Every state change goes through `workflow`, which asks
//! `domain::lifecycle`.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
pub mod workflow;
