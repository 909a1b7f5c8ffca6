//! An editor's choices for the next issue of an edition: pins, exclusions
//! and an intro note (`tidings issue …`, the web editor).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreResult, with_pool};
use crate::domain::{Overrides, Pin};

impl Store {
    /// Pins `story_id` into the next issue of `edition` (at `position`, or
    /// where its score puts it), replacing an earlier pin or exclusion.
    pub async fn pin_story(
        &self,
        edition: &str,
        story_id: i64,
        position: Option<usize>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.set_pick(edition, story_id, "pin", position.map(|p| p as i64), now)
            .await
    }

    /// Keeps `story_id` out of the next issue of `edition`.
    pub async fn exclude_story(&self, edition: &str, story_id: i64, now: DateTime<Utc>) -> StoreResult<()> {
        self.set_pick(edition, story_id, "exclude", None, now).await
    }

    async fn set_pick(
        &self,
        edition: &str,
        story_id: i64,
        action: &str,
        position: Option<i64>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO editorial_picks (edition, story_id, action, position, updated_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (edition, story_id) DO UPDATE SET action = $3, position = $4, updated_at = $5",
            )
            .bind(edition)
            .bind(story_id)
            .bind(action)
            .bind(position)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Forgets the editor's pin or exclusion of `story_id`; whether there was one.
    pub async fn clear_pick(&self, edition: &str, story_id: i64) -> StoreResult<bool> {
        with_pool!(self, pool => {
            let done = sqlx::query("DELETE FROM editorial_picks WHERE edition = $1 AND story_id = $2")
                .bind(edition)
                .bind(story_id)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() > 0)
        })
    }

    /// Sets the intro note of the next issue; an empty note removes it.
    pub async fn set_note(&self, edition: &str, note: &str, now: DateTime<Utc>) -> StoreResult<()> {
        with_pool!(self, pool => {
            if note.trim().is_empty() {
                sqlx::query("DELETE FROM editorial_notes WHERE edition = $1")
                    .bind(edition)
                    .execute(pool)
                    .await?;
            } else {
                sqlx::query(
                    "INSERT INTO editorial_notes (edition, note, updated_at) VALUES ($1, $2, $3)
                     ON CONFLICT (edition) DO UPDATE SET note = $2, updated_at = $3",
                )
                .bind(edition)
                // Every way a note comes in passes here.
                .bind(crate::text::defuse_markers(note.trim().to_string()))
                .bind(now)
                .execute(pool)
                .await?;
            }
            Ok(())
        })
    }

    /// The editor's choices for the next issue of `edition`.
    pub async fn overrides(&self, edition: &str) -> StoreResult<Overrides> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT story_id, action, position FROM editorial_picks WHERE edition = $1 ORDER BY updated_at, story_id",
            )
            .bind(edition)
            .fetch_all(pool)
            .await?;
            let mut overrides = Overrides::default();
            for r in &rows {
                let story_id: i64 = r.try_get("story_id")?;
                let action: String = r.try_get("action")?;
                let position: Option<i64> = r.try_get("position")?;
                if action == "pin" {
                    overrides.pins.push(Pin {
                        story_id,
                        position: position.and_then(|p| usize::try_from(p).ok()),
                    });
                } else {
                    overrides.excluded.insert(story_id);
                }
            }
            overrides.note = sqlx::query_scalar("SELECT note FROM editorial_notes WHERE edition = $1")
                .bind(edition)
                .fetch_optional(pool)
                .await?;
            Ok(overrides)
        })
    }
}
