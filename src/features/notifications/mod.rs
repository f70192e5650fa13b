//! Notifications (issue 17, docs/NOTIFICATIONS.md): a transactional outbox fed by the audit trail, recipients
//! computed from hats and scopes, email (SMTP or `.eml` files), signed webhooks per organisation with retries
//! and dead letters, and the in-app feed; plus the delivery worker every instance runs.

pub mod dto;
pub mod email;
pub mod kinds;
pub mod outbox;
pub mod recipients;
pub mod reminders;
pub mod repo;
pub mod routes;
pub mod service;
pub mod signing;
pub mod ssrf;
pub mod worker;
