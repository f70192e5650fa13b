//! The integration suite: black-box HTTP tests through the real app on a random port, over a fresh database
//! per test (a temp SQLite file, or a new PostgreSQL database when `QIP_TEST_DATABASE_URL` is set).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]
#![expect(
    clippy::inconsistent_digit_grouping,
    reason = "amounts are written units_cents, like money"
)]

mod support;

mod allowed_actions;
mod approval;
mod approval_model;
mod audit_api;
mod audit_chain;
mod authz_matrix;
mod authz_paths;
mod cli;
mod config;
mod console;
mod console_browser;
mod console_pages;
mod consultation;
mod contract;
mod contract_check;
mod errors;
mod exchange;
mod faults;
mod fixtures;
mod group_commit;
mod identity;
mod implementation;
mod ledger;
mod malformed_input;
mod notifications;
mod openapi_snapshot;
mod ops;
mod perf_reads;
mod posting_writes;
mod proposals;
mod revise;
mod rollup_stripes;
mod sec_bounds;
mod sec_confidential;
mod sec_dual_control;
mod sec_locking;
mod sec_reversals;
mod sec_signin;
mod sec_signin_budget;
mod statement_periods;
mod stored_kinds;
mod stored_kinds_ledger;
mod workflow;
