//! Access tokens (HS256 JWTs with pinned algorithm, `typ`, `iss`, `aud`, `sub`, `iat`, `nbf`, `exp`, `jti`,
//! `kid`; several verification keys for rotation) and refresh tokens (256-bit random, stored only as SHA-256).

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::AuthSettings;
use crate::error::AppError;

/// The JOSE `typ` of access tokens (RFC 9068); anything else is refused.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Clock difference tolerated between instances: a token (access or refresh) issued further in the future
/// than this was not issued by us as it claims, and is refused.
pub const MAX_CLOCK_SKEW_SECS: i64 = 60;

/// Claims of an access token. It carries identity only; power (hats) is read from the database per request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
}

/// Signing key and every key accepted for verification, by `kid`.
pub struct JwtKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_secs: i64,
}

impl JwtKeys {
    /// Builds the keys from settings. An empty secret (development only; production refuses it at startup)
    /// is replaced by a random one, so tokens do not survive a restart.
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let configured = settings.jwt_secret.expose().as_bytes().to_vec();
        let secret = if configured.is_empty() {
            tracing::warn!("auth.jwt_secret is empty: using a random secret; tokens end with this process");
            rand::random::<[u8; 32]>().to_vec()
        } else {
            configured
        };
        let signing = EncodingKey::from_secret(&secret).map_err(|e| format!("signing key: {e}"))?;
        let mut verifying = HashMap::new();
        verifying.insert(
            settings.jwt_key_id.clone(),
            DecodingKey::from_secret(&secret).map_err(|e| format!("verification key: {e}"))?,
        );
        for key in &settings.previous_keys {
            verifying.insert(
                key.kid.clone(),
                DecodingKey::from_secret(key.secret.expose().as_bytes())
                    .map_err(|e| format!("verification key {}: {e}", key.kid))?,
            );
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]);
        validation.validate_nbf = true;
        validation.leeway = 30;
        Ok(Self {
            signing_kid: settings.jwt_key_id.clone(),
            signing,
            verifying,
            validation,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl_secs: i64::try_from(settings.access_token_ttl_secs).unwrap_or(900),
        })
    }

    pub fn ttl_secs(&self) -> i64 {
        self.ttl_secs
    }

    /// Signs an access token for `user_id`.
    pub fn issue(&self, user_id: &str) -> Result<String, AppError> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_owned(),
            iat: now,
            nbf: now,
            exp: now + self.ttl_secs,
            jti: uuid::Uuid::now_v7().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(ACCESS_TOKEN_TYP.to_owned());
        header.kid = Some(self.signing_kid.clone());
        encode(&header, &claims, &self.signing).map_err(|e| AppError::internal(format!("jwt encode: {e}")))
    }

    /// Checks an access token: algorithm pinned to HS256, `typ`, known `kid`, signature, `iss`, `aud`, `exp`,
    /// `nbf`, and `iat` not in the future (beyond [`MAX_CLOCK_SKEW_SECS`]). Every failure is the same 401 to
    /// the client; the reason goes to the log.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AppError> {
        let reject = |why: &str| {
            tracing::info!(reason = why, "access token refused");
            AppError::unauthorized("The access token is missing, expired or invalid; sign in again.")
        };
        let header = decode_header(token).map_err(|_| reject("undecodable header"))?;
        if header.alg != Algorithm::HS256 {
            return Err(reject("algorithm not allowed"));
        }
        if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
            return Err(reject("wrong typ"));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or_else(|| reject("unknown kid"))?;
        let claims = decode::<AccessClaims>(token, key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| reject(&e.to_string()))?;
        if claims.iat > Utc::now().timestamp().saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(reject("issued in the future"));
        }
        Ok(claims)
    }
}

/// A new refresh token (256 random bits, URL-safe base64) and the hash under which it is stored.
pub fn new_refresh_token() -> (String, String) {
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let hash = refresh_token_hash(&token);
    (token, hash)
}

/// Only this hash is stored; a database leak does not leak usable tokens.
pub fn refresh_token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
