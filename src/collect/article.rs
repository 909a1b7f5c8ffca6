//! Full article text for `full_text` sources: each new story's page is
//! fetched once, with the feeds' politeness (per-host limit, timeouts, size
//! limit, the internal-address guard, robots.txt), and its main content is
//! extracted with dom_smoothie, a close port of Firefox's readability.js.
//! What comes out is plain text with paragraphs, bounded; a failure keeps
//! the feed's summary and records why.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinSet;
use url::Url;

use super::{Collector, FetchError, FetchOutcome, Validators};
use crate::config::SourceLocation;

/// Longest article text kept, in characters (about 3,000 words).
pub const MAX_CONTENT_CHARS: usize = 20_000;
/// HTML read by the extractor; a longer page is cut (its main text is
/// nearly always in the first megabytes).
const MAX_EXTRACT_BYTES: usize = 2 << 20;
/// Elements the extractor walks at most: its scoring is superlinear in
/// the nesting of hostile pages.
const MAX_ELEMENTS: usize = 30_000;
/// Fewer words than this are not an article (a paywall, a cookie wall).
const MIN_WORDS: usize = 25;
const USER_AGENT_TOKEN: &str = "tidings";

#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("not an HTML page ({0})")]
    NotHtml(String),
    #[error("disallowed by robots.txt")]
    Disallowed,
    #[error("robots.txt could not be read ({0}); tried again next collect")]
    RobotsUnavailable(String),
    #[error("no article text found: {0}")]
    NoText(String),
}

impl ArticleError {
    /// Whether the story is tried again by a later collect (the failure
    /// was the site's robots.txt, not the page).
    pub fn is_deferred(&self) -> bool {
        matches!(self, ArticleError::RobotsUnavailable(_))
    }
}

/// A story whose page is to be fetched.
#[derive(Debug, Clone)]
pub struct PendingArticle {
    pub story_id: i64,
    pub link: String,
    /// The source's configured host: its pages may be on internal
    /// addresses, like the feed itself.
    pub trusted_host: Option<String>,
}

/// Extracts the main text of an HTML page: paragraphs separated by a
/// blank line, control characters gone, at most [`MAX_CONTENT_CHARS`].
pub fn extract(body: &[u8], http_charset: Option<&str>, url: &Url) -> Result<String, ArticleError> {
    let html = decode_html(body, http_charset);
    let html = super::truncate_bytes(&html, MAX_EXTRACT_BYTES);
    let config = dom_smoothie::Config {
        max_elements_to_parse: MAX_ELEMENTS,
        text_mode: dom_smoothie::TextMode::Formatted,
        ..dom_smoothie::Config::default()
    };
    let mut readability = dom_smoothie::Readability::new(html, Some(url.as_str()), Some(config))
        .map_err(|e| ArticleError::NoText(e.to_string()))?;
    let article = readability.parse().map_err(|e| ArticleError::NoText(e.to_string()))?;
    let text = clean_text(&article.text_content);
    let words = text.split_whitespace().count();
    if words < MIN_WORDS {
        return Err(ArticleError::NoText(format!("{words} words")));
    }
    Ok(crate::text::defuse_markers(crate::text::shorten(
        &text,
        MAX_CONTENT_CHARS,
    )))
}

/// The HTTP charset, else a `<meta charset>` near the top, else UTF-8.
fn decode_html(body: &[u8], http_charset: Option<&str>) -> String {
    let declared = http_charset.map(str::to_string).or_else(|| meta_charset(body));
    let encoding = declared
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
        .unwrap_or(encoding_rs::UTF_8);
    encoding.decode(body).0.into_owned()
}

fn meta_charset(body: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    let at = head.find("charset=")? + "charset=".len();
    let rest = head[at..].trim_start_matches(['"', '\'']);
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))?;
    Some(rest[..end].to_string()).filter(|c| !c.is_empty())
}

/// One paragraph per line group; spaces inside a line collapsed.
fn clean_text(text: &str) -> String {
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        // Direction marks too (clean_line drops the overrides themselves).
        let line: String = crate::text::clean_line(line)
            .chars()
            .filter(|c| !matches!(c, '\u{200E}' | '\u{200F}'))
            .collect();
        if line.is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
            continue;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs.join("\n\n")
}

