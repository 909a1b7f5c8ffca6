//! Per-source fetch state: validators for conditional GET, where the feed
//! lives now (after permanent redirects), when it is next due, failures.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreConn, StoreResult, StoreTx, with_conn, with_pool, with_tx};
use crate::domain::Validators;

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
    /// What the recovering parser repaired in the last fetch, if anything.
    pub last_warning: Option<String>,
    pub error_count: i64,
    pub next_fetch_at: Option<DateTime<Utc>>,
    pub disabled_reason: Option<String>,
    pub story_count: i64,
}

pub enum FetchRecord<'a> {
    /// Stories read; the warning says what the recovering parser repaired.
    Ok(&'a Validators, Option<&'a str>),
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
        self.connection().await?.source_states().await
    }

    pub async fn list_sources(&self) -> StoreResult<Vec<SourceRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT s.name, s.url, s.last_fetch_at, s.last_success_at, s.last_status, s.last_error, s.last_warning, s.error_count,
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
                        last_warning: r.try_get("last_warning")?,
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

impl StoreConn {
    /// What is remembered about every source, by name (one query for all).
    pub async fn source_states(&mut self) -> StoreResult<std::collections::HashMap<String, SourceState>> {
        with_conn!(self, conn => {
            let rows = sqlx::query(
                "SELECT name, url, config_url, etag, last_modified, next_fetch_at, disabled_reason, error_count FROM sources",
            )
            .fetch_all(&mut *conn)
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
}

impl StoreTx<'_> {
    /// Records fetches of sources, one statement per 100. `fetch_url` is
    /// where a source should be fetched next time (moved after a permanent
    /// redirect); when `config_url` differs from the stored one, what was
    /// learnt about the old URL (validators, errors, a disabled state) is
    /// dropped first. A source seen for the first time gets a row.
    pub async fn record_fetches(&mut self, fetches: &[FetchUpdate<'_>]) -> StoreResult<()> {
        // The inserted row is the complete new state of a source seen for
        // the first time; for a known source, the update below derives the
        // same from the stored row. `excluded` is the row that was to be
        // inserted, `moved_on` whether the configured URL changed.
        const MOVED_ON: &str = "(sources.config_url IS NULL OR sources.config_url <> excluded.config_url)";
        let update = format!(
            " ON CONFLICT (name) DO UPDATE SET
               config_url = excluded.config_url,
               url = CASE WHEN excluded.last_status IN ('ok', 'not-modified') OR {MOVED_ON} THEN excluded.url
                          ELSE sources.url END,
               etag = CASE WHEN excluded.last_status = 'ok' THEN excluded.etag WHEN {MOVED_ON} THEN NULL ELSE sources.etag END,
               last_modified = CASE WHEN excluded.last_status = 'ok' THEN excluded.last_modified
                                    WHEN {MOVED_ON} THEN NULL ELSE sources.last_modified END,
               last_fetch_at = excluded.last_fetch_at,
               last_success_at = COALESCE(excluded.last_success_at, sources.last_success_at),
               last_status = excluded.last_status,
               last_error = excluded.last_error,
               last_warning = CASE WHEN excluded.last_status = 'not-modified' THEN sources.last_warning
                                   ELSE excluded.last_warning END,
               error_count = CASE WHEN excluded.error_count = 0 THEN 0 WHEN {MOVED_ON} THEN 1
                                  ELSE sources.error_count + 1 END,
               next_fetch_at = excluded.next_fetch_at,
               disabled_reason = CASE WHEN excluded.disabled_reason IS NOT NULL THEN excluded.disabled_reason
                                      WHEN {MOVED_ON} THEN NULL ELSE sources.disabled_reason END"
        );
        with_tx!(self, conn => {
            for chunk in fetches.chunks(100) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO sources (name, url, config_url, etag, last_modified, last_fetch_at, last_success_at,
                     last_status, last_error, last_warning, error_count, next_fetch_at, disabled_reason) ",
                );
                insert.push_values(chunk, |mut row, f| {
                    let (status, validators, error, disabled, warning) = match &f.outcome {
                        FetchRecord::Ok(v, warning) => ("ok", Some(*v), None, None, *warning),
                        FetchRecord::NotModified => ("not-modified", None, None, None, None),
                        FetchRecord::Error(e) => ("error", None, Some(e.as_str()), None, None),
                        FetchRecord::Disabled(e) => ("disabled", None, Some(e.as_str()), Some(e.as_str()), None),
                    };
                    let succeeded = error.is_none();
                    row.push_bind(f.name)
                        .push_bind(f.fetch_url.as_str())
                        .push_bind(f.config_url)
                        .push_bind(validators.and_then(|v| v.etag.as_deref()))
                        .push_bind(validators.and_then(|v| v.last_modified.as_deref()))
                        .push_bind(f.now)
                        .push_bind(succeeded.then_some(f.now))
                        .push_bind(status)
                        .push_bind(error)
                        .push_bind(warning)
                        .push_bind(i64::from(!succeeded))
                        // A disabled source is not due again, whatever the caller computed.
                        .push_bind(f.next_fetch_at.filter(|_| disabled.is_none()))
                        .push_bind(disabled);
                });
                insert.push(&update);
                insert.build().persistent(false).execute(&mut *conn).await?;
            }
        });
        Ok(())
    }
}
