//! Queries on the console's server-side sessions (`console_sessions`), and the one question the console asks of
//! the API's refresh tokens: is the sign-in behind a session still live? Take `&mut DbConn`, never the pool.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{console_sessions, refresh_tokens};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = console_sessions)]
pub struct ConsoleSessionRow {
    pub id: String,
    /// SHA-256 (hex) of the cookie's secret; the secret itself is never stored.
    pub secret_hash: String,
    pub user_id: String,
    /// The API sign-in (refresh-token family) this session rides on.
    pub family_id: String,
    /// `<access>~<refresh>` sealed under the cookie's secret (`console::seal`).
    pub sealed_tokens: String,
    pub access_expires_at: NaiveDateTime,
    /// The CSRF token every form of this session carries; a token of another session is worth nothing here.
    pub csrf_token: String,
    /// Moves on every refresh: a request that waited for the row's lock sees that another one refreshed.
    pub version: i64,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &ConsoleSessionRow) -> QueryResult<()> {
    diesel::insert_into(console_sessions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_by_secret_hash(conn: &mut DbConn, secret_hash: &str) -> QueryResult<Option<ConsoleSessionRow>> {
    console_sessions::table
        .filter(console_sessions::secret_hash.eq(secret_hash))
        .select(ConsoleSessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<ConsoleSessionRow>> {
    console_sessions::table
        .find(id)
        .select(ConsoleSessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(console_sessions::table.find(id)).execute(conn)
}

/// Sessions past their absolute end or unused for longer than the idle limit (`idle_since`) go, whoever's.
pub fn delete_stale(conn: &mut DbConn, now: NaiveDateTime, idle_since: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        console_sessions::table.filter(
            console_sessions::expires_at
                .le(now)
                .or(console_sessions::last_seen_at.le(idle_since)),
        ),
    )
    .execute(conn)
}

pub fn touch(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(console_sessions::table.find(id))
        .set(console_sessions::last_seen_at.eq(now))
        .execute(conn)
}

/// Stores the tokens of a refresh, moving the version on.
pub fn store_refreshed(
    conn: &mut DbConn,
    id: &str,
    sealed_tokens: &str,
    access_expires_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(console_sessions::table.find(id))
        .set((
            console_sessions::sealed_tokens.eq(sealed_tokens),
            console_sessions::access_expires_at.eq(access_expires_at),
            console_sessions::version.eq(console_sessions::version + 1),
            console_sessions::last_seen_at.eq(now),
        ))
        .execute(conn)
}

/// The family a refresh token (by its hash) belongs to.
pub fn family_of_refresh_token(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<String>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(refresh_tokens::family_id)
        .first(conn)
        .optional()
}

/// True while the sign-in still has a usable refresh token: not revoked (sign-out, reuse, password reset,
/// disabling), not spent, not expired. When it has none, the console session rides on nothing and ends.
pub fn family_is_live(conn: &mut DbConn, family_id: &str, now: NaiveDateTime) -> QueryResult<bool> {
    let live: i64 = refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::rotated_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(live > 0)
}
