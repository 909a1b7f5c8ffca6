//! Collecting one source: fetch → parse → normalise → sanitise → tag → key.
//! This module never touches the store: it returns what it found, and the
//! caller (`app::collect`) records it.

pub mod fetch;
pub mod parse;
pub mod sanitize;
pub mod tag;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

use crate::config::{Source, TagRule};
use crate::domain::{NewStory, StoryKey};
pub use fetch::{FetchError, FetchLimits, FetchOutcome, Fetcher, Validators};
pub use parse::{ParseError, ParsedFeed, ParsedItem, parse_feed};

/// Longest title kept; longer ones are cut at a word boundary.
const MAX_TITLE_CHARS: usize = 300;
/// Longest summary kept (HTML), so one feed cannot bloat the database.
const MAX_SUMMARY_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("fetch failed: {0}")]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Parse(#[from] ParseError),
}

#[derive(Debug)]
pub enum SourceResult {
    NotModified,
    Stories {
        stories: Vec<NewStory>,
        validators: Validators,
        /// Items dropped because they had neither title nor link.
        skipped: usize,
    },
}

/// Fetches and processes one source. `now` is the collection time.
pub async fn collect_source(
    fetcher: &Fetcher,
    source: &Source,
    validators: &Validators,
    rules: &[TagRule],
    now: DateTime<Utc>,
) -> Result<SourceResult, CollectError> {
    let fetched = match fetcher.fetch(&source.location, validators).await? {
        FetchOutcome::NotModified => return Ok(SourceResult::NotModified),
        FetchOutcome::Body(f) => f,
    };
    let feed = parse_feed(&fetched.body, fetched.http_charset.as_deref())?;
    let (stories, skipped) = stories_from_feed(feed, source, fetched.base.as_ref(), rules, now);
    Ok(SourceResult::Stories {
        stories,
        validators: fetched.validators,
        skipped,
    })
}

/// Turns parsed items into stories ready to store.
pub fn stories_from_feed(
    feed: ParsedFeed,
    source: &Source,
    base: Option<&url::Url>,
    rules: &[TagRule],
    now: DateTime<Utc>,
) -> (Vec<NewStory>, usize) {
    let now = now.with_nanosecond_zero();
    let feed_base = feed
        .link
        .as_deref()
        .and_then(|l| sanitize::canonical_link(l, base))
        .and_then(|l| url::Url::parse(&l).ok())
        .or_else(|| base.cloned());
    let sanitizer = sanitize::Sanitizer::new(feed_base.clone().filter(|u| u.scheme() != "file"));
    let mut stories = Vec::with_capacity(feed.items.len());
    let mut skipped = 0;
    let mut seen = std::collections::HashSet::new();
    for item in feed.items {
        let link = item
            .link
            .as_deref()
            .and_then(|l| sanitize::canonical_link(l, feed_base.as_ref()));
        let title = sanitize::shorten(&item.title, MAX_TITLE_CHARS);
        let raw_summary = item.summary_html.unwrap_or_default();
        let raw_summary = truncate_bytes(&raw_summary, MAX_SUMMARY_BYTES);
        let summary_html = sanitizer.clean_html(raw_summary);
        let summary_text = sanitize::html_to_text(&summary_html);
        let (title, link) = match (title.is_empty(), link) {
            (true, None) => {
                skipped += 1;
                continue;
            }
            (true, Some(link)) => (link.clone(), link),
            (false, Some(link)) => (title, link),
            // A story must link somewhere: fall back to the feed's page.
            (false, None) => match &feed_base {
                Some(b) if b.scheme() != "file" => (title, b.to_string()),
                _ => {
                    skipped += 1;
                    continue;
                }
            },
        };
        let key = match &item.guid {
            Some(guid) => StoryKey::from_guid(&source.name, guid),
            None if item.link.is_some() => StoryKey::from_link(&link),
            None => StoryKey::from_content_hash(&content_hash(&title, &summary_text)),
        };
        if !seen.insert(key.clone()) {
            continue; // the same item twice in one feed
        }
        // Missing or future dates (clock skew, typos) become the collection time.
        let published = item
            .published
            .or(item.updated)
            .filter(|p| *p <= now + Duration::hours(1))
            .map(|p| p.min(now).with_nanosecond_zero())
            .unwrap_or(now);
        let tags = tag::tag_story(&source.tags, &item.categories, rules, &title, &summary_text);
        stories.push(NewStory {
            key,
            source: source.name.clone(),
            guid: item.guid,
            title,
            link,
            summary_html,
            summary_text,
            published_at: published,
            collected_at: now,
            tags,
        });
    }
    (stories, skipped)
}

fn content_hash(title: &str, summary: &str) -> String {
    let mut h = Sha256::new();
    h.update(title.to_lowercase().as_bytes());
    h.update([0]);
    h.update(summary.to_lowercase().as_bytes());
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

trait SecondPrecision {
    fn with_nanosecond_zero(self) -> Self;
}

impl SecondPrecision for DateTime<Utc> {
    /// Times are stored to the second, the same on SQLite and PostgreSQL.
    fn with_nanosecond_zero(self) -> Self {
        chrono::Timelike::with_nanosecond(&self, 0).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SourceLocation;

    fn source() -> Source {
        Source {
            name: "Example".into(),
            location: SourceLocation::File("/dev/null".into()),
            tags: vec!["enterprise".into()],
            weight: 1.0,
        }
    }

    #[test]
    fn keys_dates_and_links() {
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 12, 0, 0)
            .single()
            .expect("time");
        let future = now + Duration::days(30);
        let feed = ParsedFeed {
            title: None,
            link: Some("https://news.example/".into()),
            items: vec![
                ParsedItem {
                    guid: Some("abc".into()),
                    title: "With guid".into(),
                    link: Some("/a?utm_source=rss".into()),
                    summary_html: Some("<p>Hello <script>x</script>world</p>".into()),
                    categories: vec![],
                    published: Some(future),
                    updated: None,
                },
                ParsedItem {
                    guid: None,
                    title: "No guid".into(),
                    link: Some("https://news.example/b#frag".into()),
                    summary_html: None,
                    categories: vec![],
                    published: None,
                    updated: None,
                },
                ParsedItem {
                    guid: None,
                    title: "".into(),
                    link: None,
                    summary_html: None,
                    categories: vec![],
                    published: None,
                    updated: None,
                },
            ],
        };
        let (stories, skipped) = stories_from_feed(feed, &source(), None, &[], now);
        assert_eq!(skipped, 1);
        assert_eq!(stories.len(), 2);
        assert_eq!(stories[0].key, StoryKey::from_guid("Example", "abc"));
        assert_eq!(stories[0].link, "https://news.example/a");
        assert_eq!(
            stories[0].published_at, now,
            "future date falls back to now"
        );
        assert_eq!(stories[0].summary_text, "Hello world");
        assert_eq!(
            stories[1].key,
            StoryKey::from_link("https://news.example/b")
        );
    }

    #[test]
    fn truncation_keeps_words() {
        assert_eq!(sanitize::shorten("short", 10), "short");
        assert_eq!(sanitize::shorten("aaaa bbbb, cccc", 11), "aaaa bbbb…");
        assert_eq!(truncate_bytes("héllo", 2), "h");
    }
}
