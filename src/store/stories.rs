//! Stories and their tags.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;

use super::{Store, StoreConn, StoreResult, StoreTx, with_conn, with_pool, with_tx};
use crate::domain::{NewStory, StoredStory, TagOrigin, TaggedTag};

/// A row of a story's columns as a story without its tags (on either
/// backend: the row types differ, the reading is the same).
macro_rules! stored_story {
    ($row:expr) => {
        StoredStory {
            id: $row.try_get("id")?,
            source: $row.try_get("source")?,
            title: $row.try_get("title")?,
            link: $row.try_get("link")?,
            summary_html: $row.try_get("summary_html")?,
            summary_text: $row.try_get("summary_text")?,
            content: $row.try_get("content")?,
            published_at: $row.try_get("published_at")?,
            collected_at: $row.try_get("collected_at")?,
            cluster_id: $row.try_get("cluster_id")?,
            tags: Vec::new(),
        }
    };
}
pub(super) use stored_story;

impl StoreTx<'_> {
    /// Stores the stories not seen before (by key) with their tags, a few
    /// multi-row statements per 200 stories. Returns, for each story given,
    /// its new id, or `None` when it was already stored. The stories are
    /// taken, not borrowed: their text moves into the statement instead of
    /// being copied (a first collect binds megabytes of summaries).
    pub async fn insert_stories(&mut self, stories: Vec<NewStory>) -> StoreResult<Vec<Option<i64>>> {
        // Well under SQLite's 32766 bound parameters per statement.
        const ROWS: usize = 200;
        let mut ids = vec![None; stories.len()];
        let mut stories = stories.into_iter();
        let mut offset = 0;
        let sqlite = self.is_sqlite();
        let mut last_id: Option<i64> = None;
        with_tx!(self, conn => loop {
            let mut chunk: Vec<NewStory> = stories.by_ref().take(ROWS).collect();
            if chunk.is_empty() {
                break;
            }
            let mut tags: Vec<Vec<TaggedTag>> = chunk.iter_mut().map(|s| std::mem::take(&mut s.tags)).collect();
            let position: HashMap<String, usize> =
                chunk.iter().enumerate().map(|(i, s)| (s.key.0.clone(), i)).collect();
            let len = chunk.len();
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO stories (story_key, source, guid, title, link, summary_html, summary_text, published_at, collected_at) ",
            );
            insert.push_values(chunk, |mut row, s| {
                row.push_bind(s.key.0)
                    .push_bind(s.source)
                    .push_bind(s.guid)
                    .push_bind(s.title)
                    .push_bind(s.link)
                    .push_bind(s.summary_html)
                    .push_bind(s.summary_text)
                    .push_bind(s.published_at)
                    .push_bind(s.collected_at);
            });
            insert.push(" ON CONFLICT (story_key) DO NOTHING");
            // The (id, key) of each row inserted. sqlx hands SQLite's rows
            // from its worker thread one at a time, a thread wake-up each
            // (25,000 in a first collect); SQLite's single writer makes the
            // new rows exactly those above the largest id before, read as
            // one JSON row. PostgreSQL sends RETURNING's rows in one go, and
            // another replica may insert meanwhile.
            let inserted: Vec<(i64, String)> = if sqlite {
                // Read once per call; after each statement, the largest id
                // it inserted.
                let before = match last_id {
                    Some(id) => id,
                    None => sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM stories")
                        .fetch_one(&mut *conn)
                        .await?,
                };
                insert.build().persistent(false).execute(&mut *conn).await?;
                let json: String =
                    sqlx::query_scalar("SELECT json_group_array(json_array(id, story_key)) FROM stories WHERE id > $1")
                        .bind(before)
                        .fetch_one(&mut *conn)
                        .await?;
                let inserted: Vec<(i64, String)> = serde_json::from_str(&json)
                    .map_err(|e| super::StoreError::Corrupt(format!("new story ids: {e}")))?;
                last_id = Some(inserted.iter().map(|(id, _)| *id).fold(before, i64::max));
                inserted
            } else {
                insert.push(" RETURNING id, story_key");
                let rows = insert.build().persistent(false).fetch_all(&mut *conn).await?;
                rows.iter()
                    .map(|r| Ok((r.try_get("id")?, r.try_get("story_key")?)))
                    .collect::<StoreResult<_>>()?
            };
            let mut new_tags: Vec<(i64, TaggedTag)> = Vec::new();
            for (id, key) in inserted {
                if let Some(&at) = position.get(&key) {
                    ids[offset + at] = Some(id);
                    new_tags.extend(std::mem::take(&mut tags[at]).into_iter().map(|t| (id, t)));
                }
            }
            let mut new_tags = new_tags.into_iter().peekable();
            while new_tags.peek().is_some() {
                let mut insert = sqlx::QueryBuilder::new("INSERT INTO story_tags (story_id, tag, origin) ");
                insert.push_values(new_tags.by_ref().take(ROWS * 2), |mut row, (id, t)| {
                    let origin = t.origin.encode();
                    row.push_bind(id).push_bind(t.tag).push_bind(origin);
                });
                insert.push(" ON CONFLICT DO NOTHING");
                insert.build().persistent(false).execute(&mut *conn).await?;
            }
            offset += len;
        });
        Ok(ids)
    }

    /// Every story published since `since`, oldest id first, as rows for
    /// the collector's clustering index, handed to `each` as they arrive
    /// (the window can hold tens of thousands: none is kept here).
    pub async fn cluster_rows(&mut self, since: DateTime<Utc>, mut each: impl FnMut(ClusterRow)) -> StoreResult<()> {
        with_tx!(self, conn => {
            let mut rows = sqlx::query(
                "SELECT id, source, link, title, cluster_id FROM stories WHERE published_at >= $1 ORDER BY id",
            )
            .bind(since)
            .fetch(&mut *conn);
            while let Some(r) = rows.try_next().await? {
                each(ClusterRow {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    link: r.try_get("link")?,
                    title: r.try_get("title")?,
                    cluster_id: r.try_get("cluster_id")?,
                });
            }
            Ok(())
        })
    }

    /// Sets the cluster of each (story id, cluster id).
    pub async fn set_clusters(&mut self, pairs: &[(i64, i64)]) -> StoreResult<()> {
        with_tx!(self, conn => {
            for (id, cluster) in pairs {
                sqlx::query("UPDATE stories SET cluster_id = $2 WHERE id = $1")
                    .bind(*id)
                    .bind(*cluster)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }
}

/// A stored story as clustering sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterRow {
    pub id: i64,
    pub source: String,
    pub link: String,
    pub title: String,
    pub cluster_id: Option<i64>,
}

impl Store {
    /// [`StoreTx::insert_stories`] in a transaction of its own.
    pub async fn insert_stories(&self, stories: Vec<NewStory>) -> StoreResult<Vec<Option<i64>>> {
        let mut tx = self.begin().await?;
        let ids = tx.insert_stories(stories).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Stories published in `[from, to]`, newest first, with their tags.
    pub async fn stories_published_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<StoredStory>> {
        let (rows, tags) = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, source, title, link, summary_html, summary_text, content, published_at, collected_at, cluster_id
                 FROM stories WHERE published_at >= $1 AND published_at <= $2
                 ORDER BY published_at DESC, id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            let mut stories = Vec::with_capacity(rows.len());
            for r in &rows {
                stories.push(stored_story!(r));
            }
            let tag_rows = sqlx::query(
                "SELECT t.story_id, t.tag, t.origin FROM story_tags t JOIN stories s ON s.id = t.story_id
                 WHERE s.published_at >= $1 AND s.published_at <= $2 ORDER BY t.story_id, t.tag",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            let mut tags: HashMap<i64, Vec<TaggedTag>> = HashMap::new();
            for r in &tag_rows {
                let origin: String = r.try_get("origin")?;
                tags.entry(r.try_get("story_id")?).or_default().push(TaggedTag {
                    tag: r.try_get("tag")?,
                    origin: TagOrigin::decode(&origin),
                });
            }
            (stories, tags)
        });
        let mut rows = rows;
        let mut tags = tags;
        for s in &mut rows {
            s.tags = tags.remove(&s.id).unwrap_or_default();
        }
        Ok(rows)
    }

    /// One story with its tags.
    pub async fn story(&self, id: i64) -> StoreResult<Option<StoredStory>> {
        let found = with_pool!(self, pool => {
            let row = sqlx::query("SELECT published_at FROM stories WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| r.try_get::<DateTime<Utc>, _>("published_at")).transpose()?
        });
        let Some(published) = found else { return Ok(None) };
        let stories = self.stories_published_between(published, published).await?;
        Ok(stories.into_iter().find(|s| s.id == id))
    }

    /// Ids of the stories with this canonical link, newest first.
    pub async fn story_ids_by_link(&self, link: &str) -> StoreResult<Vec<i64>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT id FROM stories WHERE link = $1 ORDER BY published_at DESC, id DESC")
                .bind(link)
                .fetch_all(pool)
                .await?)
        })
    }

    pub async fn story_count(&self) -> StoreResult<i64> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM stories").fetch_one(pool).await?)
        })
    }
}

