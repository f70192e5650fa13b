//! Sealing of the API tokens a console session keeps server-side, under a key only the browser's cookie holds.
//!
//! The session row stores the sign-in's access and refresh tokens so the server can refresh them; a copy of the
//! table alone must not open anyone's sign-in. So the row holds them encrypted and authenticated with a key
//! derived from the cookie's random secret (of which the table keeps only a SHA-256). The construction is
//! HMAC-SHA256 throughout (keystream in counter mode, then encrypt-then-MAC), built from the `hmac` and `sha2`
//! crates the service already uses for webhook signatures.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

const NONCE_LEN: usize = 16;
const TAG_LEN: usize = 32;

/// HMAC takes keys of any length, so this is never `None`; the `Option` only keeps panics out.
fn mac(key: &[u8]) -> Option<HmacSha256> {
    HmacSha256::new_from_slice(key).ok()
}

fn derive(secret: &[u8], purpose: &[u8]) -> Option<[u8; 32]> {
    let mut m = mac(secret)?;
    m.update(b"qip-console-seal/");
    m.update(purpose);
    Some(m.finalize().into_bytes().into())
}

fn keystream_xor(key: &[u8; 32], nonce: &[u8], data: &mut [u8]) -> Option<()> {
    for (counter, chunk) in data.chunks_mut(32).enumerate() {
        let mut m = mac(key)?;
        m.update(nonce);
        m.update(&(counter as u64).to_be_bytes());
        let block = m.finalize().into_bytes();
        for (b, k) in chunk.iter_mut().zip(block.iter()) {
            *b ^= k;
        }
    }
    Some(())
}

fn tag(key: &[u8; 32], nonce: &[u8], ciphertext: &[u8]) -> Option<HmacSha256> {
    let mut m = mac(key)?;
    m.update(nonce);
    m.update(ciphertext);
    Some(m)
}

/// Encrypts and authenticates `plaintext` under `secret` (the cookie's secret); URL-safe base64 text.
pub fn seal(secret: &[u8], plaintext: &str) -> Option<String> {
    let enc = derive(secret, b"encrypt")?;
    let auth = derive(secret, b"authenticate")?;
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut body = plaintext.as_bytes().to_vec();
    keystream_xor(&enc, &nonce, &mut body)?;
    let t = tag(&auth, &nonce, &body)?.finalize().into_bytes();
    let mut out = Vec::with_capacity(NONCE_LEN + body.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&body);
    out.extend_from_slice(&t);
    Some(URL_SAFE_NO_PAD.encode(out))
}

/// The plaintext of `sealed`, or `None` when it was not sealed under `secret` or was altered.
pub fn unseal(secret: &[u8], sealed: &str) -> Option<String> {
    let raw = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (body, t) = rest.split_at(rest.len() - TAG_LEN);
    let enc = derive(secret, b"encrypt")?;
    let auth = derive(secret, b"authenticate")?;
    // Constant-time comparison of the tag.
    tag(&auth, nonce, body)?.verify_slice(t).ok()?;
    let mut plain = body.to_vec();
    keystream_xor(&enc, nonce, &mut plain)?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_text_opens_only_under_its_secret_and_unaltered() {
        let secret = [7u8; 32];
        let text = "header.payload.signature~refresh-token-with-more-than-32-bytes-of-text";
        let sealed = seal(&secret, text).unwrap();
        assert!(!sealed.contains("refresh"));
        assert_eq!(unseal(&secret, &sealed).as_deref(), Some(text));
        assert_ne!(seal(&secret, text).unwrap(), sealed, "a fresh nonce every time");
        assert_eq!(unseal(&[8u8; 32], &sealed), None);
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        raw[NONCE_LEN] ^= 1;
        assert_eq!(unseal(&secret, &URL_SAFE_NO_PAD.encode(raw)), None);
        assert_eq!(unseal(&secret, "short"), None);
        assert_eq!(unseal(&secret, ""), None);
    }
}
