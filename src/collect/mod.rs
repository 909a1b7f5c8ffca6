//! Collecting: [`run`] is the one orchestrator of a collect (every due
//! source fetched, processed and stored, with fetch state, backoff and
//! clustering); the rest of this module handles one source — fetch → parse
//! → normalise → sanitise → tag → key — and returns what it found without
//! touching the store.

pub mod article;
pub mod cluster;
mod cpu_pool;
pub mod fetch;
pub mod guard;
pub mod parse;
pub mod recover;
mod run;
pub mod sanitize;
pub mod tag;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::{Source, TagRule};
use crate::domain::{NewStory, StoryKey, TaggedTag};
use cpu_pool::CpuPool;
pub use fetch::{CacheHints, FetchError, FetchLimits, FetchOutcome, Fetcher, Validators};
pub use parse::{ParseError, ParsedFeed, ParsedItem, parse_feed};
pub use run::{ArticleCounts, CollectProgress, CollectReport, SourceReport, SourceStatus, run};

/// Longest title kept; longer ones are cut at a word boundary.
const MAX_TITLE_CHARS: usize = 300;
/// Longest summary kept (HTML), so one feed cannot bloat the database.
const MAX_SUMMARY_BYTES: usize = 64 * 1024;

pub use crate::config::CollectPolicy;

impl CollectPolicy {
    /// When to fetch again after a success: the latest of what the server
    /// and the feed asked for (max-age, Expires, RSS ttl), capped; now when
    /// they asked nothing.
    pub fn next_after_success(
        &self,
        now: DateTime<Utc>,
        cache: &CacheHints,
        ttl_minutes: Option<u32>,
    ) -> DateTime<Utc> {
        let candidates = [
            cache.max_age.map(|a| now + a),
            cache.expires,
            ttl_minutes.map(|m| now + Duration::minutes(i64::from(m))),
        ];
        let wanted = candidates.into_iter().flatten().max().unwrap_or(now);
        wanted.clamp(now, now + self.max_cache)
    }

    /// When to try again after the `errors`-th consecutive failure: an
    /// exponential backoff, or the server's Retry-After when it is longer.
    pub fn next_after_failure(&self, now: DateTime<Utc>, errors: i64, retry_after: Option<Duration>) -> DateTime<Utc> {
        let exp = (errors - 1).clamp(0, 20) as u32;
        let backoff = self.backoff_initial.num_seconds().saturating_mul(1i64 << exp);
        let backoff = Duration::seconds(backoff).min(self.backoff_max);
        let wait = retry_after.map_or(backoff, |r| r.max(backoff).min(self.backoff_max));
        now + wait
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{0}")]
    Fetch(#[from] FetchError),
    #[error("{0}")]
    Parse(#[from] ParseError),
}

impl CollectError {
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CollectError::Fetch(FetchError::Status { retry_after, .. }) => *retry_after,
            _ => None,
        }
    }
    pub fn is_gone(&self) -> bool {
        matches!(self, CollectError::Fetch(FetchError::Gone))
    }
}

#[derive(Debug)]
pub enum SourceResult {
    NotModified {
        cache: CacheHints,
        moved_to: Option<Url>,
    },
    Stories {
        stories: Vec<NewStory>,
        /// Each story's title as clustering compares it ([`cluster::title_keys`]).
        title_keys: Vec<Vec<u64>>,
        validators: Validators,
        cache: CacheHints,
        ttl_minutes: Option<u32>,
        moved_to: Option<Url>,
        /// Items dropped because they had neither title nor link.
        skipped: usize,
        /// Items dropped because the feed had more than `max_items`.
        dropped: usize,
        /// What the recovering parser repaired ([`ParsedFeed::recovered`]).
        recovered: Option<String>,
    },
}

/// What collecting every source of one run shares: the HTTP client, the
/// tag rules, the policy, and the threads that parse.
pub struct Collector {
    fetcher: Fetcher,
    rules: Arc<[TagRule]>,
    /// Items kept per feed ([`CollectPolicy::max_items`]).
    max_items: usize,
    /// Parsing and sanitising, one feed per core at a time (see
    /// [`cpu_pool`] for why not the blocking pool).
    cpu: CpuPool,
}

impl Collector {
    pub fn new(fetcher: Fetcher, rules: &[TagRule], max_items: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Collector {
            fetcher,
            rules: rules.into(),
            max_items,
            cpu: CpuPool::new("tidings-parse", cores),
        }
    }

