//! Getting a feed's bytes: HTTP(S) with conditional GET and hard limits, or a
//! local file.
//!
//! Redirects are followed here rather than by reqwest, so that tidings
//! knows whether every hop was permanent (then the stored URL moves) and can
//! name a loop.

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{
    CACHE_CONTROL, CONTENT_TYPE, ETAG, EXPIRES, HeaderMap, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION,
    RETRY_AFTER,
};
use url::Url;

use crate::config::SourceLocation;

pub const USER_AGENT: &str = concat!(
    "tidings/",
    env!("CARGO_PKG_VERSION"),
    " (self-hosted digest; feed collector)"
);

pub use crate::config::FetchLimits;

pub use crate::domain::Validators;

/// What the server said about when to come back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// `Cache-Control: max-age`.
    pub max_age: Option<chrono::Duration>,
    /// `Expires`.
    pub expires: Option<DateTime<Utc>>,
}

#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The charset named by the HTTP Content-Type, if any.
    pub http_charset: Option<String>,
    /// The media type of the HTTP Content-Type, lower-cased (`text/html`).
    pub content_type: Option<String>,
    /// Where the body came from after redirects; the base for relative links.
    pub base: Option<Url>,
    pub validators: Validators,
    pub cache: CacheHints,
    /// Set when every redirect on the way was permanent (301/308): the
    /// source has moved there for good.
    pub moved_to: Option<Url>,
}

#[derive(Debug)]
// One per fetch, taken apart at once: boxing the body would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum FetchOutcome {
    Body(Fetched),
    /// 304: nothing changed since the validators were issued.
    NotModified {
        cache: CacheHints,
        moved_to: Option<Url>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {}", status_text(*.status))]
    Status {
        status: StatusCode,
        /// `Retry-After` on 429 and 503.
        retry_after: Option<chrono::Duration>,
    },
    #[error("HTTP 410 Gone: the feed was removed")]
    Gone,
    #[error("timed out")]
    Timeout,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("too many redirects (more than {0})")]
    TooManyRedirects(usize),
    #[error("redirect loop at {0}")]
    RedirectLoop(String),
    #[error("redirect without a usable Location")]
    BadRedirect,
    #[error("{0}")]
    Network(String),
    #[error("cannot read file: {0}")]
    File(std::io::Error),
    #[error("{0}")]
    Client(String),
    #[error("refused: {0}")]
    Internal(#[from] super::guard::InternalAddress),
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(r) => format!("{} {r}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

/// One HTTP client shared by every fetch (connection reuse, one TLS config).
#[derive(Clone)]
pub struct Fetcher {
    clients: super::guard::Clients,
    limits: FetchLimits,
}

impl Fetcher {
    pub fn new(limits: FetchLimits) -> Result<Self, FetchError> {
        let clients = super::guard::Clients::new(limits.allow_private, |builder| {
            builder
                .user_agent(USER_AGENT)
                .connect_timeout(limits.connect_timeout)
                .timeout(limits.total_timeout)
                .redirect(reqwest::redirect::Policy::none())
        })
        .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Fetcher { clients, limits })
    }

    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// Fetches `location`; hops on `trusted_host` (the configured source's
    /// host) may reach internal addresses, other hops may not.
    pub async fn fetch(
        &self,
        location: &SourceLocation,
        validators: &Validators,
        trusted_host: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<FetchOutcome, FetchError> {
        match location {
            SourceLocation::Http(url) => {
                // The total timeout covers the whole exchange, body included,
                // so a server that trickles bytes cannot hold a worker forever.
                let fetch = self.fetch_http(url, validators, trusted_host, now);
                match tokio::time::timeout(self.limits.total_timeout, fetch).await {
                    Ok(result) => result,
                    Err(_) => Err(FetchError::Timeout),
                }
            }
            SourceLocation::File(path) => {
                let meta = tokio::fs::metadata(path).await.map_err(FetchError::File)?;
                if meta.len() > self.limits.max_body_bytes as u64 {
                    return Err(FetchError::TooLarge(self.limits.max_body_bytes));
                }
                let body = tokio::fs::read(path).await.map_err(FetchError::File)?;
                let base = std::path::absolute(path).ok().and_then(|p| Url::from_file_path(p).ok());
                Ok(FetchOutcome::Body(Fetched {
                    body,
                    http_charset: None,
                    content_type: None,
                    base,
                    validators: Validators::default(),
                    cache: CacheHints::default(),
                    moved_to: None,
                }))
            }
        }
    }

    async fn fetch_http(
        &self,
        start: &Url,
        validators: &Validators,
        trusted_host: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<FetchOutcome, FetchError> {
        let mut url = start.clone();
        let mut visited = vec![url.clone()];
        let mut all_permanent = true;
        let mut resp = loop {
            let mut req = self.clients.for_url(&url, trusted_host)?.get(url.clone());
            if let Some(etag) = &validators.etag {
                req = req.header(IF_NONE_MATCH, etag);
            }
            if let Some(lm) = &validators.last_modified {
                req = req.header(IF_MODIFIED_SINCE, lm);
            }
            let resp = req.send().await.map_err(map_reqwest)?;
            let status = resp.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                break resp;
            }
            if visited.len() > self.limits.max_redirects {
                return Err(FetchError::TooManyRedirects(self.limits.max_redirects));
            }
            let next = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| url.join(loc).ok())
                .filter(|u| u.scheme() == "http" || u.scheme() == "https")
                .ok_or(FetchError::BadRedirect)?;
            if visited.contains(&next) {
                return Err(FetchError::RedirectLoop(next.to_string()));
            }
            all_permanent &= matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT);
            visited.push(next.clone());
            url = next;
        };
        let moved_to = (visited.len() > 1 && all_permanent).then(|| url.clone());
        let status = resp.status();
        let headers = resp.headers().clone();
        let cache = cache_hints(&headers, now);
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified { cache, moved_to });
        }
        if status == StatusCode::GONE {
            return Err(FetchError::Gone);
        }
        if !status.is_success() {
            let retry_after = matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE)
                .then(|| retry_after(&headers, now))
                .flatten();
            return Err(FetchError::Status { status, retry_after });
        }
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let http_charset = header(CONTENT_TYPE).and_then(|ct| charset_of(&ct));
        let content_type = header(CONTENT_TYPE)
            .and_then(|ct| ct.split(';').next().map(|t| t.trim().to_ascii_lowercase()))
            .filter(|t| !t.is_empty());
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        // Count while streaming (after decompression), so neither a huge body
        // nor a compression bomb can grow memory past the limit.
        let max = self.limits.max_body_bytes;
        if resp.content_length().is_some_and(|n| n > max as u64) {
            return Err(FetchError::TooLarge(max));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Body(Fetched {
            body,
            http_charset,
            content_type,
            base: Some(url),
            validators,
            cache,
            moved_to,
        }))
    }
}

