//! Issues (frozen snapshots of an edition for one slot) and the delivery
//! ledger: one row per issue × subscriber, unique, claimed with a lease.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Store, StoreResult, with_pool};
use crate::domain::EmailAddress;

/// An `issues` row (any backend's) as an [`IssueRow`].
macro_rules! issue_row {
    ($r:expr) => {
        IssueRow {
            id: $r.try_get("id")?,
            edition: $r.try_get("edition")?,
            slot_at: $r.try_get("slot_at")?,
            composed_at: $r.try_get("composed_at")?,
            subject: $r.try_get("subject")?,
            content: $r.try_get("content")?,
        }
    };
}

pub struct NewIssue<'a> {
    pub edition: &'a str,
    pub slot_at: DateTime<Utc>,
    pub composed_at: DateTime<Utc>,
    /// Deliveries are due from then (the slot, for an issue approved ahead of it).
    pub deliver_from: DateTime<Utc>,
    pub subject: &'a str,
    /// The rendered issue (JSON), so every subscriber gets the same content
    /// even if templates change while a send is under way.
    pub content: &'a str,
    /// (story id, score), in order.
    pub stories: &'a [(i64, f64)],
    /// Message-IDs are `<tidings.ISSUE.NONCE.SUBSCRIBER@DOMAIN>`.
    pub message_id_nonce: &'a str,
    pub message_id_domain: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IssueRow {
    pub id: i64,
    pub edition: String,
    pub slot_at: DateTime<Utc>,
    pub composed_at: DateTime<Utc>,
    pub subject: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    pub id: i64,
    pub subscriber_id: i64,
    pub email: EmailAddress,
    pub name: Option<String>,
    pub message_id: String,
    /// Including the one just claimed.
    pub attempts: i64,
}

/// How one delivery ended this attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryOutcome {
    Sent {
        id: i64,
        reply: String,
        at: DateTime<Utc>,
    },
    Retry {
        id: i64,
        reply: String,
        at: DateTime<Utc>,
    },
    Failed {
        id: i64,
        subscriber_id: i64,
        reply: String,
        /// Refused permanently: the subscriber is suppressed from now on.
        bounce: bool,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    pub pending: i64,
    pub sending: i64,
    pub sent: i64,
    pub failed: i64,
    /// Not sent: the reader left (unsubscribed, bounced, complained,
    /// paused or dropped the edition) before their turn came.
    pub withdrawn: i64,
}

impl DeliveryCounts {
    pub fn total(&self) -> i64 {
        self.pending + self.sending + self.sent + self.failed + self.withdrawn
    }
}

/// In a transaction (`$tx`) that has just changed what reader
/// `$subscriber_id` receives (status or editions): marks their unfinished
/// deliveries `withdrawn` where the reader is no longer an active
/// subscriber of the issue's edition, with `$reason`, so a reader who
/// leaves while an issue goes out is not mailed it. A row being sent at
/// that moment still goes out, and its outcome says so. `$postgres`: take
/// [`RECIPIENTS_LOCK`](crate::store::RECIPIENTS_LOCK) shared first, so a compose
/// under way finishes before this statement looks for its rows. A macro:
/// the transaction's type depends on the backend.
macro_rules! withdraw_unwanted {
    ($postgres:expr, $tx:expr, $subscriber_id:expr, $reason:expr) => {{
        if $postgres {
            sqlx::query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind(crate::store::RECIPIENTS_LOCK)
                .execute(&mut *$tx)
                .await?;
        }
        sqlx::query(
            "UPDATE deliveries SET status = 'withdrawn', lease_until = NULL, last_reply = $2
             WHERE subscriber_id = $1 AND status IN ('pending', 'sending')
               AND NOT EXISTS (
                   SELECT 1 FROM subscribers s
                   JOIN subscriptions e ON e.subscriber_id = s.id
                   JOIN issues i ON i.edition = e.edition
                   WHERE s.id = $1 AND s.status = 'active' AND i.id = deliveries.issue_id)",
        )
        .bind($subscriber_id)
        .bind(format!("not sent: {}", $reason))
        .execute(&mut *$tx)
        .await?
        .rows_affected()
    }};
}
pub(super) use withdraw_unwanted;

