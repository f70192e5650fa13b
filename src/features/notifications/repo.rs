//! Queries of the notification tables: the outbox events, deliveries and their leases, the feed, email
//! preferences and webhook endpoints. Written once for SQLite and PostgreSQL.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::kinds::Kind;
use crate::domain::status::{DeliveryChannel, DeliveryStatus, EmailMode};

use crate::db::DbConn;
use crate::db::cached::cached_sql;
use crate::db::schema::{
    notification_deliveries, notification_events, notification_preferences, notifications, webhook_endpoints,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_events)]
pub struct EventRow {
    pub id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: Kind,
    pub audit_event_id: Option<String>,
    pub dedupe_key: Option<String>,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub proposal_id: Option<String>,
    pub summary: String,
    pub link: String,
    pub payload: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notification_deliveries)]
pub struct DeliveryRow {
    pub id: String,
    pub event_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub channel: DeliveryChannel,
    pub user_id: Option<String>,
    pub webhook_id: Option<String>,
    pub reason: String,
    pub digest: bool,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub last_status_code: Option<i32>,
    pub delivered_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = notifications)]
pub struct FeedRow {
    pub id: String,
    pub user_id: String,
    pub event_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: Kind,
    pub summary: String,
    pub reason: String,
    pub link: String,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhook_endpoints)]
pub struct WebhookRow {
    pub id: String,
    pub organization_id: String,
    pub url: String,
    pub description: String,
    pub secret: String,
    pub active: bool,
    pub version: i64,
    pub created_by: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert_event(conn: &mut DbConn, row: &EventRow) -> QueryResult<()> {
    diesel::insert_into(notification_events::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn event_with_dedupe_key_exists(conn: &mut DbConn, key: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        notification_events::table.filter(notification_events::dedupe_key.eq(key)),
    ))
    .get_result(conn)
}

pub fn find_event(conn: &mut DbConn, id: &str) -> QueryResult<Option<EventRow>> {
    notification_events::table
        .find(id)
        .select(EventRow::as_select())
        .first(conn)
        .optional()
}

/// Rows in one multi-row insert: its text then takes at most this many shapes per table (see `db::cached`); an
/// event with more recipients takes a statement per chunk.
const ROWS_PER_INSERT: usize = 8;

/// An event's deliveries in one statement per `ROWS_PER_INSERT` (none: no statement).
pub fn insert_deliveries(conn: &mut DbConn, rows: &[DeliveryRow]) -> QueryResult<()> {
    use diesel::sql_types::{Bool, Integer, Nullable, Text, Timestamp};
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut query = cached_sql(
            "INSERT INTO notification_deliveries (id, event_id, channel, user_id, webhook_id, reason, digest, \
             status, attempts, next_attempt_at, locked_until, locked_by, last_error, last_status_code, \
             delivered_at, created_at) VALUES ",
        );
        for (i, row) in chunk.iter().enumerate() {
            query = query
                .sql(if i == 0 { "(" } else { ", (" })
                .bind::<Text, _>(row.id.clone())
                .sql(", ")
                .bind::<Text, _>(row.event_id.clone())
                .sql(", ")
                .bind::<Text, _>(row.channel.as_str().to_owned())
                .sql(", ")
                .bind::<Nullable<Text>, _>(row.user_id.clone())
                .sql(", ")
                .bind::<Nullable<Text>, _>(row.webhook_id.clone())
                .sql(", ")
                .bind::<Text, _>(row.reason.clone())
                .sql(", ")
                .bind::<Bool, _>(row.digest)
                .sql(", ")
                .bind::<Text, _>(row.status.as_str().to_owned())
                .sql(", ")
                .bind::<Integer, _>(row.attempts)
                .sql(", ")
                .bind::<Timestamp, _>(row.next_attempt_at)
                .sql(", ")
                .bind::<Nullable<Timestamp>, _>(row.locked_until)
                .sql(", ")
                .bind::<Nullable<Text>, _>(row.locked_by.clone())
                .sql(", ")
                .bind::<Nullable<Text>, _>(row.last_error.clone())
                .sql(", ")
                .bind::<Nullable<Integer>, _>(row.last_status_code)
                .sql(", ")
                .bind::<Nullable<Timestamp>, _>(row.delivered_at)
                .sql(", ")
                .bind::<Timestamp, _>(row.created_at)
                .sql(")");
        }
        query.execute(conn)?;
    }
    Ok(())
}

