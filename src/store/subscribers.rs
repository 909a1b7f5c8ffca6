//! Subscribers and the editions they receive.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::issues::{count_withdrawn, withdraw_unwanted};
use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{EmailAddress, Subscriber, SubscriberStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    Added(i64),
    /// The address was known: its name was updated (when given) and the
    /// editions added; its status was left as it was.
    Updated(i64, SubscriberStatus),
}

/// PostgreSQL advisory lock on who receives an issue: a compose holds it
/// exclusively while it reads an edition's active readers and writes their
/// deliveries; every change to that list holds it shared — deleting a
/// reader, and a change of status or editions, which withdraws the
/// reader's unfinished deliveries. Either change would otherwise miss the
/// rows of a compose under way: a delivery for a reader just deleted
/// (deliveries carry no foreign key to their reader there, migration
/// 0013), or one sent to a reader who just left. Only an active reader
/// gets a delivery, so deleting unconfirmed sign-ups needs no lock. Public
/// so that a script editing readers by hand can take it too.
pub const RECIPIENTS_LOCK: i64 = 0x7469_6469_6e67_0001;

impl Store {
    /// Adds a subscriber, or adds editions to an existing one. An address
    /// that unsubscribed or bounced keeps that status: re-adding it must be
    /// a deliberate [`Store::set_subscriber_status`].
    pub async fn add_subscriber(
        &self,
        email: &EmailAddress,
        name: Option<&str>,
        status: SubscriberStatus,
        editions: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<AddOutcome> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let existing = sqlx::query("SELECT id, status FROM subscribers WHERE email = $1")
                .bind(email.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            let outcome = match existing {
                Some(row) => {
                    let id: i64 = row.try_get("id")?;
                    let status: String = row.try_get("status")?;
                    if let Some(name) = name {
                        sqlx::query("UPDATE subscribers SET name = $2, updated_at = $3 WHERE id = $1")
                            .bind(id)
                            .bind(name)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    AddOutcome::Updated(id, parse_status(&status)?)
                }
                None => {
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO subscribers (email, name, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
                    )
                    .bind(email.as_str())
                    .bind(name)
                    .bind(status.as_str())
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    AddOutcome::Added(id)
                }
            };
            let id = match outcome {
                AddOutcome::Added(id) | AddOutcome::Updated(id, _) => id,
            };
            for edition in editions {
                sqlx::query("INSERT INTO subscriptions (subscriber_id, edition) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(edition)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// Sets the status, with why (shown by `subscribers list`). Leaving
    /// (any status but active) withdraws the reader's unfinished deliveries.
    pub async fn set_subscriber_status(
        &self,
        id: i64,
        status: SubscriberStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query(
                "UPDATE subscribers SET status = $2, updated_at = $3, status_reason = $4, status_changed_at = $3 WHERE id = $1",
            )
                .bind(id)
                .bind(status.as_str())
                .bind(now)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let withdrawn = withdraw_unwanted!(self.is_postgres(), tx, id, reason);
            tx.commit().await?;
            count_withdrawn(withdrawn);
            Ok(n == 1)
        })
    }

    /// Deletes the subscriber, their subscriptions and their delivery
    /// records. Returns whether the address was known. On PostgreSQL it
    /// waits for a compose under way, which would otherwise write a
    /// delivery for the reader just deleted (see [`RECIPIENTS_LOCK`]).
    pub async fn remove_subscriber(&self, email: &EmailAddress) -> StoreResult<bool> {
        const DELETE: &str = "DELETE FROM subscribers WHERE email = $1";
        let n = match &self.backend {
            super::Backend::Sqlite { pool, .. } => sqlx::query(DELETE)
                .bind(email.as_str())
                .execute(pool)
                .await?
                .rows_affected(),
            super::Backend::Postgres { pool, .. } => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                    .bind(RECIPIENTS_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let n = sqlx::query(DELETE)
                    .bind(email.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                tx.commit().await?;
                n
            }
        };
        Ok(n == 1)
    }

    pub async fn subscriber_by_email(&self, email: &EmailAddress) -> StoreResult<Option<Subscriber>> {
        Ok(self.subscribers_where(Some(email.as_str()), None).await?.pop())
    }

    pub async fn subscriber(&self, id: i64) -> StoreResult<Option<Subscriber>> {
        Ok(self.subscribers_where(None, Some(id)).await?.pop())
    }

    /// The first active subscriber of `edition` (by address), for previews.
    pub async fn first_active_subscriber(&self, edition: &str) -> StoreResult<Option<Subscriber>> {
        let id: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "SELECT s.id FROM subscribers s JOIN subscriptions e ON e.subscriber_id = s.id
                 WHERE e.edition = $1 AND s.status = 'active' ORDER BY s.email LIMIT 1",
            )
            .bind(edition)
            .fetch_optional(pool)
            .await?
        });
        match id {
            Some(id) => self.subscriber(id).await,
            None => Ok(None),
        }
    }

    /// Every subscriber, by address, with their editions.
    pub async fn list_subscribers(&self) -> StoreResult<Vec<Subscriber>> {
        self.subscribers_where(None, None).await
    }

    /// Sets the subscriber's name and editions (the preferences page), and
    /// pauses or resumes delivery (`paused`: status `unsubscribed` stays
    /// reversible from the same page).
    pub async fn update_preferences(
        &self,
        id: i64,
        name: Option<&str>,
        editions: &[String],
        status: SubscriberStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // The reason and its time change only with the status.
            sqlx::query(
                "UPDATE subscribers SET name = $2,
                     status_reason = CASE WHEN status = $3 THEN status_reason ELSE $5 END,
                     status_changed_at = CASE WHEN status = $3 THEN status_changed_at ELSE $4 END,
                     status = $3, updated_at = $4
                 WHERE id = $1",
            )
                .bind(id)
                .bind(name)
                .bind(status.as_str())
                .bind(now)
                .bind("changed on the preferences page")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            for edition in editions {
                sqlx::query("INSERT INTO subscriptions (subscriber_id, edition) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(id)
                    .bind(edition)
                    .execute(&mut *tx)
                    .await?;
            }
            let withdrawn = withdraw_unwanted!(self.is_postgres(), tx, id, "changed on the preferences page");
            tx.commit().await?;
            count_withdrawn(withdrawn);
            Ok(())
        })
    }

