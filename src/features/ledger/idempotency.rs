//! Idempotent money-moving requests. A key is claimed in its own short transaction (so a concurrent duplicate
//! sees it and gets a 409), the operation and the stored response are written in one transaction with the
//! posting, and a failed operation releases the claim (validation failures are not stored). Same key + same
//! request replays the first response byte for byte; same key + another request is a 422. A unique index on
//! the transaction's idempotency key is the last guard: one key never makes two transactions.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{Text, Timestamp};
use sha2::{Digest, Sha256};

use crate::db::schema::idempotency_keys;
use crate::db::{self, DbConn};
use crate::domain::canonical_json::to_canonical_string;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::features::audit::now_micros;

/// How long a claim may stay in progress before another request with the key may take it over (a crashed
/// instance must not block the key forever).
const CLAIM_LEASE_SECS: i64 = 60;

/// The identity of a money-moving request: who, which key, and a fingerprint of what was asked.
#[derive(Debug, Clone)]
pub struct IdempotentRequest {
    pub user_id: String,
    pub key: String,
    pub request_hash: String,
}

impl IdempotentRequest {
    /// Reads `Idempotency-Key` (required: 400 without it) and fingerprints method, path and the canonical body.
    pub fn new(
        user_id: &str,
        key: Option<&str>,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> AppResult<Self> {
        let key = key.map(str::trim).filter(|k| !k.is_empty()).ok_or_else(|| {
            AppError::bad_request(
                "Money-moving requests need an `Idempotency-Key` header (e.g. a UUID made once per intended payment), \
                 so a retry on a bad network cannot move money twice.",
            )
        })?;
        if key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::bad_request(
                "`Idempotency-Key` must be 1–255 visible ASCII characters.",
            ));
        }
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b" ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
        hasher.update(to_canonical_string(body).as_bytes());
        Ok(Self {
            user_id: user_id.to_owned(),
            key: key.to_owned(),
            request_hash: hex::encode(hasher.finalize()),
        })
    }

    /// The value kept on the ledger transaction (unique there).
    pub fn ledger_key(&self) -> String {
        format!("{}:{}", self.user_id, self.key)
    }
}

/// A response as first sent, kept for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
    pub replayed: bool,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = idempotency_keys)]
struct KeyRow {
    request_hash: String,
    status: String,
    response_status: Option<i32>,
    response_body: Option<String>,
    locked_until: NaiveDateTime,
    expires_at: NaiveDateTime,
}

enum Claim {
    Claimed,
    Replay(StoredResponse),
}

fn claim(conn: &mut DbConn, req: &IdempotentRequest, retention: Duration) -> AppResult<Claim> {
    let now = now_micros();
    let lease = now + Duration::seconds(CLAIM_LEASE_SECS);
    db::write_tx(conn, |tx| {
        let insert = match tx {
            DbConn::Pg(_) => {
                "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, locked_until, created_at, expires_at) \
                 VALUES ($1, $2, $3, 'in_progress', $4, $5, $6) ON CONFLICT DO NOTHING"
            }
            DbConn::Sqlite(_) => {
                "INSERT INTO idempotency_keys (user_id, idem_key, request_hash, status, locked_until, created_at, expires_at) \
                 VALUES (?, ?, ?, 'in_progress', ?, ?, ?) ON CONFLICT DO NOTHING"
            }
        };
        let inserted = diesel::sql_query(insert)
            .bind::<Text, _>(&req.user_id)
            .bind::<Text, _>(&req.key)
            .bind::<Text, _>(&req.request_hash)
            .bind::<Timestamp, _>(lease)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(now + retention)
            .execute(tx)?;
        if inserted == 1 {
            return Ok(Claim::Claimed);
        }
        let row: KeyRow = idempotency_keys::table
            .find((&req.user_id, &req.key))
            .select(KeyRow::as_select())
            .first(tx)?;
        let target = idempotency_keys::table.find((&req.user_id, &req.key));
        if row.expires_at <= now {
            // An expired key is free again.
            diesel::update(target)
                .set((
                    idempotency_keys::request_hash.eq(&req.request_hash),
                    idempotency_keys::status.eq("in_progress"),
                    idempotency_keys::response_status.eq(None::<i32>),
                    idempotency_keys::response_body.eq(None::<String>),
                    idempotency_keys::transaction_id.eq(None::<String>),
                    idempotency_keys::locked_until.eq(lease),
                    idempotency_keys::created_at.eq(now),
                    idempotency_keys::expires_at.eq(now + retention),
                ))
                .execute(tx)?;
            return Ok(Claim::Claimed);
        }
        if row.request_hash != req.request_hash {
            return Err(AppError::new(
                ErrorKind::IdempotencyKeyReused,
                "This Idempotency-Key was used for a different request; use a new key for a new request.",
            ));
        }
        match (row.status.as_str(), row.response_status, row.response_body) {
            ("done", Some(status), Some(body)) => Ok(Claim::Replay(StoredResponse {
                status: u16::try_from(status).unwrap_or(200),
                body,
                replayed: true,
            })),
            _ if row.locked_until > now => Err(AppError::new(
                ErrorKind::RequestInProgress,
                "A request with this Idempotency-Key is still being processed; retry shortly to receive its result.",
            )),
            _ => {
                // The first attempt died mid-way (its transaction rolled back): take the key over.
                diesel::update(target)
                    .set(idempotency_keys::locked_until.eq(lease))
                    .execute(tx)?;
                Ok(Claim::Claimed)
            }
        }
    })
}

