//! One collect, top to bottom: for every configured source, skip it when it
//! is disabled or not due, else (in parallel, politely per host) fetch with
//! its validators → 304 stops there → parse → normalise → sanitise → tag;
//! then store what finished in batches — new stories, the clusters they
//! join, each source's fetch state and its next fetch time (cache hints,
//! or backoff after a failure) — and report one line per source.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::article::{ArticleError, PendingArticle};
use super::cluster::{self, ClusterCandidate, ClusterIndex};
use super::{CollectError, Collector, Fetcher, SourceResult};
use crate::config::{Config, SourceLocation};
use crate::store::{FetchRecord, FetchUpdate, SourceState, Store, StoreConn};
use crate::{Error, Result};

/// How far back a new story looks for the same news from other sources.
const CLUSTER_DAYS: i64 = 7;
/// Most sources whose results are stored in one transaction.
const STORE_BATCH: usize = 16;

/// A source's fetch that finished, waiting to be stored.
struct Finished {
    index: usize,
    /// Where it was fetched from (after earlier permanent redirects).
    location: SourceLocation,
    result: std::result::Result<SourceResult, CollectError>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SourceStatus {
    Collected {
        new: usize,
        unchanged: usize,
        /// Items without a title or a link.
        skipped: usize,
        /// Items over `[collect] max_items`.
        dropped: usize,
        /// What the recovering parser repaired: `unescaped "&" in 3 places`.
        recovered: Option<String>,
    },
    NotModified,
    Failed {
        reason: String,
        next_try: DateTime<Utc>,
    },
    /// Not fetched: waiting for its next fetch time (cache hints or backoff).
    NotDue {
        until: DateTime<Utc>,
        errors: i64,
    },
    /// Not fetched: the feed is gone (HTTP 410) until its URL changes.
    Disabled(String),
}

#[derive(Debug, Clone)]
pub struct SourceReport {
    pub name: String,
    pub location: String,
    pub status: SourceStatus,
    /// Where the source moved for good (301/308), if it did in this run.
    pub moved_to: Option<String>,
}

#[derive(Debug)]
pub struct CollectReport {
    pub sources: Vec<SourceReport>,
    /// Article pages of `full_text` sources fetched in this run.
    pub articles: ArticleCounts,
    pub elapsed: std::time::Duration,
}

/// What the article fetches of one collect came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArticleCounts {
    pub extracted: usize,
    pub failed: usize,
    /// Disallowed by the site's robots.txt.
    pub refused: usize,
    /// The site's robots.txt could not be read: tried again next time.
    pub deferred: usize,
}

/// Stories collected this long ago still get their page fetched (a
/// collect cut short leaves some for the next one).
const ARTICLE_DAYS: i64 = 2;

impl CollectReport {
    fn count(&self, f: impl Fn(&SourceStatus) -> bool) -> usize {
        self.sources.iter().filter(|s| f(&s.status)).count()
    }
    /// Sources that failed in this run or are disabled.
    pub fn failed(&self) -> usize {
        self.count(|s| matches!(s, SourceStatus::Failed { .. } | SourceStatus::Disabled(_)))
    }
    pub fn fetched(&self) -> usize {
        self.count(|s| matches!(s, SourceStatus::Collected { .. }))
    }
    pub fn not_modified(&self) -> usize {
        self.count(|s| matches!(s, SourceStatus::NotModified))
    }
    pub fn not_due(&self) -> usize {
        self.count(|s| matches!(s, SourceStatus::NotDue { .. }))
    }
    pub fn new_stories(&self) -> usize {
        self.sources
            .iter()
            .map(|s| match s.status {
                SourceStatus::Collected { new, .. } => new,
                _ => 0,
            })
            .sum()
    }
}

/// Called once per source as its result is recorded (progress display).
pub type CollectProgress<'a> = &'a (dyn Fn(&SourceReport) + Send + Sync);

