//! Idempotent money-moving requests. The key is claimed inside the same transaction that posts the money and
//! stores the response, so a claim can never outlive its request: a crash, a lost connection or a refusal rolls
//! the claim back with everything else, and the key is free again at once. On PostgreSQL a transaction-scoped
//! advisory lock on the key makes a concurrent duplicate (from any instance) answer 409 at once instead of
//! posting twice; on SQLite `BEGIN IMMEDIATE` already admits one writer, so a duplicate waits and then replays.
//! Contributions written by group commit (`group_commit`) claim by inserting their done record in the statement
//! that posts them: the record's primary key is the guard there.
//! Same key + same request replays the first response byte for byte; same key + another request is a 422.
//! A unique index on the transaction's idempotency key is the last guard: one key never makes two transactions.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::db::cached::{CachedSql, cached_sql};
use crate::db::schema::idempotency_keys;
use crate::db::{self, DbConn};
use crate::domain::canonical_json::to_canonical_string;
use crate::error::{AppError, AppResult, ErrorKind};
use crate::features::audit::now_micros;

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
    expires_at: NaiveDateTime,
}

/// Where a key's stored record stands: `done` (its response kept), or `in_progress` (left only by a version
/// that committed claims separately). Any other stored name is an error, never a free key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyStatus {
    InProgress,
    Done,
}

