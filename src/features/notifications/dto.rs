//! Request and response bodies of the feed, email preferences and webhook endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::repo::{DeliveryRow, FeedRow, WebhookRow};

/// One item of the in-app feed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Notification {
    pub id: String,
    /// e.g. `consultation.requested`, `approval.step_awaiting_decision` (docs/NOTIFICATIONS.md).
    pub kind: super::kinds::Kind,
    /// Neutral: never the text of a flag, a confidential note or a comment.
    pub summary: String,
    /// Why you got it.
    pub reason: String,
    /// API path of the resource.
    pub link: String,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

impl From<FeedRow> for Notification {
    fn from(r: FeedRow) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            summary: r.summary,
            reason: r.reason,
            link: r.link,
            read: r.read_at.is_some(),
            created_at: r.created_at.and_utc(),
        }
    }
}

/// A page of the feed, newest first, with the number of unread notifications.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    pub next_cursor: Option<String>,
    pub unread_count: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MarkedRead {
    pub marked: usize,
    pub unread_count: i64,
}

/// How you get notification emails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailPreference {
    /// One email per notification, as it happens (the default).
    Immediate,
    /// One email a day (at `notifications.digest_hour_utc`) with everything since the last.
    DailyDigest,
    /// No email; the feed only.
    Off,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    pub email: EmailPreference,
}

/// Registering or changing a webhook endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// http(s) URL that receives `POST`s signed per Standard Webhooks. Must resolve to public addresses (or
    /// to a range the operator allowlisted). At most 2,000 characters; required to register.
    #[schema(
        min_length = 1,
        max_length = 2000,
        example = "https://hooks.unicef.example/qip"
    )]
    pub url: Option<String>,
    /// At most 500 characters.
    #[schema(max_length = 500, example = "UNICEF WASH coordination inbox")]
    pub description: Option<String>,
    pub active: Option<bool>,
}

/// A webhook endpoint of an organisation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub description: String,
    pub active: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The signing secret (`whsec_…`): returned only when created or rotated, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Webhook {
    pub fn from_row(r: WebhookRow, show_secret: bool) -> Self {
        Self {
            secret: show_secret.then_some(r.secret),
            id: r.id,
            organization_id: r.organization_id,
            url: r.url,
            description: r.description,
            active: r.active,
            version: r.version,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

/// One delivery of one event to an endpoint.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: String,
    /// The `webhook-id` header: the same on every attempt.
    pub event_id: String,
    /// `pending`, `delivered` or `dead` (retries exhausted; redeliver on request).
    pub status: crate::domain::status::DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    pub last_status_code: Option<i32>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(r: DeliveryRow) -> Self {
        Self {
            id: r.id,
            event_id: r.event_id,
            status: r.status,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at.and_utc(),
            last_error: r.last_error,
            last_status_code: r.last_status_code,
            delivered_at: r.delivered_at.map(|t| t.and_utc()),
            created_at: r.created_at.and_utc(),
        }
    }
}
