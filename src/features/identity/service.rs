//! Identity use cases, each one transaction: sign-in, refresh, sign-out, request authorization, and the
//! administration of organisations, users and hats under dual control (privileged grants wait for a second
//! administrator; administrators hand out single-use setup tokens, never passwords). Password hashing happens
//! before a transaction opens.

use crate::features::audit::AuditAction;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, NaiveDateTime};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::AuthRuntime;
use super::dto::{
    GrantOutcome, HatGrantRequestListStatus, HatGrantRequestView, HatGrantView, LoginRequest, Me,
    NewHatGrant, NewOrganization, NewUser, Organization, PasswordReset, SetupPasswordRequest, TokenResponse,
    User, UserWithSetupToken,
};
use super::repo::{
    self, HatGrantRequestRow, HatRow, OrganizationRow, RefreshTokenRow, RequestFilter, Settlement,
    SetupTokenRow, UserRow,
};
use super::tokens::{AccessClaims, MAX_CLOCK_SKEW_SECS, new_refresh_token, refresh_token_hash};
use crate::access::{self, Actor, HatGrant, Requirement, resolve_hat};
use crate::config::DualControlSettings;
use crate::db::{self, DbConn, DbPool};
use crate::domain::lockout::{self, retry_after_secs, wait_before_attempt};
use crate::domain::password_policy::{password_problems, password_problems_for};
use crate::domain::status::{AccountStatus, GrantRequestStatus, OrganizationKind, UserStatus};
use crate::error::{AppError, AppResult, ErrorKind, FieldError};
use crate::features::audit::{self, AuditContext, Outcome, now_micros};
use crate::request_meta::RequestMeta;

const SIGN_IN_REFUSED: &str = "The username or password is wrong, or the account cannot sign in now.";

fn anonymous_context(meta: &RequestMeta) -> AuditContext {
    AuditContext {
        request_id: Some(meta.request_id.clone()),
        client_addr: meta.client_addr.clone(),
        ..AuditContext::default()
    }
}

fn user_context(user: &UserRow, meta: &RequestMeta) -> AuditContext {
    AuditContext {
        actor_id: Some(user.id.clone()),
        actor_username: Some(user.username.clone()),
        organization_id: Some(user.organization_id.clone()),
        ..anonymous_context(meta)
    }
}

/// The account name a throttle row is kept under: the username as typed, or a digest of it when it is
/// longer than any username can be (so rows stay small whatever is sent).
fn throttle_account_key(username: &str) -> String {
    if username.len() <= 64 {
        username.to_owned()
    } else {
        format!("sha256:{}", refresh_token_hash(username))
    }
}

/// The client address a throttle row is kept under.
fn throttle_address(meta: &RequestMeta) -> String {
    meta.client_addr
        .as_deref()
        .filter(|a| !a.is_empty() && *a != repo::ACCOUNT_WIDE)
        .unwrap_or("unknown")
        .chars()
        .take(64)
        .collect()
}

/// The 429 of an attempt inside a sign-in wait: the same for known and unknown account names.
fn sign_in_throttled(wait: Duration) -> AppError {
    let secs = retry_after_secs(wait);
    AppError::new(
        ErrorKind::TooManyRequests,
        "Too many failed sign-ins for this account; wait the number of seconds in Retry-After before trying again.",
    )
    .with_header(actix_web::http::header::RETRY_AFTER, &secs.to_string())
}

/// The 429 of an attempt the process-wide sign-in budget has no room for; Retry-After says when the budget has
/// room again (at least a second). A 429 like the per-address limit's, not a 503: clients wait either out alike,
/// and every 5xx is logged as an error, which a flood of refusals must not turn into a flood of log lines.
fn sign_in_budget_spent(wait: std::time::Duration) -> AppError {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    AppError::new(
        ErrorKind::TooManyRequests,
        "Too many sign-ins are being attempted right now; retry after the number of seconds in Retry-After.",
    )
    .with_header(actix_web::http::header::RETRY_AFTER, &secs.to_string())
}

/// Asks the process-wide sign-in budget for one password-checking attempt by `account` from `address`: decided
/// in memory, before any database work or hashing, so a refused attempt costs almost nothing.
fn admit_password_attempt(auth: &AuthRuntime, account: &str, address: &str) -> AppResult<()> {
    auth.sign_in_budget
        .admit(account, address, std::time::Instant::now())
        .map(|_| ())
        .map_err(sign_in_budget_spent)
}

/// The budget check of `POST /auth/setup-password`, made by its handler before a connection is taken: the
/// attempt names no account, so only the shared budget can admit it.
pub fn admit_password_setup(auth: &AuthRuntime, meta: &RequestMeta) -> AppResult<()> {
    admit_password_attempt(auth, "", &throttle_address(meta))
}

/// Signs a user in. Failed passwords are throttled per (account, client address), with a much higher ceiling
/// per account (src/domain/lockout.rs); an attempt inside a wait is refused with 429 before its password is
/// checked. Unknown users cost a dummy hash so timing does not reveal them, and are throttled alike. Every
/// checked attempt is audited with its outcome and client address, and each wait once, when it starts.
///
/// Before all that, the attempt must find room in the process-wide sign-in budget (`auth.sign_in_budget_*`,
/// in memory): over it, 429 with Retry-After and nothing read, hashed, written or audited. An account signing
/// in from an address it signed in from before, with no failure since, may use a small reserve then.
///
/// A right password whose hash is at another argon2 cost than the configured one is hashed again at it
/// (`PasswordHashing::is_current`), and the new hash stored with the sign-in.
///
/// The password hash runs with no database connection held (a connection for the first look, none while the
/// hash waits for its slot and runs, another for the outcome): a sign-in flood then queues on the hash gate,
/// not on the connection pool every other request needs.
pub fn login(
    pool: &DbPool,
    auth: &AuthRuntime,
    input: &LoginRequest,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    input.check_bounds()?;
    let account = throttle_account_key(&input.username);
    let address = throttle_address(meta);
    admit_password_attempt(auth, &account, &address)?;
    let outcome = check_sign_in(pool, auth, input, meta, &account, &address);
    match &outcome {
        Ok(_) => auth
            .sign_in_budget
            .signed_in(&account, &address, std::time::Instant::now()),
        Err(e) if e.kind() == ErrorKind::Unauthorized => auth.sign_in_budget.failed(&account, &address),
        Err(_) => {}
    }
    outcome
}

/// Teaches the sign-in budget the (account, address) pairs that signed in at or after `since` on any instance
/// and have not failed since (`login_throttles` remembers each pair's last sign-in): after a restart, and on
/// every instance, the usual users keep their reserve while a flood spends the budget. Returns how many pairs.
pub fn learn_known_clients(
    conn: &mut DbConn,
    budget: &super::rate_limit::SignInBudget,
    since: NaiveDateTime,
) -> AppResult<usize> {
    let limit = i64::try_from(super::rate_limit::KNOWN_CLIENTS_MAX).unwrap_or(i64::MAX);
    let pairs = repo::recent_sign_ins(conn, since, limit)?;
    let (now, at) = (now_micros(), std::time::Instant::now());
    for (account, address, signed_in) in &pairs {
        // A sign-in stamped ahead of this clock (another instance's) counts as just now.
        let ago = (now - *signed_in).to_std().unwrap_or_default();
        budget.learn(account, address, ago, at);
    }
    Ok(pairs.len())
}

