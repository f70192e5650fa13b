//! Funding pools: code, currency, funding period and the versioned QIP policy settings proposals are checked
//! against. (Balances and money movements belong to the ledger.)

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