impl Collector {
    /// Fetches and extracts each pending story's page, `concurrency` at a
    /// time and `per_host` per host, robots.txt read once per site.
    pub async fn fetch_articles(
        self: &Arc<Self>,
        pending: Vec<PendingArticle>,
        concurrency: usize,
        per_host: usize,
        now: DateTime<Utc>,
    ) -> Vec<(i64, Result<String, ArticleError>)> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut robots: HashMap<String, Arc<OnceCell<RobotsRule>>> = HashMap::new();
        let mut tasks = JoinSet::new();
        for article in pending {
            let Ok(url) = Url::parse(&article.link) else {
                let reason = ArticleError::NoText(format!("the link {:?} is not a URL", article.link));
                tasks.spawn(async move { (article.story_id, Err(reason)) });
                continue;
            };
            let origin = url.origin().ascii_serialization();
            let host = Arc::clone(
                hosts
                    .entry(url.host_str().unwrap_or_default().to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(per_host.max(1)))),
            );
            let rule = Arc::clone(robots.entry(origin).or_default());
            let (collector, permits) = (Arc::clone(self), Arc::clone(&permits));
            tasks.spawn(async move {
                let _host = host.acquire_owned().await;
                let _permit = permits.acquire_owned().await;
                let result = collector.fetch_article(&article, &url, &rule, now).await;
                (article.story_id, result)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(e) => tracing::warn!("an article fetch failed: {e}"),
            }
        }
        results
    }

    async fn fetch_article(
        &self,
        article: &PendingArticle,
        url: &Url,
        robots: &OnceCell<RobotsRule>,
        now: DateTime<Utc>,
    ) -> Result<String, ArticleError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ArticleError::NoText(format!("{} links are not fetched", url.scheme())));
        }
        let trusted = article.trusted_host.as_deref();
        let rule = robots.get_or_init(|| self.read_robots(url, trusted, now)).await;
        match rule {
            RobotsRule::Unavailable(why) => return Err(ArticleError::RobotsUnavailable(why.clone())),
            RobotsRule::Rules(robots) if !robots.is_url_allowed(url) => return Err(ArticleError::Disallowed),
            _ => {}
        }
        let location = SourceLocation::Http(url.clone());
        let fetched = match self
            .fetcher
            .fetch(&location, &Validators::default(), trusted, now)
            .await?
        {
            FetchOutcome::Body(f) => f,
            FetchOutcome::NotModified { .. } => return Err(ArticleError::NotHtml("HTTP 304".into())),
        };
        let media = fetched.content_type.clone().unwrap_or_default();
        if !media.is_empty() && media != "text/html" && media != "application/xhtml+xml" {
            return Err(ArticleError::NotHtml(media));
        }
        if !media.is_empty() || looks_like_html(&fetched.body) {
            let base = fetched.base.clone().unwrap_or_else(|| url.clone());
            let charset = fetched.http_charset.clone();
            let body = fetched.body;
            return self
                .cpu
                .run(move || extract(&body, charset.as_deref(), &base))
                .await
                .unwrap_or_else(|panic| Err(ArticleError::NoText(format!("the extractor failed ({panic})"))));
        }
        Err(ArticleError::NotHtml("no content type and not HTML".into()))
    }

    /// RFC 9309: a missing robots.txt (4xx) allows everything; one that
    /// cannot be read (5xx, network) defers the site's pages.
    async fn read_robots(&self, page: &Url, trusted: Option<&str>, now: DateTime<Utc>) -> RobotsRule {
        let Ok(robots_url) = page.join("/robots.txt") else {
            return RobotsRule::AllowAll;
        };
        let location = SourceLocation::Http(robots_url);
        match self
            .fetcher
            .fetch(&location, &Validators::default(), trusted, now)
            .await
        {
            Ok(FetchOutcome::Body(f)) => RobotsRule::Rules(Box::new(robotxt::Robots::parse(&f.body, USER_AGENT_TOKEN))),
            Ok(FetchOutcome::NotModified { .. }) => RobotsRule::AllowAll,
            Err(FetchError::Status { status, .. }) if status.is_client_error() => RobotsRule::AllowAll,
            Err(FetchError::Gone) => RobotsRule::AllowAll,
            Err(e) => RobotsRule::Unavailable(e.to_string()),
        }
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(1024)]).to_ascii_lowercase();
    head.contains("<html") || head.contains("<!doctype html") || head.contains("<body")
}

#[derive(Debug)]
enum RobotsRule {
    AllowAll,
    Rules(Box<robotxt::Robots>),
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_main_text_is_kept_and_the_rest_dropped() {
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/feeds/articles/boilerplate.html"
        ))
        .expect("fixture");
        let url = Url::parse("https://news.example.org/2026/11/harbour").expect("url");
        let text = extract(&body, None, &url).expect("extracts");
        assert!(text.contains("The harbour authority confirmed"), "{text}");
        for noise in [
            "Subscribe to our newsletter",
            "Accept cookies",
            "Related stories",
            "Leave a comment",
        ] {
            assert!(!text.contains(noise), "{noise:?} in {text}");
        }
        assert!(text.contains("\n\n"), "paragraphs kept: {text}");
    }

    #[test]
    fn binary_and_empty_pages_are_no_text() {
        let url = Url::parse("https://x.example/a").expect("url");
        assert!(extract(&[0u8, 159, 146, 150, 255, 0, 1, 2], None, &url).is_err());
        assert!(extract(b"<html><body><p>Too short.</p></body></html>", None, &url).is_err());
    }

    #[test]
    fn text_is_cleaned_and_bounded() {
        assert_eq!(clean_text("  a\u{202e}  b \n c\n\n\n d\u{7}"), "a b c\n\nd");
        assert_eq!(
            meta_charset(b"<meta charset=\"windows-1252\">").as_deref(),
            Some("windows-1252")
        );
    }
}