/// Fetches every source that is due (all of them with `force`); one
/// failing source never stops the others.
pub async fn run(
    config: &Config,
    store: &Store,
    now: DateTime<Utc>,
    force: bool,
    progress: CollectProgress<'_>,
) -> Result<CollectReport> {
    let started = Instant::now();
    let settings = &config.collect;
    let fetcher = Fetcher::new(settings.limits.clone()).map_err(|e| Error::Other(e.to_string()))?;
    let collector = Arc::new(Collector::new(fetcher, &config.tag_rules, settings.policy.max_items));
    let permits = Arc::new(Semaphore::new(settings.concurrency));
    // Sources fetched or waiting to be stored: one batch more than are
    // fetched at once, so the next batch is fetched and parsed while
    // one is written, and no more results than that wait in memory.
    let places = Arc::new(Semaphore::new(settings.concurrency + STORE_BATCH));
    let mut per_host: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut reports: Vec<Option<SourceReport>> = vec![None; config.sources.len()];
    let mut states = Vec::with_capacity(config.sources.len());
    let mut tasks = JoinSet::new();
    let mut clusters: Option<ClusterIndex> = None;
    // The run reads and stores through this one connection (see
    // StoreConn).
    let mut conn = store.connection().await?;
    let mut known = conn.source_states().await?;
    for (index, source) in config.sources.iter().enumerate() {
        let config_url = source.location.to_string();
        let state = known
            .remove(&source.name)
            .filter(|s| s.config_url.as_deref() == Some(config_url.as_str()))
            .unwrap_or_default();
        if let Some(status) = not_to_fetch(&state, now, force) {
            let report = SourceReport {
                name: source.name.clone(),
                location: config_url,
                status,
                moved_to: None,
            };
            progress(&report);
            reports[index] = Some(report);
            states.push(state);
            continue;
        }
        let location = fetch_location(&source.location, &state, &config_url);
        let host_permits = match &location {
            SourceLocation::Http(u) => Some(Arc::clone(
                per_host
                    .entry(u.host_str().unwrap_or_default().to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(settings.per_host))),
            )),
            SourceLocation::File(_) => None,
        };
        let validators = state.validators.clone();
        let (collector, source) = (Arc::clone(&collector), source.clone());
        let (permits, places) = (Arc::clone(&permits), Arc::clone(&places));
        tasks.spawn(async move {
            // The host's turn first: a source queued behind others of
            // a busy host holds nothing the rest of the run needs. Then
            // a place, which travels with the result and is released
            // only once the result is stored (finished fetches cannot
            // pile up in memory while the database catches up), then
            // one of the run's fetch slots.
            let host_permit = match host_permits {
                Some(p) => Some(p.acquire_owned().await),
                None => None,
            };
            let place = places.acquire_owned().await;
            let permit = permits.acquire_owned().await;
            let result = collector.collect_source(&source, &location, &validators, now).await;
            drop((host_permit, permit));
            (index, location, result, place)
        });
        states.push(state);
    }
    // Results are stored in batches of whatever has finished meanwhile:
    // one transaction for many sources while the fetches go on.
    while let Some(joined) = tasks.join_next().await {
        let mut batch = vec![joined];
        while batch.len() < STORE_BATCH
            && let Some(more) = tasks.try_join_next()
        {
            batch.push(more);
        }
        let mut finished = Vec::with_capacity(batch.len());
        let mut batch_places = Vec::with_capacity(batch.len());
        for joined in batch {
            let (index, location, result, place) =
                joined.map_err(|e| Error::Other(format!("collect task failed: {e}")))?;
            finished.push(Finished {
                index,
                location,
                result,
            });
            batch_places.push(place);
        }
        for (index, report) in record_batch(config, &mut conn, &mut clusters, finished, &states, now).await? {
            match &report.status {
                SourceStatus::Failed { reason, .. } => {
                    tracing::warn!(source = %report.name, "failed: {reason}")
                }
                SourceStatus::Collected {
                    recovered: Some(repaired),
                    ..
                } => {
                    metrics::counter!("tidings_feeds_recovered_total").increment(1);
                    tracing::warn!(source = %report.name, "not well-formed, recovered: {repaired}")
                }
                s => tracing::debug!(source = %report.name, "{s:?}"),
            }
            progress(&report);
            reports[index] = Some(report);
        }
        drop(batch_places);
    }
    let articles = fetch_articles(config, &mut conn, &collector, now).await?;
    let report = CollectReport {
        sources: reports.into_iter().flatten().collect(),
        articles,
        elapsed: started.elapsed(),
    };
    metrics::counter!("tidings_stories_collected_total").increment(report.new_stories() as u64);
    metrics::gauge!("tidings_sources_failing").set(report.failed() as f64);
    Ok(report)
}

