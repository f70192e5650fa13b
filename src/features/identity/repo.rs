//! Queries on organisations, users, hats, pending hat grants, password setup tokens, session cut-offs,
//! refresh tokens and sign-in throttles. Take `&mut DbConn`, never the pool.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::access::Hat;
use crate::db::DbConn;
use crate::db::schema::{
    hat_grant_requests, hats, login_throttles, organizations, password_setup_tokens, refresh_tokens,
    session_cutoffs, users,
};
use crate::domain::lockout::{KNOWN_ADDRESS_DAYS, ThrottleState};
use crate::domain::status::{
    AccountStatus, DecidedVia, GrantRequestStatus, OrganizationKind, SetupTokenPurpose, UserStatus,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub id: String,
    pub code: String,
    pub name: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub kind: OrganizationKind,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub organization_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: AccountStatus,
    pub password_hash: String,
    pub failed_logins: i32,
    pub failed_window_start: Option<NaiveDateTime>,
    pub locked_until: Option<NaiveDateTime>,
    pub lock_count: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = hats)]
pub struct HatRow {
    pub id: String,
    pub user_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub hat: Hat,
    pub scope_organization_id: Option<String>,
    pub scope_adm1: Option<String>,
    pub valid_from: Option<NaiveDateTime>,
    pub valid_until: Option<NaiveDateTime>,
    pub acting: bool,
    pub granted_by: Option<String>,
    pub granted_at: NaiveDateTime,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: String,
    pub family_id: String,
    pub user_id: String,
    pub token_hash: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

// ---- organisations

pub fn insert_organization(conn: &mut DbConn, row: &OrganizationRow) -> QueryResult<()> {
    diesel::insert_into(organizations::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_organization(conn: &mut DbConn, id: &str) -> QueryResult<Option<OrganizationRow>> {
    organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)
        .optional()
}

pub fn organization_code_taken(conn: &mut DbConn, code: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        organizations::table.filter(organizations::code.eq(code)),
    ))
    .get_result(conn)
}

pub fn list_organizations(
    conn: &mut DbConn,
    after_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<OrganizationRow>> {
    let mut q = organizations::table
        .select(OrganizationRow::as_select())
        .into_boxed();
    if let Some(after) = after_id {
        q = q.filter(organizations::id.gt(after.to_owned()));
    }
    q.order(organizations::id.asc()).limit(limit).load(conn)
}

// ---- users

pub fn insert_user(conn: &mut DbConn, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_user(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn find_user_by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::username.eq(username))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

/// Users, keyset-paged by id; `status` is the shown status at `now` (`locked` = active with a lock running).
pub fn list_users(
    conn: &mut DbConn,
    organization_id: Option<&str>,
    status: Option<UserStatus>,
    now: NaiveDateTime,
    after_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<UserRow>> {
    let mut q = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(org) = organization_id {
        q = q.filter(users::organization_id.eq(org.to_owned()));
    }
    let active = users::status.eq(AccountStatus::Active.as_str());
    q = match status {
        None => q,
        Some(UserStatus::Disabled) => q.filter(users::status.eq(AccountStatus::Disabled.as_str())),
        Some(UserStatus::Locked) => q.filter(active).filter(users::locked_until.gt(now)),
        Some(UserStatus::Active) => q
            .filter(active)
            .filter(users::locked_until.is_null().or(users::locked_until.le(now))),
    };
    if let Some(after) = after_id {
        q = q.filter(users::id.gt(after.to_owned()));
    }
    q.order(users::id.asc()).limit(limit).load(conn)
}

pub fn set_user_status(
    conn: &mut DbConn,
    id: &str,
    status: AccountStatus,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::status.eq(status.as_str()), users::updated_at.eq(now)))
        .execute(conn)
}

/// Re-enabling also clears any lockout.
pub fn clear_lockout(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(0),
            users::failed_window_start.eq(None::<NaiveDateTime>),
            users::locked_until.eq(None::<NaiveDateTime>),
            users::lock_count.eq(0),
        ))
        .execute(conn)
}

pub fn set_password_hash(conn: &mut DbConn, id: &str, hash: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
}

/// Shows an account-wide sign-in wait on the user (status `locked` until then), for administrators.
pub fn mark_account_throttled(
    conn: &mut DbConn,
    id: &str,
    until: NaiveDateTime,
    waits_so_far: i32,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::locked_until.eq(until), users::lock_count.eq(waits_so_far)))
        .execute(conn)
}