/// [`login`] once admitted: the throttle look, the hash, the outcome's transaction.
fn check_sign_in(
    pool: &DbPool,
    auth: &AuthRuntime,
    input: &LoginRequest,
    meta: &RequestMeta,
    account: &str,
    address: &str,
) -> AppResult<TokenResponse> {
    let refused = || AppError::unauthorized(SIGN_IN_REFUSED);
    let user = {
        let mut conn = pool.get()?;
        let before = repo::find_login_throttles(&mut conn, account, address)?;
        if let Some(wait) = wait_before_attempt(
            &before.pair,
            &before.account,
            before.pair_last_success,
            now_micros(),
        ) {
            return Err(sign_in_throttled(wait));
        }
        repo::find_user_by_username(&mut conn, &input.username)?
    };
    let password_ok = match &user {
        Some(user) => auth.hashing.verify(&input.password, &user.password_hash)?,
        None => {
            auth.hashing.verify_dummy(&input.password)?;
            false
        }
    };
    // A right password whose hash was stored at another cost (the settings changed since) is hashed again at
    // today's, here with no connection held like the check. A busy hashing pool leaves it to the next sign-in
    // rather than refuse this one.
    let rehashed = match &user {
        Some(user) if password_ok && !auth.hashing.is_current(&user.password_hash) => {
            match auth.hashing.hash(&input.password) {
                Ok(hash) => Some((user.password_hash.as_str(), hash)),
                Err(e) => {
                    tracing::warn!(user_id = %user.id, error = %e, "password not rehashed at this sign-in");
                    None
                }
            }
        }
        _ => None,
    };
    let now = now_micros();
    let mut conn = pool.get()?;
    db::write_tx(&mut conn, |tx| -> AppResult<AppResult<TokenResponse>> {
        if let Some(user) = &user {
            db::lock_row(tx, "users", &user.id)?;
        }
        repo::lock_login_throttles(tx, account, address, now)?;
        let throttles = repo::find_login_throttles(tx, account, address)?;
        // A concurrent failure may have started a wait since the first look.
        if let Some(wait) = wait_before_attempt(
            &throttles.pair,
            &throttles.account,
            throttles.pair_last_success,
            now,
        ) {
            return Ok(Err(sign_in_throttled(wait)));
        }
        let current = match &user {
            Some(user) => repo::find_user(tx, &user.id)?,
            None => None,
        };
        let Some(current) = current else {
            // The name as typed (bounded by `check_bounds`), not its throttle key: auditors search by it.
            let ctx = AuditContext {
                actor_username: Some(input.username.clone()),
                ..anonymous_context(meta)
            };
            record_failed_sign_in(
                tx,
                &ctx,
                None,
                account,
                address,
                &throttles,
                now,
                "unknown username",
            )?;
            return Ok(Err(refused()));
        };
        let ctx = user_context(&current, meta);
        if !password_ok {
            record_failed_sign_in(
                tx,
                &ctx,
                Some(&current.id),
                account,
                address,
                &throttles,
                now,
                "wrong password",
            )?;
            return Ok(Err(refused()));
        }
        if current.status == AccountStatus::Disabled {
            // The pair's last record is now this refusal, not its last sign-in: no instance learns it as a
            // known client again (`recent_sign_ins`). Its counts stay: the password was right.
            repo::save_login_throttle(
                tx,
                account,
                address,
                &throttles.pair,
                throttles.pair_last_success,
                now,
            )?;
            audit::append(
                tx,
                ctx.event(AuditAction::AuthLogin, "session", Some(&current.id))
                    .outcome(Outcome::Failure)
                    .reason("account disabled"),
            )?;
            return Ok(Err(refused()));
        }
        repo::save_login_throttle(
            tx,
            account,
            address,
            &throttles.pair.after_success(),
            Some(now),
            now,
        )?;
        // Stored only over the hash that was checked: a password set meanwhile stays.
        let rehashed = match &rehashed {
            Some((checked, hash)) if current.password_hash == *checked => {
                repo::set_password_hash(tx, &current.id, hash, now)?;
                "; password hash moved to the configured argon2 cost"
            }
            _ => "",
        };
        let family = uuid::Uuid::now_v7().to_string();
        let tokens = issue_tokens(tx, auth, &current.id, &family, now, now)?;
        audit::append(
            tx,
            ctx.event(AuditAction::AuthLogin, "session", Some(&current.id))
                .reason(format!("session family {family}{rehashed}")),
        )?;
        Ok(Ok(tokens))
    })?
}

/// Counts one failed password against the (account, address) pair and the account, audits it, and audits
/// each wait it starts (once: attempts inside a wait are refused unaudited, so a flood cannot fill the trail).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are all distinct"
)]
fn record_failed_sign_in(
    tx: &mut DbConn,
    ctx: &AuditContext,
    user_id: Option<&str>,
    account: &str,
    address: &str,
    throttles: &repo::LoginThrottles,
    now: NaiveDateTime,
    reason: &str,
) -> AppResult<()> {
    let pair = throttles.pair.after_failure(&lockout::PER_ADDRESS, now);
    let shared = throttles.account.after_failure(&lockout::PER_ACCOUNT, now);
    repo::save_login_throttle(
        tx,
        account,
        address,
        &pair.state,
        throttles.pair_last_success,
        now,
    )?;
    repo::save_login_throttle(tx, account, repo::ACCOUNT_WIDE, &shared.state, None, now)?;
    audit::append(
        tx,
        ctx.event(AuditAction::AuthLogin, "session", user_id)
            .outcome(Outcome::Failure)
            .reason(format!(
                "{reason} ({} recent failures from this address)",
                pair.state.failures
            )),
    )?;
    if let Some(wait) = pair.wait_started {
        audit::append(
            tx,
            ctx.event(AuditAction::AuthLoginThrottled, "session", user_id)
                .outcome(Outcome::Denied)
                .reason(format!(
                    "{} failed sign-ins to {account} from {address}: this address waits {} s before its next attempt",
                    pair.state.failures,
                    retry_after_secs(wait)
                )),
        )?;
    }
    if let Some(wait) = shared.wait_started {
        audit::append(
            tx,
            ctx.event(AuditAction::AuthLoginThrottled, "session", user_id)
                .outcome(Outcome::Denied)
                .reason(format!(
                    "{} failed sign-ins to {account} from all addresses within {} min: addresses that have not \
                     signed in to it within {} days wait {} s",
                    lockout::PER_ACCOUNT.threshold,
                    lockout::PER_ACCOUNT.window.num_minutes(),
                    lockout::KNOWN_ADDRESS_DAYS,
                    retry_after_secs(wait)
                )),
        )?;
        if let (Some(id), Some(until)) = (user_id, shared.state.blocked_until) {
            repo::mark_account_throttled(tx, id, until, shared.state.blocks)?;
        }
    }
    repo::delete_stale_login_throttles(tx, now)?;
    Ok(())
}

fn issue_tokens(
    tx: &mut DbConn,
    auth: &AuthRuntime,
    user_id: &str,
    family_id: &str,
    family_started: NaiveDateTime,
    now: NaiveDateTime,
) -> AppResult<TokenResponse> {
    let (refresh_token, token_hash) = new_refresh_token();
    // A rotated token never outlives its sign-in's absolute lifetime.
    let expires_at = (now + Duration::days(auth.refresh_ttl_days))
        .min(family_started + Duration::days(auth.refresh_family_max_days));
    repo::insert_refresh_token(
        tx,
        &RefreshTokenRow {
            id: uuid::Uuid::now_v7().to_string(),
            family_id: family_id.to_owned(),
            user_id: user_id.to_owned(),
            token_hash,
            issued_at: now,
            expires_at,
            rotated_at: None,
            revoked_at: None,
        },
    )?;
    Ok(TokenResponse {
        access_token: auth.keys.issue(user_id)?,
        token_type: "Bearer".into(),
        expires_in: auth.keys.ttl_secs(),
        refresh_token,
    })
}

