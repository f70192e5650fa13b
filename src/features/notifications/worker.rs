//! The delivery worker: every `serve` instance runs one on its own thread. It claims due deliveries by taking
//! a short lease (a conditional update, so of several instances exactly one wins each delivery), commits the
//! claim, sends with no transaction open, then records the result — delivered, retried with exponential
//! backoff, or dead-lettered once the retry window has passed. A worker killed mid-send leaves a lease that
//! expires; the delivery is then sent again (at least once; receivers dedupe on `webhook-id`).

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Timelike;
use ipnet::IpNet;

use super::email::{self, Item, Mailer};
use super::repo::{self, DeliveryRow, EventRow};
use super::{reminders, signing, ssrf};
use crate::config::NotificationSettings;
use crate::db::{DbConn, DbPool};
use crate::domain::status::{DeliveryChannel, DeliveryStatus};
use crate::features::audit::now_micros;
use crate::metrics::NotificationMetrics;

/// One worker: its identity (the lease holder), its settings and its mail transport.
pub struct Worker {
    pub id: String,
    settings: NotificationSettings,
    allow: Vec<IpNet>,
    mailer: Mailer,
    /// When this worker last looked for reminders (they need minutes, not the poll interval, of precision).
    reminded_at: Mutex<Option<Instant>>,
}

/// How often a worker looks for reminders to record.
const REMINDERS_EVERY: Duration = Duration::from_secs(60);

/// How one attempt ended.
enum Outcome {
    Delivered(Option<i32>),
    /// Worth retrying.
    Failed(String, Option<i32>),
    /// Never deliverable (no address, endpoint gone, refused target).
    Dead(String),
}

impl Worker {
    pub fn new(settings: &NotificationSettings) -> Result<Self, String> {
        Ok(Self {
            id: uuid::Uuid::now_v7().to_string(),
            settings: settings.clone(),
            allow: settings.allowed_cidrs(),
            mailer: Mailer::from_settings(settings)?,
            reminded_at: Mutex::new(None),
        })
    }

