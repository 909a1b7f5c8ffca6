//! Per-source fetch state: validators for conditional GET, where the feed
//! lives now (after permanent redirects), when it is next due, failures.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreResult, with_pool};
use crate::collect::Validators;

/// What tidings remembers about a source between runs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SourceState {
    /// The URL fetched: the configured one, or where it permanently moved.
    pub url: String,
    /// The configured URL this state belongs to. When the configuration
    /// names another URL, the state starts afresh.
    pub config_url: Option<String>,
    pub validators: Validators,
    pub next_fetch_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub error_count: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub name: String,
    pub url: String,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub error_count: i64,
    pub next_fetch_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub story_count: i64,
}

pub enum FetchRecord<'a> {
    Ok(&'a Validators),
    NotModified,
    Error(String),
    /// The source is gone for good (HTTP 410): it is not fetched again
    /// until its configured URL changes.
    Disabled(String),
}

/// One fetch of a source, to record.
pub struct FetchUpdate<'a> {
    pub name: &'a str,
    pub config_url: &'a str,
    pub fetch_url: String,
    pub outcome: FetchRecord<'a>,
    pub next_fetch_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

impl Store {
    /// What is remembered about every source, by name (one query for all).
    pub async fn source_states(&self) -> StoreResult<std::collections::HashMap<String, SourceState>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT name, url, config_url, etag, last_modified, next_fetch_at, disabled_reason, error_count FROM sources",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("name")?,
                        SourceState {
                            url: r.try_get("url")?,
                            config_url: r.try_get("config_url")?,
                            validators: Validators {
                                etag: r.try_get("etag")?,
                                last_modified: r.try_get("last_modified")?,
                            },
                            next_fetch_at: r.try_get("next_fetch_at")?,
                            disabled_reason: r.try_get("disabled_reason")?,
                            error_count: r.try_get("error_count")?,
                        },
                    ))
                })
                .collect()
        })
    }

    /// Records fetches of sources, in one transaction. `fetch_url` is where
    /// a source should be fetched next time (moved after a permanent
    /// redirect); when `config_url` differs from the stored one, the old
    /// state is dropped.
    pub async fn record_fetches(&self, fetches: &[FetchUpdate<'_>]) -> StoreResult<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for f in fetches {
            let FetchUpdate { name, config_url, next_fetch_at, now, .. } = *f;
            let fetch_url = f.fetch_url.as_str();
            sqlx::query(
                "INSERT INTO sources (name, url, config_url, error_count) VALUES ($1, $2, $3, 0)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(fetch_url)
            .bind(config_url)
            .execute(&mut *tx)
            .await?;
            // A new URL in the configuration: forget what was learnt about the old one.
            sqlx::query(
                "UPDATE sources SET config_url = $2, etag = NULL, last_modified = NULL, error_count = 0,
                 disabled_reason = NULL, next_fetch_at = NULL
                 WHERE name = $1 AND (config_url IS NULL OR config_url <> $2)",
            )
            .bind(name)
            .bind(config_url)
            .execute(&mut *tx)
            .await?;
            let query = match &f.outcome {
                FetchRecord::Ok(v) => sqlx::query(
                    "UPDATE sources SET url = $2, etag = $4, last_modified = $5, last_fetch_at = $3, last_success_at = $3,
                     last_status = 'ok', last_error = NULL, error_count = 0, next_fetch_at = $6 WHERE name = $1",
                )
                .bind(name)
                .bind(fetch_url)
                .bind(now)
                .bind(v.etag.clone())
                .bind(v.last_modified.clone())
                .bind(next_fetch_at),
                FetchRecord::NotModified => sqlx::query(
                    "UPDATE sources SET url = $2, last_fetch_at = $3, last_success_at = $3, last_status = 'not-modified',
                     last_error = NULL, error_count = 0, next_fetch_at = $4 WHERE name = $1",
                )
                .bind(name)
                .bind(fetch_url)
                .bind(now)
                .bind(next_fetch_at),
                FetchRecord::Error(e) => sqlx::query(
                    "UPDATE sources SET last_fetch_at = $2, last_status = 'error', last_error = $3,
                     error_count = error_count + 1, next_fetch_at = $4 WHERE name = $1",
                )
                .bind(name)
                .bind(now)
                .bind(e.to_string())
                .bind(next_fetch_at),
                FetchRecord::Disabled(e) => sqlx::query(
                    "UPDATE sources SET last_fetch_at = $2, last_status = 'disabled', last_error = $3,
                     error_count = error_count + 1, disabled_reason = $3, next_fetch_at = NULL WHERE name = $1",
                )
                .bind(name)
                .bind(now)
                .bind(e.to_string()),
            };
            query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn list_sources(&self) -> StoreResult<Vec<SourceRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT s.name, s.url, s.last_fetch_at, s.last_success_at, s.last_status, s.last_error, s.error_count,
                        s.next_fetch_at, s.disabled_reason,
                        (SELECT COUNT(*) FROM stories t WHERE t.source = s.name) AS story_count
                 FROM sources s ORDER BY s.name",
            )
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(SourceRow {
                        name: r.try_get("name")?,
                        url: r.try_get("url")?,
                        last_fetch_at: r.try_get("last_fetch_at")?,
                        last_success_at: r.try_get("last_success_at")?,
                        last_status: r.try_get("last_status")?,
                        last_error: r.try_get("last_error")?,
                        error_count: r.try_get("error_count")?,
                        next_fetch_at: r.try_get("next_fetch_at")?,
                        disabled_reason: r.try_get("disabled_reason")?,
                        story_count: r.try_get("story_count")?,
                    })
                })
                .collect()
        })
    }
}
