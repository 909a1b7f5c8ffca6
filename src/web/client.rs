//! Who a request comes from, for rate limits and logs: the TCP peer, or —
//! only when the peer is one of `[web] trusted_proxies` — the address that
//! proxy says it forwarded for. IPv6 clients are counted by their /64,
//! since one host can use any address in it.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address as far as it can be trusted.
pub fn client_ip(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer_ip = canonical(peer.ip());
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    // Each proxy appends the address it received from: read from the right
    // and take the first hop that is not one of ours.
    let forwarded = forwarded_for(headers);
    forwarded
        .into_iter()
        .rev()
        .map(canonical)
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer_ip)
}

/// The rate limiter's key: an IPv4 address, or an IPv6 /64.
pub fn limiter_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Addresses from `Forwarded` (RFC 7239) when present, else
/// `X-Forwarded-For`, in the order the proxies added them.
fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    };
    let standard = values("forwarded");
    if !standard.is_empty() {
        return standard
            .iter()
            .filter_map(|element| {
                element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| parse_node(value.trim()))?
                })
            })
            .collect();
    }
    values("x-forwarded-for").iter().filter_map(|v| parse_node(v)).collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `"[2001:db8::1]:4711"`, `2001:db8::1`.
fn parse_node(raw: &str) -> Option<IpAddr> {
    let s = raw.trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = s.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    s.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn trusted() -> Vec<IpNet> {
        vec!["127.0.0.1/32".parse().expect("net"), "10.0.0.0/8".parse().expect("net")]
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxy: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        let stranger: SocketAddr = "203.0.113.9:5000".parse().expect("addr");
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_ip(proxy, &h, &trusted()).to_string(), "198.51.100.7");
        assert_eq!(client_ip(stranger, &h, &trusted()).to_string(), "203.0.113.9");
        assert_eq!(client_ip(proxy, &h, &[]).to_string(), "127.0.0.1");
        // A client cannot hide behind an address it writes itself: the
        // rightmost untrusted hop is the one our proxy saw.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.2.3")]);
        assert_eq!(client_ip(proxy, &h, &trusted()).to_string(), "198.51.100.7");
        let h = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(client_ip(proxy, &h, &trusted()).to_string(), "2001:db8:cafe::17");
        let h = headers(&[("x-forwarded-for", "garbage")]);
        assert_eq!(client_ip(proxy, &h, &trusted()).to_string(), "127.0.0.1");
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(limiter_key(a), limiter_key(b));
        assert_ne!(limiter_key(a), limiter_key(c));
        let mapped: SocketAddr = "[::ffff:198.51.100.7]:1".parse().expect("addr");
        assert_eq!(client_ip(mapped, &HeaderMap::new(), &[]).to_string(), "198.51.100.7");
    }
}