    /// One pass: reminders, then due deliveries, then digests. Returns how many deliveries it attempted.
    pub fn run_once(&self, pool: &DbPool) -> usize {
        let Ok(mut conn) = pool.get() else {
            tracing::warn!("notification delivery skipped: no database connection");
            return 0;
        };
        if self.reminders_due()
            && let Err(e) = reminders::run(&mut conn, now_micros())
        {
            tracing::warn!(error = %e, "notification reminders failed");
        }
        let mut attempted = 0;
        match self.claim(&mut conn) {
            Ok(claimed) => {
                for id in claimed {
                    attempted += 1;
                    self.deliver(&mut conn, &id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not claim notification deliveries"),
        }
        attempted += self.digests(&mut conn);
        if let Some(m) = NotificationMetrics::get() {
            let age = repo::oldest_pending(&mut conn)
                .ok()
                .flatten()
                .map(|t| (now_micros() - t).num_seconds().max(0))
                .unwrap_or(0);
            m.oldest_undelivered_age.set(age);
            m.worker_last_pass.set(chrono::Utc::now().timestamp());
        }
        attempted
    }

    fn reminders_due(&self) -> bool {
        let Ok(mut last) = self.reminded_at.lock() else {
            return true;
        };
        if last.is_some_and(|t| t.elapsed() < REMINDERS_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Leases due deliveries to this worker and commits the leases before anything is sent.
    fn claim(&self, conn: &mut DbConn) -> diesel::QueryResult<Vec<String>> {
        let now = now_micros();
        let until = now + chrono::Duration::seconds(self.settings.lease_secs as i64);
        let limit = i64::from(self.settings.batch_size);
        if let DbConn::Pg(_) = conn {
            return repo::claim_skip_locked(conn, &self.id, now, until, limit);
        }
        // SQLite has one writer at a time: each lease is a conditional update of its own.
        let due = repo::due_delivery_ids(conn, now, limit)?;
        let mut claimed = Vec::new();
        for id in due {
            if repo::take_lease(conn, &id, &self.id, now, until)? {
                claimed.push(id);
            }
        }
        Ok(claimed)
    }

    fn deliver(&self, conn: &mut DbConn, id: &str) {
        let loaded = repo::find_delivery(conn, id).and_then(|d| match d {
            Some(d) => Ok(repo::find_event(conn, &d.event_id)?.map(|e| (d, e))),
            None => Ok(None),
        });
        let (delivery, event) = match loaded {
            Ok(Some(pair)) => pair,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(delivery = id, error = %e, "could not load a delivery");
                return;
            }
        };
        // The channel was read as an enum: a delivery with an unknown stored channel failed to load above
        // (logged, left for an operator), it is not dead-lettered as if it had been tried.
        let outcome = match delivery.channel {
            DeliveryChannel::Email => self.send_email(conn, &delivery, std::slice::from_ref(&event)),
            DeliveryChannel::Webhook => self.send_webhook(conn, &delivery, &event),
        };
        self.record(conn, &delivery, outcome);
    }

    fn url(&self, link: &str) -> String {
        format!("{}{link}", self.settings.public_base_url.trim_end_matches('/'))
    }

    fn send_email(&self, conn: &mut DbConn, delivery: &DeliveryRow, events: &[EventRow]) -> Outcome {
        let Some(user_id) = &delivery.user_id else {
            return Outcome::Dead("email delivery without a reader".into());
        };
        let user = match crate::features::identity::repo::find_user(conn, user_id) {
            Ok(Some(u)) => u,
            Ok(None) => return Outcome::Dead("reader no longer exists".into()),
            Err(e) => return Outcome::Failed(format!("database: {e}"), None),
        };
        if user.status == crate::domain::status::AccountStatus::Disabled || user.email.trim().is_empty() {
            return Outcome::Dead("reader disabled or without an email address".into());
        }
        let items: Vec<Item> = events
            .iter()
            .map(|e| Item {
                summary: e.summary.clone(),
                reason: delivery.reason.clone(),
                url: self.url(&e.link),
            })
            .collect();
        let subject = match events {
            [one] => one.summary.clone(),
            many => format!("qip-pool: {} notifications (daily digest)", many.len()),
        };
        let message = match email::compose(
            &self.settings.smtp.from,
            &user.display_name,
            &user.email,
            &subject,
            &items,
        ) {
            Ok(m) => m,
            Err(e) => return Outcome::Dead(e),
        };
        match self.mailer.send(&message) {
            Ok(()) => Outcome::Delivered(None),
            Err(e) => Outcome::Failed(e, None),
        }
    }

    fn send_webhook(&self, conn: &mut DbConn, delivery: &DeliveryRow, event: &EventRow) -> Outcome {
        let Some(webhook_id) = &delivery.webhook_id else {
            return Outcome::Dead("webhook delivery without an endpoint".into());
        };
        let hook = match repo::find_webhook(conn, webhook_id) {
            Ok(Some(h)) if h.active => h,
            Ok(_) => return Outcome::Dead("endpoint deleted or disabled".into()),
            Err(e) => return Outcome::Failed(format!("database: {e}"), None),
        };
        // Checked again now: DNS may have changed since registration.
        let target = match ssrf::check(&hook.url, &self.allow) {
            Ok(t) => t,
            Err(e) => return Outcome::Dead(format!("refused: {e}")),
        };
        let body = webhook_body(event, &self.url(&event.link));
        let timestamp = chrono::Utc::now().timestamp();
        let Some(signature) = signing::sign(&hook.secret, &event.id, timestamp, &body) else {
            return Outcome::Dead("endpoint secret unreadable".into());
        };
        let timeout = Duration::from_secs(self.settings.webhook_timeout_secs);
        let checked = target.addr;
        // The resolver answers with the address checked above, whatever the name: no second lookup.
        let agent = ureq::AgentBuilder::new()
            .resolver(move |_: &str| Ok(vec![checked]))
            .redirects(0)
            .timeout_connect(timeout)
            .timeout(timeout)
            .user_agent("qip-pool-webhooks/1")
            .build();
        let sent = agent
            .post(target.url.as_str())
            .set("content-type", "application/json")
            .set("webhook-id", &event.id)
            .set("webhook-timestamp", &timestamp.to_string())
            .set("webhook-signature", &signature)
            .send_string(&body);
        let (status, response) = match sent {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(e) => return Outcome::Failed(format!("request failed: {e}"), None),
        };
        let status = i32::from(status);
        // Read at most 4 KiB of the answer, for the error message only.
        let mut excerpt = String::new();
        let _ = response.into_reader().take(4096).read_to_string(&mut excerpt);
        if (200..300).contains(&status) {
            Outcome::Delivered(Some(status))
        } else {
            let excerpt: String = excerpt.chars().take(200).collect();
            Outcome::Failed(format!("HTTP {status}: {}", excerpt.trim()), Some(status))
        }
    }

    fn record(&self, conn: &mut DbConn, delivery: &DeliveryRow, outcome: Outcome) {
        let now = now_micros();
        let metrics = NotificationMetrics::get();
        let channel = [delivery.channel.as_str()];
        let attempts = delivery.attempts + 1;
        let result = match &outcome {
            Outcome::Delivered(code) => {
                if let Some(m) = metrics {
                    m.sent.with_label_values(&channel).inc();
                }
                repo::record_attempt(
                    conn,
                    &delivery.id,
                    &self.id,
                    DeliveryStatus::Delivered,
                    attempts,
                    now,
                    None,
                    *code,
                    Some(now),
                )
            }
            Outcome::Failed(error, code) => {
                let next = now + backoff(&self.settings, attempts);
                let give_up = next - delivery.created_at
                    > chrono::Duration::seconds(self.settings.retry_window_secs as i64);
                if let Some(m) = metrics {
                    m.failed.with_label_values(&channel).inc();
                    if give_up {
                        m.dead_lettered.with_label_values(&channel).inc();
                    } else {
                        m.retried.with_label_values(&channel).inc();
                    }
                }
                tracing::warn!(
                    delivery = delivery.id,
                    attempts,
                    error,
                    give_up,
                    "notification delivery failed"
                );
                let status = if give_up {
                    DeliveryStatus::Dead
                } else {
                    DeliveryStatus::Pending
                };
                repo::record_attempt(
                    conn,
                    &delivery.id,
                    &self.id,
                    status,
                    attempts,
                    next,
                    Some(error),
                    *code,
                    None,
                )
            }
            Outcome::Dead(error) => {
                if let Some(m) = metrics {
                    m.failed.with_label_values(&channel).inc();
                    m.dead_lettered.with_label_values(&channel).inc();
                }
                tracing::warn!(
                    delivery = delivery.id,
                    error,
                    "notification delivery dead-lettered"
                );
                repo::record_attempt(
                    conn,
                    &delivery.id,
                    &self.id,
                    DeliveryStatus::Dead,
                    attempts,
                    now,
                    Some(error),
                    None,
                    None,
                )
            }
        };
        if let Err(e) = result {
            tracing::warn!(delivery = delivery.id, error = %e, "could not record a delivery attempt");
        }
    }

    /// Daily digests: from `digest_hour_utc` on, everything a digest reader got before today's digest time
    /// goes out as one message per reader.
    fn digests(&self, conn: &mut DbConn) -> usize {
        let now = now_micros();
        let Some(cutoff) = now.date().and_hms_opt(self.settings.digest_hour_utc, 0, 0) else {
            return 0;
        };
        if now.hour() < self.settings.digest_hour_utc {
            return 0;
        }
        let due = match repo::due_digest_deliveries(conn, cutoff, now, 500) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "could not list digest deliveries");
                return 0;
            }
        };
        let until = now + chrono::Duration::seconds(self.settings.lease_secs as i64);
        let mut by_user: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, user) in due {
            if let Some(user) = user
                && repo::take_lease(conn, &id, &self.id, now, until).unwrap_or(false)
            {
                by_user.entry(user).or_default().push(id);
            }
        }
        let mut attempted = 0;
        for ids in by_user.values() {
            let mut pairs = Vec::new();
            for id in ids {
                if let Ok(Some(d)) = repo::find_delivery(conn, id)
                    && let Ok(Some(e)) = repo::find_event(conn, &d.event_id)
                {
                    pairs.push((d, e));
                }
            }
            let Some((first, _)) = pairs.first() else { continue };
            let events: Vec<EventRow> = pairs.iter().map(|(_, e)| e.clone()).collect();
            let mut first = first.clone();
            first.reason = "you chose a daily digest of your notifications".into();
            let outcome = self.send_email(conn, &first, &events);
            for (d, _) in &pairs {
                attempted += 1;
                let o = match &outcome {
                    Outcome::Delivered(c) => Outcome::Delivered(*c),
                    Outcome::Failed(e, c) => Outcome::Failed(e.clone(), *c),
                    Outcome::Dead(e) => Outcome::Dead(e.clone()),
                };
                self.record(conn, d, o);
            }
        }
        attempted
    }
}