impl KeyStatus {
    fn as_str(self) -> &'static str {
        match self {
            KeyStatus::InProgress => "in_progress",
            KeyStatus::Done => "done",
        }
    }

    fn parse(text: &str) -> Option<KeyStatus> {
        [KeyStatus::InProgress, KeyStatus::Done]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

crate::domain::status::stored_name!(KeyStatus, "idempotency key status", KeyStatus::parse);

/// What the key's record says before the operation runs.
enum Claim {
    /// No live record: run the operation and insert the record.
    Fresh,
    /// A record past its retention (or left by an older version mid-way): run and overwrite it.
    Stale,
    Replay(StoredResponse),
}

/// The 64-bit advisory-lock id of a key (PostgreSQL's advisory locks take a `bigint`).
fn advisory_lock_id(req: &IdempotentRequest) -> i64 {
    let digest = Sha256::digest(req.ledger_key().as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

#[derive(QueryableByName)]
struct ClaimedKey {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    request_hash: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    status: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    response_status: Option<i32>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    response_body: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Timestamp>)]
    expires_at: Option<NaiveDateTime>,
}

/// PostgreSQL: takes the key's advisory lock and reads its record in one statement (one round trip). The
/// record is read in the statement's snapshot, which may predate the lock: a duplicate that committed in
/// between is then not seen, runs, and is stopped by the unique keys (its idempotency record and the
/// transaction's key) — answered 409 "retry", never posted twice.
fn lock_and_read_pg(tx: &mut DbConn, req: &IdempotentRequest) -> AppResult<Option<KeyRow>> {
    // Prepared once per connection (`db::cached`): this runs first in every money request.
    let got: ClaimedKey = db::cached::cached_sql(
        "SELECT l.locked, k.request_hash, k.status, k.response_status, k.response_body, k.expires_at \
         FROM (SELECT pg_try_advisory_xact_lock(",
    )
    .bind::<diesel::sql_types::BigInt, _>(advisory_lock_id(req))
    .sql(") AS locked) AS l LEFT JOIN idempotency_keys AS k ON l.locked AND k.user_id = ")
    .bind::<diesel::sql_types::Text, _>(req.user_id.clone())
    .sql(" AND k.idem_key = ")
    .bind::<diesel::sql_types::Text, _>(req.key.clone())
    .get_result(tx)?;
    if !got.locked {
        return Err(AppError::new(
            ErrorKind::RequestInProgress,
            "A request with this Idempotency-Key is being processed right now; retry shortly to receive its result.",
        )
        .with_header(actix_web::http::header::RETRY_AFTER, crate::error::RETRY_AFTER_SECS));
    }
    Ok(match (got.request_hash, got.status, got.expires_at) {
        (Some(request_hash), Some(status), Some(expires_at)) => Some(KeyRow {
            request_hash,
            status,
            response_status: got.response_status,
            response_body: got.response_body,
            expires_at,
        }),
        _ => None,
    })
}

/// Claims the key for the current transaction. Must be the transaction's first statement, so a waiting
/// duplicate holds no other lock.
fn claim_in_tx(tx: &mut DbConn, req: &IdempotentRequest, now: NaiveDateTime) -> AppResult<Claim> {
    let row: Option<KeyRow> = match tx {
        DbConn::Pg(_) => lock_and_read_pg(tx, req)?,
        DbConn::Sqlite(_) => idempotency_keys::table
            .find((&req.user_id, &req.key))
            .select(KeyRow::as_select())
            .first(tx)
            .optional()?,
    };
    let Some(row) = row else {
        return Ok(Claim::Fresh);
    };
    if row.expires_at <= now {
        return Ok(Claim::Stale);
    }
    if row.request_hash != req.request_hash {
        return Err(AppError::new(
            ErrorKind::IdempotencyKeyReused,
            "This Idempotency-Key was used for a different request; use a new key for a new request.",
        ));
    }
    let stored = KeyStatus::try_from(row.status).map_err(|e| AppError::internal(e.to_string()))?;
    match (stored, row.response_status, row.response_body) {
        (KeyStatus::Done, Some(status), Some(body)) => Ok(Claim::Replay(StoredResponse {
            status: u16::try_from(status).unwrap_or(200),
            body,
            replayed: true,
        })),
        // Only a version that committed claims separately left `in_progress` rows; nothing runs for them now.
        _ => Ok(Claim::Stale),
    }
}

/// Runs `operation` at most once per key: it returns `(status, json body, transaction id)` and runs inside the
/// one write transaction that claims the key, posts, and stores the response. A refused operation stores
/// nothing, so the same key may be retried with a corrected request.
///
/// A transaction the database rolled back for contention (serialization failure, deadlock, SQLite busy) wrote
/// nothing, so it is run again, up to [`CONTENTION_ATTEMPTS`] times in all, before the client gets the 503.
pub fn run<F>(
    conn: &mut DbConn,
    req: &IdempotentRequest,
    retention: Duration,
    mut operation: F,
) -> AppResult<StoredResponse>
where
    F: FnMut(&mut DbConn) -> AppResult<(u16, String, Option<String>)>,
{
    let mut attempt = 1;
    loop {
        match run_once(conn, req, retention, &mut operation) {
            Err(e) if attempt < CONTENTION_ATTEMPTS && is_contention(&e) => {
                tracing::info!(attempt, error = %e, "money request rolled back for contention; running it again");
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// The columns of a key's record, in the order of [`done_record`]: the claim of a request written in one
/// statement with its posting (`ledger::group_commit`). No advisory lock there: the record's primary key is the
/// guard (a key already recorded, or being recorded, is not claimed again).
pub const KEY_COLUMNS: &str = "user_id, idem_key, request_hash, status, response_status, response_body, \
     transaction_id, locked_until, created_at, expires_at";

/// The record of `req`, done with `response` (status, body, transaction id), bound and comma-separated in the
/// order of [`KEY_COLUMNS`] (no parentheses).
pub fn done_record(
    req: &IdempotentRequest,
    response: &StoredResponse,
    transaction_id: Option<String>,
    retention: Duration,
) -> CachedSql<'static> {
    use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
    let now = now_micros();
    cached_sql("")
        .bind::<Text, _>(req.user_id.clone())
        .sql(", ")
        .bind::<Text, _>(req.key.clone())
        .sql(", ")
        .bind::<Text, _>(req.request_hash.clone())
        .sql(", ")
        .bind::<Text, _>(KeyStatus::Done.as_str())
        .sql(", ")
        .bind::<Integer, _>(i32::from(response.status))
        .sql(", ")
        .bind::<Text, _>(response.body.clone())
        .sql(", ")
        .bind::<Nullable<Text>, _>(transaction_id)
        .sql(", ")
        .bind::<Timestamp, _>(now)
        .sql(", ")
        .bind::<Timestamp, _>(now)
        .sql(", ")
        .bind::<Timestamp, _>(now + retention)
}

/// Attempts of one money request when the database rolls it back for contention.
pub const CONTENTION_ATTEMPTS: u32 = 3;

fn is_contention(e: &AppError) -> bool {
    e.cause()
        .and_then(|c| c.downcast_ref::<diesel::result::Error>())
        .and_then(db::transient_cause)
        == Some(db::TransientCause::Contention)
}

fn run_once<F>(
    conn: &mut DbConn,
    req: &IdempotentRequest,
    retention: Duration,
    operation: &mut F,
) -> AppResult<StoredResponse>
where
    F: FnMut(&mut DbConn) -> AppResult<(u16, String, Option<String>)>,
{
    let outcome = db::write_tx(conn, |tx| {
        let now = now_micros();
        let claim = claim_in_tx(tx, req, now)?;
        if let Claim::Replay(stored) = claim {
            return Ok(stored);
        }
        let (status, body, transaction_id) = operation(tx)?;
        let record = (
            idempotency_keys::request_hash.eq(&req.request_hash),
            idempotency_keys::status.eq(KeyStatus::Done.as_str()),
            idempotency_keys::response_status.eq(i32::from(status)),
            idempotency_keys::response_body.eq(&body),
            idempotency_keys::transaction_id.eq(&transaction_id),
            idempotency_keys::locked_until.eq(now),
            idempotency_keys::created_at.eq(now),
            idempotency_keys::expires_at.eq(now + retention),
        );
        match claim {
            Claim::Fresh => {
                diesel::insert_into(idempotency_keys::table)
                    .values((
                        idempotency_keys::user_id.eq(&req.user_id),
                        idempotency_keys::idem_key.eq(&req.key),
                        record,
                    ))
                    .execute(tx)?;
            }
            _ => {
                diesel::update(idempotency_keys::table.find((&req.user_id, &req.key)))
                    .set(record)
                    .execute(tx)?;
            }
        }
        Ok(StoredResponse {
            status,
            body,
            replayed: false,
        })
    });
    outcome.map_err(unique_key_race)
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