/// Counts withdrawn deliveries in `/metrics`, once the transaction that
/// withdrew them has committed.
pub(super) fn count_withdrawn(n: u64) {
    if n > 0 {
        metrics::counter!("tidings_deliveries_total", "status" => "withdrawn").increment(n);
    }
}

/// "Unfinished and free at `$2`": not sent or failed, due, and not leased
/// (or leased by a process whose lease ran out — it died: taken over). A
/// leased row keeps its status; `'sending'` is what versions before
/// migration 0012 wrote, read the same way.
macro_rules! free_at_2 {
    () => {
        "status IN ('pending', 'sending') AND next_attempt_at <= $2 AND (lease_until IS NULL OR lease_until < $2)"
    };
}

/// A claim statement: lease up to `$4` free rows of issue `$1` above id
/// `$5`, in id order, walking the partial index `deliveries_unfinished`
/// (whose condition the statement repeats, as SQLite requires to use it).
/// A claim then costs the same for the first batch of an issue and for the
/// last, however many rows are already sent. It sets the lease and counts
/// the attempt but leaves `status`, so no index entry changes: on
/// PostgreSQL the update is HOT (in place on its page; the table's
/// fillfactor leaves the room), where a status change wrote a new entry
/// into each of the table's four indexes. `$from` names the index for
/// SQLite (left to itself it has been seen to sort every due row to take
/// the first few). `$range` is the issue and the cursor, `$order` the
/// index's order. PostgreSQL, given `id > $5`, walks the primary key from
/// the cursor through every earlier issue's sent rows (82 ms a claim
/// behind 100,000 of them); given `issue_id = $1` beside the row
/// comparison, it starts at the issue's first entry of the partial index
/// and steps over every row the issue has sent since the table was last
/// vacuumed (a sent row's entry stays until then: 4–6 ms a claim halfway
/// through 100,000). The row comparison alone, bounded by `issue_id <= $1`,
/// starts at the cursor. SQLite removes a sent row's entry at once and,
/// given a row comparison, would drop the range and keep only
/// `issue_id = ?`. `$lock` is PostgreSQL's `FOR UPDATE SKIP LOCKED`, so
/// several replicas claim disjoint batches. `$pick` and `$picked` wrap the
/// chosen ids: PostgreSQL plans `id IN (subquery)` as a hash join over a
/// sequential scan of the whole table once its plan is cached (a claim
/// then costs time in proportion to the issue's size), and
/// `id = ANY(ARRAY(subquery))` as lookups in the primary key.
macro_rules! claim_sql {
    ($from:literal, $range:literal, $order:literal, $lock:literal, $pick:literal, $picked:literal) => {
        concat!(
            "UPDATE deliveries SET lease_until = $3, attempts = attempts + 1
             WHERE ",
            $pick,
            "SELECT id FROM deliveries ",
            $from,
            " WHERE ",
            $range,
            " AND ",
            free_at_2!(),
            " ORDER BY ",
            $order,
            " LIMIT $4",
            $lock,
            $picked,
            " RETURNING id, subscriber_id, email, name, message_id, attempts"
        )
    };
}

const CLAIM_SQLITE: &str = claim_sql!(
    "INDEXED BY deliveries_unfinished",
    "issue_id = $1 AND id > $5",
    "id",
    "",
    "id IN (",
    ")"
);
const CLAIM_POSTGRES: &str = claim_sql!(
    "",
    "(issue_id, id) > ($1, $5) AND issue_id <= $1",
    "issue_id, id",
    " FOR UPDATE SKIP LOCKED",
    "id = ANY(ARRAY(",
    "))"
);

/// A compose writes the deliveries of readers with ids in ranges this
/// wide, one statement each, in one transaction: each statement stays
/// short however long the list (one for a million readers took six
/// seconds, and sqlx logs any statement over one second as a warning), at
/// the same cost in all. The range is given for both tables, so each
/// statement reads only its range of subscriptions, not all of them.
const COMPOSE_RANGE: i64 = 20_000;

/// Rows that were sent: (delivery id, when, the server's reply).
type SentRow<'a> = (i64, &'a DateTime<Utc>, &'a str);

/// At most this many "sent" rows go into one statement.
const SENT_CHUNK: usize = 500;