/// Exchanges a refresh token for a new pair. A token used twice means it was copied: the whole family is
/// revoked (the newest token too) and a security event is audited. A family ends for good once its sign-in
/// is older than `auth.refresh_family_max_days` (rotation does not extend it); a token stamped as issued in
/// the future is refused.
pub fn refresh(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    token: &str,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    db::write_tx(conn, |tx| refresh_in_tx(tx, auth, token, meta))?
}

/// [`refresh`] inside the caller's write transaction, for a caller that must hold its own lock across the
/// exchange (the console's session row). The outer `Err` rolls back; the inner one is a refusal whose
/// revocations and audit events must be committed.
pub fn refresh_in_tx(
    tx: &mut DbConn,
    auth: &AuthRuntime,
    token: &str,
    meta: &RequestMeta,
) -> AppResult<AppResult<TokenResponse>> {
    let hash = refresh_token_hash(token);
    let now = now_micros();
    let invalid =
        || AppError::unauthorized("The refresh token is unknown, expired or revoked; sign in again.");
    let Some(row) = repo::find_refresh_token(tx, &hash)? else {
        return Ok(Err(invalid()));
    };
    db::lock_row(tx, "refresh_tokens", &row.id)?;
    let user = repo::find_user(tx, &row.user_id)?.ok_or_else(invalid)?;
    let ctx = user_context(&user, meta);
    if row.revoked_at.is_some() || row.expires_at <= now || user.status == AccountStatus::Disabled {
        return Ok(Err(invalid()));
    }
    let family_started = repo::family_started_at(tx, &row.family_id)?.unwrap_or(row.issued_at);
    let refusal = if row.issued_at > now + Duration::seconds(MAX_CLOCK_SKEW_SECS) {
        Some(format!("refresh token issued in the future ({}Z)", row.issued_at))
    } else if now >= family_started + Duration::days(auth.refresh_family_max_days) {
        Some(format!(
            "sign-in of {}Z is older than the {}-day limit of a session family",
            family_started, auth.refresh_family_max_days
        ))
    } else {
        None
    };
    if let Some(reason) = refusal {
        let revoked = repo::revoke_family(tx, &row.family_id, now)?;
        audit::append(
            tx,
            ctx.event(AuditAction::AuthRefresh, "session", Some(&row.family_id))
                .outcome(Outcome::Denied)
                .reason(format!("{reason}; {revoked} live token(s) of the family revoked")),
        )?;
        return Ok(Err(invalid()));
    }
    if row.rotated_at.is_some() || repo::mark_rotated(tx, &row.id, now)? == 0 {
        let revoked = repo::revoke_family(tx, &row.family_id, now)?;
        audit::append(
            tx,
            ctx.event(AuditAction::AuthRefreshReuse, "session", Some(&row.family_id))
                .outcome(Outcome::Denied)
                .reason(format!("a rotated refresh token was presented again; {revoked} live token(s) of the family revoked")),
        )?;
        return Ok(Err(AppError::unauthorized(
            "This refresh token was already used, so every session of this sign-in has been ended. Sign in again.",
        )));
    }
    let tokens = issue_tokens(tx, auth, &user.id, &row.family_id, family_started, now)?;
    audit::append(
        tx,
        ctx.event(AuditAction::AuthRefresh, "session", Some(&row.family_id)),
    )?;
    Ok(Ok(tokens))
}

/// Ends the sign-in the refresh token belongs to (its whole family). Unknown tokens are ignored.
pub fn logout(conn: &mut DbConn, token: &str, meta: &RequestMeta) -> AppResult<()> {
    let hash = refresh_token_hash(token);
    db::write_tx(conn, |tx| {
        let Some(row) = repo::find_refresh_token(tx, &hash)? else {
            return Ok(());
        };
        let Some(user) = repo::find_user(tx, &row.user_id)? else {
            return Ok(());
        };
        repo::revoke_family(tx, &row.family_id, now_micros())?;
        audit::append(
            tx,
            user_context(&user, meta).event(AuditAction::AuthLogout, "session", Some(&row.family_id)),
        )?;
        Ok(())
    })
}

fn grant_of(row: &HatRow) -> HatGrant {
    HatGrant {
        id: row.id.clone(),
        hat: row.hat,
        scope_organization_id: row.scope_organization_id.clone(),
        scope_adm1: row.scope_adm1.clone(),
        valid_from: row.valid_from,
        valid_until: row.valid_until,
        acting: row.acting,
    }
}

/// Turns a verified token subject into an `Actor` for `requirement`: the account must exist and not be
/// disabled; hats are read now from the database (so a revocation bites on the next request); the action's
/// hat is resolved per the policy. A denial is audited before the 403 goes out.
pub fn authorize_request(
    conn: &mut DbConn,
    claims: &AccessClaims,
    requirement: Requirement,
    acting_hat: Option<&str>,
    route: &str,
    meta: &RequestMeta,
) -> AppResult<Actor> {
    let unauthorized =
        || AppError::unauthorized("The account behind this token cannot act now; sign in again.");
    let (user, sessions_valid_after, hats) =
        repo::user_for_request(conn, &claims.sub)?.ok_or_else(unauthorized)?;
    if user.status == AccountStatus::Disabled {
        return Err(unauthorized());
    }
    // A password reset (or disabling) ends every access token issued before it, at once.
    if sessions_valid_after.is_some_and(|cutoff| token_issued_at(claims) < cutoff) {
        return Err(unauthorized());
    }
    let now = now_micros();
    let grants: Vec<HatGrant> = hats.iter().map(grant_of).filter(|g| g.is_valid_at(now)).collect();
    let mut actor = Actor {
        user_id: user.id.clone(),
        username: user.username.clone(),
        organization_id: user.organization_id.clone(),
        grants,
        acting_in: None,
        request_id: meta.request_id.clone(),
        client_addr: meta.client_addr.clone(),
    };
    let action = match requirement {
        Requirement::Public | Requirement::Authenticated => return Ok(actor),
        Requirement::Action(action) => action,
    };
    match resolve_hat(action, &actor.grants, acting_hat, now) {
        Ok(resolved) => {
            actor.acting_in = Some(resolved);
            Ok(actor)
        }
        Err(why) if why.is_bad_request() => {
            let mut err = AppError::bad_request(why.message());
            if let access::HatResolution::Ambiguous(candidates) = &why {
                err = err.with_extension("candidate_hats", json!(candidates));
            }
            Err(err)
        }
        Err(why) => {
            let message = why.message();
            let mut ctx = actor.audit();
            ctx.hat = acting_hat.map(str::to_owned);
            db::write_tx(conn, |tx| {
                audit::append(
                    tx,
                    ctx.event(AuditAction::AccessDenied, "route", Some(route))
                        .outcome(Outcome::Denied)
                        .reason(message.clone()),
                )
            })?;
            Err(AppError::forbidden(message))
        }
    }
}