// ---- hats

pub fn insert_hat(conn: &mut DbConn, row: &HatRow) -> QueryResult<()> {
    diesel::insert_into(hats::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_hat(conn: &mut DbConn, id: &str) -> QueryResult<Option<HatRow>> {
    hats::table
        .find(id)
        .select(HatRow::as_select())
        .first(conn)
        .optional()
}

/// Every grant of a user, revoked ones included, oldest first.
pub fn hats_of_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<HatRow>> {
    hats::table
        .filter(hats::user_id.eq(user_id))
        .order(hats::id.asc())
        .select(HatRow::as_select())
        .load(conn)
}

/// Grants not revoked (validity periods are checked by the caller at its own `now`).
pub fn unrevoked_hats_of_user(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<HatRow>> {
    hats::table
        .filter(hats::user_id.eq(user_id))
        .filter(hats::revoked_at.is_null())
        .order(hats::id.asc())
        .select(HatRow::as_select())
        .load(conn)
}

/// Revokes a grant unless already revoked; returns rows changed (0 = it was).
pub fn revoke_hat(conn: &mut DbConn, id: &str, by: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(hats::table.find(id).filter(hats::revoked_at.is_null()))
        .set((hats::revoked_at.eq(now), hats::revoked_by.eq(by)))
        .execute(conn)
}

pub fn admin_exists(conn: &mut DbConn) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        hats::table
            .filter(hats::hat.eq(Hat::Admin.as_str()))
            .filter(hats::revoked_at.is_null()),
    ))
    .get_result(conn)
}

// ---- refresh tokens