/// One UPDATE marking rows sent (SQLite: a VALUES list).
fn mark_sent_sqlite(rows: &[SentRow<'_>]) -> sqlx::QueryBuilder<sqlx::Sqlite> {
    let mut update = sqlx::QueryBuilder::new("WITH v(id, sent_at, reply) AS (");
    update.push_values(rows, |mut row, (id, at, reply)| {
        row.push_bind(*id).push_bind(**at).push_bind(*reply);
    });
    update.push(
        ") UPDATE deliveries SET status = 'sent', sent_at = v.sent_at, last_reply = v.reply, lease_until = NULL
         FROM v WHERE deliveries.id = v.id",
    );
    update
}

/// One UPDATE marking rows sent (PostgreSQL: the rows as one JSON array,
/// so the statement text is the same whatever the batch size — parsed once
/// per connection — and so is the planner's estimate of its rows, which
/// lets PostgreSQL keep one generic plan: with arrays it estimated a batch
/// of 8 below its generic plan of 10 and planned every commit again,
/// 0.13 ms of CPU each, a third of the statement).
fn mark_sent_postgres<'a>(rows: &[SentRow<'a>]) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
    /// One element of the array; the time truncated to microseconds, as
    /// sqlx writes a time PostgreSQL keeps.
    #[derive(serde::Serialize)]
    struct Sent<'a> {
        id: i64,
        sent_at: String,
        reply: &'a str,
    }
    let rows: Vec<Sent<'a>> = rows
        .iter()
        .map(|(id, at, reply)| Sent {
            id: *id,
            sent_at: at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            reply,
        })
        .collect();
    sqlx::query(
        "UPDATE deliveries SET status = 'sent', sent_at = v.sent_at, last_reply = v.reply, lease_until = NULL
         FROM jsonb_to_recordset($1::JSONB) AS v(id BIGINT, sent_at TIMESTAMPTZ, reply TEXT)
         WHERE deliveries.id = v.id",
    )
    .bind(sqlx::types::Json(rows))
}

impl Store {
    pub async fn find_issue(&self, edition: &str, slot_at: DateTime<Utc>) -> StoreResult<Option<IssueRow>> {
        with_pool!(self, pool => {
            let row = sqlx::query(
                "SELECT id, edition, slot_at, composed_at, subject, content FROM issues WHERE edition = $1 AND slot_at = $2",
            )
            .bind(edition)
            .bind(slot_at)
            .fetch_optional(pool)
            .await?;
            row.map(|r| {
                Ok(issue_row!(r))
            })
            .transpose()
        })
    }

