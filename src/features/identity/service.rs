//! Identity use cases, each one transaction: sign-in, refresh, sign-out, request authorization, and the
//! administration of organisations, users and hats. Password hashing happens before a transaction opens.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use super::AuthRuntime;
use super::dto::{
    HatGrantView, LoginRequest, Me, NewHatGrant, NewOrganization, NewUser, Organization, TokenResponse, User,
};
use super::repo::{self, HatRow, OrganizationRow, RefreshTokenRow, UserRow};
use super::tokens::{MAX_CLOCK_SKEW_SECS, new_refresh_token, refresh_token_hash};
use crate::access::{self, Actor, HatGrant, Requirement, resolve_hat};
use crate::db::{self, DbConn};
use crate::domain::lockout::{self, retry_after_secs, wait_before_attempt};
use crate::domain::password_policy::{password_problems, password_problems_for};
use crate::error::{AppError, AppResult, ErrorKind, FieldError};
use crate::features::audit::{self, AuditContext, Outcome, now_micros};
use crate::http::middleware::RequestMeta;

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

/// Signs a user in. Failed passwords are throttled per (account, client address), with a much higher ceiling
/// per account (src/domain/lockout.rs); an attempt inside a wait is refused with 429 before its password is
/// checked. Unknown users cost a dummy hash so timing does not reveal them, and are throttled alike. Every
/// checked attempt is audited with its outcome and client address, and each wait once, when it starts.
pub fn login(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    input: &LoginRequest,
    meta: &RequestMeta,
) -> AppResult<TokenResponse> {
    input.check_bounds()?;
    let refused = || AppError::unauthorized(SIGN_IN_REFUSED);
    let account = throttle_account_key(&input.username);
    let address = throttle_address(meta);
    let before = repo::find_login_throttles(conn, &account, &address)?;
    if let Some(wait) = wait_before_attempt(
        &before.pair,
        &before.account,
        before.pair_last_success,
        now_micros(),
    ) {
        return Err(sign_in_throttled(wait));
    }
    let user = repo::find_user_by_username(conn, &input.username)?;
    let password_ok = match &user {
        Some(user) => auth.hashing.verify(&input.password, &user.password_hash),
        None => {
            auth.hashing.verify_dummy(&input.password);
            false
        }
    };
    let now = now_micros();
    db::write_tx(conn, |tx| -> AppResult<AppResult<TokenResponse>> {
        if let Some(user) = &user {
            db::lock_row(tx, "users", &user.id)?;
        }
        repo::lock_login_throttles(tx, &account, &address, now)?;
        let throttles = repo::find_login_throttles(tx, &account, &address)?;
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
            let ctx = AuditContext {
                actor_username: Some(account.clone()),
                ..anonymous_context(meta)
            };
            record_failed_sign_in(
                tx,
                &ctx,
                None,
                &account,
                &address,
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
                &account,
                &address,
                &throttles,
                now,
                "wrong password",
            )?;
            return Ok(Err(refused()));
        }
        if current.status == "disabled" {
            audit::append(
                tx,
                ctx.event("auth.login", "session", Some(&current.id))
                    .outcome(Outcome::Failure)
                    .reason("account disabled"),
            )?;
            return Ok(Err(refused()));
        }
        repo::save_login_throttle(
            tx,
            &account,
            &address,
            &throttles.pair.after_success(),
            Some(now),
            now,
        )?;
        let family = uuid::Uuid::now_v7().to_string();
        let tokens = issue_tokens(tx, auth, &current.id, &family, now, now)?;
        audit::append(
            tx,
            ctx.event("auth.login", "session", Some(&current.id))
                .reason(format!("session family {family}")),
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
        ctx.event("auth.login", "session", user_id)
            .outcome(Outcome::Failure)
            .reason(format!(
                "{reason} ({} recent failures from this address)",
                pair.state.failures
            )),
    )?;
    if let Some(wait) = pair.wait_started {
        audit::append(
            tx,
            ctx.event("auth.login_throttled", "session", user_id)
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
            ctx.event("auth.login_throttled", "session", user_id)
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
    let hash = refresh_token_hash(token);
    let now = now_micros();
    let invalid =
        || AppError::unauthorized("The refresh token is unknown, expired or revoked; sign in again.");
    db::write_tx(conn, |tx| -> AppResult<AppResult<TokenResponse>> {
        let Some(row) = repo::find_refresh_token(tx, &hash)? else {
            return Ok(Err(invalid()));
        };
        db::lock_row(tx, "refresh_tokens", &row.id)?;
        let user = repo::find_user(tx, &row.user_id)?.ok_or_else(invalid)?;
        let ctx = user_context(&user, meta);
        if row.revoked_at.is_some() || row.expires_at <= now || user.status == "disabled" {
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
                ctx.event("auth.refresh", "session", Some(&row.family_id))
                    .outcome(Outcome::Denied)
                    .reason(format!("{reason}; {revoked} live token(s) of the family revoked")),
            )?;
            return Ok(Err(invalid()));
        }
        if row.rotated_at.is_some() || repo::mark_rotated(tx, &row.id, now)? == 0 {
            let revoked = repo::revoke_family(tx, &row.family_id, now)?;
            audit::append(
                tx,
                ctx.event("auth.refresh_reuse", "session", Some(&row.family_id))
                    .outcome(Outcome::Denied)
                    .reason(format!("a rotated refresh token was presented again; {revoked} live token(s) of the family revoked")),
            )?;
            return Ok(Err(AppError::unauthorized(
                "This refresh token was already used, so every session of this sign-in has been ended. Sign in again.",
            )));
        }
        let tokens = issue_tokens(tx, auth, &user.id, &row.family_id, family_started, now)?;
        audit::append(tx, ctx.event("auth.refresh", "session", Some(&row.family_id)))?;
        Ok(Ok(tokens))
    })?
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
            user_context(&user, meta).event("auth.logout", "session", Some(&row.family_id)),
        )?;
        Ok(())
    })
}

