//! Approval under delegated financial authority: step snapshots on entering review, decisions in order with
//! separation of duties and explicit multi-hat acknowledgement. The decision brief, "my tasks" and turnaround
//! are read models (`features::read_models`).

pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
