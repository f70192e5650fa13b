//! Reference data: the gazetteer of admin areas (imported from COD-style CSV) and the sector code list.

pub mod repo;
pub mod routes;
pub mod service;
