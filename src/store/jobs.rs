//! Scheduled slots: a row per (job, slot) makes each slot run once, however
//! many replicas fire it and however often the daemon restarts.

use chrono::{DateTime, Utc};

use super::{Store, StoreResult, with_pool};

impl Store {
    /// Claims a slot for this process. `false`: another process (or an
    /// earlier run) already took it.
    pub async fn claim_slot(&self, job: &str, slot_at: DateTime<Utc>, now: DateTime<Utc>) -> StoreResult<bool> {
        with_pool!(self, pool => {
            let n = sqlx::query(
                "INSERT INTO job_runs (job, slot_at, started_at) VALUES ($1, $2, $3) ON CONFLICT (job, slot_at) DO NOTHING",
            )
            .bind(job)
            .bind(slot_at)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        })
    }

    /// Records how a claimed slot ended ("sent", "too few stories", an error).
    pub async fn finish_slot(&self, job: &str, slot_at: DateTime<Utc>, outcome: &str) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query("UPDATE job_runs SET outcome = $3 WHERE job = $1 AND slot_at = $2")
                .bind(job)
                .bind(slot_at)
                .bind(outcome)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Whether a slot was claimed already.
    pub async fn slot_taken(&self, job: &str, slot_at: DateTime<Utc>) -> StoreResult<bool> {
        with_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_runs WHERE job = $1 AND slot_at = $2")
                .bind(job)
                .bind(slot_at)
                .fetch_one(pool)
                .await?;
            Ok(n > 0)
        })
    }

    /// Issues with deliveries that are due at `now` (pending and due, or
    /// leased by a process whose lease ran out).
    pub async fn issues_with_due_deliveries(&self, now: DateTime<Utc>) -> StoreResult<Vec<i64>> {
        with_pool!(self, pool => {
            // Per issue, the first free row ends the search: a send under
            // way has one at the front of its unfinished rows.
            Ok(sqlx::query_scalar(
                "SELECT i.id FROM issues i WHERE EXISTS (
                     SELECT 1 FROM deliveries d
                     WHERE d.issue_id = i.id AND d.status IN ('pending', 'sending')
                       AND d.next_attempt_at <= $1 AND (d.lease_until IS NULL OR d.lease_until < $1))
                 ORDER BY i.id",
            )
            .bind(now)
            .fetch_all(pool)
            .await?)
        })
    }

    /// Ids of stories already in an issue of `edition`, so no later issue
    /// of the edition repeats them.
    pub async fn stories_sent_in(&self, edition: &str) -> StoreResult<Vec<i64>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT DISTINCT s.story_id FROM issue_stories s JOIN issues i ON i.id = s.issue_id WHERE i.edition = $1",
            )
            .bind(edition)
            .fetch_all(pool)
            .await?)
        })
    }
}