/// A new story of a `full_text` source whose page has not been fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct AwaitingContent {
    pub id: i64,
    pub source: String,
    pub link: String,
}

/// Most pages fetched in one collect.
const CONTENT_BATCH: i64 = 2000;

impl StoreConn {
    /// Stories of `sources` collected since `since` whose page was never
    /// fetched, oldest first.
    pub async fn stories_awaiting_content(
        &mut self,
        sources: &[&str],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<AwaitingContent>> {
        with_conn!(self, conn => {
            let mut query = sqlx::QueryBuilder::new(
                "SELECT id, source, link FROM stories WHERE content_status IS NULL AND collected_at >= ",
            );
            query.push_bind(since).push(" AND source IN (");
            let mut names = query.separated(", ");
            for source in sources {
                names.push_bind(*source);
            }
            query.push(") ORDER BY id LIMIT ").push_bind(CONTENT_BATCH);
            let rows = query.build().persistent(false).fetch_all(&mut *conn).await?;
            rows.iter()
                .map(|r| {
                    Ok(AwaitingContent {
                        id: r.try_get("id")?,
                        source: r.try_get("source")?,
                        link: r.try_get("link")?,
                    })
                })
                .collect()
        })
    }

    /// Records a page fetch: the article text, or why there is none
    /// (`status` is `ok` or the reason). Never fetched again either way.
    pub async fn record_content(&mut self, id: i64, content: Option<&str>, status: &str) -> StoreResult<()> {
        with_conn!(self, conn => {
            sqlx::query("UPDATE stories SET content = $1, content_status = $2 WHERE id = $3")
                .bind(content)
                .bind(status)
                .bind(id)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}