    /// Writes the issue, its stories and one pending delivery per active
    /// subscriber of the edition, in one transaction. If the slot was
    /// already composed (by an earlier run or another replica) nothing is
    /// written. Returns the issue and whether this call created it.
    pub async fn create_issue(&self, issue: &NewIssue<'_>) -> StoreResult<(IssueRow, bool)> {
        let created = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if self.is_postgres() {
                // No reader leaves while the list of who gets the issue is
                // read and written (see `RECIPIENTS_LOCK`).
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(crate::store::RECIPIENTS_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO issues (edition, slot_at, composed_at, subject, content) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (edition, slot_at) DO NOTHING RETURNING id",
            )
            .bind(issue.edition)
            .bind(issue.slot_at)
            .bind(issue.composed_at)
            .bind(issue.subject)
            .bind(issue.content)
            .fetch_optional(&mut *tx)
            .await?;
            match id {
                None => {
                    tx.rollback().await?;
                    false
                }
                Some(id) => {
                    for (position, (story_id, score)) in issue.stories.iter().enumerate() {
                        sqlx::query("INSERT INTO issue_stories (issue_id, position, story_id, score) VALUES ($1, $2, $3, $4)")
                            .bind(id)
                            .bind(position as i64)
                            .bind(*story_id)
                            .bind(*score)
                            .execute(&mut *tx)
                            .await?;
                    }
                    let (first, last): (Option<i64>, Option<i64>) =
                        sqlx::query_as("SELECT MIN(id), MAX(id) FROM subscribers")
                            .fetch_one(&mut *tx)
                            .await?;
                    // Inclusive ranges, so the last id is reached without overflow.
                    let mut from = first.unwrap_or(1);
                    let last = last.unwrap_or(0);
                    let message_id_prefix = format!("<tidings.{id}.{}.", issue.message_id_nonce);
                    let message_id_suffix = format!("@{}>", issue.message_id_domain);
                    while from <= last {
                        let to = from.saturating_add(COMPOSE_RANGE - 1).min(last);
                        sqlx::query(
                            "INSERT INTO deliveries (issue_id, subscriber_id, email, name, status, attempts, next_attempt_at, message_id)
                             SELECT $1, s.id, s.email, s.name, 'pending', 0, $2, $3 || CAST(s.id AS TEXT) || $4
                             FROM subscribers s JOIN subscriptions e ON e.subscriber_id = s.id
                             WHERE e.edition = $5 AND s.status = 'active'
                               AND s.id BETWEEN $6 AND $7 AND e.subscriber_id BETWEEN $6 AND $7",
                        )
                        .bind(id)
                        .bind(issue.deliver_from)
                        .bind(&message_id_prefix)
                        .bind(&message_id_suffix)
                        .bind(issue.edition)
                        .bind(from)
                        .bind(to)
                        .execute(&mut *tx)
                        .await?;
                        if to == last {
                            break;
                        }
                        from = to + 1;
                    }
                    // The editor's choices are now frozen into this issue.
                    for consumed in [
                        "DELETE FROM editorial_picks WHERE edition = $1 AND updated_at <= $2",
                        "DELETE FROM editorial_notes WHERE edition = $1 AND updated_at <= $2",
                        "DELETE FROM briefing_intros WHERE edition = $1 AND updated_at <= $2",
                    ] {
                        sqlx::query(consumed)
                            .bind(issue.edition)
                            .bind(issue.composed_at)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    true
                }
            }
        });
        if created && let Some(pool) = self.postgres_pool() {
            // The planner's statistics predate the rows just written (up to
            // one per subscriber); without fresh ones it has been seen to
            // sort every pending row on each claim of a 100,000-row issue.
            // Only the columns claims and look-ups filter on: the text
            // columns were two thirds of the time (BENCHMARKS.md, "Send").
            sqlx::query("ANALYZE deliveries (id, issue_id, subscriber_id, status, next_attempt_at, lease_until)")
                .execute(pool)
                .await?;
        }
        let row = self
            .find_issue(issue.edition, issue.slot_at)
            .await?
            .ok_or_else(|| super::StoreError::Corrupt("issue vanished after being written".into()))?;
        Ok((row, created))
    }

    /// Claims up to `limit` deliveries that are due (or whose lease ran
    /// out), leasing them until `lease_until`, among rows with an id above
    /// `after_id`: a sender keeps a cursor, so a claim reads the next rows
    /// instead of stepping over every row already sent (PostgreSQL walks the
    /// primary key in id order and filters, which made each claim cost
    /// O(sent) and a 1,000,000-subscriber send quadratic). A sender comes
    /// back to the start when nothing is left ahead of its cursor, so
    /// retries that came due and a dead process's rows are still taken.
    pub async fn claim_deliveries_after(
        &self,
        issue_id: i64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
        after_id: i64,
    ) -> StoreResult<Vec<DeliveryRow>> {
        let sql = if self.is_postgres() {
            CLAIM_POSTGRES
        } else {
            CLAIM_SQLITE
        };
        let mut out = Vec::new();
        with_pool!(self, ledger: pool => {
            let rows = sqlx::query(sql)
                .bind(issue_id)
                .bind(now)
                .bind(lease_until)
                .bind(limit)
                .bind(after_id)
                .fetch_all(pool)
                .await?;
            for r in &rows {
                let email: String = r.try_get("email")?;
                out.push(DeliveryRow {
                    id: r.try_get("id")?,
                    subscriber_id: r.try_get("subscriber_id")?,
                    email: EmailAddress::from_store(email),
                    name: r.try_get("name")?,
                    message_id: r.try_get("message_id")?,
                    attempts: r.try_get("attempts")?,
                });
            }
        });
        out.sort_by_key(|d| d.id);
        Ok(out)
    }