/// When an access token was signed, as finely as its claims tell: its `jti` is a UUIDv7 minted at signing, whose
/// millisecond timestamp is finer than `iat`'s whole seconds (a reset and the next sign-in often share a
/// second). Falls back to `iat` when the `jti` says otherwise. Both claims are covered by the signature.
fn token_issued_at(claims: &AccessClaims) -> NaiveDateTime {
    let iat = chrono::DateTime::from_timestamp(claims.iat, 0).map(|t| t.naive_utc());
    let from_jti = uuid::Uuid::parse_str(&claims.jti)
        .ok()
        .filter(|u| u.get_version_num() == 7)
        .and_then(|u| u.get_timestamp())
        .and_then(|ts| {
            let (secs, nanos) = ts.to_unix();
            chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
        })
        .map(|t| t.naive_utc())
        .filter(|t| Some(t.and_utc().timestamp()) == iat.map(|i| i.and_utc().timestamp()));
    from_jti.or(iat).unwrap_or(NaiveDateTime::MIN)
}

/// Denial auditing lives with the audit trail; re-exported for the callers that still name it here.
pub use crate::features::audit::deny;

/// The caller, their organisation and the hats that give power now.
pub fn me(conn: &mut DbConn, actor: &Actor) -> AppResult<Me> {
    let now = now_micros();
    let user = repo::find_user(conn, &actor.user_id)?.ok_or_else(|| AppError::not_found("No such user."))?;
    let organization = repo::find_organization(conn, &user.organization_id)?
        .ok_or_else(|| AppError::not_found("No such organisation."))?;
    let hats = repo::unrevoked_hats_of_user(conn, &user.id)?
        .into_iter()
        .map(|r| HatGrantView::from_row(r, now))
        .filter(|h| h.active)
        .collect();
    Ok(Me {
        user: User::from_row(user, now),
        organization: organization.into(),
        hats,
    })
}

// ---- organisations

fn valid_code(code: &str) -> bool {
    (2..=16).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

pub fn create_organization(
    conn: &mut DbConn,
    actor: &Actor,
    input: &NewOrganization,
) -> AppResult<Organization> {
    let mut errors = Vec::new();
    if !valid_code(&input.code) {
        errors.push(FieldError::new(
            "code",
            "must be 2–16 characters of A–Z, 0–9 and -",
        ));
    }
    if input.name.trim().is_empty() || input.name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1–200 characters"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    db::write_tx(conn, |tx| {
        if repo::organization_code_taken(tx, &input.code)? {
            return Err(AppError::conflict(format!(
                "An organisation with code {} exists already.",
                input.code
            )));
        }
        let row = OrganizationRow {
            id: uuid::Uuid::now_v7().to_string(),
            code: input.code.clone(),
            name: input.name.trim().to_owned(),
            kind: input.kind,
            created_at: now_micros(),
        };
        repo::insert_organization(tx, &row)?;
        let view = Organization::from(row);
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::OrganizationCreate, "organization", Some(&view.id))
                .after(json!(view)),
        )?;
        Ok(view)
    })
}

pub fn get_organization(conn: &mut DbConn, id: &str) -> AppResult<Organization> {
    repo::find_organization(conn, id)?
        .map(Organization::from)
        .ok_or_else(|| AppError::not_found("No organisation with this id."))
}

pub fn list_organizations(
    conn: &mut DbConn,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<Organization>> {
    Ok(repo::list_organizations(conn, after, i64::from(limit) + 1)?
        .into_iter()
        .map(Organization::from)
        .collect())
}

// ---- users

fn valid_username(username: &str) -> bool {
    (3..=64).contains(&username.len())
        && username
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

/// Password faults of a user, also judging the password against what the user is known by (display name,
/// email, organisation code and name): a password made of those is easy to guess for anyone who knows them.
fn password_errors_with(
    conn: &mut DbConn,
    field: &str,
    password: &str,
    username: &str,
    display_name: &str,
    email: &str,
    organization_id: &str,
) -> AppResult<Vec<FieldError>> {
    let organization = repo::find_organization(conn, organization_id)?;
    let mut known_by = vec![display_name, email];
    if let Some(org) = &organization {
        known_by.extend([org.code.as_str(), org.name.as_str()]);
    }
    Ok(password_problems_for(password, username, &known_by)
        .into_iter()
        .map(|m| FieldError::new(field, m))
        .collect())
}

/// A new setup token (256 random bits, URL-safe base64) and the SHA-256 under which it is stored.
fn new_setup_token() -> (String, String) {
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let hash = setup_token_hash(&token);
    (token, hash)
}

fn setup_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The hash of a random secret nobody keeps: a well-formed argon2 hash that no password matches, so an account
/// waiting for its owner's password cannot sign in, and a failed sign-in costs the usual time.
fn unusable_password_hash(auth: &AuthRuntime) -> AppResult<String> {
    auth.hashing
        .hash(&URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>()))
}

fn hours(h: u32) -> Duration {
    Duration::hours(i64::from(h))
}

/// Issues a setup token for `user_id` inside the caller's transaction; earlier unused ones stop working.
fn issue_setup_token(
    tx: &mut DbConn,
    user_id: &str,
    purpose: crate::domain::status::SetupTokenPurpose,
    issued_by: Option<&str>,
    ttl: Duration,
    now: NaiveDateTime,
) -> AppResult<(String, NaiveDateTime)> {
    repo::revoke_setup_tokens_of_user(tx, user_id, now)?;
    let (token, token_hash) = new_setup_token();
    let expires_at = now + ttl;
    repo::insert_setup_token(
        tx,
        &SetupTokenRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            token_hash,
            purpose,
            issued_by: issued_by.map(str::to_owned),
            issued_at: now,
            expires_at,
            used_at: None,
            revoked_at: None,
        },
    )?;
    Ok((token, expires_at))
}

/// Creates a user (with no hats) who cannot sign in until they set their own password with the setup token
/// returned here, once. Every fault of the input is reported at once.
pub fn create_user(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    dual: &DualControlSettings,
    actor: &Actor,
    input: &NewUser,
) -> AppResult<UserWithSetupToken> {
    let mut errors = Vec::new();
    if !valid_username(&input.username) {
        errors.push(FieldError::new(
            "username",
            "must be 3–64 characters of a–z, 0–9, '.', '_' and '-'",
        ));
    }
    if input.display_name.trim().is_empty() || input.display_name.chars().count() > 200 {
        errors.push(FieldError::new("display_name", "must be 1–200 characters"));
    }
    let email = input.email.trim();
    if email.chars().count() > 254
        || !email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    {
        errors.push(FieldError::new("email", "must be an email address"));
    }
    if repo::find_organization(conn, &input.organization_id)?.is_none() {
        errors.push(FieldError::new("organization_id", "no organisation has this id"));
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let password_hash = unusable_password_hash(auth)?;
    let now = now_micros();
    db::write_tx(conn, |tx| {
        if repo::find_user_by_username(tx, &input.username)?.is_some() {
            return Err(AppError::conflict(format!(
                "The username {} is taken.",
                input.username
            )));
        }
        let row = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            username: input.username.clone(),
            display_name: input.display_name.trim().to_owned(),
            email: email.to_owned(),
            organization_id: input.organization_id.clone(),
            status: AccountStatus::Active,
            password_hash,
            failed_logins: 0,
            failed_window_start: None,
            locked_until: None,
            lock_count: 0,
            created_at: now,
            updated_at: now,
        };
        repo::insert_user(tx, &row)?;
        let view = User::from_row(row, now);
        let (setup_token, expires_at) = issue_setup_token(
            tx,
            &view.id,
            crate::domain::status::SetupTokenPurpose::Create,
            Some(&actor.user_id),
            hours(dual.setup_token_ttl_hours),
            now,
        )?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::UserCreate, "user", Some(&view.id))
                .reason(format!(
                    "setup token issued, valid until {expires_at}Z; the user sets their own password"
                ))
                .after(json!(view)),
        )?;
        Ok(UserWithSetupToken {
            user: view,
            setup_token,
            setup_token_expires_at: expires_at.and_utc(),
        })
    })
}

