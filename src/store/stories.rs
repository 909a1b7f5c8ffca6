//! Stories and their tags.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreResult, with_pool};
use crate::collect::cluster::{ClusterCandidate, title_words};
use crate::domain::{NewStory, StoredStory, TagOrigin, TaggedTag};

impl Store {
    /// Stores the stories not seen before (by key) with their tags, in one
    /// transaction, a few multi-row statements per batch. Returns, for each
    /// story given, its new id, or `None` when it was already stored.
    pub async fn insert_stories<S: std::borrow::Borrow<NewStory> + Sync>(
        &self,
        stories: &[S],
    ) -> StoreResult<Vec<Option<i64>>> {
        let stories: Vec<&NewStory> = stories.iter().map(|s| s.borrow()).collect();
        // Well under SQLite's 32766 bound parameters per statement.
        const ROWS: usize = 200;
        let mut ids: HashMap<&str, i64> = HashMap::new();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in stories.chunks(ROWS) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO stories (story_key, source, guid, title, link, summary_html, summary_text, published_at, collected_at) ",
                );
                insert.push_values(chunk, |mut row, s| {
                    row.push_bind(&s.key.0)
                        .push_bind(&s.source)
                        .push_bind(s.guid.as_deref())
                        .push_bind(&s.title)
                        .push_bind(&s.link)
                        .push_bind(&s.summary_html)
                        .push_bind(&s.summary_text)
                        .push_bind(s.published_at)
                        .push_bind(s.collected_at);
                });
                insert.push(" ON CONFLICT (story_key) DO NOTHING RETURNING id, story_key");
                let rows = insert.build().persistent(false).fetch_all(&mut *tx).await?;
                let by_key: HashMap<&str, &NewStory> = chunk.iter().map(|s| (s.key.0.as_str(), *s)).collect();
                let mut new_in_chunk = Vec::new();
                for r in &rows {
                    let key: &str = r.try_get("story_key")?;
                    let id: i64 = r.try_get("id")?;
                    if let Some(&s) = by_key.get(key) {
                        ids.insert(s.key.0.as_str(), id);
                        new_in_chunk.push((id, s));
                    }
                }
                let tags: Vec<(i64, &TaggedTag)> = new_in_chunk
                    .iter()
                    .flat_map(|(id, s)| s.tags.iter().map(move |t| (*id, t)))
                    .collect();
                for tag_chunk in tags.chunks(ROWS * 2) {
                    let mut insert = sqlx::QueryBuilder::new("INSERT INTO story_tags (story_id, tag, origin) ");
                    insert.push_values(tag_chunk, |mut row, (id, t)| {
                        row.push_bind(*id).push_bind(&t.tag).push_bind(t.origin.encode());
                    });
                    insert.push(" ON CONFLICT DO NOTHING");
                    insert.build().persistent(false).execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok::<(), super::StoreError>(())
        })?;
        Ok(stories.iter().map(|s| ids.get(s.key.0.as_str()).copied()).collect())
    }

    /// Stories published in `[from, to]`, newest first, with their tags.
    pub async fn stories_published_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<StoredStory>> {
        let (rows, tags) = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, source, title, link, summary_html, summary_text, published_at, collected_at, cluster_id
                 FROM stories WHERE published_at >= $1 AND published_at <= $2
                 ORDER BY published_at DESC, id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            let mut stories = Vec::with_capacity(rows.len());
            for r in &rows {
                stories.push(StoredStory {
                    id: r.try_get("id")?,
                    source: r.try_get("source")?,
                    title: r.try_get("title")?,
                    link: r.try_get("link")?,
                    summary_html: r.try_get("summary_html")?,
                    summary_text: r.try_get("summary_text")?,
                    published_at: r.try_get("published_at")?,
                    collected_at: r.try_get("collected_at")?,
                    cluster_id: r.try_get("cluster_id")?,
                    tags: Vec::new(),
                });
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

    /// Stories published since `since`, as clustering sees them.
    pub async fn cluster_candidates(&self, since: DateTime<Utc>) -> StoreResult<Vec<ClusterCandidate>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, source, link, title, cluster_id FROM stories WHERE published_at >= $1 ORDER BY id",
            )
            .bind(since)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let title: String = r.try_get("title")?;
                    Ok(ClusterCandidate {
                        id: r.try_get("id")?,
                        source: r.try_get("source")?,
                        link: r.try_get("link")?,
                        words: title_words(&title),
                        cluster_id: r.try_get("cluster_id")?,
                    })
                })
                .collect()
        })
    }

    /// Sets the cluster of each (story id, cluster id).
    pub async fn set_clusters(&self, pairs: &[(i64, i64)]) -> StoreResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (id, cluster) in pairs {
                sqlx::query("UPDATE stories SET cluster_id = $2 WHERE id = $1")
                    .bind(*id)
                    .bind(*cluster)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    pub async fn story_count(&self) -> StoreResult<i64> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM stories").fetch_one(pool).await?)
        })
    }
}
