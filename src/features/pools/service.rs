//! Pool use cases: create, read, update settings (a new settings version, audited), and loading the policy a
//! proposal is checked against.

use crate::features::audit::AuditAction;
use serde_json::json;

use super::dto::{NewPool, PolicySettings, Pool, PoolUpdate};
use super::repo::{self, PoolRow, PoolSettingsRow};
use crate::access::Actor;
use crate::db::{self, DbConn};
use crate::domain::canonical_json::to_canonical_string;
use crate::domain::ids::PoolId;
use crate::domain::money::{Currency, currency};
use crate::domain::pool_policy::PoolPolicy;
use crate::error::{AppError, AppResult, FieldError};
use crate::features::audit::{self, now_micros};

/// A pool with the settings version it currently uses.
#[derive(Debug, Clone)]
pub struct LoadedPool {
    pub row: PoolRow,
    pub currency: Currency,
    pub policy: PoolPolicy,
}

fn currency_of(row: &PoolRow) -> AppResult<Currency> {
    currency(&row.currency).ok_or_else(|| AppError::internal(format!("pool {} has unknown currency", row.id)))
}

fn decode_policy(row: &PoolSettingsRow) -> AppResult<PoolPolicy> {
    serde_json::from_str(&row.settings)
        .map_err(|e| AppError::internal(format!("pool settings unreadable: {e}")))
}

/// The pool and its current settings, or 404.
pub fn load(conn: &mut DbConn, pool_id: &PoolId) -> AppResult<LoadedPool> {
    let row = repo::find_pool(conn, pool_id.as_str())?
        .ok_or_else(|| AppError::not_found("No pool with this id."))?;
    load_version(conn, row.clone(), row.settings_version)
}

/// The pool with a given settings version (what a proposal was checked against).
pub fn load_version(conn: &mut DbConn, row: PoolRow, version: i32) -> AppResult<LoadedPool> {
    let settings = repo::settings(conn, &row.id, version)?
        .ok_or_else(|| AppError::internal(format!("pool {} lacks settings version {version}", row.id)))?;
    Ok(LoadedPool {
        currency: currency_of(&row)?,
        policy: decode_policy(&settings)?,
        row,
    })
}

fn view(pool: &LoadedPool) -> Pool {
    let r = &pool.row;
    Pool {
        id: r.id.clone(),
        code: r.code.clone(),
        name: r.name.clone(),
        currency: r.currency.clone(),
        funding_start: r.funding_start,
        funding_end: r.funding_end,
        settings: PolicySettings::from_domain(&pool.policy, pool.currency),
        settings_version: r.settings_version,
        version: r.version,
        created_at: r.created_at.and_utc(),
        updated_at: r.updated_at.and_utc(),
        balances: None,
    }
}

fn policy_json(policy: &PoolPolicy) -> String {
    to_canonical_string(&serde_json::to_value(policy).unwrap_or_default())
}