pub fn get_user(conn: &mut DbConn, id: &str) -> AppResult<User> {
    repo::find_user(conn, id)?
        .map(|u| User::from_row(u, now_micros()))
        .ok_or_else(|| AppError::not_found("No user with this id."))
}

pub fn list_users(
    conn: &mut DbConn,
    organization_id: Option<&str>,
    status: Option<UserStatus>,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<User>> {
    let now = now_micros();
    Ok(
        repo::list_users(conn, organization_id, status, now, after, i64::from(limit) + 1)?
            .into_iter()
            .map(|u| User::from_row(u, now))
            .collect(),
    )
}

/// Disables or re-enables an account. Disabling ends its sessions, access tokens included, and its setup
/// tokens; enabling clears any lockout.
pub fn set_user_enabled(conn: &mut DbConn, actor: &Actor, user_id: &str, enabled: bool) -> AppResult<User> {
    if !enabled && user_id == actor.user_id {
        return Err(AppError::conflict(
            "You cannot disable your own account; ask another administrator.",
        ));
    }
    let now = now_micros();
    db::write_tx(conn, |tx| {
        let before =
            repo::find_user(tx, user_id)?.ok_or_else(|| AppError::not_found("No user with this id."))?;
        let before_view = User::from_row(before, now);
        if enabled {
            repo::set_user_status(tx, user_id, AccountStatus::Active, now)?;
            repo::clear_lockout(tx, user_id)?;
            repo::clear_login_throttles(tx, &before_view.username)?;
        } else {
            repo::set_user_status(tx, user_id, AccountStatus::Disabled, now)?;
            repo::revoke_user_tokens(tx, user_id, now)?;
            repo::revoke_setup_tokens_of_user(tx, user_id, now)?;
            repo::set_session_cutoff(tx, user_id, now)?;
        }
        let after =
            repo::find_user(tx, user_id)?.ok_or_else(|| AppError::not_found("No user with this id."))?;
        let view = User::from_row(after, now);
        let action = if enabled {
            AuditAction::UserEnable
        } else {
            AuditAction::UserDisable
        };
        audit::append(
            tx,
            actor
                .audit()
                .event(action, "user", Some(user_id))
                .before(json!(before_view))
                .after(json!(view)),
        )?;
        Ok(view)
    })
}

/// Resets a password without the administrator choosing or learning one: the old password stops working, every
/// session of the user ends at once (refresh tokens revoked, access tokens refused from now), and a setup token
/// is returned once for the user to choose their own.
///
/// The administrator holds that token, so the account's privileged hats (admin, finance_officer, …) stop in the
/// same transaction: each becomes a pending grant request by the resetting administrator, with the same scope,
/// validity and acting flag, which a second administrator confirms only after issuing a token of their own
/// ([`access::may_confirm_given_password_origin`]). Ordinary hats stay. Hats already waiting (pending
/// requests) are left as they are: the reset only issues the token.
pub fn reset_password(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    dual: &DualControlSettings,
    actor: &Actor,
    user_id: &str,
) -> AppResult<PasswordReset> {
    get_user(conn, user_id)?;
    let hash = unusable_password_hash(auth)?;
    let now = now_micros();
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "users", user_id)?;
        repo::set_password_hash(tx, user_id, &hash, now)?;
        let revoked = repo::revoke_user_tokens(tx, user_id, now)?;
        repo::set_session_cutoff(tx, user_id, now)?;
        let (setup_token, expires_at) = issue_setup_token(
            tx,
            user_id,
            crate::domain::status::SetupTokenPurpose::Reset,
            Some(&actor.user_id),
            hours(dual.setup_token_ttl_hours),
            now,
        )?;
        let suspended = suspend_privileged_hats(tx, dual, actor, user_id, now)?;
        let hats_note = if suspended.is_empty() {
            String::new()
        } else {
            format!(
                "; privileged hat(s) {} suspended until a second administrator confirms them",
                suspended
                    .iter()
                    .map(|r| r.hat.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::UserResetPassword, "user", Some(user_id))
                .reason(format!(
                    "password cleared; {revoked} refresh token(s) revoked and every access token ended; \
                     setup token issued, valid until {expires_at}Z{hats_note}"
                )),
        )?;
        Ok(PasswordReset {
            user: get_user(tx, user_id)?,
            setup_token,
            setup_token_expires_at: expires_at.and_utc(),
            privileged_hats_pending: suspended,
        })
    })
}

/// Revokes the privileged hats of `user_id` that are in force or still to come, and asks for each again as a
/// pending request by `actor`; both audited. Inside the caller's transaction.
fn suspend_privileged_hats(
    tx: &mut DbConn,
    dual: &DualControlSettings,
    actor: &Actor,
    user_id: &str,
    now: NaiveDateTime,
) -> AppResult<Vec<HatGrantRequestView>> {
    let privileged = repo::unrevoked_hats_of_user(tx, user_id)?
        .into_iter()
        .filter(|h| h.valid_until.is_none_or(|until| until > now))
        .filter(|h| h.hat.needs_second_administrator());
    let mut pending = Vec::new();
    for hat in privileged {
        let before = HatGrantView::from_row(hat.clone(), now);
        repo::revoke_hat(tx, &hat.id, &actor.user_id, now)?;
        let after = repo::find_hat(tx, &hat.id)?
            .map(|r| HatGrantView::from_row(r, now))
            .ok_or_else(|| AppError::internal("revoked hat vanished"))?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::HatRevoke, "hat", Some(&hat.id))
                .reason(
                    "suspended by a password reset: the resetting administrator holds the setup token, so the \
                     hat waits for a second administrator again",
                )
                .before(json!(before))
                .after(json!(after)),
        )?;
        let request = pending_request(&hat, &actor.user_id, now, dual);
        let reason = format!("re-asked after a password reset (hat grant {} suspended)", hat.id);
        pending.push(insert_grant_request(tx, actor, request, Some(&reason))?);
    }
    Ok(pending)
}

/// Stores a pending request for a privileged hat and audits it.
/// A new pending request for the terms of `hat` (hat, scope, validity, acting mark), asked by `requested_by`.
fn pending_request(
    hat: &HatRow,
    requested_by: &str,
    now: NaiveDateTime,
    dual: &DualControlSettings,
) -> HatGrantRequestRow {
    HatGrantRequestRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: hat.user_id.clone(),
        hat: hat.hat,
        scope_organization_id: hat.scope_organization_id.clone(),
        scope_adm1: hat.scope_adm1.clone(),
        valid_from: hat.valid_from,
        valid_until: hat.valid_until,
        acting: hat.acting,
        requested_by: requested_by.to_owned(),
        requested_at: now,
        expires_at: now + hours(dual.grant_confirmation_ttl_hours),
        status: GrantRequestStatus::Pending,
        decided_by: None,
        decided_via: None,
        decided_at: None,
        decision_reason: None,
        hat_id: None,
    }
}

fn insert_grant_request(
    tx: &mut DbConn,
    actor: &Actor,
    row: HatGrantRequestRow,
    why: Option<&str>,
) -> AppResult<HatGrantRequestView> {
    let now = row.requested_at;
    repo::insert_hat_grant_request(tx, &row)?;
    let view = HatGrantRequestView::from_row(row, now);
    audit::append(
        tx,
        actor
            .audit()
            .event(AuditAction::HatGrantRequest, "hat_grant_request", Some(&view.id))
            .reason(format!(
                "{}{} is a privileged hat: waits for a second administrator until {}",
                why.map(|w| format!("{w}; ")).unwrap_or_default(),
                view.hat,
                view.expires_at.to_rfc3339()
            ))
            .after(json!(view)),
    )?;
    Ok(view)
}

