//! Humanitarian consultation: the 3W activity registry, consultation rules, rounds with computed consultees,
//! responses, conflict flags and how they end, and the deadline sweeper.

pub mod activities;
pub mod dto;
pub mod repo;
pub mod routes;
pub mod service;
