//! Approval under delegated financial authority: step snapshots on entering review, decisions in order with
//! separation of duties and explicit multi-hat acknowledgement, the decision brief, "my tasks" and turnaround.

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