    /// Records many delivery outcomes in one transaction (one commit for a
    /// batch of messages rather than one per message). On PostgreSQL the
    /// commit does not wait for the WAL flush (see `Backend::Postgres`).
    pub async fn record_outcomes(&self, outcomes: &[DeliveryOutcome]) -> StoreResult<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        // Most outcomes are "sent": one statement for all of them, so a
        // batch costs one round trip to the database, not one per message.
        let sent: Vec<(i64, &DateTime<Utc>, &str)> = outcomes
            .iter()
            .filter_map(|o| match o {
                DeliveryOutcome::Sent { id, reply, at } => Some((*id, at, reply.as_str())),
                _ => None,
            })
            .collect();
        if sent.len() == outcomes.len() && sent.len() <= SENT_CHUNK {
            // Only "sent": one statement is atomic on its own, so no
            // BEGIN/COMMIT round trips around it.
            match &self.backend {
                super::Backend::Sqlite { ledger, .. } => {
                    mark_sent_sqlite(&sent).build().execute(ledger).await?;
                }
                super::Backend::Postgres { outcomes, .. } => {
                    mark_sent_postgres(&sent).execute(outcomes).await?;
                }
            }
            return Ok(());
        }
        // The same transaction for each backend; only the statement that
        // marks rows sent differs.
        macro_rules! in_one_transaction {
            ($pool:expr, $chunk:ident => $mark_sent:expr) => {{
            let mut tx = $pool.begin().await?;
            let mut withdrawn = 0;
            for $chunk in sent.chunks(SENT_CHUNK) {
                $mark_sent.execute(&mut *tx).await?;
            }
            for o in outcomes {
                match o {
                    DeliveryOutcome::Sent { .. } => {}
                    DeliveryOutcome::Retry { id, reply, at } => {
                        // A row withdrawn while it was tried stays withdrawn.
                        sqlx::query("UPDATE deliveries SET status = 'pending', next_attempt_at = $2, last_reply = $3, lease_until = NULL
                                     WHERE id = $1 AND status IN ('pending', 'sending')")
                            .bind(*id)
                            .bind(*at)
                            .bind(reply)
                            .execute(&mut *tx)
                            .await?;
                    }
                    DeliveryOutcome::Failed { id, subscriber_id, reply, bounce, at } => {
                        sqlx::query("UPDATE deliveries SET status = 'failed', last_reply = $2, lease_until = NULL WHERE id = $1")
                            .bind(*id)
                            .bind(reply)
                            .execute(&mut *tx)
                            .await?;
                        if *bounce {
                            sqlx::query(
                                "UPDATE subscribers SET status = 'bounced', updated_at = $2, status_changed_at = $2, status_reason = $3
                                 WHERE id = $1 AND status = 'active'",
                            )
                                .bind(*subscriber_id)
                                .bind(*at)
                                .bind(format!("refused when sent: {reply}"))
                                .execute(&mut *tx)
                                .await?;
                            withdrawn += withdraw_unwanted!(self.is_postgres(), tx, *subscriber_id, "the address was refused");
                        }
                    }
                }
            }
            tx.commit().await?;
            count_withdrawn(withdrawn);
            Ok(())
            }};
        }
        match &self.backend {
            super::Backend::Sqlite { ledger, .. } => {
                in_one_transaction!(ledger, chunk => mark_sent_sqlite(chunk).build())
            }
            super::Backend::Postgres { outcomes, .. } => {
                in_one_transaction!(outcomes, chunk => mark_sent_postgres(chunk))
            }
        }
    }

