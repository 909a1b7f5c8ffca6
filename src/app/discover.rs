//! `tidings sources discover`: the feeds a web page advertises, checked by
//! fetching and parsing each, nothing stored.

use chrono::{DateTime, Utc};
use url::Url;

use crate::collect::{self, FetchOutcome, Fetcher};
use crate::config::SourceLocation;
use crate::{Error, Result};

/// Where sites usually keep their feed, tried when a page advertises none.
const USUAL_PATHS: &[&str] = &[
    "/feed",
    "/rss",
    "/feed.xml",
    "/rss.xml",
    "/atom.xml",
    "/index.xml",
    "/feed.json",
    "/feeds/posts/default",
];
/// Media types of feeds in `<link rel="alternate" type=…>`.
const FEED_TYPES: &[&str] = &[
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/feed+json",
    "application/json",
    "text/xml",
    "application/xml",
];
/// Most advertised feeds checked for one page.
const MAX_CANDIDATES: usize = 20;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiscoveredFeed {
    pub url: String,
    /// The feed's own title, else the link's.
    pub title: String,
    pub items: usize,
}

/// The page's advertised feeds that parse, in the page's order; the usual
/// paths when it advertises none. A URL that is itself a feed is returned.
pub async fn discover(page: &str, limits: collect::FetchLimits, now: DateTime<Utc>) -> Result<Vec<DiscoveredFeed>> {
    let url = Url::parse(page).map_err(|e| Error::Usage(format!("{page}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Usage(format!("{page}: an http(s) URL is needed")));
    }
    let fetcher = Fetcher::new(limits).map_err(|e| Error::Other(e.to_string()))?;
    // The operator named this site: its host is trusted like a source's.
    let host = url.host_str().map(str::to_string);
    let fetched = fetch(&fetcher, &url, host.as_deref(), now)
        .await
        .map_err(|e| Error::Other(format!("{page}: {e}")))?;
    let base = fetched.base.clone().unwrap_or_else(|| url.clone());
    if let Ok(feed) = collect::parse_feed(&fetched.body, fetched.http_charset.as_deref()) {
        return Ok(vec![DiscoveredFeed {
            url: base.to_string(),
            title: feed.title.unwrap_or_else(|| base.to_string()),
            items: feed.items.len(),
        }]);
    }
    let html = String::from_utf8_lossy(&fetched.body).into_owned();
    let advertised = advertised_feeds(&html, &base);
    let candidates: Vec<(Url, Option<String>)> = if advertised.is_empty() {
        USUAL_PATHS
            .iter()
            .filter_map(|p| base.join(p).ok())
            .map(|u| (u, None))
            .collect()
    } else {
        advertised
    };
    let mut found: Vec<DiscoveredFeed> = Vec::new();
    for (candidate, link_title) in candidates.into_iter().take(MAX_CANDIDATES) {
        let Ok(f) = fetch(&fetcher, &candidate, host.as_deref(), now).await else {
            continue;
        };
        let Ok(feed) = collect::parse_feed(&f.body, f.http_charset.as_deref()) else {
            continue;
        };
        let at = f.base.unwrap_or(candidate).to_string();
        if found.iter().any(|d| d.url == at) {
            continue;
        }
        found.push(DiscoveredFeed {
            title: feed
                .title
                .filter(|t| !t.is_empty())
                .or(link_title)
                .unwrap_or_else(|| at.clone()),
            url: at,
            items: feed.items.len(),
        });
    }
    Ok(found)
}

async fn fetch(
    fetcher: &Fetcher,
    url: &Url,
    host: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<collect::fetch::Fetched, String> {
    let location = SourceLocation::Http(url.clone());
    match fetcher
        .fetch(&location, &collect::Validators::default(), host, now)
        .await
    {
        Ok(FetchOutcome::Body(f)) => Ok(f),
        Ok(FetchOutcome::NotModified { .. }) => Err("HTTP 304".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `<link rel="alternate" type="application/rss+xml" href=… title=…>`, in
/// order, resolved against the page (and its `<base href>`).
fn advertised_feeds(html: &str, page: &Url) -> Vec<(Url, Option<String>)> {
    let doc = dom_query::Document::from(html);
    let base = doc
        .select("base[href]")
        .attr("href")
        .and_then(|b| page.join(&b).ok())
        .unwrap_or_else(|| page.clone());
    let mut feeds: Vec<(Url, Option<String>)> = Vec::new();
    for link in doc.select("link[href]").iter() {
        let rel = link.attr("rel").map(|r| r.to_ascii_lowercase()).unwrap_or_default();
        if !rel.split_whitespace().any(|r| r == "alternate" || r == "feed") {
            continue;
        }
        let kind = link
            .attr("type")
            .map(|t| t.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !FEED_TYPES.contains(&kind.as_str()) {
            continue;
        }
        let Some(href) = link.attr("href") else { continue };
        let Ok(url) = base.join(href.trim()) else { continue };
        if !matches!(url.scheme(), "http" | "https") || feeds.iter().any(|(u, _)| *u == url) {
            continue;
        }
        let title = link
            .attr("title")
            .map(|t| crate::text::clean_line(&t))
            .filter(|t| !t.is_empty());
        feeds.push((url, title));
    }
    feeds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternate_links_of_feed_types_only() {
        let page = Url::parse("https://site.example/blog/post").expect("url");
        let html = r#"<html><head>
            <link rel="stylesheet" href="/s.css">
            <link rel="alternate" type="application/rss+xml" title="Posts" href="/feed.xml">
            <link rel="alternate" type="application/atom+xml" href="comments.atom">
            <link rel="alternate" hreflang="de" href="/de/">
            <link rel="alternate" type="application/feed+json" href="https://cdn.example/feed.json">
            <link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
        </head><body></body></html>"#;
        let got: Vec<(String, Option<String>)> = advertised_feeds(html, &page)
            .into_iter()
            .map(|(u, t)| (u.to_string(), t))
            .collect();
        assert_eq!(
            got,
            [
                ("https://site.example/feed.xml".to_string(), Some("Posts".to_string())),
                ("https://site.example/blog/comments.atom".to_string(), None),
                ("https://cdn.example/feed.json".to_string(), None),
            ]
        );
    }
}
