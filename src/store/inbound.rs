//! Inbound events (bounces, complaints, unsubscribe mails) and what they
//! do to a subscriber, recorded together in one transaction.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::issues::{count_withdrawn, withdraw_unwanted};
use super::{Store, StoreError, StoreResult, with_pool};
use crate::domain::{Channel, InboundKind, SubscriberStatus};

/// The delivery an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRef {
    pub delivery_id: i64,
    pub issue_id: i64,
    pub subscriber_id: i64,
    pub email: String,
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct NewInboundEvent<'a> {
    /// Unique per message or provider event: the same key twice is one event.
    pub message_key: &'a str,
    pub channel: Channel,
    pub kind: InboundKind,
    pub delivery: Option<&'a DeliveryRef>,
    /// Without a delivery: the subscriber an older unsubscribe token named.
    pub subscriber_id: Option<i64>,
    pub status_code: Option<&'a str>,
    pub detail: &'a str,
    /// Kept when nothing could be made of the message (quarantine).
    pub raw: Option<&'a [u8]>,
    pub received_at: DateTime<Utc>,
}

/// When soft bounces suppress an address.
#[derive(Debug, Clone, Copy)]
pub struct SoftBouncePolicy {
    pub limit: u32,
    pub window: chrono::Duration,
}

/// What recording an event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The same message or provider event was recorded before: nothing done.
    Duplicate,
    Event {
        id: i64,
        effect: Effect,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing changes for the subscriber.
    None,
    /// The subscriber's status changed to this, for this reason.
    Status(SubscriberStatus, String),
    /// A soft bounce, the `n`th in a row; not yet at the limit.
    SoftBounces(u32),
}

/// An event as listed for an issue or a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEventRow {
    pub id: i64,
    pub kind: InboundKind,
    pub channel: String,
    pub email: Option<String>,
    pub issue_id: Option<i64>,
    pub status_code: Option<String>,
    pub detail: String,
    pub received_at: DateTime<Utc>,
}

/// Bounce and complaint counts of one issue, against what it sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IssueFeedback {
    pub issue_id: i64,
    pub edition: String,
    pub slot_at: Option<DateTime<Utc>>,
    pub sent: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    pub unsubscribes: i64,
}

/// Statuses an inbound event may move a subscriber out of.
const MAILED_OR_WAITING: &str = "('active', 'paused', 'pending')";

/// Moves the subscriber to `status` if their status is one of `$from` (an
/// SQL list): `Some(effect)`, or `None` when the status stayed. A macro:
/// the transaction's type depends on the backend.
macro_rules! apply_status {
    ($tx:expr, $subscriber_id:expr, $status:expr, $reason:expr, $from:expr, $at:expr) => {{
        let sql = format!(
            "UPDATE subscribers SET status = $2, status_reason = $3, status_changed_at = $4, updated_at = $4
             WHERE id = $1 AND status IN {}",
            $from
        );
        let status: SubscriberStatus = $status;
        let reason: &str = $reason;
        let n = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind($subscriber_id)
            .bind(status.as_str())
            .bind(reason)
            .bind($at)
            .execute(&mut *$tx)
            .await?
            .rows_affected();
        (n == 1).then(|| Effect::Status(status, reason.to_string()))
    }};
}

/// An [`InboundEventRow`] from a row of either backend.
macro_rules! event_row {
    ($r:expr) => {{
        let r = $r;
        let kind: String = r.try_get("kind")?;
        Ok::<_, StoreError>(InboundEventRow {
            id: r.try_get("id")?,
            kind: InboundKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("inbound event kind \"{kind}\"")))?,
            channel: r.try_get("channel")?,
            email: r.try_get("email")?,
            issue_id: r.try_get("issue_id")?,
            status_code: r.try_get("status_code")?,
            detail: r.try_get("detail")?,
            received_at: r.try_get("received_at")?,
        })
    }};
}