    /// Subscribers with this address, or this id, or all, with their editions.
    async fn subscribers_where(&self, email: Option<&str>, id: Option<i64>) -> StoreResult<Vec<Subscriber>> {
        let (rows, subs) = with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, email, name, status, status_reason, status_changed_at FROM subscribers
                 WHERE ($1 IS NULL OR email = $1) AND ($2 IS NULL OR id = $2) ORDER BY email",
            )
            .bind(email)
            .bind(id)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let email: String = r.try_get("email")?;
                let status: String = r.try_get("status")?;
                out.push(Subscriber {
                    id: r.try_get("id")?,
                    email: EmailAddress::from_store(email),
                    name: r.try_get("name")?,
                    status: parse_status(&status)?,
                    editions: Vec::new(),
                    status_reason: r.try_get("status_reason")?,
                    status_since: r.try_get("status_changed_at")?,
                });
            }
            let sub_rows = sqlx::query(
                "SELECT e.subscriber_id, e.edition FROM subscriptions e JOIN subscribers s ON s.id = e.subscriber_id
                 WHERE ($1 IS NULL OR s.email = $1) AND ($2 IS NULL OR s.id = $2) ORDER BY e.edition",
            )
            .bind(email)
            .bind(id)
            .fetch_all(pool)
            .await?;
            let mut subs: HashMap<i64, Vec<String>> = HashMap::new();
            for r in &sub_rows {
                subs.entry(r.try_get("subscriber_id")?).or_default().push(r.try_get("edition")?);
            }
            (out, subs)
        });
        let mut rows = rows;
        let mut subs = subs;
        for s in &mut rows {
            s.editions = subs.remove(&s.id).unwrap_or_default();
        }
        Ok(rows)
    }

    pub async fn active_subscriber_count(&self, edition: &str) -> StoreResult<i64> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT COUNT(*) FROM subscribers s JOIN subscriptions e ON e.subscriber_id = s.id
                 WHERE e.edition = $1 AND s.status = 'active'",
            )
            .bind(edition)
            .fetch_one(pool)
            .await?)
        })
    }
}

fn parse_status(s: &str) -> StoreResult<SubscriberStatus> {
    SubscriberStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("subscriber status \"{s}\"")))
}