pub fn insert_refresh_token(conn: &mut DbConn, row: &RefreshTokenRow) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find_refresh_token(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Marks a token used, only if it is still live; returns rows changed (0 = someone used it first).
pub fn mark_rotated(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .find(id)
            .filter(refresh_tokens::rotated_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::rotated_at.eq(now))
    .execute(conn)
}

pub fn revoke_family(conn: &mut DbConn, family_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

pub fn revoke_user_tokens(conn: &mut DbConn, user_id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::user_id.eq(user_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// Oldest `issued_at` of a refresh-token family: when its sign-in happened.
pub fn family_started_at(conn: &mut DbConn, family_id: &str) -> QueryResult<Option<NaiveDateTime>> {
    refresh_tokens::table
        .filter(refresh_tokens::family_id.eq(family_id))
        .select(diesel::dsl::min(refresh_tokens::issued_at))
        .first(conn)
}

// ---- sign-in throttles

/// `client_addr` of the row that counts an account's failures from every address.
pub const ACCOUNT_WIDE: &str = "*";

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttles, treat_none_as_null = true)]
pub struct LoginThrottleRow {
    pub account: String,
    pub client_addr: String,
    pub failures: i32,
    pub window_start: Option<NaiveDateTime>,
    pub blocked_until: Option<NaiveDateTime>,
    pub blocks: i32,
    pub last_success_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

impl LoginThrottleRow {
    pub fn state(&self) -> ThrottleState {
        ThrottleState {
            failures: self.failures,
            window_start: self.window_start,
            blocked_until: self.blocked_until,
            blocks: self.blocks,
        }
    }
}

/// The pair row and the account-wide row of one sign-in attempt (default states when absent).
#[derive(Debug, Clone, Default)]
pub struct LoginThrottles {
    pub pair: ThrottleState,
    pub pair_last_success: Option<NaiveDateTime>,
    pub account: ThrottleState,
}

pub fn find_login_throttles(
    conn: &mut DbConn,
    account: &str,
    client_addr: &str,
) -> QueryResult<LoginThrottles> {
    let rows: Vec<LoginThrottleRow> = login_throttles::table
        .filter(login_throttles::account.eq(account))
        .filter(login_throttles::client_addr.eq_any([client_addr, ACCOUNT_WIDE]))
        .select(LoginThrottleRow::as_select())
        .load(conn)?;
    let mut found = LoginThrottles::default();
    for row in rows {
        if row.client_addr == ACCOUNT_WIDE {
            found.account = row.state();
        } else {
            found.pair = row.state();
            found.pair_last_success = row.last_success_at;
        }
    }
    Ok(found)
}

/// Creates the two rows if missing and, on PostgreSQL, locks them (in key order, so two attempts never
/// deadlock) until the transaction ends; SQLite's write transaction already holds the database lock.
pub fn lock_login_throttles(
    conn: &mut DbConn,
    account: &str,
    client_addr: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    use diesel::sql_types::{Text, Timestamp};
    let insert = match conn {
        DbConn::Pg(_) => {
            "INSERT INTO login_throttles (account, client_addr, failures, blocks, updated_at) \
             VALUES ($1, $2, 0, 0, $3), ($1, $4, 0, 0, $3) ON CONFLICT DO NOTHING"
        }
        DbConn::Sqlite(_) => {
            "INSERT INTO login_throttles (account, client_addr, failures, blocks, updated_at) \
             VALUES (?1, ?2, 0, 0, ?3), (?1, ?4, 0, 0, ?3) ON CONFLICT DO NOTHING"
        }
    };
    diesel::sql_query(insert)
        .bind::<Text, _>(account)
        .bind::<Text, _>(client_addr)
        .bind::<Timestamp, _>(now)
        .bind::<Text, _>(ACCOUNT_WIDE)
        .execute(conn)?;
    if let DbConn::Pg(_) = conn {
        diesel::sql_query(
            "SELECT 1 FROM login_throttles WHERE account = $1 AND client_addr IN ($2, $3) \
             ORDER BY client_addr FOR UPDATE",
        )
        .bind::<Text, _>(account)
        .bind::<Text, _>(client_addr)
        .bind::<Text, _>(ACCOUNT_WIDE)
        .execute(conn)?;
    }
    Ok(())
}

pub fn save_login_throttle(
    conn: &mut DbConn,
    account: &str,
    client_addr: &str,
    state: &ThrottleState,
    last_success_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(login_throttles::table.find((account, client_addr)))
        .set(&LoginThrottleRow {
            account: account.to_owned(),
            client_addr: client_addr.to_owned(),
            failures: state.failures,
            window_start: state.window_start,
            blocked_until: state.blocked_until,
            blocks: state.blocks,
            last_success_at,
            updated_at: now,
        })
        .execute(conn)
}

/// (account, client address, when) of the pairs whose last sign-in, at or after `since`, is the last thing
/// their row recorded (a failure since moves `updated_at` past it), newest first, at most `limit`: the sign-in
/// budget's known clients as every instance left them.
pub fn recent_sign_ins(
    conn: &mut DbConn,
    since: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(String, String, NaiveDateTime)>> {
    login_throttles::table
        .filter(login_throttles::last_success_at.ge(since))
        .filter(
            login_throttles::updated_at
                .nullable()
                .eq(login_throttles::last_success_at),
        )
        .filter(login_throttles::client_addr.ne(ACCOUNT_WIDE))
        .order(login_throttles::last_success_at.desc())
        .limit(limit)
        .select((
            login_throttles::account,
            login_throttles::client_addr,
            login_throttles::last_success_at.assume_not_null(),
        ))
        .load(conn)
}

/// Forgets rows that no longer matter: nothing counted for two days and no sign-in remembered.
pub fn delete_stale_login_throttles(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    let quiet = now - chrono::Duration::days(2);
    let forgotten = now - chrono::Duration::days(KNOWN_ADDRESS_DAYS + 1);
    diesel::delete(
        login_throttles::table.filter(
            login_throttles::updated_at
                .lt(forgotten)
                .or(login_throttles::updated_at
                    .lt(quiet)
                    .and(login_throttles::last_success_at.is_null())),
        ),
    )
    .execute(conn)
}

/// Ends every sign-in wait of an account name (an administrator re-enabled the account).
pub fn clear_login_throttles(conn: &mut DbConn, account: &str) -> QueryResult<usize> {
    diesel::update(login_throttles::table.filter(login_throttles::account.eq(account)))
        .set((
            login_throttles::failures.eq(0),
            login_throttles::window_start.eq(None::<NaiveDateTime>),
            login_throttles::blocked_until.eq(None::<NaiveDateTime>),
            login_throttles::blocks.eq(0),
        ))
        .execute(conn)
}

// ---- pending grants of privileged hats (dual control)

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = hat_grant_requests)]
pub struct HatGrantRequestRow {
    pub id: String,
    pub user_id: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub hat: Hat,
    pub scope_organization_id: Option<String>,
    pub scope_adm1: Option<String>,
    pub valid_from: Option<NaiveDateTime>,
    pub valid_until: Option<NaiveDateTime>,
    pub acting: bool,
    pub requested_by: String,
    pub requested_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub status: GrantRequestStatus,
    pub decided_by: Option<String>,
    /// Read and written as the stored name (`crate::db::stored`): an unknown one fails the query.
    pub decided_via: Option<DecidedVia>,
    pub decided_at: Option<NaiveDateTime>,
    pub decision_reason: Option<String>,
    pub hat_id: Option<String>,
}

pub fn insert_hat_grant_request(conn: &mut DbConn, row: &HatGrantRequestRow) -> QueryResult<()> {
    diesel::insert_into(hat_grant_requests::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_hat_grant_request(conn: &mut DbConn, id: &str) -> QueryResult<Option<HatGrantRequestRow>> {
    hat_grant_requests::table
        .find(id)
        .select(HatGrantRequestRow::as_select())
        .first(conn)
        .optional()
}

/// Which requests a list shows.
#[derive(Debug, Clone, Copy)]
pub enum RequestFilter {
    /// Pending and not expired at this instant.
    PendingAt(NaiveDateTime),
    /// Pending but past their expiry at this instant.
    ExpiredAt(NaiveDateTime),
    /// Settled with this status (`confirmed`, `refused`, `cancelled`).
    Settled(GrantRequestStatus),
    All,
}

/// Requests matching `filter`, oldest first, keyset-paged by id.
pub fn list_hat_grant_requests(
    conn: &mut DbConn,
    filter: RequestFilter,
    after_id: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<HatGrantRequestRow>> {
    let mut q = hat_grant_requests::table
        .select(HatGrantRequestRow::as_select())
        .into_boxed();
    q = match filter {
        RequestFilter::PendingAt(now) => q
            .filter(hat_grant_requests::status.eq(GrantRequestStatus::Pending.as_str()))
            .filter(hat_grant_requests::expires_at.gt(now)),
        RequestFilter::ExpiredAt(now) => q
            .filter(hat_grant_requests::status.eq(GrantRequestStatus::Pending.as_str()))
            .filter(hat_grant_requests::expires_at.le(now)),
        RequestFilter::Settled(status) => q.filter(hat_grant_requests::status.eq(status.as_str())),
        RequestFilter::All => q,
    };
    if let Some(after) = after_id {
        q = q.filter(hat_grant_requests::id.gt(after.to_owned()));
    }
    q.order(hat_grant_requests::id.asc()).limit(limit).load(conn)
}

/// How a pending request ended.
pub struct Settlement<'a> {
    /// `confirmed`, `refused` or `cancelled`.
    pub status: GrantRequestStatus,
    /// The administrator who settled it (`None` from the console).
    pub decided_by: Option<&'a str>,
    pub decided_via: DecidedVia,
    pub reason: Option<&'a str>,
    /// The grant a confirmation created.
    pub hat_id: Option<&'a str>,
    pub at: NaiveDateTime,
}

/// Settles a request that is still pending; returns rows changed (0 = someone settled it first).
pub fn settle_hat_grant_request(conn: &mut DbConn, id: &str, s: &Settlement<'_>) -> QueryResult<usize> {
    diesel::update(
        hat_grant_requests::table
            .find(id)
            .filter(hat_grant_requests::status.eq(GrantRequestStatus::Pending.as_str())),
    )
    .set((
        hat_grant_requests::status.eq(s.status.as_str()),
        hat_grant_requests::decided_by.eq(s.decided_by),
        hat_grant_requests::decided_via.eq(s.decided_via),
        hat_grant_requests::decided_at.eq(s.at),
        hat_grant_requests::decision_reason.eq(s.reason),
        hat_grant_requests::hat_id.eq(s.hat_id),
    ))
    .execute(conn)
}

// ---- password setup tokens

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = password_setup_tokens)]
pub struct SetupTokenRow {
    pub id: String,
    pub user_id: String,
    pub token_hash: String,
    #[diesel(deserialize_as = String, serialize_as = String)]
    pub purpose: SetupTokenPurpose,
    pub issued_by: Option<String>,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert_setup_token(conn: &mut DbConn, row: &SetupTokenRow) -> QueryResult<()> {
    diesel::insert_into(password_setup_tokens::table)
        .values(row.clone())
        .execute(conn)
        .map(|_| ())
}

pub fn find_setup_token(conn: &mut DbConn, token_hash: &str) -> QueryResult<Option<SetupTokenRow>> {
    password_setup_tokens::table
        .filter(password_setup_tokens::token_hash.eq(token_hash))
        .select(SetupTokenRow::as_select())
        .first(conn)
        .optional()
}

/// Spends a token that is still live; returns rows changed (0 = used, revoked or expired meanwhile).
pub fn spend_setup_token(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        password_setup_tokens::table
            .find(id)
            .filter(password_setup_tokens::used_at.is_null())
            .filter(password_setup_tokens::revoked_at.is_null())
            .filter(password_setup_tokens::expires_at.gt(now)),
    )
    .set(password_setup_tokens::used_at.eq(now))
    .execute(conn)
}

/// Who issued the setup tokens that decide a user's password: the latest one used (it set the current
/// password; a user who never used one signs in with a console-set password or not at all) and any still live
/// (it can set the next one). `None` in the list = issued at the console. Oldest first.
pub fn password_token_issuers(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<Option<String>>> {
    let last_used: Option<Option<String>> = password_setup_tokens::table
        .filter(password_setup_tokens::user_id.eq(user_id))
        .filter(password_setup_tokens::used_at.is_not_null())
        .order((
            password_setup_tokens::used_at.desc(),
            password_setup_tokens::id.desc(),
        ))
        .select(password_setup_tokens::issued_by)
        .first(conn)
        .optional()?;
    let live: Vec<Option<String>> = password_setup_tokens::table
        .filter(password_setup_tokens::user_id.eq(user_id))
        .filter(password_setup_tokens::used_at.is_null())
        .filter(password_setup_tokens::revoked_at.is_null())
        .filter(password_setup_tokens::expires_at.gt(now))
        .order(password_setup_tokens::id.asc())
        .select(password_setup_tokens::issued_by)
        .load(conn)?;
    Ok(last_used.into_iter().chain(live).collect())
}

/// Revokes every unused token of a user (a newer one replaces them, or the account was disabled).
pub fn revoke_setup_tokens_of_user(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        password_setup_tokens::table
            .filter(password_setup_tokens::user_id.eq(user_id))
            .filter(password_setup_tokens::used_at.is_null())
            .filter(password_setup_tokens::revoked_at.is_null()),
    )
    .set(password_setup_tokens::revoked_at.eq(now))
    .execute(conn)
}

// ---- session cut-offs

/// A user with the instant before which their access tokens are refused, if any: one query on the hot path.
pub fn find_user_with_cutoff(
    conn: &mut DbConn,
    id: &str,
) -> QueryResult<Option<(UserRow, Option<NaiveDateTime>)>> {
    users::table
        .left_join(session_cutoffs::table)
        .filter(users::id.eq(id))
        .select((
            UserRow::as_select(),
            session_cutoffs::sessions_valid_after.nullable(),
        ))
        .first(conn)
        .optional()
}

/// Ends every access token issued before `at` (delete + insert: portable, inside the caller's transaction).
pub fn set_session_cutoff(conn: &mut DbConn, user_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::delete(session_cutoffs::table.find(user_id)).execute(conn)?;
    diesel::insert_into(session_cutoffs::table)
        .values((
            session_cutoffs::user_id.eq(user_id),
            session_cutoffs::sessions_valid_after.eq(at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A user, the cut-off before which its access tokens are void, and its unrevoked hats.
pub type UserForRequest = (UserRow, Option<NaiveDateTime>, Vec<HatRow>);

/// One row of [`user_for_request`]'s join: the user, its cut-off, one of its hats (none: it has none).
type UserHatRow = (UserRow, Option<NaiveDateTime>, Option<HatRow>);

/// What authorizing a request reads, in one statement: the user, the cutoff before which its access tokens
/// are void, and its unrevoked hats (in id order). Read on every request, so a disabled account, a reset or a
/// revoked hat takes effect on the next one.
pub fn user_for_request(conn: &mut DbConn, id: &str) -> QueryResult<Option<UserForRequest>> {
    let rows: Vec<UserHatRow> = users::table
        .left_join(session_cutoffs::table)
        .left_join(hats::table.on(hats::user_id.eq(users::id).and(hats::revoked_at.is_null())))
        .filter(users::id.eq(id))
        .order(hats::id.asc())
        .select((
            UserRow::as_select(),
            session_cutoffs::sessions_valid_after.nullable(),
            Option::<HatRow>::as_select(),
        ))
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((user, cutoff, first)) = rows.next() else {
        return Ok(None);
    };
    let hats = first
        .into_iter()
        .chain(rows.filter_map(|(_, _, hat)| hat))
        .collect();
    Ok(Some((user, cutoff, hats)))
}
