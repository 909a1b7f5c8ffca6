//! `tidings inspect`: one feed as tidings sees it, nothing stored.

use chrono::{DateTime, Utc};

use crate::collect::{self, Fetcher};
use crate::config::{Source, SourceLocation};
use crate::{Error, Result};

/// What `tidings inspect` shows: the feed as tidings sees it, nothing stored.
#[derive(Debug, serde::Serialize)]
pub struct InspectReport {
    pub feed: InspectFeed,
    pub items: Vec<InspectItem>,
}

#[derive(Debug, serde::Serialize)]
pub struct InspectFeed {
    pub title: Option<String>,
    pub link: Option<String>,
    /// What the recovering parser repaired; null for a well-formed feed.
    pub recovered: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct InspectItem {
    /// The feed's own id (GUID), if any.
    pub id: Option<String>,
    pub title: Option<String>,
    /// The canonical link tidings would store.
    pub link: Option<String>,
    /// As given by the feed, RFC 3339 UTC; null when absent or unreadable.
    pub published: Option<String>,
    pub updated: Option<String>,
    pub tags: Vec<String>,
    /// Plain text of the sanitised summary.
    pub summary: Option<String>,
}

/// Fetches and parses one feed (a URL, `file://` URL or path relative to
/// `base`) without touching any database.
pub async fn inspect(
    target: &str,
    base: &std::path::Path,
    rules: &[crate::config::TagRule],
    limits: collect::FetchLimits,
    now: DateTime<Utc>,
) -> Result<InspectReport> {
    let location = SourceLocation::parse(target, base).map_err(Error::Usage)?;
    let fetcher = Fetcher::new(limits).map_err(|e| Error::Other(e.to_string()))?;
    // The operator named this URL: its host is trusted like a configured source's.
    let trusted_host = match &location {
        SourceLocation::Http(u) => u.host_str().map(str::to_string),
        SourceLocation::File(_) => None,
    };
    let fetched = match fetcher
        .fetch(&location, &collect::Validators::default(), trusted_host.as_deref(), now)
        .await
        .map_err(|e| Error::Other(e.to_string()))?
    {
        collect::FetchOutcome::Body(f) => f,
        collect::FetchOutcome::NotModified { .. } => {
            return Err(Error::Other("the server answered 304".into()));
        }
    };
    let feed =
        collect::parse_feed(&fetched.body, fetched.http_charset.as_deref()).map_err(|e| Error::Other(e.to_string()))?;
    let source = Source {
        name: "inspect".into(),
        location,
        tags: Vec::new(),
        weight: 1.0,
    };
    let normaliser = collect::Normaliser::new(&feed, &source, fetched.base.as_ref(), rules, now);
    let rfc3339 = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let items = feed
        .items
        .iter()
        .map(|item| {
            let story = normaliser.story(item);
            InspectItem {
                id: item.guid.clone(),
                title: Some(item.title.clone()).filter(|t| !t.is_empty()),
                link: story.as_ref().map(|s| s.link.clone()),
                published: rfc3339(item.published),
                updated: rfc3339(item.updated),
                tags: story
                    .as_ref()
                    .map(|s| s.tags.iter().map(|t| t.tag.clone()).collect())
                    .unwrap_or_default(),
                summary: story.map(|s| s.summary_text).filter(|s| !s.is_empty()),
            }
        })
        .collect();
    Ok(InspectReport {
        feed: InspectFeed {
            title: feed.title.clone(),
            link: feed
                .link
                .as_deref()
                .and_then(|l| collect::sanitize::canonical_link(l, fetched.base.as_ref())),
            recovered: feed.recovered.clone(),
        },
        items,
    })
}