fn grant_of(row: &HatRow) -> Option<HatGrant> {
    Some(HatGrant {
        id: row.id.clone(),
        hat: row.hat.parse().ok()?,
        scope_organization_id: row.scope_organization_id.clone(),
        scope_adm1: row.scope_adm1.clone(),
        valid_from: row.valid_from,
        valid_until: row.valid_until,
        acting: row.acting,
    })
}

/// Turns a verified token subject into an `Actor` for `requirement`: the account must exist and not be
/// disabled; hats are read now from the database (so a revocation bites on the next request); the action's
/// hat is resolved per the policy. A denial is audited before the 403 goes out.
pub fn authorize_request(
    conn: &mut DbConn,
    user_id: &str,
    requirement: Requirement,
    acting_hat: Option<&str>,
    route: &str,
    meta: &RequestMeta,
) -> AppResult<Actor> {
    let unauthorized =
        || AppError::unauthorized("The account behind this token cannot act now; sign in again.");
    let user = repo::find_user(conn, user_id)?.ok_or_else(unauthorized)?;
    if user.status == "disabled" {
        return Err(unauthorized());
    }
    let now = now_micros();
    let grants: Vec<HatGrant> = repo::unrevoked_hats_of_user(conn, &user.id)?
        .iter()
        .filter_map(grant_of)
        .filter(|g| g.is_valid_at(now))
        .collect();
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
                    ctx.event("access.denied", "route", Some(route))
                        .outcome(Outcome::Denied)
                        .reason(message.clone()),
                )
            })?;
            Err(AppError::forbidden(message))
        }
    }
}