    /// Fetches and processes one source. `now` is the collection time.
    pub async fn collect_source(
        &self,
        source: &Source,
        location: &crate::config::SourceLocation,
        validators: &Validators,
        now: DateTime<Utc>,
    ) -> Result<SourceResult, CollectError> {
        let trusted_host = match &source.location {
            crate::config::SourceLocation::Http(configured) => configured.host_str(),
            crate::config::SourceLocation::File(_) => None,
        };
        let fetched = match self.fetcher.fetch(location, validators, trusted_host, now).await? {
            FetchOutcome::NotModified { cache, moved_to } => {
                return Ok(SourceResult::NotModified { cache, moved_to });
            }
            FetchOutcome::Body(f) => f,
        };
        let (source, rules, max_items) = (source.clone(), Arc::clone(&self.rules), self.max_items);
        let processed = self
            .cpu
            .run(move || {
                // Read a few times the items kept, so "the newest N" still holds
                // for feeds listed oldest first, without parsing a hostile 100,000.
                let cap = max_items.saturating_mul(5).max(1000);
                let feed = parse::parse_feed_capped(&fetched.body, fetched.http_charset.as_deref(), cap)?;
                let ttl_minutes = feed.ttl;
                let recovered = feed.recovered.clone();
                let batch = stories_from_feed(feed, &source, fetched.base.as_ref(), &rules, max_items, now);
                let title_keys = batch.stories.iter().map(|s| cluster::title_keys(&s.title)).collect();
                Ok::<_, ParseError>(SourceResult::Stories {
                    stories: batch.stories,
                    title_keys,
                    validators: fetched.validators,
                    cache: fetched.cache,
                    ttl_minutes,
                    moved_to: fetched.moved_to,
                    skipped: batch.skipped,
                    dropped: batch.dropped,
                    recovered,
                })
            })
            .await
            // A panic while processing costs this source, not the run.
            .map_err(|e| ParseError::NotAFeed(e.to_string()))?;
        Ok(processed?)
    }
}

/// Stories made from one feed.
#[derive(Debug, Default)]
pub struct StoryBatch {
    pub stories: Vec<NewStory>,
    pub skipped: usize,
    pub dropped: usize,
}

/// Turns parsed items into stories ready to store: the newest `max_items`.
pub fn stories_from_feed(
    feed: ParsedFeed,
    source: &Source,
    base: Option<&Url>,
    rules: &[TagRule],
    max_items: usize,
    now: DateTime<Utc>,
) -> StoryBatch {
    let normaliser = Normaliser::new(&feed, source, base, rules, now);
    let mut batch = StoryBatch {
        dropped: feed.total_items.saturating_sub(feed.items.len()),
        ..StoryBatch::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut stories = Vec::with_capacity(feed.items.len().min(max_items));
    for item in &feed.items {
        match normaliser.story(item) {
            None => batch.skipped += 1,
            Some(story) => {
                // The same item twice in one feed counts once.
                if seen.insert(story.key.clone()) {
                    stories.push(story);
                }
            }
        }
    }
    if stories.len() > max_items {
        // Keep the newest; the sort is stable, so equal dates keep feed order.
        stories.sort_by_key(|s| std::cmp::Reverse(s.published_at));
        batch.dropped += stories.len() - max_items;
        stories.truncate(max_items);
    }
    batch.stories = stories;
    batch
}

/// Everything needed to turn one item of a feed into a story.
pub struct Normaliser<'a> {
    source: &'a Source,
    rules: &'a [TagRule],
    feed_base: Option<Url>,
    sanitizer: sanitize::Sanitizer,
    now: DateTime<Utc>,
}

impl<'a> Normaliser<'a> {
    pub fn new(
        feed: &ParsedFeed,
        source: &'a Source,
        base: Option<&Url>,
        rules: &'a [TagRule],
        now: DateTime<Utc>,
    ) -> Self {
        // Relative links resolve against the feed's site link when it is
        // absolute (what publishers mean, even for feeds hosted elsewhere),
        // else against where the feed was fetched from.
        let feed_base = feed
            .link
            .as_deref()
            .and_then(|l| sanitize::canonical_link(l, base))
            .and_then(|l| Url::parse(&l).ok())
            .or_else(|| base.cloned());
        let sanitizer = sanitize::Sanitizer::new(feed_base.clone().filter(|u| u.scheme() != "file"));
        Normaliser {
            source,
            rules,
            feed_base,
            sanitizer,
            now: now.with_nanosecond_zero(),
        }
    }