fn map_reqwest(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    if let Some(refused) = super::guard::refusal_in(&e) {
        return FetchError::Internal(refused);
    }
    // The chain holds the useful part ("connection refused", "dns error").
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        msg = format!("{msg}: {s}");
        source = s.source();
    }
    FetchError::Network(msg)
}

/// `text/xml; charset="ISO-8859-1"` → `iso-8859-1`.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset")).then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

fn http_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

pub fn cache_hints(headers: &HeaderMap, now: DateTime<Utc>) -> CacheHints {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
    };
    let max_age = text(CACHE_CONTROL).and_then(|cc| {
        cc.split(',').find_map(|d| {
            let (k, v) = d.trim().split_once('=')?;
            (k.trim().eq_ignore_ascii_case("max-age"))
                .then(|| v.trim().trim_matches('"').parse::<i64>().ok())
                .flatten()
                .filter(|s| *s >= 0)
                .map(chrono::Duration::seconds)
        })
    });
    let expires = text(EXPIRES).and_then(http_date).filter(|e| *e > now);
    CacheHints { max_age, expires }
}

/// `Retry-After` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<chrono::Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<i64>() {
        return (secs >= 0).then(|| chrono::Duration::seconds(secs));
    }
    http_date(v).map(|at| (at - now).max(chrono::Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn charset_parameter() {
        assert_eq!(
            charset_of("text/xml; charset=\"ISO-8859-1\"").as_deref(),
            Some("iso-8859-1")
        );
        assert_eq!(charset_of("application/rss+xml").as_deref(), None);
    }

    #[test]
    fn cache_headers() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
            .expect("date")
            .with_timezone(&Utc);
        let mut h = HeaderMap::new();
        h.insert(CACHE_CONTROL, HeaderValue::from_static("public, max-age=600"));
        h.insert(EXPIRES, HeaderValue::from_static("Sat, 28 Nov 2026 13:00:00 GMT"));
        h.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        let hints = cache_hints(&h, now);
        assert_eq!(hints.max_age, Some(chrono::Duration::minutes(10)));
        assert_eq!(hints.expires, Some(now + chrono::Duration::hours(1)));
        assert_eq!(retry_after(&h, now), Some(chrono::Duration::minutes(2)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Sat, 28 Nov 2026 12:30:00 GMT"));
        assert_eq!(retry_after(&h, now), Some(chrono::Duration::minutes(30)));
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        assert_eq!(cache_hints(&h, now).max_age, None);
    }
}