/// Fetches the pages of new stories of `full_text` sources and stores
/// their text (or why there is none): once per story.
async fn fetch_articles(
    config: &Config,
    conn: &mut StoreConn,
    collector: &Arc<Collector>,
    now: DateTime<Utc>,
) -> Result<ArticleCounts> {
    let full_text: HashMap<&str, Option<String>> = config
        .sources
        .iter()
        .filter(|s| s.full_text)
        .map(|s| {
            let host = match &s.location {
                SourceLocation::Http(u) => u.host_str().map(str::to_string),
                SourceLocation::File(_) => None,
            };
            (s.name.as_str(), host)
        })
        .collect();
    let mut counts = ArticleCounts::default();
    if full_text.is_empty() {
        return Ok(counts);
    }
    let names: Vec<&str> = full_text.keys().copied().collect();
    let pending: Vec<PendingArticle> = conn
        .stories_awaiting_content(&names, now - Duration::days(ARTICLE_DAYS))
        .await?
        .into_iter()
        .filter_map(|s| {
            let trusted_host = full_text.get(s.source.as_str())?.clone();
            Some(PendingArticle {
                story_id: s.id,
                link: s.link,
                trusted_host,
            })
        })
        .collect();
    if pending.is_empty() {
        return Ok(counts);
    }
    let settings = &config.collect;
    let results = collector
        .fetch_articles(pending, settings.concurrency, settings.per_host, now)
        .await;
    for (id, result) in results {
        match result {
            Ok(text) => {
                counts.extracted += 1;
                conn.record_content(id, Some(&text), "ok").await?;
            }
            Err(e) if e.is_deferred() => counts.deferred += 1,
            Err(e) => {
                if matches!(e, ArticleError::Disallowed) {
                    counts.refused += 1;
                } else {
                    counts.failed += 1;
                }
                tracing::info!(story = id, "no article text: {e}");
                conn.record_content(id, None, &e.to_string()).await?;
            }
        }
    }
    metrics::counter!("tidings_articles_extracted_total").increment(counts.extracted as u64);
    metrics::counter!("tidings_articles_failed_total").increment((counts.failed + counts.refused) as u64);
    Ok(counts)
}

/// Why a source is not fetched in this run, if it is not.
fn not_to_fetch(state: &SourceState, now: DateTime<Utc>, force: bool) -> Option<SourceStatus> {
    match (&state.disabled_reason, state.next_fetch_at) {
        (Some(reason), _) => Some(SourceStatus::Disabled(reason.clone())),
        (None, Some(until)) if until > now && !force => Some(SourceStatus::NotDue {
            until,
            errors: state.error_count,
        }),
        _ => None,
    }
}

/// Where to fetch a source: where the feed lives now after a permanent
/// redirect, else where the configuration says.
fn fetch_location(configured: &SourceLocation, state: &SourceState, config_url: &str) -> SourceLocation {
    match configured {
        SourceLocation::Http(_) if !state.url.is_empty() && state.url != config_url => {
            match url::Url::parse(&state.url) {
                Ok(u) => SourceLocation::Http(u),
                Err(_) => configured.clone(),
            }
        }
        other => other.clone(),
    }
}

