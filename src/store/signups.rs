//! Sign-ups waiting for confirmation, and the editor's login sessions:
//! the two things the web side must remember between requests.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::SubscriberStatus;

/// One sign-up, as its confirmation link names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub id: i64,
    pub subscriber_id: i64,
    pub name: Option<String>,
    pub editions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed: bool,
}

/// What confirming a sign-up did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The subscriber is now active with the sign-up's name and editions.
    Activated,
    /// This link was used before; nothing changed.
    AlreadyUsed,
    /// The subscriber was already receiving mail; nothing changed.
    AlreadyActive,
    /// The address unsubscribed after this sign-up: it stays unsubscribed.
    UnsubscribedSince,
    /// A server refused the address permanently.
    Bounced,
    /// No such sign-up (expired and deleted, or the subscriber removed).
    Gone,
}

/// An editor's session row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorSession {
    pub id: i64,
    pub secret_hash: String,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// Editions are kept as one space-separated field (edition names have no spaces).
fn join_editions(editions: &[String]) -> String {
    editions.join(" ")
}

fn split_editions(field: &str) -> Vec<String> {
    field.split_whitespace().map(str::to_string).collect()
}

impl Store {
    pub async fn create_signup(
        &self,
        subscriber_id: i64,
        name: Option<&str>,
        editions: &[String],
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "INSERT INTO signups (subscriber_id, name, editions, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(subscriber_id)
            .bind(name)
            .bind(join_editions(editions))
            .bind(now)
            .fetch_one(pool)
            .await?)
        })
    }

    pub async fn signup(&self, id: i64) -> StoreResult<Option<Signup>> {
        with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT id, subscriber_id, name, editions, created_at, confirmed_at FROM signups WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?;
            match row {
                None => Ok(None),
                Some(r) => {
                    let confirmed_at: Option<DateTime<Utc>> = r.try_get("confirmed_at")?;
                    let editions: String = r.try_get("editions")?;
                    Ok(Some(Signup {
                        id: r.try_get("id")?,
                        subscriber_id: r.try_get("subscriber_id")?,
                        name: r.try_get("name")?,
                        editions: split_editions(&editions),
                        created_at: r.try_get("created_at")?,
                        confirmed: confirmed_at.is_some(),
                    }))
                }
            }
        })
    }

    /// Confirms a sign-up once: a pending address becomes active with the
    /// name and editions of this sign-up; an address that unsubscribed
    /// before it was made is subscribed again, one that unsubscribed (or
    /// changed anything) after it is not.
    pub async fn confirm_signup(&self, id: i64, now: DateTime<Utc>) -> StoreResult<Confirmation> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // Marking it used first makes two concurrent confirmations of
            // the same link serialise on this row.
            let used = sqlx::query("UPDATE signups SET confirmed_at = $2 WHERE id = $1 AND confirmed_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            let row = sqlx::query(
                "SELECT g.name, g.editions, g.created_at, s.id AS subscriber_id, s.status, s.updated_at
                 FROM signups g JOIN subscribers s ON s.id = g.subscriber_id WHERE g.id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok(Confirmation::Gone);
            };
            if used == 0 {
                return Ok(Confirmation::AlreadyUsed);
            }
            let status: String = row.try_get("status")?;
            let status = SubscriberStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("subscriber status \"{status}\"")))?;
            let created_at: DateTime<Utc> = row.try_get("created_at")?;
            let updated_at: DateTime<Utc> = row.try_get("updated_at")?;
            let outcome = match status {
                SubscriberStatus::Bounced | SubscriberStatus::Complained => Confirmation::Bounced,
                SubscriberStatus::Active | SubscriberStatus::Paused => Confirmation::AlreadyActive,
                SubscriberStatus::Unsubscribed if updated_at > created_at => Confirmation::UnsubscribedSince,
                SubscriberStatus::Pending | SubscriberStatus::Unsubscribed => {
                    let subscriber_id: i64 = row.try_get("subscriber_id")?;
                    let name: Option<String> = row.try_get("name")?;
                    let editions: String = row.try_get("editions")?;
                    sqlx::query(
                        "UPDATE subscribers SET status = 'active', name = COALESCE($2, name), updated_at = $3 WHERE id = $1",
                    )
                    .bind(subscriber_id)
                    .bind(name)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1")
                        .bind(subscriber_id)
                        .execute(&mut *tx)
                        .await?;
                    for edition in split_editions(&editions) {
                        sqlx::query("INSERT INTO subscriptions (subscriber_id, edition) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                            .bind(subscriber_id)
                            .bind(edition)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Confirmation::Activated
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }

    /// Deletes sign-ups made before `cutoff`, and pending subscribers with
    /// no sign-up since: (subscribers deleted, sign-ups deleted).
    pub async fn expire_signups(&self, cutoff: DateTime<Utc>) -> StoreResult<(u64, u64)> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let subscribers = sqlx::query(
                "DELETE FROM subscribers WHERE status = 'pending' AND updated_at < $1
                 AND NOT EXISTS (SELECT 1 FROM signups g WHERE g.subscriber_id = subscribers.id AND g.created_at >= $1)",
            )
            .bind(cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let signups = sqlx::query("DELETE FROM signups WHERE created_at < $1")
                .bind(cutoff)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok((subscribers, signups))
        })
    }

    pub async fn create_editor_session(
        &self,
        secret_hash: &str,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<i64> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM editor_sessions WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?;
            Ok(sqlx::query_scalar(
                "INSERT INTO editor_sessions (secret_hash, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(secret_hash)
            .bind(token_hash)
            .bind(now)
            .bind(expires_at)
            .fetch_one(pool)
            .await?)
        })
    }

    pub async fn editor_session(&self, id: i64) -> StoreResult<Option<EditorSession>> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT id, secret_hash, token_hash, expires_at FROM editor_sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            match row {
                None => Ok(None),
                Some(r) => Ok(Some(EditorSession {
                    id: r.try_get("id")?,
                    secret_hash: r.try_get("secret_hash")?,
                    token_hash: r.try_get("token_hash")?,
                    expires_at: r.try_get("expires_at")?,
                })),
            }
        })
    }

    pub async fn end_editor_session(&self, id: i64) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM editor_sessions WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
