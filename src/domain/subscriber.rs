//! Subscribers and the state of one delivery.

use super::EmailAddress;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberStatus {
    /// Signed up but not yet confirmed: never mailed.
    Pending,
    Active,
    /// The subscriber paused delivery on the preferences page: not mailed
    /// until they resume it there.
    Paused,
    Unsubscribed,
    /// A server refused the address permanently: never mailed again.
    Bounced,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Active => "active",
            SubscriberStatus::Paused => "paused",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => SubscriberStatus::Pending,
            "active" => SubscriberStatus::Active,
            "paused" => SubscriberStatus::Paused,
            "unsubscribed" => SubscriberStatus::Unsubscribed,
            "bounced" => SubscriberStatus::Bounced,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub email: EmailAddress,
    pub name: Option<String>,
    pub status: SubscriberStatus,
    pub editions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting to be sent (or to be retried at `next_attempt_at`).
    Pending,
    /// Claimed by a worker until its lease runs out.
    Sending,
    Sent,
    /// Refused permanently, or out of attempts.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "sending" => DeliveryStatus::Sending,
            "sent" => DeliveryStatus::Sent,
            "failed" => DeliveryStatus::Failed,
            _ => return None,
        })
    }
}
