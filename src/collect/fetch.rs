//! Getting a feed's bytes: HTTP(S) with conditional GET and hard limits, or a
//! local file.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use url::Url;

use crate::config::SourceLocation;

pub const USER_AGENT: &str = concat!("tidings/", env!("CARGO_PKG_VERSION"), " (feed collector)");

#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: Duration,
    pub total_timeout: Duration,
    /// Largest body accepted, counted after decompression.
    pub max_body_bytes: usize,
    pub max_redirects: usize,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// Validators from the last successful fetch, sent back as a conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

#[derive(Debug)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The charset named by the HTTP Content-Type, if any.
    pub http_charset: Option<String>,
    /// Where the body came from after redirects; the base for relative links.
    pub base: Option<Url>,
    pub validators: Validators,
}

#[derive(Debug)]
pub enum FetchOutcome {
    Body(Fetched),
    /// 304: nothing changed since the validators were issued.
    NotModified,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("HTTP {0}")]
    Status(StatusCode),
    #[error("timed out")]
    Timeout,
    #[error("body larger than {0} bytes")]
    TooLarge(usize),
    #[error("too many redirects")]
    Redirects,
    #[error("{0}")]
    Network(String),
    #[error("cannot read file: {0}")]
    File(std::io::Error),
    #[error("{0}")]
    Client(String),
}

/// One HTTP client shared by every fetch (connection reuse, one TLS config).
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    limits: FetchLimits,
}

impl Fetcher {
    pub fn new(limits: FetchLimits) -> Result<Self, FetchError> {
        crate::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(limits.connect_timeout)
            .timeout(limits.total_timeout)
            .redirect(reqwest::redirect::Policy::limited(limits.max_redirects))
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Fetcher { client, limits })
    }

    pub async fn fetch(
        &self,
        location: &SourceLocation,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        match location {
            SourceLocation::Http(url) => self.fetch_http(url, validators).await,
            SourceLocation::File(path) => {
                let meta = tokio::fs::metadata(path).await.map_err(FetchError::File)?;
                if meta.len() > self.limits.max_body_bytes as u64 {
                    return Err(FetchError::TooLarge(self.limits.max_body_bytes));
                }
                let body = tokio::fs::read(path).await.map_err(FetchError::File)?;
                let base = std::path::absolute(path)
                    .ok()
                    .and_then(|p| Url::from_file_path(p).ok());
                Ok(FetchOutcome::Body(Fetched {
                    body,
                    http_charset: None,
                    base,
                    validators: Validators::default(),
                }))
            }
        }
    }

    async fn fetch_http(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let mut req = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            req = req.header(IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            req = req.header(IF_MODIFIED_SINCE, lm);
        }
        let mut resp = req.send().await.map_err(map_reqwest)?;
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(FetchError::Status(status));
        }
        let header = |name| {
            resp.headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let http_charset = header(CONTENT_TYPE).and_then(|ct| charset_of(&ct));
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let base = Some(resp.url().clone());
        // Count while streaming (after decompression), so neither a huge body
        // nor a compression bomb can grow memory past the limit.
        let max = self.limits.max_body_bytes;
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
            base,
            validators,
        }))
    }
}

fn map_reqwest(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else if e.is_redirect() {
        FetchError::Redirects
    } else {
        // The chain holds the useful part ("connection refused", "dns error").
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg = format!("{msg}: {s}");
            source = s.source();
        }
        FetchError::Network(msg)
    }
}

/// `text/xml; charset="ISO-8859-1"` → `iso-8859-1`.
pub fn charset_of(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (k, v) = param.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("charset"))
            .then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charset_parameter() {
        assert_eq!(
            charset_of("text/xml; charset=\"ISO-8859-1\"").as_deref(),
            Some("iso-8859-1")
        );
        assert_eq!(charset_of("application/rss+xml").as_deref(), None);
    }
}
