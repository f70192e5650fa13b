//! qip-pool: a joint funding pool for Quick Impact Projects. This file is the module tree only.

pub mod access;
pub mod app;
pub mod cli;
pub mod config;
pub mod console;
pub mod db;
pub mod domain;
pub mod error;
pub mod features;
pub mod http;
pub mod jobs;
pub mod metrics;
pub mod request_meta;
pub mod telemetry;
