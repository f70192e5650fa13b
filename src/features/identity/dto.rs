//! Request and response bodies of the identity API. Server-owned fields (ids, timestamps, status, hashes)
//! are absent from inputs, and inputs reject unknown fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::repo::{HatGrantRequestRow, HatRow, OrganizationRow, UserRow};
use crate::access::Hat;
use crate::domain::status::{AccountStatus, DecidedVia, GrantRequestStatus, UserStatus};

pub use crate::domain::status::OrganizationKind;

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// At most 128 characters.
    #[schema(max_length = 128, example = "cimic")]
    pub username: String,
    /// At most 1024 characters.
    #[schema(max_length = 1024, example = "xylonia-demo-2026")]
    pub password: String,
}

impl LoginRequest {
    pub const MAX_USERNAME_CHARS: usize = 128;
    pub const MAX_PASSWORD_CHARS: usize = 1_024;

    /// Refuses (422) a username or password no account can have, before anything is hashed or audited.
    pub fn check_bounds(&self) -> crate::error::AppResult<()> {
        let mut errors = Vec::new();
        if self.username.chars().count() > Self::MAX_USERNAME_CHARS {
            errors.push(crate::error::FieldError::new(
                "username",
                format!("must be at most {} characters", Self::MAX_USERNAME_CHARS),
            ));
        }
        if self.password.chars().count() > Self::MAX_PASSWORD_CHARS {
            errors.push(crate::error::FieldError::new(
                "password",
                format!("must be at most {} characters", Self::MAX_PASSWORD_CHARS),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(crate::error::AppError::validation(errors))
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Single use: every refresh returns a new one; presenting a used one ends the whole session family.
    pub refresh_token: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    /// Short unique code, 2–16 of A–Z, 0–9 and `-` (e.g. `UNICEF`, `BANBAT-2`).
    #[schema(
        min_length = 2,
        max_length = 16,
        pattern = "^[A-Z0-9-]{2,16}$",
        example = "UNICEF"
    )]
    pub code: String,
    /// 1–200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "\\S",
        example = "UNICEF country office"
    )]
    pub name: String,
    pub kind: OrganizationKind,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organization {
    pub id: String,
    pub code: String,
    pub name: String,
    pub kind: OrganizationKind,
    pub created_at: DateTime<Utc>,
}

impl From<OrganizationRow> for Organization {
    fn from(r: OrganizationRow) -> Self {
        Self {
            id: r.id,
            code: r.code,
            name: r.name,
            kind: r.kind,
            created_at: r.created_at.and_utc(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// 3–64 of a–z, 0–9, `.`, `_`, `-`; unique.
    #[schema(
        min_length = 3,
        max_length = 64,
        pattern = "^[a-z0-9._-]{3,64}$",
        example = "lena"
    )]
    pub username: String,
    /// 1–200 characters, not blank.
    #[schema(min_length = 1, max_length = 200, pattern = "\\S", example = "Lena M.")]
    pub display_name: String,
    /// At most 254 characters: a local part, `@`, and a domain with a dot.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = "^\\s*[^@\\s][^@]*@[\\s\\S]*\\.",
        example = "lena@unicef.example"
    )]
    pub email: String,
    #[schema(example = "0195a3c8-5b1e-7c4d-9f00-3a2b1c0d9e8f")]
    pub organization_id: String,
}

/// A user the administrator just created or reset, with the one-time setup token to hand to them. The
/// administrator never sets or learns a password: the user chooses it at `POST /api/v1/auth/setup-password`.
/// Until then the account cannot sign in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserWithSetupToken {
    #[serde(flatten)]
    pub user: User,
    /// Shown once, stored only as a hash; single use.
    pub setup_token: String,
    pub setup_token_expires_at: DateTime<Utc>,
}

/// The answer to a password reset: the user, the single-use setup token to hand over (shown once), and the
/// privileged hats the reset suspended. The administrator who resets holds that token, so each privileged hat
/// the account held became a pending grant request by them; a second administrator confirms it after issuing
/// the person a setup token of their own (a further reset).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PasswordReset {
    #[serde(flatten)]
    pub user: User,
    /// Shown once, stored only as a hash; single use.
    pub setup_token: String,
    pub setup_token_expires_at: DateTime<Utc>,
    /// The pending requests that replace the account's privileged hats (empty when it held none).
    pub privileged_hats_pending: Vec<HatGrantRequestView>,
}

/// A user sets their own password with the setup token an administrator handed them.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupPasswordRequest {
    #[schema(min_length = 1, example = "st_8Qm2cV7xZk1Lr4Pw")]
    pub token: String,
    /// 12–128 characters; not a common password; not containing the username.
    #[schema(min_length = 12, max_length = 128, example = "orange-kettle-batallion-77")]
    pub password: String,
}