const SETUP_TOKEN_REFUSED: &str =
    "The setup token is unknown, used or expired; ask an administrator for a new one.";

/// A user sets their own password with a setup token (public: the token is the credential). The token is
/// spent in the same transaction; the password must pass the same strength check as everywhere.
pub fn setup_password(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    input: &SetupPasswordRequest,
    meta: &RequestMeta,
) -> AppResult<()> {
    let now = now_micros();
    let refuse = |conn: &mut DbConn, user: Option<&UserRow>, reason: &str| -> AppError {
        let ctx = match user {
            Some(u) => user_context(u, meta),
            None => anonymous_context(meta),
        };
        let recorded = db::write_tx(conn, |tx| {
            audit::append(
                tx,
                ctx.event(
                    AuditAction::AuthSetupPassword,
                    "user",
                    user.map(|u| u.id.as_str()),
                )
                .outcome(Outcome::Failure)
                .reason(reason),
            )
        });
        match recorded {
            Ok(_) => AppError::unauthorized(SETUP_TOKEN_REFUSED),
            Err(e) => e.into(),
        }
    };
    let Some(token) = repo::find_setup_token(conn, &setup_token_hash(&input.token))? else {
        return Err(refuse(conn, None, "unknown setup token"));
    };
    let user =
        repo::find_user(conn, &token.user_id)?.ok_or_else(|| AppError::unauthorized(SETUP_TOKEN_REFUSED))?;
    let why_not = if token.used_at.is_some() {
        Some("setup token already used")
    } else if token.revoked_at.is_some() {
        Some("setup token replaced or revoked")
    } else if token.expires_at <= now {
        Some("setup token expired")
    } else if user.status == AccountStatus::Disabled {
        Some("account disabled")
    } else {
        None
    };
    if let Some(reason) = why_not {
        return Err(refuse(conn, Some(&user), reason));
    }
    let errors = password_errors_with(
        conn,
        "password",
        &input.password,
        &user.username,
        &user.display_name,
        &user.email,
        &user.organization_id,
    )?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let hash = auth.hashing.hash(&input.password)?;
    db::write_tx(conn, |tx| -> AppResult<AppResult<()>> {
        db::lock_row(tx, "password_setup_tokens", &token.id)?;
        if repo::spend_setup_token(tx, &token.id, now_micros())? == 0 {
            return Ok(Err(AppError::unauthorized(SETUP_TOKEN_REFUSED)));
        }
        repo::set_password_hash(tx, &user.id, &hash, now)?;
        repo::revoke_user_tokens(tx, &user.id, now)?;
        let issuer = token.issued_by.as_deref().unwrap_or("the console");
        audit::append(
            tx,
            user_context(&user, meta)
                .event(AuditAction::UserPasswordSet, "user", Some(&user.id))
                .reason(format!(
                    "password chosen by the user with a setup token ({}) issued by {issuer}",
                    token.purpose
                )),
        )?;
        Ok(Ok(()))
    })?
}

// ---- hats

pub fn list_hats(conn: &mut DbConn, user_id: &str) -> AppResult<Vec<HatGrantView>> {
    get_user(conn, user_id)?;
    let now = now_micros();
    Ok(repo::hats_of_user(conn, user_id)?
        .into_iter()
        .map(|r| HatGrantView::from_row(r, now))
        .collect())
}

fn validate_grant(conn: &mut DbConn, input: &NewHatGrant) -> AppResult<()> {
    let mut errors = Vec::new();
    if let Some(org) = &input.scope_organization_id {
        if repo::find_organization(conn, org)?.is_none() {
            errors.push(FieldError::new(
                "scope_organization_id",
                "no organisation has this id",
            ));
        }
    }
    if input
        .scope_adm1
        .as_deref()
        .is_some_and(|a| a.trim().is_empty() || a.chars().count() > 32)
    {
        errors.push(FieldError::new("scope_adm1", "must be an adm1 P-code"));
    }
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until) {
        if until <= from {
            errors.push(FieldError::new("valid_until", "must be after valid_from"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::validation(errors))
    }
}

/// Grants a hat. Ordinary hats take effect at once; a privileged one (see
/// [`crate::access::Hat::needs_second_administrator`]) becomes a pending request that a second administrator,
/// neither the requester nor the grantee, must confirm before it expires.
pub fn grant_hat(
    conn: &mut DbConn,
    dual: &DualControlSettings,
    actor: &Actor,
    user_id: &str,
    input: &NewHatGrant,
) -> AppResult<GrantOutcome> {
    if let Err(message) = access::may_change_hats_of(&actor.user_id, user_id) {
        return Err(deny(conn, actor, AuditAction::HatGrant, "user", user_id, message));
    }
    get_user(conn, user_id)?;
    validate_grant(conn, input)?;
    let now = now_micros();
    // The grant's terms, whether they take effect now or wait for a second administrator.
    let row = HatRow {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user_id.to_owned(),
        hat: input.hat,
        scope_organization_id: input.scope_organization_id.clone(),
        scope_adm1: input.scope_adm1.as_ref().map(|a| a.trim().to_owned()),
        valid_from: input.valid_from.map(|t| t.naive_utc()),
        valid_until: input.valid_until.map(|t| t.naive_utc()),
        acting: input.acting,
        granted_by: Some(actor.user_id.clone()),
        granted_at: now,
        revoked_by: None,
        revoked_at: None,
    };
    if input.hat.needs_second_administrator() {
        return db::write_tx(conn, |tx| {
            let request = pending_request(&row, &actor.user_id, now, dual);
            let view = insert_grant_request(tx, actor, request, None)?;
            Ok(GrantOutcome::Pending(view))
        });
    }
    db::write_tx(conn, |tx| {
        repo::insert_hat(tx, &row)?;
        let view = HatGrantView::from_row(row, now);
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::HatGrant, "hat", Some(&view.id))
                .after(json!(view)),
        )?;
        Ok(GrantOutcome::Granted(view))
    })
}

// ---- pending grants of privileged hats