impl Store {
    pub async fn delivery_ref(&self, delivery_id: i64) -> StoreResult<Option<DeliveryRef>> {
        with_pool!(self, pool => {
            let row = sqlx::query("SELECT id, issue_id, subscriber_id, email FROM deliveries WHERE id = $1")
                .bind(delivery_id)
                .fetch_optional(pool)
                .await?;
            row.map(|r| {
                Ok(DeliveryRef {
                    delivery_id: r.try_get("id")?,
                    issue_id: r.try_get("issue_id")?,
                    subscriber_id: r.try_get("subscriber_id")?,
                    email: r.try_get("email")?,
                })
            })
            .transpose()
        })
    }

    /// Records the event and applies it to the subscriber, in one commit:
    /// a crash leaves both or neither, and the message handed over again
    /// after it is a [`Recorded::Duplicate`].
    pub async fn record_inbound(&self, event: &NewInboundEvent<'_>, soft: SoftBouncePolicy) -> StoreResult<Recorded> {
        let subscriber_id = event.delivery.map(|d| d.subscriber_id).or(event.subscriber_id);
        with_pool!(self, ledger: pool => {
            let mut tx = pool.begin().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO inbound_events
                     (message_key, channel, kind, delivery_id, issue_id, subscriber_id, status_code, detail, raw, received_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (message_key) DO NOTHING RETURNING id",
            )
            .bind(event.message_key)
            .bind(event.channel.as_str())
            .bind(event.kind.as_str())
            .bind(event.delivery.map(|d| d.delivery_id))
            .bind(event.delivery.map(|d| d.issue_id))
            .bind(subscriber_id)
            .bind(event.status_code)
            .bind(event.detail)
            .bind(event.raw)
            .bind(event.received_at)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(id) = id else {
                return Ok(Recorded::Duplicate);
            };
            let suppress = |status: SubscriberStatus, reason: String, from: &'static str| {
                (status, reason, from)
            };
            let change = match (event.kind, subscriber_id) {
                (InboundKind::HardBounce, Some(_)) => Some(suppress(
                    SubscriberStatus::Bounced,
                    format!("hard bounce: {}", event.detail),
                    MAILED_OR_WAITING,
                )),
                (InboundKind::Complaint, Some(_)) => Some(suppress(
                    SubscriberStatus::Complained,
                    format!("complaint: {}", event.detail),
                    "('active', 'paused', 'pending', 'unsubscribed', 'bounced')",
                )),
                (InboundKind::Unsubscribe, Some(_)) => Some(suppress(
                    SubscriberStatus::Unsubscribed,
                    format!("unsubscribed by mail ({})", event.channel),
                    MAILED_OR_WAITING,
                )),
                _ => None,
            };
            let mut effect = Effect::None;
            if let (InboundKind::SoftBounce, Some(delivery)) = (event.kind, event.delivery) {
                // Soft bounces in a row, newest first from this delivery,
                // back to the first delivery that went through cleanly (sent
                // and not bounced, or reported delivered), within the window.
                let rows = sqlx::query(
                    "SELECT d.id,
                        EXISTS (SELECT 1 FROM inbound_events e WHERE e.delivery_id = d.id
                                AND e.kind IN ('soft_bounce', 'hard_bounce')) AS bounced,
                        EXISTS (SELECT 1 FROM inbound_events e WHERE e.delivery_id = d.id
                                AND e.kind = 'delivered') AS delivered
                     FROM deliveries d
                     WHERE d.subscriber_id = $1 AND d.id <= $2 AND d.sent_at >= $3
                     ORDER BY d.id DESC LIMIT 200",
                )
                .bind(delivery.subscriber_id)
                .bind(delivery.delivery_id)
                .bind(event.received_at - soft.window)
                .fetch_all(&mut *tx)
                .await?;
                let mut in_a_row = 0u32;
                for r in &rows {
                    let bounced: bool = r.try_get("bounced")?;
                    let delivered: bool = r.try_get("delivered")?;
                    if !bounced || delivered {
                        break;
                    }
                    in_a_row += 1;
                }
                // The delivery may be older than the window: its own bounce counts.
                let in_a_row = in_a_row.max(1);
                effect = Effect::SoftBounces(in_a_row);
                if in_a_row >= soft.limit {
                    let reason = format!(
                        "{in_a_row} soft bounces in a row within {} days; last: {}",
                        soft.window.num_days(),
                        event.detail
                    );
                    effect = apply_status!(tx, delivery.subscriber_id, SubscriberStatus::Bounced, &reason, MAILED_OR_WAITING, event.received_at)
                        .unwrap_or(Effect::SoftBounces(in_a_row));
                }
            }
            if let (Some((status, reason, from)), Some(subscriber_id)) = (change, subscriber_id) {
                effect = apply_status!(tx, subscriber_id, status, &reason, from, event.received_at)
                    .unwrap_or(Effect::None);
            }
            let mut withdrawn = 0;
            if let (Effect::Status(_, reason), Some(subscriber_id)) = (&effect, subscriber_id) {
                withdrawn = withdraw_unwanted!(self.is_postgres(), tx, subscriber_id, reason);
            }
            tx.commit().await?;
            count_withdrawn(withdrawn);
            Ok(Recorded::Event { id, effect })
        })
    }

    /// The events of one issue, newest first.
    pub async fn inbound_events_for_issue(&self, issue_id: i64) -> StoreResult<Vec<InboundEventRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT e.id, e.kind, e.channel, d.email, e.issue_id, e.status_code, e.detail, e.received_at
                 FROM inbound_events e LEFT JOIN deliveries d ON d.id = e.delivery_id
                 WHERE e.issue_id = $1 ORDER BY e.id DESC",
            )
            .bind(issue_id)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| event_row!(r)).collect()
        })
    }

    /// The latest events of any kind (quarantine included), newest first.
    pub async fn recent_inbound_events(&self, limit: i64) -> StoreResult<Vec<InboundEventRow>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT e.id, e.kind, e.channel, COALESCE(d.email, s.email) AS email, e.issue_id, e.status_code, e.detail, e.received_at
                 FROM inbound_events e LEFT JOIN deliveries d ON d.id = e.delivery_id
                 LEFT JOIN subscribers s ON s.id = e.subscriber_id
                 ORDER BY e.id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter().map(|r| event_row!(r)).collect()
        })
    }

    /// Bounce, complaint and unsubscribe counts of the latest `limit`
    /// issues that sent anything, newest first.
    pub async fn issue_feedback(&self, limit: i64) -> StoreResult<Vec<IssueFeedback>> {
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT i.id, i.edition, i.slot_at,
                    (SELECT COUNT(*) FROM deliveries d WHERE d.issue_id = i.id AND d.status IN ('sent', 'failed')) AS sent,
                    (SELECT COUNT(DISTINCT e.delivery_id) FROM inbound_events e WHERE e.issue_id = i.id AND e.kind = 'hard_bounce') AS hard,
                    (SELECT COUNT(DISTINCT e.delivery_id) FROM inbound_events e WHERE e.issue_id = i.id AND e.kind = 'soft_bounce') AS soft,
                    (SELECT COUNT(DISTINCT e.delivery_id) FROM inbound_events e WHERE e.issue_id = i.id AND e.kind = 'complaint') AS complaints,
                    (SELECT COUNT(DISTINCT e.delivery_id) FROM inbound_events e WHERE e.issue_id = i.id AND e.kind = 'unsubscribe') AS unsubscribes
                 FROM issues i
                 WHERE EXISTS (SELECT 1 FROM deliveries d WHERE d.issue_id = i.id AND d.status IN ('sent', 'failed'))
                 ORDER BY i.id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(IssueFeedback {
                        issue_id: r.try_get("id")?,
                        edition: r.try_get("edition")?,
                        slot_at: r.try_get("slot_at").ok(),
                        sent: r.try_get("sent")?,
                        hard_bounces: r.try_get("hard")?,
                        soft_bounces: r.try_get("soft")?,
                        complaints: r.try_get("complaints")?,
                        unsubscribes: r.try_get("unsubscribes")?,
                    })
                })
                .collect()
        })
    }
}
