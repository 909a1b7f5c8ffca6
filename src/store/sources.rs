//! Per-source fetch state: validators for conditional GET, last outcome.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreResult, with_pool};
use crate::collect::Validators;

#[derive(Debug, Clone, PartialEq)]
pub struct SourceRow {
    pub name: String,
    pub url: String,
    pub last_fetch_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    pub error_count: i64,
    pub story_count: i64,
}

impl Store {
    pub async fn source_validators(&self, name: &str, url: &str) -> StoreResult<Validators> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT etag, last_modified FROM sources WHERE name = $1 AND url = $2")
                .bind(name)
                .bind(url)
                .fetch_optional(pool)
                .await?;
            Ok(match row {
                // Validators only count for the URL they were issued for.
                Some(row) => Validators {
                    etag: row.try_get("etag")?,
                    last_modified: row.try_get("last_modified")?,
                },
                None => Validators::default(),
            })
        })
    }

    /// Records a fetch: `status` is "ok", "not-modified" or "error"; on
    /// success the new validators replace the old ones.
    pub async fn record_fetch(
        &self,
        name: &str,
        url: &str,
        outcome: FetchRecord<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sources (name, url, error_count) VALUES ($1, $2, 0)
                 ON CONFLICT (name) DO UPDATE SET url = excluded.url",
            )
            .bind(name)
            .bind(url)
            .execute(pool)
            .await?;
            match outcome {
                FetchRecord::Ok(v) => {
                    sqlx::query(
                        "UPDATE sources SET etag = $2, last_modified = $3, last_fetch_at = $4, last_success_at = $4,
                         last_status = 'ok', last_error = NULL, error_count = 0 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(v.etag.as_deref())
                    .bind(v.last_modified.as_deref())
                    .bind(now)
                    .execute(pool)
                    .await?;
                }
                FetchRecord::NotModified => {
                    sqlx::query(
                        "UPDATE sources SET last_fetch_at = $2, last_success_at = $2, last_status = 'not-modified',
                         last_error = NULL, error_count = 0 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(now)
                    .execute(pool)
                    .await?;
                }
                FetchRecord::Error(e) => {
                    sqlx::query(
                        "UPDATE sources SET last_fetch_at = $2, last_status = 'error', last_error = $3,
                         error_count = error_count + 1 WHERE name = $1",
                    )
                    .bind(name)
                    .bind(now)
                    .bind(e)
                    .execute(pool)
                    .await?;
                }
            }
            Ok(())
        })
    }

    pub async fn list_sources(&self) -> StoreResult<Vec<SourceRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT s.name, s.url, s.last_fetch_at, s.last_success_at, s.last_status, s.last_error, s.error_count,
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
                        story_count: r.try_get("story_count")?,
                    })
                })
                .collect()
        })
    }
}

pub enum FetchRecord<'a> {
    Ok(&'a Validators),
    NotModified,
    Error(&'a str),
}