/// Lists grant requests: `status` is `pending` (the default), `expired`, `confirmed`, `refused`, `cancelled`
/// or `all`.
pub fn list_hat_grant_requests(
    conn: &mut DbConn,
    status: HatGrantRequestListStatus,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<HatGrantRequestView>> {
    let now = now_micros();
    let filter = match status {
        HatGrantRequestListStatus::Pending => RequestFilter::PendingAt(now),
        HatGrantRequestListStatus::Expired => RequestFilter::ExpiredAt(now),
        HatGrantRequestListStatus::Confirmed => RequestFilter::Settled(GrantRequestStatus::Confirmed),
        HatGrantRequestListStatus::Refused => RequestFilter::Settled(GrantRequestStatus::Refused),
        HatGrantRequestListStatus::Cancelled => RequestFilter::Settled(GrantRequestStatus::Cancelled),
        HatGrantRequestListStatus::All => RequestFilter::All,
    };
    Ok(
        repo::list_hat_grant_requests(conn, filter, after, i64::from(limit) + 1)?
            .into_iter()
            .map(|r| HatGrantRequestView::from_row(r, now))
            .collect(),
    )
}

pub fn get_hat_grant_request(conn: &mut DbConn, id: &str) -> AppResult<HatGrantRequestView> {
    repo::find_hat_grant_request(conn, id)?
        .map(|r| HatGrantRequestView::from_row(r, now_micros()))
        .ok_or_else(|| AppError::not_found("No hat grant request with this id."))
}

/// Who confirms a request: a second administrator over the API, or someone at the server's console.
enum Confirmer<'a> {
    Administrator(&'a Actor),
    Console { host_user: Option<&'a str> },
}

fn console_context(host_user: Option<&str>) -> AuditContext {
    AuditContext {
        actor_username: Some(match host_user {
            Some(u) => format!("console:{u}"),
            None => "console".to_owned(),
        }),
        ..AuditContext::default()
    }
}

/// Confirms a pending request in one transaction: the grant is created, the request settled, both audited.
/// A request that is no longer pending or has expired is refused with a 409, and the refusal is audited.
fn confirm_request(conn: &mut DbConn, request_id: &str, confirmer: Confirmer<'_>) -> AppResult<HatGrantView> {
    let (ctx, decided_by, via) = match &confirmer {
        Confirmer::Administrator(actor) => (
            actor.audit(),
            Some(actor.user_id.as_str()),
            crate::domain::status::DecidedVia::Api,
        ),
        Confirmer::Console { host_user } => (
            console_context(*host_user),
            None,
            crate::domain::status::DecidedVia::Console,
        ),
    };
    let now = now_micros();
    db::write_tx(conn, |tx| -> AppResult<AppResult<HatGrantView>> {
        db::lock_row(tx, "hat_grant_requests", request_id)?;
        let row = repo::find_hat_grant_request(tx, request_id)?
            .ok_or_else(|| AppError::not_found("No hat grant request with this id."))?;
        let before = HatGrantRequestView::from_row(row.clone(), now);
        let refused_as =
            |tx: &mut DbConn, kind: ErrorKind, message: String| -> AppResult<AppResult<HatGrantView>> {
                audit::append(
                    tx,
                    ctx.event(
                        AuditAction::HatGrantConfirm,
                        "hat_grant_request",
                        Some(request_id),
                    )
                    .outcome(Outcome::Failure)
                    .reason(message.clone()),
                )?;
                Ok(Err(AppError::new(kind, message)))
            };
        let refused = |tx: &mut DbConn, message: String| refused_as(tx, ErrorKind::Conflict, message);
        if before.status == GrantRequestStatus::Expired {
            return refused(
                tx,
                format!(
                    "This request expired at {}; an administrator must ask for the grant again.",
                    before.expires_at.to_rfc3339()
                ),
            );
        }
        if before.status != GrantRequestStatus::Pending {
            return refused(tx, format!("This request is {} already.", before.status));
        }
        // Over the API, the grantee's password must not rest on a setup token of the requester (who could have
        // used it). The grantee's row is locked so a reset cannot slip in between this look and the grant.
        // The console is exempt: console access is full control of the server anyway (audited as such).
        if let Confirmer::Administrator(_) = confirmer {
            db::lock_row(tx, "users", &row.user_id)?;
            let issuers = repo::password_token_issuers(tx, &row.user_id, now)?;
            if let Err(message) = access::may_confirm_given_password_origin(
                &row.requested_by,
                issuers.iter().flatten().map(String::as_str),
            ) {
                return refused_as(tx, ErrorKind::DualControl, message.to_owned());
            }
        }
        let hat = HatRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: row.user_id.clone(),
            hat: row.hat,
            scope_organization_id: row.scope_organization_id.clone(),
            scope_adm1: row.scope_adm1.clone(),
            valid_from: row.valid_from,
            valid_until: row.valid_until,
            acting: row.acting,
            granted_by: Some(row.requested_by.clone()),
            granted_at: now,
            revoked_by: None,
            revoked_at: None,
        };
        repo::insert_hat(tx, &hat)?;
        let settled = repo::settle_hat_grant_request(
            tx,
            request_id,
            &Settlement {
                status: GrantRequestStatus::Confirmed,
                decided_by,
                decided_via: via,
                reason: None,
                hat_id: Some(&hat.id),
                at: now,
            },
        )?;
        if settled == 0 {
            return Err(AppError::conflict("This request was settled meanwhile."));
        }
        let after = repo::find_hat_grant_request(tx, request_id)?
            .map(|r| HatGrantRequestView::from_row(r, now))
            .ok_or_else(|| AppError::internal("settled request vanished"))?;
        let grant = HatGrantView::from_row(hat, now);
        let by = match &confirmer {
            Confirmer::Administrator(actor) => format!("second administrator {}", actor.username),
            Confirmer::Console { host_user } => format!(
                "the server console (host user {})",
                host_user.unwrap_or("unknown")
            ),
        };
        audit::append(
            tx,
            ctx.event(
                AuditAction::HatGrantConfirm,
                "hat_grant_request",
                Some(request_id),
            )
            .reason(format!("confirmed by {by}"))
            .before(json!(before))
            .after(json!(after)),
        )?;
        audit::append(
            tx,
            ctx.event(AuditAction::HatGrant, "hat", Some(&grant.id))
                .reason(format!(
                    "requested by {} in request {request_id}; confirmed by {by}",
                    row.requested_by
                ))
                .after(json!(grant)),
        )?;
        Ok(Ok(grant))
    })?
}

/// A second administrator confirms a pending grant. The requester and the grantee may not (four-eyes, 403);
/// nor may anyone while the grantee's password rests on a setup token the requester issued (409
/// `dual-control`, checked in `confirm_request` under the grantee's row lock).
pub fn confirm_hat_grant(conn: &mut DbConn, actor: &Actor, request_id: &str) -> AppResult<HatGrantView> {
    let row = repo::find_hat_grant_request(conn, request_id)?
        .ok_or_else(|| AppError::not_found("No hat grant request with this id."))?;
    if let Err(message) = access::may_confirm_hat_grant(&actor.user_id, &row.requested_by, &row.user_id) {
        return Err(deny(
            conn,
            actor,
            AuditAction::HatGrantConfirm,
            "hat_grant_request",
            request_id,
            message,
        ));
    }
    confirm_request(conn, request_id, Confirmer::Administrator(actor))
}

/// Confirms a pending grant from the server's command line (`qip-pool admin confirm-grant`): for a mission
/// with a single administrator. Whoever can run the binary against the database holds the keys anyway; the
/// audit trail records the console and the host user. For the same reason the console is exempt from
/// [`access::may_confirm_given_password_origin`]: it confirms even when the requester issued the grantee's
/// setup token.
pub fn confirm_hat_grant_from_console(
    conn: &mut DbConn,
    request_id: &str,
    host_user: Option<&str>,
) -> AppResult<HatGrantView> {
    confirm_request(conn, request_id, Confirmer::Console { host_user })
}

/// Refuses a pending grant (any administrator), or cancels it (its requester). Expired or settled requests
/// are final.
pub fn refuse_hat_grant(
    conn: &mut DbConn,
    actor: &Actor,
    request_id: &str,
    reason: Option<&str>,
) -> AppResult<HatGrantRequestView> {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > 1000) {
        return Err(AppError::invalid_field(
            "reason",
            "must be at most 1,000 characters",
        ));
    }
    let now = now_micros();
    db::write_tx(conn, |tx| {
        db::lock_row(tx, "hat_grant_requests", request_id)?;
        let row = repo::find_hat_grant_request(tx, request_id)?
            .ok_or_else(|| AppError::not_found("No hat grant request with this id."))?;
        let before = HatGrantRequestView::from_row(row.clone(), now);
        if before.status != GrantRequestStatus::Pending {
            return Err(AppError::conflict(format!(
                "This request is {} and can no longer be refused.",
                before.status
            )));
        }
        let status = if row.requested_by == actor.user_id {
            GrantRequestStatus::Cancelled
        } else {
            GrantRequestStatus::Refused
        };
        repo::settle_hat_grant_request(
            tx,
            request_id,
            &Settlement {
                status,
                decided_by: Some(&actor.user_id),
                decided_via: crate::domain::status::DecidedVia::Api,
                reason,
                hat_id: None,
                at: now,
            },
        )?;
        let after = repo::find_hat_grant_request(tx, request_id)?
            .map(|r| HatGrantRequestView::from_row(r, now))
            .ok_or_else(|| AppError::internal("settled request vanished"))?;
        let action = if status == GrantRequestStatus::Cancelled {
            AuditAction::HatGrantCancel
        } else {
            AuditAction::HatGrantRefuse
        };
        let mut event = actor
            .audit()
            .event(action, "hat_grant_request", Some(request_id))
            .before(json!(before))
            .after(json!(after));
        if let Some(r) = reason {
            event = event.reason(r);
        }
        audit::append(tx, event)?;
        Ok(after)
    })
}

