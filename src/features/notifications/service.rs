//! Use cases of notifications: the caller's feed and email preference, and an organisation's webhook
//! endpoints (register, change, delete, rotate the secret, list and redeliver deliveries). Each write is one
//! transaction with its audit event; secrets never reach the audit trail.

use crate::features::audit::AuditAction;
use ipnet::IpNet;
use serde_json::json;

use super::dto::{
    EmailPreference, MarkedRead, Notification, NotificationPreferences, Webhook, WebhookDelivery,
    WebhookInput,
};
use super::repo::{self, WebhookRow};
use super::{signing, ssrf};
use crate::access::{Actor, Hat};
use crate::db::{self, DbConn};
use crate::domain::status::EmailMode;
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, now_micros};

/// Longest accepted webhook URL and description.
const URL_MAX: usize = 2_000;
const DESCRIPTION_MAX: usize = 500;

/// The caller's feed after the keyset position `after`: up to `limit + 1` items (the route pages them) and the
/// unread count.
pub fn feed(
    conn: &mut DbConn,
    actor: &Actor,
    after: Option<&str>,
    limit: u32,
) -> AppResult<(Vec<Notification>, i64)> {
    let rows = repo::feed_page(conn, &actor.user_id, after, i64::from(limit) + 1)?;
    let items: Vec<Notification> = rows.into_iter().map(Notification::from).collect();
    Ok((items, repo::unread_count(conn, &actor.user_id)?))
}

/// Marks one notification (`Some(id)`) or all of the caller's as read.
pub fn mark_read(conn: &mut DbConn, actor: &Actor, id: Option<&str>) -> AppResult<MarkedRead> {
    if let Some(id) = id
        && !repo::feed_item_exists(conn, &actor.user_id, id)?
    {
        return Err(AppError::not_found("You have no notification with this id."));
    }
    let marked = db::write_tx(conn, |tx| repo::mark_read(tx, &actor.user_id, id, now_micros()))?;
    Ok(MarkedRead {
        marked,
        unread_count: repo::unread_count(conn, &actor.user_id)?,
    })
}

fn preference_of(mode: EmailMode) -> EmailPreference {
    match mode {
        EmailMode::Immediate => EmailPreference::Immediate,
        EmailMode::DailyDigest => EmailPreference::DailyDigest,
        EmailMode::Off => EmailPreference::Off,
    }
}

pub fn preferences(conn: &mut DbConn, actor: &Actor) -> AppResult<NotificationPreferences> {
    // No stored preference: immediate (an unknown stored one fails the query, never falls back to this).
    let mode = repo::email_mode(conn, &actor.user_id)?.unwrap_or(EmailMode::Immediate);
    Ok(NotificationPreferences {
        email: preference_of(mode),
    })
}

pub fn set_preferences(
    conn: &mut DbConn,
    actor: &Actor,
    input: &NotificationPreferences,
) -> AppResult<NotificationPreferences> {
    let mode = match input.email {
        EmailPreference::Immediate => EmailMode::Immediate,
        EmailPreference::DailyDigest => EmailMode::DailyDigest,
        EmailPreference::Off => EmailMode::Off,
    };
    db::write_tx(conn, |tx| {
        repo::set_email_mode(tx, &actor.user_id, mode, now_micros())?;
        audit::append(
            tx,
            actor
                .audit()
                .event(
                    AuditAction::NotificationPreferencesUpdate,
                    "user",
                    Some(&actor.user_id),
                )
                .after(json!({"email": mode.as_str()})),
        )?;
        Ok::<_, AppError>(())
    })?;
    Ok(NotificationPreferences { email: input.email })
}

/// Object-level rule: administrators manage every organisation's endpoints; anyone else only those of the
/// organisation their hat acts for (its focal point).
fn may_manage(conn: &mut DbConn, actor: &Actor, org: &str) -> AppResult<()> {
    if crate::features::identity::repo::find_organization(conn, org)?.is_none() {
        return Err(AppError::not_found("No organisation with this id."));
    }
    if actor.hat() == Some(Hat::Admin) || crate::access::acting_organization(actor) == org {
        Ok(())
    } else {
        // Recorded like every object-level refusal.
        Err(crate::features::identity::service::deny(
            conn,
            actor,
            AuditAction::WebhookManage,
            "organization",
            org,
            "Only an administrator or someone acting for this organisation manages its webhooks.",
        ))
    }
}

fn find_hook(conn: &mut DbConn, org: &str, id: &str) -> AppResult<WebhookRow> {
    repo::find_webhook(conn, id)?
        .filter(|h| h.organization_id == org)
        .ok_or_else(|| AppError::not_found("This organisation has no webhook with this id."))
}

fn checked_url(url: &str, allow: &[IpNet]) -> AppResult<String> {
    let url = url.trim();
    if url.chars().count() > URL_MAX {
        return Err(AppError::validation(vec![FieldError::new(
            "url",
            format!("is longer than {URL_MAX} characters"),
        )]));
    }
    ssrf::check(url, allow).map_err(|e| AppError::validation(vec![FieldError::new("url", e)]))?;
    Ok(url.to_owned())
}

fn checked_description(d: Option<&str>) -> AppResult<String> {
    let d = d.unwrap_or("").trim();
    if d.chars().count() > DESCRIPTION_MAX {
        return Err(AppError::validation(vec![FieldError::new(
            "description",
            format!("is longer than {DESCRIPTION_MAX} characters"),
        )]));
    }
    Ok(d.to_owned())
}

fn described(h: &WebhookRow) -> serde_json::Value {
    json!({"organization_id": h.organization_id, "url": h.url, "description": h.description, "active": h.active})
}

