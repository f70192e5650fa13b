//! The one canonical form of a request path, set before routing and authorization read it: percent-decoded,
//! repeated slashes merged, `.` and `..` resolved, no trailing slash. The request's URI is rewritten to this
//! form, so the router and the authorization middleware see the same path and cannot disagree about which
//! route a request is for. Paths whose meaning is ambiguous (an encoded `/` or `%`, a broken escape, bytes
//! that are not UTF-8, control characters, `..` above the root) are refused with 400.

use std::fmt;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Uri;
use actix_web::http::uri::PathAndQuery;
use actix_web::middleware::Next;

use crate::error::AppError;

/// Paths that keep their trailing slash: Swagger UI's directory, whose page loads its assets relative to it
/// (`/docs` redirects here). Not API routes.
const KEEPS_TRAILING_SLASH: &[&str] = &["/docs/"];

/// Why a path has no canonical form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRefusal {
    /// `%` not followed by two hex digits.
    BrokenEscape,
    /// `%2F` or `%25`: a slash or percent sign inside a segment means different things to different readers.
    EncodedSeparator,
    /// A decoded control character (`%00`, `%0A`, ...).
    ControlCharacter,
    /// Decoded bytes that are not UTF-8.
    NotUtf8,
    /// A `..` segment that would leave the root.
    AboveRoot,
    /// Not an origin-form path (`*`, empty).
    NotAPath,
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathRefusal::BrokenEscape => "it has a `%` that is not followed by two hex digits",
            PathRefusal::EncodedSeparator => "it encodes a `/` or `%` inside a segment (`%2F`, `%25`)",
            PathRefusal::ControlCharacter => "it encodes a control character",
            PathRefusal::NotUtf8 => "its percent-decoded bytes are not UTF-8",
            PathRefusal::AboveRoot => "a `..` segment climbs above the root",
            PathRefusal::NotAPath => "it is not an absolute path",
        })
    }
}

/// The canonical form of a raw URI path, decoded: each segment percent-decoded, empty and `.` segments dropped,
/// `..` removing the segment before it, no trailing slash (except the root and `KEEPS_TRAILING_SLASH`).
pub fn canonical_path(raw: &str) -> Result<String, PathRefusal> {
    if !raw.starts_with('/') {
        return Err(PathRefusal::NotAPath);
    }
    let decoded = String::from_utf8(percent_decode(raw.as_bytes())?).map_err(|_| PathRefusal::NotUtf8)?;
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop().ok_or(PathRefusal::AboveRoot)?;
            }
            s => segments.push(s),
        }
    }
    let path = format!("/{}", segments.join("/"));
    let with_slash = format!("{path}/");
    if decoded.ends_with('/') && KEEPS_TRAILING_SLASH.contains(&with_slash.as_str()) {
        return Ok(with_slash);
    }
    Ok(path)
}

fn percent_decode(raw: &[u8]) -> Result<Vec<u8>, PathRefusal> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.iter().copied();
    while let Some(b) = bytes.next() {
        let byte = if b == b'%' {
            let high = bytes
                .next()
                .and_then(hex_value)
                .ok_or(PathRefusal::BrokenEscape)?;
            let low = bytes
                .next()
                .and_then(hex_value)
                .ok_or(PathRefusal::BrokenEscape)?;
            let decoded = (high << 4) | low;
            if decoded == b'/' || decoded == b'%' {
                return Err(PathRefusal::EncodedSeparator);
            }
            decoded
        } else {
            b
        };
        if byte.is_ascii_control() {
            return Err(PathRefusal::ControlCharacter);
        }
        out.push(byte);
    }
    Ok(out)
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// The decoded canonical path written back as a URI path: bytes a path may carry literally stay, every other
/// byte is percent-encoded. actix's router decodes this back to exactly the canonical path (it has no `%`).
pub fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for &b in path.as_bytes() {
        let literal = b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@".contains(&b);
        if literal {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Outermost after the request context: rewrites the request URI to its canonical path (query kept) and
/// points the router's view at it, or answers 400 for a path with no canonical form.
pub async fn canonicalize(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let raw = req.path().to_owned();
    let canonical = match canonical_path(&raw) {
        Ok(path) => encode_path(&path),
        Err(refusal) => {
            return Ok(req.error_response(AppError::bad_request(format!(
                "The request path is refused: {refusal}. Send the plain path, e.g. /api/v1/users."
            ))));
        }
    };
    if canonical != raw {
        let path_and_query = match req.query_string() {
            "" => canonical,
            query => format!("{canonical}?{query}"),
        };
        let mut parts = req.uri().clone().into_parts();
        let rebuilt = PathAndQuery::try_from(path_and_query).ok().and_then(|pq| {
            parts.path_and_query = Some(pq);
            Uri::from_parts(parts).ok()
        });
        let Some(uri) = rebuilt else {
            return Ok(req.error_response(AppError::bad_request(
                "The request path is refused: it cannot be written in canonical form.",
            )));
        };
        // Nothing has routed yet (this runs before the router), so the router's view can simply be replaced.
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
    next.call(req).await.map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_merges_and_resolves() {
        let ok = |raw: &str| canonical_path(raw).unwrap();
        assert_eq!(ok("/api/v1/users"), "/api/v1/users");
        assert_eq!(ok("/api/v1/%75sers"), "/api/v1/users");
        assert_eq!(ok("/api/v1/auth/%6Cogin"), "/api/v1/auth/login");
        assert_eq!(ok("//api///v1//users"), "/api/v1/users");
        assert_eq!(ok("/api/v1/./users"), "/api/v1/users");
        assert_eq!(ok("/api/v1/x/../users"), "/api/v1/users");
        assert_eq!(ok("/api/v1/%2e%2E/v1/users"), "/api/v1/users");
        assert_eq!(ok("/api/v1/users/"), "/api/v1/users");
        assert_eq!(ok("/"), "/");
        assert_eq!(ok("//"), "/");
        assert_eq!(ok("/docs/"), "/docs/");
        assert_eq!(ok("/docs//"), "/docs/");
        assert_eq!(ok("/docs"), "/docs");
        assert_eq!(ok("/a%2Bb"), "/a+b");
        assert_eq!(ok("/caf%C3%A9"), "/café");
    }

    #[test]
    fn refuses_ambiguous_paths() {
        let err = |raw: &str| canonical_path(raw).unwrap_err();
        assert_eq!(err("/api/v1%2Fusers"), PathRefusal::EncodedSeparator);
        assert_eq!(err("/api/v1/%2575sers"), PathRefusal::EncodedSeparator);
        assert_eq!(err("/api/v1/%zzusers"), PathRefusal::BrokenEscape);
        assert_eq!(err("/api/v1/users%2"), PathRefusal::BrokenEscape);
        assert_eq!(err("/api/%00"), PathRefusal::ControlCharacter);
        assert_eq!(err("/api/%FF"), PathRefusal::NotUtf8);
        assert_eq!(err("/.."), PathRefusal::AboveRoot);
        assert_eq!(err("/api/../../x"), PathRefusal::AboveRoot);
        assert_eq!(err("*"), PathRefusal::NotAPath);
    }

    #[test]
    fn encoding_round_trips_through_the_router_decoding() {
        for path in ["/api/v1/users", "/café/a b/?#", "/a+b/c:d@e"] {
            let encoded = encode_path(path);
            let url = actix_web::dev::Url::new(encoded.parse().unwrap());
            assert_eq!(url.path(), path, "{encoded}");
        }
    }
}
