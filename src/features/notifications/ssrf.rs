//! Where a webhook may point: http(s) URLs whose every resolved address is public, unless an operator
//! allowlisted its range. Checked at registration and again before every delivery, and the delivery connects
//! to the address checked here (no second lookup an attacker's DNS could answer differently).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use ipnet::IpNet;
use url::Url;

/// A URL that passed the check, with the address to connect to.
#[derive(Debug, Clone)]
pub struct CheckedTarget {
    pub url: Url,
    pub host: String,
    pub addr: SocketAddr,
}

/// Why an address is not for webhooks (`None`: public). Pure.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg0 = v6.segments()[0];
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if seg0 & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if seg0 & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if v6 == Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0) || seg0 == 0x2002 {
                Some("translated or 6to4 (may reach private IPv4)")
            } else {
                None
            }
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local (cloud metadata lives here)")
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        Some("multicast, broadcast or reserved")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared address space (carrier-grade NAT)")
    } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        Some("IETF protocol assignments")
    } else {
        None
    }
}

/// Whether `ip` may be called: public, or inside an allowlisted range.
pub fn allowed(ip: IpAddr, allow: &[IpNet]) -> Result<(), String> {
    match forbidden_reason(ip) {
        None => Ok(()),
        Some(_) if allow.iter().any(|net| net.contains(&ip)) => Ok(()),
        Some(why) => Err(format!(
            "resolves to {ip}, a {why} address; webhooks must reach public addresses (an operator can allow a range \
             with notifications.webhook_allow_cidrs)"
        )),
    }
}

/// Parses the URL (http or https, a host, no credentials) without resolving it.
pub fn parse(url: &str) -> Result<(Url, String, u16), String> {
    let parsed = Url::parse(url.trim()).map_err(|e| format!("is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http or https URL".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials; the signature authenticates deliveries".into());
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| "must name a host".to_owned())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| "has no port".to_owned())?;
    Ok((parsed, host, port))
}

/// Resolves the URL and checks every address it resolves to; returns the first to connect to.
pub fn check(url: &str, allow: &[IpNet]) -> Result<CheckedTarget, String> {
    let (url, host, port) = parse(url)?;
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("host `{host}` does not resolve ({e})"))?
            .collect(),
    };
    let first = *addrs
        .first()
        .ok_or_else(|| format!("host `{host}` resolves to no address"))?;
    // Every address must pass: a name that also resolves to a private address is refused whole.
    for a in &addrs {
        allowed(a.ip(), allow)?;
    }
    Ok(CheckedTarget {
        url,
        host,
        addr: first,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.1.2.3/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0/",
            "http://192.168.1.1/",
            "http://172.16.0.1/",
            "http://[::1]/",
            "http://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:127.0.0.1]/",
            "http://224.0.0.1/",
            "http://100.64.0.1/",
        ] {
            assert!(check(url, &[]).is_err(), "{url}");
        }
    }

    #[test]
    fn public_addresses_and_allowlisted_ranges_pass() {
        assert!(check("https://93.184.216.34/hook", &[]).is_ok());
        let allow: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(check("http://127.0.0.1:9/hook", &allow).is_ok());
        assert!(check("http://10.0.0.1/", &allow).is_err());
    }

    #[test]
    fn only_http_without_credentials() {
        assert!(check("ftp://93.184.216.34/", &[]).is_err());
        assert!(check("https://user:pw@93.184.216.34/", &[]).is_err());
        assert!(check("not a url", &[]).is_err());
    }
}