pub fn revoke_hat(conn: &mut DbConn, actor: &Actor, user_id: &str, hat_id: &str) -> AppResult<HatGrantView> {
    if let Err(message) = access::may_change_hats_of(&actor.user_id, user_id) {
        return Err(deny(
            conn,
            actor,
            AuditAction::HatRevoke,
            "user",
            user_id,
            message,
        ));
    }
    let now = now_micros();
    db::write_tx(conn, |tx| {
        let row = repo::find_hat(tx, hat_id)?
            .filter(|h| h.user_id == user_id)
            .ok_or_else(|| AppError::not_found("This user holds no hat grant with this id."))?;
        if row.revoked_at.is_some() {
            return Err(AppError::conflict("This hat grant is already revoked."));
        }
        let before = HatGrantView::from_row(row, now);
        repo::revoke_hat(tx, hat_id, &actor.user_id, now)?;
        let after = repo::find_hat(tx, hat_id)?
            .map(|r| HatGrantView::from_row(r, now))
            .ok_or_else(|| AppError::internal("revoked hat vanished"))?;
        audit::append(
            tx,
            actor
                .audit()
                .event(AuditAction::HatRevoke, "hat", Some(hat_id))
                .before(json!(before))
                .after(json!(after)),
        )?;
        Ok(after)
    })
}

// ---- bootstrap

/// Why `admin bootstrap` refused.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("an administrator exists already; bootstrap only works on an empty database")]
    AdminExists,
    #[error("password {0}")]
    WeakPassword(String),
    #[error("username must be 3–64 characters of a–z, 0–9, '.', '_' and '-'")]
    BadUsername,
    #[error("{0}")]
    Failed(String),
}

/// Creates the mission-office organisation and the first administrator, on a database that has none.
pub fn bootstrap_admin(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    username: &str,
    password: &str,
) -> Result<String, BootstrapError> {
    if !valid_username(username) {
        return Err(BootstrapError::BadUsername);
    }
    let problems = password_problems(password, username);
    if !problems.is_empty() {
        return Err(BootstrapError::WeakPassword(problems.join("; ")));
    }
    let hash = auth
        .hashing
        .hash(password)
        .map_err(|e| BootstrapError::Failed(e.to_string()))?;
    let now = now_micros();
    let result: AppResult<Result<String, BootstrapError>> = db::write_tx(conn, |tx| {
        if repo::admin_exists(tx)? {
            return Ok(Err(BootstrapError::AdminExists));
        }
        let ctx = AuditContext::system(None);
        let org = match repo::list_organizations(tx, None, 1000)?
            .into_iter()
            .find(|o| o.kind == OrganizationKind::MissionOffice)
        {
            Some(org) => org,
            None => {
                let org = OrganizationRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    code: "MISSION".into(),
                    name: "Mission office".into(),
                    kind: OrganizationKind::MissionOffice,
                    created_at: now,
                };
                repo::insert_organization(tx, &org)?;
                audit::append(
                    tx,
                    ctx.event(AuditAction::OrganizationCreate, "organization", Some(&org.id))
                        .after(json!(Organization::from(org.clone()))),
                )?;
                org
            }
        };
        let user = UserRow {
            id: uuid::Uuid::now_v7().to_string(),
            username: username.to_owned(),
            display_name: "Administrator".into(),
            email: format!("{username}@mission.invalid"),
            organization_id: org.id.clone(),
            status: AccountStatus::Active,
            password_hash: hash,
            failed_logins: 0,
            failed_window_start: None,
            locked_until: None,
            lock_count: 0,
            created_at: now,
            updated_at: now,
        };
        if repo::find_user_by_username(tx, username)?.is_some() {
            return Err(AppError::new(
                ErrorKind::Conflict,
                format!("the username {username} is taken"),
            ));
        }
        repo::insert_user(tx, &user)?;
        audit::append(
            tx,
            ctx.event(AuditAction::UserCreate, "user", Some(&user.id))
                .after(json!(User::from_row(user.clone(), now))),
        )?;
        let hat = HatRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            hat: access::Hat::Admin,
            scope_organization_id: None,
            scope_adm1: None,
            valid_from: None,
            valid_until: None,
            acting: false,
            granted_by: None,
            granted_at: now,
            revoked_by: None,
            revoked_at: None,
        };
        repo::insert_hat(tx, &hat)?;
        audit::append(
            tx,
            ctx.event(AuditAction::HatGrant, "hat", Some(&hat.id))
                .reason("bootstrap administrator"),
        )?;
        Ok(Ok(user.id))
    });
    result.map_err(|e| BootstrapError::Failed(e.to_string()))?
}

/// True when no administrator exists (a fresh database); `serve` then says how to create one.
pub fn needs_bootstrap(conn: &mut DbConn) -> AppResult<bool> {
    Ok(!repo::admin_exists(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, jti: String) -> AccessClaims {
        AccessClaims {
            iss: "qip-pool".into(),
            aud: "qip-pool-api".into(),
            sub: "u".into(),
            iat,
            nbf: iat,
            exp: iat + 900,
            jti,
        }
    }

    #[test]
    fn a_tokens_issue_time_is_read_to_the_millisecond_from_its_jti() {
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_800_000_000, 123_000_000);
        let jti = uuid::Uuid::new_v7(ts).to_string();
        let at = token_issued_at(&claims(1_800_000_000, jti));
        assert_eq!(at.and_utc().timestamp_millis(), 1_800_000_000_123);
    }

    #[test]
    fn a_jti_that_disagrees_with_iat_or_is_not_v7_falls_back_to_iat() {
        let ts = uuid::Timestamp::from_unix(uuid::NoContext, 1_700_000_000, 5_000_000);
        let other_second = uuid::Uuid::new_v7(ts).to_string();
        let at = token_issued_at(&claims(1_800_000_000, other_second));
        assert_eq!(at.and_utc().timestamp_millis(), 1_800_000_000_000);
        let at = token_issued_at(&claims(1_800_000_000, "not-a-uuid".into()));
        assert_eq!(at.and_utc().timestamp_millis(), 1_800_000_000_000);
    }

    #[test]
    fn setup_tokens_are_random_and_stored_as_their_sha256() {
        let (a, hash_a) = new_setup_token();
        let (b, _) = new_setup_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits, URL-safe base64 without padding");
        assert_eq!(hash_a, setup_token_hash(&a));
        assert_eq!(hash_a.len(), 64);
        assert_ne!(hash_a, a);
    }
}
