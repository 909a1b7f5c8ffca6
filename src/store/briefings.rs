//! Cards drafted by a model (cached by what the model was sent), the
//! editor's edits of them, the drafted intro of an edition's next issue,
//! and the rows a story's timeline is built from.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::stories::stored_story;
use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{Card, CardEdit, CardField, StoredStory};

/// A cache entry: a card, or why the model's answers were rejected.
#[derive(Debug, Clone, PartialEq)]
pub enum CachedBrief {
    Card(Box<Card>),
    Rejected(String),
}

/// A story as a timeline needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadRow {
    pub id: i64,
    pub source: String,
    pub title: String,
    pub link: String,
    pub published_at: DateTime<Utc>,
    pub cluster_id: Option<i64>,
}

impl Store {
    pub async fn cached_brief(
        &self,
        input_hash: &str,
        model: &str,
        prompt_version: i64,
    ) -> StoreResult<Option<CachedBrief>> {
        let row = with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT card, rejection FROM briefings WHERE input_hash = $1 AND model = $2 AND prompt_version = $3",
            )
            .bind(input_hash)
            .bind(model)
            .bind(prompt_version)
            .fetch_optional(pool)
            .await?;
            row.map(|r| Ok::<_, sqlx::Error>((r.try_get::<Option<String>, _>("card")?, r.try_get::<Option<String>, _>("rejection")?)))
                .transpose()?
        });
        Ok(match row {
            None => None,
            Some((Some(card), _)) => Some(CachedBrief::Card(Box::new(
                serde_json::from_str(&card).map_err(|e| StoreError::Corrupt(format!("a cached card: {e}")))?,
            ))),
            Some((None, rejection)) => Some(CachedBrief::Rejected(rejection.unwrap_or_default())),
        })
    }

    /// Keeps what the model answered for `input_hash` (replacing an earlier answer).
    #[allow(clippy::too_many_arguments)]
    pub async fn put_brief(
        &self,
        input_hash: &str,
        model: &str,
        prompt_version: i64,
        story_id: i64,
        brief: &CachedBrief,
        tokens: (u64, u64),
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (card, rejection) = match brief {
            CachedBrief::Card(card) => (
                Some(serde_json::to_string(card).map_err(|e| StoreError::Corrupt(e.to_string()))?),
                None,
            ),
            CachedBrief::Rejected(reason) => (None, Some(reason.clone())),
        };
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO briefings (input_hash, model, prompt_version, story_id, card, rejection, tokens_in, tokens_out, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (input_hash, model, prompt_version) DO UPDATE SET
                   story_id = $4, card = $5, rejection = $6, tokens_in = $7, tokens_out = $8, created_at = $9",
            )
            .bind(input_hash)
            .bind(model)
            .bind(prompt_version)
            .bind(story_id)
            .bind(card)
            .bind(rejection)
            .bind(tokens.0 as i64)
            .bind(tokens.1 as i64)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The editor's texts for cards of `edition`'s stories.
    pub async fn card_edits(&self, edition: &str) -> StoreResult<Vec<CardEdit>> {
        let rows = with_pool!(self, pool => {
            sqlx::query("SELECT story_id, field, text FROM briefing_edits WHERE edition = $1 ORDER BY story_id, field")
                .bind(edition)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok::<_, sqlx::Error>((r.try_get::<i64, _>("story_id")?, r.try_get::<String, _>("field")?, r.try_get::<String, _>("text")?)))
                .collect::<Result<Vec<_>, _>>()?
        });
        rows.into_iter()
            .map(|(story_id, field, text)| {
                let field =
                    CardField::parse(&field).ok_or_else(|| StoreError::Corrupt(format!("card field \"{field}\"")))?;
                Ok(CardEdit { story_id, field, text })
            })
            .collect()
    }

    /// Sets the editor's text of a card field; an empty text removes it.
    pub async fn set_card_edit(
        &self,
        edition: &str,
        story_id: i64,
        field: CardField,
        text: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            if text.trim().is_empty() {
                sqlx::query("DELETE FROM briefing_edits WHERE edition = $1 AND story_id = $2 AND field = $3")
                    .bind(edition)
                    .bind(story_id)
                    .bind(field.name())
                    .execute(pool)
                    .await?;
            } else {
                sqlx::query(
                    "INSERT INTO briefing_edits (edition, story_id, field, text, updated_at) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (edition, story_id, field) DO UPDATE SET text = $4, updated_at = $5",
                )
                .bind(edition)
                .bind(story_id)
                .bind(field.name())
                .bind(text)
                .bind(now)
                .execute(pool)
                .await?;
            }
            Ok(())
        })
    }

    /// The drafted intro of `edition`'s next issue and whether it was accepted.
    pub async fn intro_draft(&self, edition: &str) -> StoreResult<Option<(String, bool)>> {
        // An empty draft records a rejected answer: there is no draft.
        Ok(self
            .intro_row(edition)
            .await?
            .filter(|(draft, _, _)| !draft.is_empty())
            .map(|(draft, accepted, _)| (draft, accepted)))
    }

    /// The drafted intro, whether it was accepted, and the hash of what the model was sent.
    pub async fn intro_row(&self, edition: &str) -> StoreResult<Option<(String, bool, String)>> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT draft, accepted, input_hash FROM briefing_intros WHERE edition = $1")
                .bind(edition)
                .fetch_optional(pool)
                .await?;
            Ok(row
                .map(|r| Ok::<_, sqlx::Error>((r.try_get("draft")?, r.try_get("accepted")?, r.try_get("input_hash")?)))
                .transpose()?)
        })
    }

    /// Keeps a new intro draft; an accepted one is left as the editor took it.
    pub async fn set_intro_draft(
        &self,
        edition: &str,
        draft: &str,
        input_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO briefing_intros (edition, draft, input_hash, accepted, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (edition) DO UPDATE SET draft = $2, input_hash = $3, updated_at = $5
                 WHERE briefing_intros.accepted = $4",
            )
            .bind(edition)
            .bind(draft)
            .bind(input_hash)
            .bind(false)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Accepts the drafted intro; whether there was one.
    pub async fn accept_intro(&self, edition: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        with_pool!(self, pool => {
            let done = sqlx::query("UPDATE briefing_intros SET accepted = $2, updated_at = $3 WHERE edition = $1 AND draft <> ''")
                .bind(edition)
                .bind(true)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Stories published in `[from, to)`, oldest first, as timelines need them.
    pub async fn thread_rows(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<Vec<ThreadRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, source, title, link, published_at, cluster_id FROM stories
                 WHERE published_at >= $1 AND published_at < $2 ORDER BY published_at, id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(ThreadRow {
                        id: r.try_get("id")?,
                        source: r.try_get("source")?,
                        title: r.try_get("title")?,
                        link: r.try_get("link")?,
                        published_at: r.try_get("published_at")?,
                        cluster_id: r.try_get("cluster_id")?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }

    /// The other stories of a cluster (newest first, at most `limit`), with their text.
    pub async fn cluster_members(&self, cluster_id: i64, except: i64, limit: i64) -> StoreResult<Vec<StoredStory>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, source, title, link, summary_html, summary_text, content, published_at, collected_at, cluster_id
                 FROM stories WHERE cluster_id = $1 AND id <> $2 ORDER BY published_at DESC, id LIMIT $3",
            )
            .bind(cluster_id)
            .bind(except)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| Ok(stored_story!(r)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(StoreError::from)
        })
    }
}