pub fn create_pool(conn: &mut DbConn, actor: &Actor, input: &NewPool) -> AppResult<Pool> {
    let mut errors = Vec::new();
    if !(2..=12).contains(&input.code.len())
        || !input
            .code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        errors.push(FieldError::new("code", "must be 2–12 characters of A–Z and 0–9"));
    }
    if input.name.trim().is_empty() || input.name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1–200 characters"));
    }
    if input.funding_end <= input.funding_start {
        errors.push(FieldError::new("funding_end", "must be after funding_start"));
    }
    let cur = currency(&input.currency);
    if cur.is_none() {
        errors.push(FieldError::new(
            "currency",
            "is not an ISO 4217 currency code this service knows",
        ));
    }
    let policy = match (cur, &input.settings) {
        (Some(c), Some(settings)) => match settings.to_domain(c, "settings.") {
            Ok(p) => Some(p),
            Err(e) => {
                errors.extend(e);
                None
            }
        },
        (Some(c), None) => Some(PoolPolicy::default_for(c.minor_digits())),
        (None, _) => None,
    };
    let (Some(cur), Some(policy), true) = (cur, policy, errors.is_empty()) else {
        return Err(AppError::validation(errors));
    };
    let now = now_micros();
    db::write_tx(conn, |tx| {
        if repo::code_taken(tx, &input.code)? {
            return Err(AppError::conflict(format!(
                "A pool with code {} exists already.",
                input.code
            )));
        }
        let row = PoolRow {
            id: uuid::Uuid::now_v7().to_string(),
            code: input.code.clone(),
            name: input.name.trim().to_owned(),
            currency: cur.code().to_owned(),
            funding_start: input.funding_start,
            funding_end: input.funding_end,
            settings_version: 1,
            version: 1,
            created_by: actor.user_id.clone(),
            created_at: now,
            updated_at: now,
        };
        repo::insert_pool(tx, &row)?;
        repo::insert_settings(
            tx,
            &PoolSettingsRow {
                pool_id: row.id.clone(),
                version: 1,
                settings: policy_json(&policy),
                created_by: actor.user_id.clone(),
                created_at: now,
            },
        )?;
        let pool = view(&LoadedPool {
            row,
            currency: cur,
            policy,
        });
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::PoolCreate, "pool", Some(&pool.id))
                .after(json!(pool)),
        )?;
        Ok(pool)
    })
}

/// Renames a pool and/or replaces its settings (a new settings version), guarded by `If-Match`.
pub fn update_pool(
    conn: &mut DbConn,
    actor: &Actor,
    pool_id: &PoolId,
    expected_version: i64,
    input: &PoolUpdate,
) -> AppResult<Pool> {
    let now = now_micros();
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "pools", pool_id.as_str())?;
        let before = load(tx, pool_id)?;
        if before.row.version != expected_version {
            return Err(AppError::stale(before.row.version));
        }
        let name = match &input.name {
            Some(n) if n.trim().is_empty() || n.chars().count() > 200 => {
                return Err(AppError::invalid_field("name", "must be 1–200 characters"));
            }
            Some(n) => n.trim().to_owned(),
            None => before.row.name.clone(),
        };
        let mut settings_version = before.row.settings_version;
        if let Some(settings) = &input.settings {
            let policy = settings
                .to_domain(before.currency, "settings.")
                .map_err(AppError::validation)?;
            if policy != before.policy {
                settings_version += 1;
                repo::insert_settings(
                    tx,
                    &PoolSettingsRow {
                        pool_id: pool_id.to_string(),
                        version: settings_version,
                        settings: policy_json(&policy),
                        created_by: actor.user_id.clone(),
                        created_at: now,
                    },
                )?;
            }
        }
        let version = before.row.version + 1;
        repo::update_pool(tx, pool_id.as_str(), &name, settings_version, version, now)?;
        let after = load(tx, pool_id)?;
        let (before_view, after_view) = (view(&before), view(&after));
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::PoolUpdate, "pool", Some(pool_id.as_str()))
                .before(json!(before_view))
                .after(json!(after_view)),
        )?;
        Ok(after_view)
    })
}

/// A pool view with its ledger balances.
fn view_with_balances(conn: &mut DbConn, pool: &LoadedPool) -> AppResult<Pool> {
    let mut v = view(pool);
    let b = crate::features::ledger::service::pool_balances_view(
        conn,
        &pool.row.id.as_str().into(),
        pool.currency,
    )?;
    v.balances = Some(super::dto::PoolBalances {
        contributed: b.contributed,
        unallocated: b.unallocated,
        committed: b.committed,
        disbursed: b.disbursed,
    });
    Ok(v)
}

pub fn get_pool(conn: &mut DbConn, pool_id: &PoolId) -> AppResult<Pool> {
    let pool = load(conn, pool_id)?;
    view_with_balances(conn, &pool)
}

pub fn list_pools(conn: &mut DbConn, after: Option<&str>, limit: u32) -> AppResult<Vec<Pool>> {
    repo::list_pools(conn, after, i64::from(limit) + 1)?
        .into_iter()
        .map(|row| {
            let version = row.settings_version;
            let pool = load_version(conn, row, version)?;
            view_with_balances(conn, &pool)
        })
        .collect()
}