fn release(conn: &mut DbConn, req: &IdempotentRequest) {
    let released = db::write_tx(conn, |tx| {
        diesel::delete(
            idempotency_keys::table
                .find((&req.user_id, &req.key))
                .filter(idempotency_keys::status.eq("in_progress")),
        )
        .execute(tx)
    });
    if let Err(e) = released {
        tracing::warn!(error = %e, "could not release an idempotency claim; it expires with its lease");
    }
}

/// Runs `operation` at most once per key: it returns `(status, json body, transaction id)` and runs inside the
/// write transaction that also stores the response.
pub fn run<F>(
    conn: &mut DbConn,
    req: &IdempotentRequest,
    retention: Duration,
    operation: F,
) -> AppResult<StoredResponse>
where
    F: FnOnce(&mut DbConn) -> AppResult<(u16, String, Option<String>)>,
{
    if let Claim::Replay(stored) = claim(conn, req, retention)? {
        return Ok(stored);
    }
    let outcome = db::write_tx(conn, |tx| {
        let (status, body, transaction_id) = operation(tx)?;
        let updated = diesel::update(
            idempotency_keys::table
                .find((&req.user_id, &req.key))
                .filter(idempotency_keys::status.eq("in_progress")),
        )
        .set((
            idempotency_keys::status.eq("done"),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(&body),
            idempotency_keys::transaction_id.eq(&transaction_id),
        ))
        .execute(tx)?;
        if updated != 1 {
            return Err(AppError::new(
                ErrorKind::RequestInProgress,
                "Another request with this Idempotency-Key finished first; retry to receive its result.",
            ));
        }
        Ok(StoredResponse {
            status,
            body,
            replayed: false,
        })
    });
    match outcome {
        Ok(stored) => Ok(stored),
        Err(e) => {
            release(conn, req);
            Err(unique_key_race(e))
        }
    }
}

/// The unique index on a transaction's idempotency key fired: another attempt with the key posted first.
fn unique_key_race(e: AppError) -> AppError {
    let duplicate = e
        .cause()
        .and_then(|c| c.downcast_ref::<diesel::result::Error>())
        .is_some_and(|d| {
            matches!(
                d,
                diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
            )
        });
    if duplicate {
        AppError::new(
            ErrorKind::RequestInProgress,
            "Another request with this Idempotency-Key posted first; retry to receive its result.",
        )
    } else {
        e
    }
}

/// Deletes keys past their retention (the sweeper); returns how many. Their transactions stay, and keep the
/// key on the transaction row for the ledger check.
pub fn purge_expired(conn: &mut DbConn, now: NaiveDateTime) -> diesel::QueryResult<usize> {
    db::write_tx(conn, |tx| {
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.lt(now))).execute(tx)
    })
}
