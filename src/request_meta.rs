//! The per-request facts the service layer records in audit events (request id, client address). Plain data:
//! the HTTP layer fills it in (`http::middleware`), the console and the CLI make their own.

/// Per-request facts the service layer records in audit events.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub request_id: String,
    /// The client's address: the TCP peer, or what a trusted proxy forwarded (see `http::client_addr`).
    pub client_addr: Option<String>,
}

impl RequestMeta {
    /// The facts of a request that arrived without them (no middleware ran): a fresh UUIDv7 request id.
    pub fn fresh(client_addr: Option<String>) -> Self {
        Self {
            request_id: new_request_id(),
            client_addr,
        }
    }
}

/// A new request id (UUIDv7, so ids sort by time).
pub fn new_request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