    /// Gives claimed rows back, as if never claimed (the attempt is not
    /// counted): used when a run stops before trying them.
    pub async fn release_deliveries(&self, ids: &[i64]) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        with_pool!(self, ledger: pool => {
            let mut tx = pool.begin().await?;
            for id in ids {
                sqlx::query(
                    "UPDATE deliveries SET status = 'pending', lease_until = NULL, attempts = attempts - 1
                     WHERE id = $1 AND status IN ('pending', 'sending') AND lease_until IS NOT NULL",
                )
                .bind(*id)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// The issue's deliveries by state at `now`: a row is "sending" while
    /// its lease runs (its status stays pending), pending again once the
    /// lease ran out.
    pub async fn delivery_counts(&self, issue_id: i64, now: DateTime<Utc>) -> StoreResult<DeliveryCounts> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT CASE WHEN status IN ('pending', 'sending') AND lease_until >= $2 THEN 'sending'
                             WHEN status = 'sending' THEN 'pending'
                             ELSE status END AS status,
                        COUNT(*) AS n
                 FROM deliveries WHERE issue_id = $1 GROUP BY 1",
            )
                .bind(issue_id)
                .bind(now)
                .fetch_all(pool)
                .await?;
            let mut c = DeliveryCounts::default();
            for r in &rows {
                let status: String = r.try_get("status")?;
                let n: i64 = r.try_get("n")?;
                match status.as_str() {
                    "pending" => c.pending = n,
                    "sending" => c.sending = n,
                    "sent" => c.sent = n,
                    "failed" => c.failed = n,
                    "withdrawn" => c.withdrawn = n,
                    other => return Err(super::StoreError::Corrupt(format!("delivery status \"{other}\""))),
                }
            }
            Ok(c)
        })
    }

    /// Failed deliveries of an issue with the server's last reply.
    pub async fn failed_deliveries(&self, issue_id: i64) -> StoreResult<Vec<(String, String)>> {
        self.deliveries_ended_as(issue_id, "failed").await
    }

    /// Withdrawn deliveries of an issue (the reader left before their
    /// turn) with why.
    pub async fn withdrawn_deliveries(&self, issue_id: i64) -> StoreResult<Vec<(String, String)>> {
        self.deliveries_ended_as(issue_id, "withdrawn").await
    }

    /// (address, last reply) of the issue's deliveries with this status, by address.
    async fn deliveries_ended_as(&self, issue_id: i64, status: &str) -> StoreResult<Vec<(String, String)>> {
        with_pool!(self, pool => {
            let rows = sqlx::query("SELECT email, last_reply FROM deliveries WHERE issue_id = $1 AND status = $2 ORDER BY email")
                .bind(issue_id)
                .bind(status)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("email")?, r.try_get::<Option<String>, _>("last_reply")?.unwrap_or_default())))
                .collect()
        })
    }

    /// One issue with its content.
    pub async fn issue(&self, id: i64) -> StoreResult<Option<IssueRow>> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT id, edition, slot_at, composed_at, subject, content FROM issues WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| Ok(issue_row!(r))).transpose()
        })
    }

    /// The most recent issues, newest first, without their content.
    pub async fn list_issues(&self, limit: i64) -> StoreResult<Vec<IssueRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT id, edition, slot_at, composed_at, subject, '' AS content FROM issues ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(issue_row!(r))
                })
                .collect()
        })
    }

    /// First and last time a message of the issue was accepted.
    pub async fn send_window(&self, issue_id: i64) -> StoreResult<Option<(DateTime<Utc>, DateTime<Utc>)>> {
        with_pool!(self, pool => {
            let first: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT sent_at FROM deliveries WHERE issue_id = $1 AND sent_at IS NOT NULL ORDER BY sent_at LIMIT 1",
            )
            .bind(issue_id)
            .fetch_optional(pool)
            .await?;
            let last: Option<DateTime<Utc>> = sqlx::query_scalar(
                "SELECT sent_at FROM deliveries WHERE issue_id = $1 AND sent_at IS NOT NULL ORDER BY sent_at DESC LIMIT 1",
            )
            .bind(issue_id)
            .fetch_optional(pool)
            .await?;
            Ok(first.zip(last))
        })
    }

    pub async fn issue_story_count(&self, issue_id: i64) -> StoreResult<i64> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM issue_stories WHERE issue_id = $1")
                .bind(issue_id)
                .fetch_one(pool)
                .await?)
        })
    }

    /// When the earliest unfinished delivery of the issue is due, if any: a
    /// leased row when its lease runs out, any other at its next attempt.
    pub async fn next_delivery_due(&self, issue_id: i64) -> StoreResult<Option<DateTime<Utc>>> {
        with_pool!(self, pool => {
            Ok(sqlx::query_scalar(
                "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END)
                 FROM deliveries WHERE issue_id = $1 AND status IN ('pending', 'sending')",
            )
            .bind(issue_id)
            .fetch_one(pool)
            .await?)
        })
    }
}