pub fn list_webhooks(conn: &mut DbConn, actor: &Actor, org: &str) -> AppResult<Vec<Webhook>> {
    may_manage(conn, actor, org)?;
    Ok(repo::webhooks_of(conn, org)?
        .into_iter()
        .map(|h| Webhook::from_row(h, false))
        .collect())
}

pub fn get_webhook(conn: &mut DbConn, actor: &Actor, org: &str, id: &str) -> AppResult<Webhook> {
    may_manage(conn, actor, org)?;
    Ok(Webhook::from_row(find_hook(conn, org, id)?, false))
}

pub fn create_webhook(
    conn: &mut DbConn,
    actor: &Actor,
    org: &str,
    input: &WebhookInput,
    allow: &[IpNet],
) -> AppResult<Webhook> {
    may_manage(conn, actor, org)?;
    let url = match input.url.as_deref() {
        Some(u) => checked_url(u, allow)?,
        None => return Err(AppError::validation(vec![FieldError::new("url", "is required")])),
    };
    let now = now_micros();
    let row = WebhookRow {
        id: uuid::Uuid::now_v7().to_string(),
        organization_id: org.to_owned(),
        url,
        description: checked_description(input.description.as_deref())?,
        secret: signing::new_secret(),
        active: input.active.unwrap_or(true),
        version: 1,
        created_by: actor.user_id.clone(),
        created_at: now,
        updated_at: now,
    };
    db::write_tx(conn, |tx| {
        repo::insert_webhook(tx, &row)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::WebhookCreate, "webhook", Some(&row.id))
                .after(described(&row)),
        )?;
        Ok::<_, AppError>(())
    })?;
    Ok(Webhook::from_row(row, true))
}

pub fn update_webhook(
    conn: &mut DbConn,
    actor: &Actor,
    org: &str,
    id: &str,
    expected_version: i64,
    input: &WebhookInput,
    allow: &[IpNet],
) -> AppResult<Webhook> {
    may_manage(conn, actor, org)?;
    let url = input.url.as_deref().map(|u| checked_url(u, allow)).transpose()?;
    let description = input
        .description
        .as_deref()
        .map(|d| checked_description(Some(d)))
        .transpose()?;
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "webhook_endpoints", id)?;
        let mut hook = find_hook(tx, org, id)?;
        if hook.version != expected_version {
            return Err(AppError::stale(hook.version));
        }
        let before = described(&hook);
        if let Some(url) = url {
            hook.url = url;
        }
        if let Some(d) = description {
            hook.description = d;
        }
        if let Some(active) = input.active {
            hook.active = active;
        }
        hook.version += 1;
        hook.updated_at = now_micros();
        repo::save_webhook(tx, &hook)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::WebhookUpdate, "webhook", Some(id))
                .before(before)
                .after(described(&hook)),
        )?;
        Ok(Webhook::from_row(hook, false))
    })
}

pub fn delete_webhook(conn: &mut DbConn, actor: &Actor, org: &str, id: &str) -> AppResult<()> {
    may_manage(conn, actor, org)?;
    db::write_tx(conn, |tx| {
        let hook = find_hook(tx, org, id)?;
        repo::delete_webhook(tx, id)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::WebhookDelete, "webhook", Some(id))
                .before(described(&hook)),
        )?;
        Ok(())
    })
}

/// A new secret, shown once; the old one stops signing at once.
pub fn rotate_secret(conn: &mut DbConn, actor: &Actor, org: &str, id: &str) -> AppResult<Webhook> {
    may_manage(conn, actor, org)?;
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "webhook_endpoints", id)?;
        let mut hook = find_hook(tx, org, id)?;
        hook.secret = signing::new_secret();
        hook.version += 1;
        hook.updated_at = now_micros();
        repo::save_webhook(tx, &hook)?;
        // The audit records that the secret changed, never the secret.
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::WebhookRotateSecret, "webhook", Some(id))
                .after(json!({"version": hook.version})),
        )?;
        Ok(Webhook::from_row(hook, true))
    })
}

pub fn deliveries(
    conn: &mut DbConn,
    actor: &Actor,
    org: &str,
    id: &str,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<WebhookDelivery>> {
    may_manage(conn, actor, org)?;
    find_hook(conn, org, id)?;
    let rows = repo::deliveries_of_webhook(conn, id, after, i64::from(limit) + 1)?;
    Ok(rows.into_iter().map(WebhookDelivery::from).collect())
}

/// Puts a delivery (typically a dead letter) back in the queue, due now, with a fresh retry window.
pub fn redeliver(
    conn: &mut DbConn,
    actor: &Actor,
    org: &str,
    id: &str,
    delivery_id: &str,
) -> AppResult<WebhookDelivery> {
    may_manage(conn, actor, org)?;
    db::write_tx(conn, |tx| {
        find_hook(tx, org, id)?;
        let delivery = repo::find_delivery(tx, delivery_id)?
            .filter(|d| d.webhook_id.as_deref() == Some(id))
            .ok_or_else(|| AppError::not_found("This webhook has no delivery with this id."))?;
        let now = now_micros();
        if delivery.status == crate::domain::status::DeliveryStatus::Pending
            && delivery.locked_until.is_some_and(|t| t > now)
        {
            return Err(AppError::conflict("This delivery is being attempted right now."));
        }
        repo::requeue(tx, delivery_id, now)?;
        repo::reset_window(tx, delivery_id, now)?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::WebhookRedeliver, "webhook", Some(id))
                .after(json!({"delivery_id": delivery_id, "event_id": delivery.event_id, "previous_status": delivery.status})),
        )?;
        let row =
            repo::find_delivery(tx, delivery_id)?.ok_or_else(|| AppError::internal("delivery vanished"))?;
        Ok(WebhookDelivery::from(row))
    })
}