/// `active`, `locked` (too many failed sign-ins, until `locked_until`) or `disabled` (by an administrator).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub email: String,
    pub organization_id: String,
    pub status: UserStatus,
    pub locked_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The view of a user row; the effective status accounts for a lock that has run out.
    pub fn from_row(r: UserRow, now: chrono::NaiveDateTime) -> Self {
        let locked = r.locked_until.filter(|until| *until > now);
        let status = if r.status == AccountStatus::Disabled {
            UserStatus::Disabled
        } else if locked.is_some() {
            UserStatus::Locked
        } else {
            UserStatus::Active
        };
        Self {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            email: r.email,
            organization_id: r.organization_id,
            status,
            locked_until: locked.map(|t| t.and_utc()),
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewHatGrant {
    pub hat: Hat,
    /// Limit the hat to acting for this organisation.
    pub scope_organization_id: Option<String>,
    /// Limit the hat to this adm1 P-code (1–32 characters, not blank).
    #[schema(min_length = 1, max_length = 32, pattern = "\\S")]
    pub scope_adm1: Option<String>,
    /// Start of validity (inclusive); absent = now.
    pub valid_from: Option<DateTime<Utc>>,
    /// End of validity (exclusive, after `valid_from`); absent = open-ended.
    pub valid_until: Option<DateTime<Utc>>,
    /// Held as officer-in-charge; decisions in it are marked acting.
    #[serde(default)]
    pub acting: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HatGrantView {
    pub id: String,
    pub user_id: String,
    pub hat: Hat,
    pub scope_organization_id: Option<String>,
    pub scope_adm1: Option<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub acting: bool,
    pub granted_by: Option<String>,
    pub granted_at: DateTime<Utc>,
    pub revoked_by: Option<String>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Gives power now: not revoked and inside its validity period.
    pub active: bool,
}

impl HatGrantView {
    pub fn from_row(r: HatRow, now: chrono::NaiveDateTime) -> Self {
        let active = r.revoked_at.is_none()
            && r.valid_from.is_none_or(|f| f <= now)
            && r.valid_until.is_none_or(|u| now < u);
        Self {
            id: r.id,
            user_id: r.user_id,
            hat: r.hat,
            scope_organization_id: r.scope_organization_id,
            scope_adm1: r.scope_adm1,
            valid_from: r.valid_from.map(|t| t.and_utc()),
            valid_until: r.valid_until.map(|t| t.and_utc()),
            acting: r.acting,
            granted_by: r.granted_by,
            granted_at: r.granted_at.and_utc(),
            revoked_by: r.revoked_by,
            revoked_at: r.revoked_at.map(|t| t.and_utc()),
            active,
        }
    }
}

/// A grant of a privileged hat waiting for a second administrator (or settled). `status` is `pending`,
/// `expired` (pending past `expires_at`: it can no longer be confirmed), `confirmed`, `refused` or `cancelled`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HatGrantRequestView {
    pub id: String,
    pub user_id: String,
    pub hat: Hat,
    pub scope_organization_id: Option<String>,
    pub scope_adm1: Option<String>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    pub acting: bool,
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub status: GrantRequestStatus,
    /// The administrator who settled it; absent when confirmed from the server's console.
    pub decided_by: Option<String>,
    pub decided_via: Option<DecidedVia>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    /// The grant a confirmation created.
    pub hat_id: Option<String>,
}

impl HatGrantRequestView {
    pub fn from_row(r: HatGrantRequestRow, now: chrono::NaiveDateTime) -> Self {
        let status = if r.status == GrantRequestStatus::Pending && r.expires_at <= now {
            GrantRequestStatus::Expired
        } else {
            r.status
        };
        Self {
            id: r.id,
            user_id: r.user_id,
            hat: r.hat,
            scope_organization_id: r.scope_organization_id,
            scope_adm1: r.scope_adm1,
            valid_from: r.valid_from.map(|t| t.and_utc()),
            valid_until: r.valid_until.map(|t| t.and_utc()),
            acting: r.acting,
            requested_by: r.requested_by,
            requested_at: r.requested_at.and_utc(),
            expires_at: r.expires_at.and_utc(),
            status,
            decided_by: r.decided_by,
            decided_via: r.decided_via,
            decided_at: r.decided_at.map(|t| t.and_utc()),
            decision_reason: r.decision_reason,
            hat_id: r.hat_id,
        }
    }
}

/// What granting a hat did: took effect (ordinary hats) or waits for a second administrator (privileged ones).
#[derive(Debug, Clone)]
pub enum GrantOutcome {
    Granted(HatGrantView),
    Pending(HatGrantRequestView),
}

/// Refusing (or, by its requester, cancelling) a pending grant.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefuseHatGrant {
    /// Why; kept in the request and the audit trail (at most 1,000 characters).
    #[schema(max_length = 1000, example = "Second hat not agreed with the DSRSG office")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HatGrantRequestFilter {
    /// `pending` (the default: waiting and not expired), `expired`, `confirmed`, `refused`, `cancelled` or `all`.
    #[param(inline)]
    pub status: Option<HatGrantRequestListStatus>,
}

/// Which grant requests a list shows: one status, or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HatGrantRequestListStatus {
    /// Waiting and not expired.
    #[default]
    Pending,
    /// Pending past `expires_at`: can no longer be confirmed.
    Expired,
    Confirmed,
    Refused,
    Cancelled,
    All,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub organization: Organization,
    /// Hats that give power now.
    pub hats: Vec<HatGrantView>,
}

#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    pub organization_id: Option<String>,
    /// `active`, `locked` (locked by failed sign-ins now) or `disabled`: the status the user is shown with.
    pub status: Option<UserStatus>,
}
