//! The client address of a request: the TCP peer, unless the peer is a configured trusted proxy, in which case
//! the proxy's forwarding headers say who the client is. Headers from anyone else are ignored, since any
//! client can write them.

use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{self, HeaderMap};

use crate::config::TrustedProxies;

/// The address rate limits and the audit trail attribute a request to. Behind trusted proxies it is the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries left of it were written by
/// the client and prove nothing), else the same from `Forwarded` (RFC 7239), else the peer.
pub fn client_address(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> Option<String> {
    let peer = peer?;
    if !trusted.contains(peer) {
        return Some(peer.to_string());
    }
    let forwarded_for = header_entries(headers, "x-forwarded-for");
    let hops = if forwarded_for.is_empty() {
        forwarded_entries(headers)
    } else {
        forwarded_for
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop a trusted proxy wrote that is not an address (`unknown`, obfuscated): nothing further left of
        // it can be believed, so the last trusted hop stands for the client.
        let Some(addr) = parse_hop(hop) else { break };
        client = addr;
        if !trusted.contains(addr) {
            break;
        }
    }
    Some(client.to_string())
}

/// Comma-separated entries of every instance of a header, in order.
fn header_entries(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `for=` value of each element of `Forwarded`, in order.
fn forwarded_entries(headers: &HeaderMap) -> Vec<String> {
    header_entries(headers, header::FORWARDED.as_str())
        .iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"').to_owned())
            })
        })
        .collect()
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = hop.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(list.iter().map(|s| (*s).to_owned())).unwrap()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_static(name), HeaderValue::from_static(value));
        }
        map
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.8"),
        ]);
        assert_eq!(
            client_address(ip("198.51.100.7"), &h, &trusted(&[])).as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            client_address(ip("198.51.100.7"), &h, &trusted(&["10.0.0.0/8"])).as_deref(),
            Some("198.51.100.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.1.2.3")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &t).as_deref(),
            Some("203.0.113.9")
        );
        // Several header instances read as one list.
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &t).as_deref(),
            Some("203.0.113.9")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("127.0.0.1"), &headers(&[]), &t).as_deref(),
            Some("127.0.0.1")
        );
        // Only proxies: the left-most of them.
        let h = headers(&[("x-forwarded-for", "10.0.0.2, 10.0.0.3")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &t).as_deref(),
            Some("10.0.0.2")
        );
        // Garbage written by a trusted proxy: the last believable hop.
        let h = headers(&[("x-forwarded-for", "203.0.113.9, unknown, 10.0.0.3")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &t).as_deref(),
            Some("10.0.0.3")
        );
    }

    #[test]
    fn forwarded_is_read_when_x_forwarded_for_is_absent() {
        let t = trusted(&["127.0.0.1"]);
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &t).as_deref(),
            Some("2001:db8:cafe::17")
        );
        let h = headers(&[("forwarded", "for=\"192.0.2.43:47011\";by=127.0.0.1")]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &t).as_deref(),
            Some("192.0.2.43")
        );
    }
}
