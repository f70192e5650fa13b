//! Standard Webhooks signatures (standardwebhooks.com): secrets `whsec_<base64 key>`, and
//! `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. Pure.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const PREFIX: &str = "whsec_";

/// A new secret: 32 random bytes, `whsec_` + base64.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// The `webhook-signature` header value of a message.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> Option<String> {
    let key = STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .ok()?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
}

/// Verifies a `webhook-signature` header (any of its space-separated `v1,` signatures) as a receiver would.
pub fn verify(secret: &str, msg_id: &str, timestamp: i64, body: &str, header: &str) -> bool {
    let Some(key) = STANDARD
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .ok()
    else {
        return false;
    };
    header
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|sig| {
            let Ok(expected) = STANDARD.decode(sig) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&key) else {
                return false;
            };
            mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
            mac.verify_slice(&expected).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, id, 1_614_265_330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(verify(secret, id, 1_614_265_330, body, &sig));
        assert!(!verify(secret, id, 1_614_265_331, body, &sig));
    }

    #[test]
    fn new_secrets_differ_and_sign() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert!(sign(&a, "m", 1, "{}").is_some());
    }
}
