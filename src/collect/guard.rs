//! Which addresses a URL from outside may reach. The configuration is
//! trusted: a configured source may live anywhere (intranet feeds are
//! common), and so may links on its own host. Every other URL that comes
//! from outside — a story's link, a redirect that leaves the configured
//! host — is refused when it names or resolves to a loopback, private,
//! link-local, unique-local or otherwise internal address, unless
//! `[collect] allow_private = true`.
//!
//! Names are checked where they are resolved (a resolver that drops
//! internal addresses), so a DNS answer that changes between a check and
//! the connection cannot slip through; IP literals are checked before any
//! request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a URL is not fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} is an internal address (set [collect] allow_private = true to allow)")]
pub struct InternalAddress {
    pub host: String,
}

/// Whether an address is internal: loopback, private, link-local,
/// unique-local, shared (CGNAT), unspecified, broadcast or multicast, also
/// when written as an IPv4-mapped IPv6 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

/// Refuses a URL whose host is an internal IP literal (`127.0.0.1`,
/// `2130706433`, `[::ffff:7f00:1]`: the URL parser has already turned
/// every spelling into an address).
pub fn check_literal(url: &Url) -> Result<(), InternalAddress> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_internal(ip) {
        return Err(InternalAddress { host: ip.to_string() });
    }
    Ok(())
}

/// A resolver that keeps only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.iter().copied().filter(|a| !is_internal(a.ip())).collect();
            if public.is_empty() && !found.is_empty() {
                return Err(Box::new(InternalAddress { host }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// A client for URLs from outside and one for trusted URLs, and the rule
/// that picks between them.
#[derive(Clone)]
pub struct Clients {
    trusted: reqwest::Client,
    guarded: reqwest::Client,
    allow_private: bool,
}

impl Clients {
    /// Both clients from one builder recipe (`configure`), the guarded one
    /// with the resolver that drops internal addresses.
    pub fn new(
        allow_private: bool,
        configure: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> reqwest::Result<Self> {
        crate::install_crypto_provider();
        let trusted = configure(reqwest::Client::builder()).build()?;
        let guarded = configure(reqwest::Client::builder())
            .dns_resolver(Arc::new(PublicOnly))
            .build()?;
        Ok(Clients {
            trusted,
            guarded,
            allow_private,
        })
    }

    /// The client to fetch `url` with: the trusted one on `trusted_host`
    /// (the configured source's host) or when internal addresses are
    /// allowed, else the guarded one — or a refusal for an internal literal.
    pub fn for_url(&self, url: &Url, trusted_host: Option<&str>) -> Result<&reqwest::Client, InternalAddress> {
        if self.allow_private || (trusted_host.is_some() && url.host_str() == trusted_host) {
            return Ok(&self.trusted);
        }
        check_literal(url)?;
        Ok(&self.guarded)
    }
}

/// The refusal inside a reqwest error, if that is what it is.
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<InternalAddress> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(found) = s.downcast_ref::<InternalAddress>() {
            return Some(found.clone());
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_an_internal_address_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
        ] {
            let parsed = Url::parse(url).expect("url");
            assert!(check_literal(&parsed).is_err(), "{url} should be refused");
        }
        for url in [
            "http://93.184.215.14/",
            "http://[2606:4700::1111]/",
            "https://example.com/",
        ] {
            assert!(check_literal(&Url::parse(url).expect("url")).is_ok(), "{url}");
        }
    }
}