/// Stores what a batch of sources gave — their new stories, the
/// clusters those joined, each source's fetch state — in one
/// transaction: a few statements for the whole batch, so the store keeps
/// up with many parallel fetches. Returns each source's report.
async fn record_batch(
    config: &Config,
    conn: &mut StoreConn,
    clusters: &mut Option<ClusterIndex>,
    mut finished: Vec<Finished>,
    states: &[SourceState],
    now: DateTime<Utc>,
) -> Result<Vec<(usize, SourceReport)>> {
    let policy = &config.collect.policy;
    let mut stories = Vec::new();
    let mut title_keys = Vec::new();
    let mut counts = Vec::with_capacity(finished.len());
    for f in &mut finished {
        if let Ok(SourceResult::Stories {
            stories: s,
            title_keys: k,
            ..
        }) = &mut f.result
        {
            counts.push(s.len());
            title_keys.append(k);
            stories.append(s);
        }
    }
    let candidates: Vec<(String, String)> = stories.iter().map(|s| (s.source.clone(), s.link.clone())).collect();
    let mut tx = conn.begin().await?;
    // Read in the batch's transaction, through its connection, before it
    // writes: committed stories only (this batch's join through `add`).
    if clusters.is_none() && !stories.is_empty() {
        *clusters = Some(cluster::load_index(&mut tx, now - Duration::days(CLUSTER_DAYS)).await?);
    }
    let ids = tx.insert_stories(stories).await?;
    let new: Vec<ClusterCandidate> = candidates
        .into_iter()
        .zip(title_keys)
        .zip(&ids)
        .filter_map(|(((source, link), keys), id)| {
            id.map(|id| ClusterCandidate {
                id,
                source,
                link,
                keys,
                cluster_id: None,
            })
        })
        .collect();
    let pairs = clusters.as_mut().map(|index| index.add(new)).unwrap_or_default();
    tx.set_clusters(&pairs).await?;
    let mut ids = ids.into_iter();
    let mut counts = counts.into_iter();

    let config_urls: Vec<String> = finished
        .iter()
        .map(|f| config.sources[f.index].location.to_string())
        .collect();
    let fetched_from: Vec<String> = finished.iter().map(|f| f.location.to_string()).collect();
    let mut updates = Vec::with_capacity(finished.len());
    let mut reports = Vec::with_capacity(finished.len());
    for ((f, config_url), from) in finished.iter().zip(&config_urls).zip(&fetched_from) {
        let source = &config.sources[f.index];
        let mut moved = None;
        let (outcome, next, status) = match &f.result {
            Ok(SourceResult::NotModified { cache, moved_to }) => {
                moved = moved_to.as_ref().map(|u| u.to_string());
                let next = policy.next_after_success(now, cache, None);
                (FetchRecord::NotModified, Some(next), SourceStatus::NotModified)
            }
            Ok(SourceResult::Stories {
                validators,
                cache,
                ttl_minutes,
                moved_to,
                skipped,
                dropped,
                recovered,
                ..
            }) => {
                let count = counts.next().unwrap_or_default();
                let new_count = ids.by_ref().take(count).flatten().count();
                moved = moved_to.as_ref().map(|u| u.to_string());
                let next = policy.next_after_success(now, cache, *ttl_minutes);
                let status = SourceStatus::Collected {
                    new: new_count,
                    unchanged: count - new_count,
                    skipped: *skipped,
                    dropped: *dropped,
                    recovered: recovered.clone(),
                };
                (FetchRecord::Ok(validators, recovered.as_deref()), Some(next), status)
            }
            Err(e) if e.is_gone() => {
                let reason = format!("{e} (disabled; change its URL in the configuration to try again)");
                (
                    FetchRecord::Disabled(reason.clone()),
                    None,
                    SourceStatus::Disabled(reason),
                )
            }
            Err(e) => {
                let reason = e.to_string();
                let next_try = policy.next_after_failure(now, states[f.index].error_count + 1, e.retry_after());
                (
                    FetchRecord::Error(reason.clone()),
                    Some(next_try),
                    SourceStatus::Failed { reason, next_try },
                )
            }
        };
        updates.push(FetchUpdate {
            name: &source.name,
            config_url,
            fetch_url: moved.clone().unwrap_or_else(|| from.clone()),
            outcome,
            next_fetch_at: next,
            now,
        });
        reports.push((
            f.index,
            SourceReport {
                name: source.name.clone(),
                location: config_url.clone(),
                status,
                moved_to: moved,
            },
        ));
    }
    tx.record_fetches(&updates).await?;
    tx.commit().await?;
    Ok(reports)
}