/// An event's feed items in one statement per `ROWS_PER_INSERT` (none: no statement).
pub fn insert_feed_items(conn: &mut DbConn, rows: &[FeedRow]) -> QueryResult<()> {
    use diesel::sql_types::{Nullable, Text, Timestamp};
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut query = cached_sql(
            "INSERT INTO notifications (id, user_id, event_id, kind, summary, reason, link, read_at, created_at) \
             VALUES ",
        );
        for (i, row) in chunk.iter().enumerate() {
            query = query
                .sql(if i == 0 { "(" } else { ", (" })
                .bind::<Text, _>(row.id.clone())
                .sql(", ")
                .bind::<Text, _>(row.user_id.clone())
                .sql(", ")
                .bind::<Text, _>(row.event_id.clone())
                .sql(", ")
                .bind::<Text, _>(row.kind.as_str().to_owned())
                .sql(", ")
                .bind::<Text, _>(row.summary.clone())
                .sql(", ")
                .bind::<Text, _>(row.reason.clone())
                .sql(", ")
                .bind::<Text, _>(row.link.clone())
                .sql(", ")
                .bind::<Nullable<Timestamp>, _>(row.read_at)
                .sql(", ")
                .bind::<Timestamp, _>(row.created_at)
                .sql(")");
        }
        query.execute(conn)?;
    }
    Ok(())
}