/// Records a refused attempt (separation of duties and other object-level rules) and returns the 403.
pub fn deny(
    conn: &mut DbConn,
    actor: &Actor,
    action: &str,
    entity_type: &str,
    entity_id: &str,
    message: &str,
) -> AppError {
    let recorded = db::write_tx(conn, |tx| {
        audit::append(
            tx,
            actor
                .audit()
                .event(action, entity_type, Some(entity_id))
                .outcome(Outcome::Denied)
                .reason(message),
        )
    });
    match recorded {
        Ok(_) => AppError::forbidden(message),
        Err(e) => e.into(),
    }
}

/// The caller, their organisation and the hats that give power now.
pub fn me(conn: &mut DbConn, actor: &Actor) -> AppResult<Me> {
    let now = now_micros();
    let user = repo::find_user(conn, &actor.user_id)?.ok_or_else(|| AppError::not_found("No such user."))?;
    let organization = repo::find_organization(conn, &user.organization_id)?
        .ok_or_else(|| AppError::not_found("No such organisation."))?;
    let hats = repo::unrevoked_hats_of_user(conn, &user.id)?
        .into_iter()
        .filter_map(|r| HatGrantView::from_row(r, now))
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
    if input.name.trim().is_empty() || input.name.len() > 200 {
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
            kind: input.kind.as_str().to_owned(),
            created_at: now_micros(),
        };
        repo::insert_organization(tx, &row)?;
        let view = Organization::from(row);
        audit::append(
            tx,
            actor
                .audit()
                .event("organization.create", "organization", Some(&view.id))
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

/// Creates a user (with no hats). Every fault of the input is reported at once.
pub fn create_user(conn: &mut DbConn, auth: &AuthRuntime, actor: &Actor, input: &NewUser) -> AppResult<User> {
    let mut errors = Vec::new();
    if !valid_username(&input.username) {
        errors.push(FieldError::new(
            "username",
            "must be 3–64 characters of a–z, 0–9, '.', '_' and '-'",
        ));
    }
    if input.display_name.trim().is_empty() || input.display_name.len() > 200 {
        errors.push(FieldError::new("display_name", "must be 1–200 characters"));
    }
    let email = input.email.trim();
    if email.len() > 254
        || !email
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
    {
        errors.push(FieldError::new("email", "must be an email address"));
    }
    if repo::find_organization(conn, &input.organization_id)?.is_none() {
        errors.push(FieldError::new("organization_id", "no organisation has this id"));
    }
    errors.extend(password_errors_with(
        conn,
        "password",
        &input.password,
        &input.username,
        &input.display_name,
        email,
        &input.organization_id,
    )?);
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let password_hash = auth.hashing.hash(&input.password)?;
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
            status: "active".into(),
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
        audit::append(
            tx,
            actor
                .audit()
                .event("user.create", "user", Some(&view.id))
                .after(json!(view)),
        )?;
        Ok(view)
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
    status: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> AppResult<Vec<User>> {
    if let Some(s) = status {
        if !["active", "locked", "disabled"].contains(&s) {
            return Err(AppError::invalid_field(
                "status",
                "must be active, locked or disabled",
            ));
        }
    }
    let now = now_micros();
    Ok(
        repo::list_users(conn, organization_id, status, after, i64::from(limit) + 1)?
            .into_iter()
            .map(|u| User::from_row(u, now))
            .collect(),
    )
}

/// Disables or re-enables an account. Disabling ends its sessions; enabling clears any lockout.
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
            repo::set_user_status(tx, user_id, "active", now)?;
            repo::clear_lockout(tx, user_id)?;
            repo::clear_login_throttles(tx, &before_view.username)?;
        } else {
            repo::set_user_status(tx, user_id, "disabled", now)?;
            repo::revoke_user_tokens(tx, user_id, now)?;
        }
        let after =
            repo::find_user(tx, user_id)?.ok_or_else(|| AppError::not_found("No user with this id."))?;
        let view = User::from_row(after, now);
        let action = if enabled { "user.enable" } else { "user.disable" };
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

/// Sets a new password chosen by an administrator and ends the user's sessions.
pub fn reset_password(
    conn: &mut DbConn,
    auth: &AuthRuntime,
    actor: &Actor,
    user_id: &str,
    new_password: &str,
) -> AppResult<User> {
    let user = repo::find_user(conn, user_id)?.ok_or_else(|| AppError::not_found("No user with this id."))?;
    let errors = password_errors_with(
        conn,
        "new_password",
        new_password,
        &user.username,
        &user.display_name,
        &user.email,
        &user.organization_id,
    )?;
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let hash = auth.hashing.hash(new_password)?;
    let now = now_micros();
    db::write_tx(conn, |tx| {
        repo::set_password_hash(tx, user_id, &hash, now)?;
        repo::revoke_user_tokens(tx, user_id, now)?;
        audit::append(
            tx,
            actor
                .audit()
                .event("user.reset_password", "user", Some(user_id))
                .reason("password reset; sessions ended"),
        )?;
        get_user(tx, user_id)
    })
}

// ---- hats

pub fn list_hats(conn: &mut DbConn, user_id: &str) -> AppResult<Vec<HatGrantView>> {
    get_user(conn, user_id)?;
    let now = now_micros();
    Ok(repo::hats_of_user(conn, user_id)?
        .into_iter()
        .filter_map(|r| HatGrantView::from_row(r, now))
        .collect())
}

pub fn grant_hat(
    conn: &mut DbConn,
    actor: &Actor,
    user_id: &str,
    input: &NewHatGrant,
) -> AppResult<HatGrantView> {
    if let Err(message) = access::may_change_hats_of(&actor.user_id, user_id) {
        return Err(deny(conn, actor, "hat.grant", "user", user_id, message));
    }
    get_user(conn, user_id)?;
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
        .is_some_and(|a| a.trim().is_empty() || a.len() > 32)
    {
        errors.push(FieldError::new("scope_adm1", "must be an adm1 P-code"));
    }
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until) {
        if until <= from {
            errors.push(FieldError::new("valid_until", "must be after valid_from"));
        }
    }
    if !errors.is_empty() {
        return Err(AppError::validation(errors));
    }
    let now = now_micros();
    db::write_tx(conn, |tx| {
        let row = HatRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_owned(),
            hat: input.hat.as_str().to_owned(),
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
        repo::insert_hat(tx, &row)?;
        let view =
            HatGrantView::from_row(row, now).ok_or_else(|| AppError::internal("stored an unknown hat"))?;
        audit::append(
            tx,
            actor
                .audit()
                .event("hat.grant", "hat", Some(&view.id))
                .after(json!(view)),
        )?;
        Ok(view)
    })
}

pub fn revoke_hat(conn: &mut DbConn, actor: &Actor, user_id: &str, hat_id: &str) -> AppResult<HatGrantView> {
    if let Err(message) = access::may_change_hats_of(&actor.user_id, user_id) {
        return Err(deny(conn, actor, "hat.revoke", "user", user_id, message));
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
            .and_then(|r| HatGrantView::from_row(r, now))
            .ok_or_else(|| AppError::internal("revoked hat vanished"))?;
        audit::append(
            tx,
            actor
                .audit()
                .event("hat.revoke", "hat", Some(hat_id))
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
            .find(|o| o.kind == "mission_office")
        {
            Some(org) => org,
            None => {
                let org = OrganizationRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    code: "MISSION".into(),
                    name: "Mission office".into(),
                    kind: "mission_office".into(),
                    created_at: now,
                };
                repo::insert_organization(tx, &org)?;
                audit::append(
                    tx,
                    ctx.event("organization.create", "organization", Some(&org.id))
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
            status: "active".into(),
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
            ctx.event("user.create", "user", Some(&user.id))
                .after(json!(User::from_row(user.clone(), now))),
        )?;
        let hat = HatRow {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            hat: "admin".into(),
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
            ctx.event("hat.grant", "hat", Some(&hat.id))
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
