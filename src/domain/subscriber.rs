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
    /// A server refused the address permanently, or it soft-bounced too
    /// often: never mailed again.
    Bounced,
    /// The reader reported a message as spam: never mailed again, and a
    /// sign-up form cannot bring the address back.
    Complained,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberStatus::Pending => "pending",
            SubscriberStatus::Active => "active",
            SubscriberStatus::Paused => "paused",
            SubscriberStatus::Unsubscribed => "unsubscribed",
            SubscriberStatus::Bounced => "bounced",
            SubscriberStatus::Complained => "complained",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => SubscriberStatus::Pending,
            "active" => SubscriberStatus::Active,
            "paused" => SubscriberStatus::Paused,
            "unsubscribed" => SubscriberStatus::Unsubscribed,
            "bounced" => SubscriberStatus::Bounced,
            "complained" => SubscriberStatus::Complained,
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
    /// Why the status is what it is (a bounce's diagnostic, a complaint,
    /// an unsubscribe), and since when; `None` for addresses never changed.
    pub status_reason: Option<String>,
    pub status_since: Option<chrono::DateTime<chrono::Utc>>,
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

/// What a subscriber is called in their greeting: one line, at most
/// [`SubscriberName::MAX_CHARS`] characters, without control or
/// text-direction characters (which can make a greeting read as something
/// else). Only [`SubscriberName::parse`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the name {0}")]
pub struct NameError(&'static str);

impl SubscriberName {
    pub const MAX_CHARS: usize = 100;

    /// `None` for a name that is empty or only white space.
    pub fn parse(raw: &str) -> Result<Option<Self>, NameError> {
        if raw.chars().any(is_direction_control) {
            return Err(NameError("contains text-direction characters"));
        }
        if raw.chars().any(|c| c.is_control() && !c.is_whitespace()) {
            return Err(NameError("contains control characters"));
        }
        let line = crate::text::clean_line(raw);
        if line.is_empty() {
            return Ok(None);
        }
        if line.chars().count() > Self::MAX_CHARS {
            return Err(NameError("is longer than 100 characters"));
        }
        Ok(Some(SubscriberName(crate::text::defuse_markers(line))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Unicode's explicit direction marks, embeddings, overrides and isolates.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_one_short_line_of_plain_text() {
        assert_eq!(
            SubscriberName::parse("  Ada\n Lovelace ")
                .expect("ok")
                .expect("some")
                .as_str(),
            "Ada Lovelace"
        );
        assert_eq!(SubscriberName::parse("   ").expect("ok"), None);
        assert!(SubscriberName::parse(&"a".repeat(101)).is_err());
        assert!(SubscriberName::parse(&"é".repeat(100)).expect("ok").is_some());
        assert!(SubscriberName::parse("Ada \u{202E}nimda").is_err());
        assert!(SubscriberName::parse("Ada\u{0}").is_err());
        assert_eq!(
            SubscriberName::parse("TIDINGSxSUBSCRIBERxEMAILx7f3a")
                .expect("ok")
                .expect("some")
                .as_str(),
            "TIDINGS-xSUBSCRIBERxEMAILx7f3a"
        );
    }
}