/// Ids of pending deliveries due at `now` and not leased to anyone, oldest first.
pub fn due_delivery_ids(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    notification_deliveries::table
        .filter(notification_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
        .filter(notification_deliveries::digest.eq(false))
        .filter(notification_deliveries::next_attempt_at.le(now))
        .filter(
            notification_deliveries::locked_until
                .is_null()
                .or(notification_deliveries::locked_until.le(now)),
        )
        .order(notification_deliveries::next_attempt_at.asc())
        .select(notification_deliveries::id)
        .limit(limit)
        .load(conn)
}

/// Takes the lease of one delivery if it is still due and free: a conditional update, so of two workers that
/// both saw it only one gets it.
pub fn take_lease(
    conn: &mut DbConn,
    id: &str,
    worker: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        notification_deliveries::table
            .filter(notification_deliveries::id.eq(id))
            .filter(notification_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
            .filter(notification_deliveries::next_attempt_at.le(now))
            .filter(
                notification_deliveries::locked_until
                    .is_null()
                    .or(notification_deliveries::locked_until.le(now)),
            ),
    )
    .set((
        notification_deliveries::locked_until.eq(Some(until)),
        notification_deliveries::locked_by.eq(Some(worker)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn find_delivery(conn: &mut DbConn, id: &str) -> QueryResult<Option<DeliveryRow>> {
    notification_deliveries::table
        .find(id)
        .select(DeliveryRow::as_select())
        .first(conn)
        .optional()
}

/// Records an attempt's result, only if `worker` still holds the lease (a lease that expired and was taken by
/// another worker is theirs to record).
#[expect(clippy::too_many_arguments, reason = "one row update, named fields")]
pub fn record_attempt(
    conn: &mut DbConn,
    id: &str,
    worker: &str,
    status: DeliveryStatus,
    attempts: i32,
    next_attempt_at: NaiveDateTime,
    error: Option<&str>,
    status_code: Option<i32>,
    delivered_at: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    diesel::update(
        notification_deliveries::table
            .filter(notification_deliveries::id.eq(id))
            .filter(notification_deliveries::locked_by.eq(worker)),
    )
    .set((
        notification_deliveries::status.eq(status.as_str()),
        notification_deliveries::attempts.eq(attempts),
        notification_deliveries::next_attempt_at.eq(next_attempt_at),
        notification_deliveries::locked_until.eq(None::<NaiveDateTime>),
        notification_deliveries::locked_by.eq(None::<String>),
        notification_deliveries::last_error.eq(error),
        notification_deliveries::last_status_code.eq(status_code),
        notification_deliveries::delivered_at.eq(delivered_at),
    ))
    .execute(conn)
}

/// Puts a delivery back in the queue (redelivery on request), whatever its state.
pub fn requeue(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(notification_deliveries::table.find(id))
        .set((
            notification_deliveries::status.eq(DeliveryStatus::Pending.as_str()),
            notification_deliveries::attempts.eq(0),
            notification_deliveries::next_attempt_at.eq(now),
            notification_deliveries::locked_until.eq(None::<NaiveDateTime>),
            notification_deliveries::locked_by.eq(None::<String>),
        ))
        .execute(conn)
}

/// When the oldest delivery still waiting was created (the undelivered-age gauge).
pub fn oldest_pending(conn: &mut DbConn) -> QueryResult<Option<NaiveDateTime>> {
    notification_deliveries::table
        .filter(notification_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
        .filter(notification_deliveries::digest.eq(false))
        .select(diesel::dsl::min(notification_deliveries::created_at))
        .first(conn)
}

pub fn deliveries_of_webhook(
    conn: &mut DbConn,
    webhook_id: &str,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<DeliveryRow>> {
    let mut q = notification_deliveries::table
        .filter(notification_deliveries::webhook_id.eq(webhook_id))
        .select(DeliveryRow::as_select())
        .order(notification_deliveries::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(notification_deliveries::id.lt(b.to_owned()));
    }
    q.load(conn)
}

/// A reader's stored email preference (`None`: never set). A stored mode this code never writes fails the query
/// rather than fall back to a default.
/// The stored e-mail preferences of several users in one statement (users with none stored are absent).
pub fn email_modes(
    conn: &mut DbConn,
    user_ids: &[&str],
) -> QueryResult<std::collections::HashMap<String, EmailMode>> {
    let stored: Vec<(String, String)> = notification_preferences::table
        .filter(notification_preferences::user_id.eq_any(user_ids))
        .select((
            notification_preferences::user_id,
            notification_preferences::email_mode,
        ))
        .load(conn)?;
    stored
        .into_iter()
        .map(|(user, mode)| {
            EmailMode::try_from(mode)
                .map(|m| (user, m))
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
        })
        .collect()
}

pub fn email_mode(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<EmailMode>> {
    let stored: Option<String> = notification_preferences::table
        .find(user_id)
        .select(notification_preferences::email_mode)
        .first(conn)
        .optional()?;
    stored
        .map(EmailMode::try_from)
        .transpose()
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
}

pub fn set_email_mode(
    conn: &mut DbConn,
    user_id: &str,
    mode: EmailMode,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let mode = mode.as_str();
    let updated = diesel::update(notification_preferences::table.find(user_id))
        .set((
            notification_preferences::email_mode.eq(mode),
            notification_preferences::updated_at.eq(now),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(notification_preferences::table)
            .values((
                notification_preferences::user_id.eq(user_id),
                notification_preferences::email_mode.eq(mode),
                notification_preferences::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn feed_page(
    conn: &mut DbConn,
    user_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<FeedRow>> {
    let mut q = notifications::table
        .filter(notifications::user_id.eq(user_id))
        .select(FeedRow::as_select())
        .order(notifications::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(notifications::id.lt(a.to_owned()));
    }
    q.load(conn)
}

pub fn unread_count(conn: &mut DbConn, user_id: &str) -> QueryResult<i64> {
    notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(conn)
}

pub fn mark_read(
    conn: &mut DbConn,
    user_id: &str,
    id: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let mut q = diesel::update(notifications::table)
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::read_at.is_null())
        .into_boxed();
    if let Some(id) = id {
        q = q.filter(notifications::id.eq(id.to_owned()));
    }
    q.set(notifications::read_at.eq(Some(now))).execute(conn)
}

pub fn feed_item_exists(conn: &mut DbConn, user_id: &str, id: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        notifications::table
            .filter(notifications::user_id.eq(user_id))
            .filter(notifications::id.eq(id)),
    ))
    .get_result(conn)
}

/// The active endpoints of any of `orgs` (one statement; none asked: no statement), in id order.
pub fn active_webhooks_of(conn: &mut DbConn, orgs: &[&str]) -> QueryResult<Vec<WebhookRow>> {
    if orgs.is_empty() {
        return Ok(Vec::new());
    }
    webhook_endpoints::table
        .filter(webhook_endpoints::organization_id.eq_any(orgs))
        .filter(webhook_endpoints::active.eq(true))
        .order(webhook_endpoints::id.asc())
        .select(WebhookRow::as_select())
        .load(conn)
}

pub fn webhooks_of(conn: &mut DbConn, org: &str) -> QueryResult<Vec<WebhookRow>> {
    webhook_endpoints::table
        .filter(webhook_endpoints::organization_id.eq(org))
        .order(webhook_endpoints::id.asc())
        .select(WebhookRow::as_select())
        .load(conn)
}

pub fn find_webhook(conn: &mut DbConn, id: &str) -> QueryResult<Option<WebhookRow>> {
    webhook_endpoints::table
        .find(id)
        .select(WebhookRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert_webhook(conn: &mut DbConn, row: &WebhookRow) -> QueryResult<()> {
    diesel::insert_into(webhook_endpoints::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn save_webhook(conn: &mut DbConn, row: &WebhookRow) -> QueryResult<usize> {
    diesel::update(webhook_endpoints::table.find(&row.id))
        .set((
            webhook_endpoints::url.eq(&row.url),
            webhook_endpoints::description.eq(&row.description),
            webhook_endpoints::secret.eq(&row.secret),
            webhook_endpoints::active.eq(row.active),
            webhook_endpoints::version.eq(row.version),
            webhook_endpoints::updated_at.eq(row.updated_at),
        ))
        .execute(conn)
}

/// Deletes an endpoint; what was still waiting for it is dead-lettered (kept, visible in the audit of deliveries).
pub fn delete_webhook(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::update(
        notification_deliveries::table
            .filter(notification_deliveries::webhook_id.eq(id))
            .filter(notification_deliveries::status.eq(DeliveryStatus::Pending.as_str())),
    )
    .set((
        notification_deliveries::status.eq(DeliveryStatus::Dead.as_str()),
        notification_deliveries::last_error.eq(Some("endpoint deleted")),
    ))
    .execute(conn)?;
    diesel::delete(webhook_endpoints::table.find(id)).execute(conn)
}

/// Pending digest emails created before `cutoff` and not leased: `(delivery id, user id)`.
pub fn due_digest_deliveries(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, Option<String>)>> {
    notification_deliveries::table
        .filter(notification_deliveries::status.eq(DeliveryStatus::Pending.as_str()))
        .filter(notification_deliveries::digest.eq(true))
        .filter(notification_deliveries::created_at.lt(cutoff))
        .filter(
            notification_deliveries::locked_until
                .is_null()
                .or(notification_deliveries::locked_until.le(now)),
        )
        .order(notification_deliveries::created_at.asc())
        .select((notification_deliveries::id, notification_deliveries::user_id))
        .limit(limit)
        .load(conn)
}

/// Restarts the retry window of a delivery put back in the queue (the window counts from `created_at`).
pub fn reset_window(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(notification_deliveries::table.find(id))
        .set(notification_deliveries::created_at.eq(now))
        .execute(conn)
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// PostgreSQL: selects due, unleased deliveries with `FOR UPDATE SKIP LOCKED` and leases them in one
/// transaction, so concurrent instances take disjoint batches without waiting on each other's rows.
pub fn claim_skip_locked(
    conn: &mut DbConn,
    worker: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<String>> {
    crate::db::write_tx(conn, |tx| {
        let rows: Vec<IdRow> = diesel::sql_query(
            "SELECT id FROM notification_deliveries \
             WHERE status = 'pending' AND digest = FALSE AND next_attempt_at <= $1 \
               AND (locked_until IS NULL OR locked_until <= $1) \
             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind::<diesel::sql_types::Timestamp, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load(tx)?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            if take_lease(tx, &row.id, worker, now, until)? {
                claimed.push(row.id);
            }
        }
        Ok(claimed)
    })
}