    /// `None` when the item has neither a title nor a link to show.
    pub fn story(&self, item: &ParsedItem) -> Option<NewStory> {
        let link = item
            .link
            .as_deref()
            .and_then(|l| sanitize::canonical_link(l, self.feed_base.as_ref()));
        let title = crate::text::shorten(&item.title, MAX_TITLE_CHARS);
        let raw_summary = item.summary_html.as_deref().unwrap_or_default();
        let raw_summary = sanitize::repair_mojibake(truncate_bytes(raw_summary, MAX_SUMMARY_BYTES));
        let summary_html = self.sanitizer.clean_html(&raw_summary);
        let summary_text = sanitize::html_to_text(&summary_html);
        let (title, link) = match (title.is_empty(), link) {
            (true, None) => return None,
            (true, Some(link)) => (link.clone(), link),
            (false, Some(link)) => (title, link),
            // A story must link somewhere: fall back to the feed's page.
            (false, None) => match &self.feed_base {
                Some(b) if b.scheme() != "file" => (title, b.to_string()),
                _ => return None,
            },
        };
        let key = match &item.guid {
            Some(guid) => StoryKey::from_guid(&self.source.name, guid),
            None if item.link.is_some() => StoryKey::from_link(&link),
            None => StoryKey::from_content_hash(&content_hash(&title, &summary_text)),
        };
        // Missing or future dates (clock skew, typos) become the collection time.
        let now = self.now;
        let published = item
            .published
            .or(item.updated)
            .filter(|p| *p <= now + Duration::hours(1))
            .map(|p| p.min(now).with_nanosecond_zero())
            .unwrap_or(now);
        let tags = tag::tag_story(&self.source.tags, &item.categories, self.rules, &title, &summary_text);
        let defuse = crate::text::defuse_markers;
        Some(NewStory {
            key,
            source: self.source.name.clone(),
            guid: item.guid.clone(),
            title: defuse(title),
            link: defuse(link),
            summary_html: defuse(summary_html),
            summary_text: defuse(summary_text),
            published_at: published,
            collected_at: now,
            tags: tags
                .into_iter()
                .map(|t| TaggedTag {
                    tag: defuse(t.tag),
                    ..t
                })
                .collect(),
        })
    }
}

fn content_hash(title: &str, summary: &str) -> String {
    let mut h = Sha256::new();
    h.update(title.to_lowercase().as_bytes());
    h.update([0]);
    h.update(summary.to_lowercase().as_bytes());
    h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// At most `max` bytes of `s`, cut at a character boundary.
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
            full_text: false,
        }
    }

    fn item(guid: Option<&str>, title: &str, link: Option<&str>, published: Option<DateTime<Utc>>) -> ParsedItem {
        ParsedItem {
            guid: guid.map(str::to_string),
            title: title.into(),
            link: link.map(str::to_string),
            summary_html: None,
            categories: vec![],
            published,
            updated: None,
        }
    }

    fn now() -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 28, 12, 0, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn keys_dates_and_links() {
        let mut first = item(
            Some("abc"),
            "With guid",
            Some("/a?utm_source=rss"),
            Some(now() + Duration::days(30)),
        );
        first.summary_html = Some("<p>Hello <script>x</script>world</p>".into());
        let feed = ParsedFeed {
            title: None,
            link: Some("https://news.example/".into()),
            ttl: None,
            total_items: 3,
            recovered: None,
            items: vec![
                first,
                item(None, "No guid", Some("https://news.example/b#frag"), None),
                item(None, "", None, None),
            ],
        };
        let batch = stories_from_feed(feed, &source(), None, &[], 500, now());
        let stories = batch.stories;
        assert_eq!(batch.skipped, 1);
        assert_eq!(stories.len(), 2);
        assert_eq!(stories[0].key, StoryKey::from_guid("Example", "abc"));
        assert_eq!(stories[0].link, "https://news.example/a");
        assert_eq!(stories[0].published_at, now(), "future date falls back to now");
        assert_eq!(stories[0].summary_text, "Hello world");
        assert_eq!(stories[1].key, StoryKey::from_link("https://news.example/b"));
    }

    #[test]
    fn only_the_newest_items_are_kept() {
        let items = (0..10)
            .map(|i| {
                let link = format!("https://x.example/{i}");
                item(None, &format!("t{i}"), Some(&link), Some(now() - Duration::hours(i)))
            })
            .collect();
        let feed = ParsedFeed {
            title: None,
            link: None,
            ttl: None,
            total_items: 10,
            recovered: None,
            items,
        };
        let batch = stories_from_feed(feed, &source(), None, &[], 3, now());
        let titles: Vec<&str> = batch.stories.iter().map(|s| s.title.as_str()).collect();
        assert_eq!(titles, ["t0", "t1", "t2"]);
        assert_eq!(batch.dropped, 7);
    }

    #[test]
    fn next_fetch_times() {
        let p = CollectPolicy::default();
        let hints = CacheHints {
            max_age: Some(Duration::minutes(10)),
            expires: Some(now() + Duration::minutes(20)),
        };
        assert_eq!(
            p.next_after_success(now(), &hints, Some(60)),
            now() + Duration::hours(1)
        );
        assert_eq!(p.next_after_success(now(), &CacheHints::default(), None), now());
        assert_eq!(
            p.next_after_success(now(), &CacheHints::default(), Some(60 * 48)),
            now() + Duration::hours(24)
        );
        assert_eq!(p.next_after_failure(now(), 1, None), now() + Duration::minutes(5));
        assert_eq!(p.next_after_failure(now(), 3, None), now() + Duration::minutes(20));
        assert_eq!(p.next_after_failure(now(), 30, None), now() + Duration::hours(24));
        assert_eq!(
            p.next_after_failure(now(), 1, Some(Duration::hours(2))),
            now() + Duration::hours(2)
        );
    }

    #[test]
    fn truncation() {
        assert_eq!(crate::text::shorten("short", 10), "short");
        assert_eq!(crate::text::shorten("aaaa bbbb, cccc", 11), "aaaa bbbb…");
        assert_eq!(truncate_bytes("héllo", 2), "h");
    }
}
