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
    /// With `--full-text`: what would be extracted from the item's page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub article: Option<InspectArticle>,
}

/// The article text `full_text` would store for an item, or why none.
#[derive(Debug, serde::Serialize)]
pub struct InspectArticle {
    pub text: Option<String>,
    pub words: usize,
    pub error: Option<String>,
}

/// Fetches and parses one feed (a URL, `file://` URL or path relative to
/// `base`) without touching any database.
pub async fn inspect(
    target: &str,
    base: &std::path::Path,
    rules: &[crate::config::TagRule],
    limits: collect::FetchLimits,
    full_text: bool,
    now: DateTime<Utc>,
) -> Result<InspectReport> {
    let location = SourceLocation::parse(target, base).map_err(Error::Usage)?;
    let fetcher = Fetcher::new(limits.clone()).map_err(|e| Error::Other(e.to_string()))?;
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
        full_text,
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
                article: None,
            }
        })
        .collect::<Vec<_>>();
    let mut items = items;
    if full_text {
        let pending: Vec<collect::article::PendingArticle> = items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                Some(collect::article::PendingArticle {
                    story_id: index as i64,
                    link: item.link.clone()?,
                    trusted_host: trusted_host.clone(),
                })
            })
            .collect();
        let fetcher = Fetcher::new(limits).map_err(|e| Error::Other(e.to_string()))?;
        let collector = std::sync::Arc::new(collect::Collector::new(fetcher, rules, 1));
        for (index, result) in collector.fetch_articles(pending, 4, 2, now).await {
            let Some(item) = usize::try_from(index).ok().and_then(|i| items.get_mut(i)) else {
                continue;
            };
            item.article = Some(match result {
                Ok(text) => InspectArticle {
                    words: text.split_whitespace().count(),
                    text: Some(text),
                    error: None,
                },
                Err(e) => InspectArticle {
                    text: None,
                    words: 0,
                    error: Some(e.to_string()),
                },
            });
        }
    }
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