/// The delay before attempt `attempts + 1`: base · 2^(attempts−1), capped.
pub fn backoff(settings: &NotificationSettings, attempts: i32) -> chrono::Duration {
    let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(30);
    let secs = settings
        .retry_base_secs
        .saturating_mul(1u64 << exp)
        .min(settings.retry_max_delay_secs.max(settings.retry_base_secs));
    chrono::Duration::seconds(secs as i64)
}

/// The JSON body of a webhook: the same bytes on every attempt (Standard Webhooks `type`/`timestamp`/`data`).
pub fn webhook_body(event: &EventRow, url: &str) -> String {
    let mut data: serde_json::Value = serde_json::from_str(&event.payload).unwrap_or_default();
    if let Some(obj) = data.as_object_mut() {
        obj.insert("url".into(), serde_json::Value::String(url.to_owned()));
    }
    serde_json::json!({
        "type": event.kind,
        "timestamp": crate::features::audit::service::format_timestamp(&event.created_at),
        "data": data,
    })
    .to_string()
}

/// Runs the worker on its own thread (it blocks on network I/O, with no transaction open) for the life of
/// the process.
pub fn spawn(pool: DbPool, settings: Arc<crate::config::Settings>) {
    if !settings.notifications.worker_enabled {
        tracing::info!("notification worker disabled (notifications.worker_enabled = false)");
        return;
    }
    let worker = match Worker::new(&settings.notifications) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "notification worker not started");
            return;
        }
    };
    let interval = Duration::from_millis(settings.notifications.worker_interval_ms.max(50));
    let started = std::thread::Builder::new()
        .name("notification-worker".into())
        .spawn(move || {
            loop {
                while worker.run_once(&pool) > 0 {}
                std::thread::sleep(interval);
            }
        });
    if let Err(e) = started {
        tracing::error!(error = %e, "notification worker thread not started");
    }
}
