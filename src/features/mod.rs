//! Feature slices, each with its routes, use cases (service), queries (repo) and DTOs.

pub mod approval;
pub mod audit;
pub mod consultation;
pub mod demo;
pub mod exchange;
pub mod identity;
pub mod implementation;
pub mod ledger;
pub mod notifications;
pub mod pools;
pub mod proposals;
pub mod read_models;
pub mod reference;
