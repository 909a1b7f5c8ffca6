//! What comes back after a send: the kinds of inbound events and the ways
//! they arrive.

/// What an inbound message or provider event means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InboundKind {
    /// The address does not exist or refuses permanently: suppressed at once.
    HardBounce,
    /// A temporary failure (full mailbox, delay): counted, and suppressed
    /// after `[inbound] soft_bounce_limit` in a row.
    SoftBounce,
    /// The reader marked the message as spam (an ARF report, a provider's
    /// complaint event): unsubscribed and suppressed at once.
    Complaint,
    /// An unsubscribe mail (the mailto of `List-Unsubscribe`).
    Unsubscribe,
    /// A report that the message arrived (a DSN `delivered`, a provider's
    /// delivery event): the end of a run of soft bounces.
    Delivered,
    /// An out-of-office notice or other automatic reply: not a bounce.
    AutoReply,
    /// A message that names no delivery with a valid token: logged, nothing
    /// changes.
    Unmatched,
    /// Nothing could be made of it (not mail, or not a kind tidings knows):
    /// kept in quarantine with the reason.
    Unrecognised,
}

impl InboundKind {
    pub const ALL: [InboundKind; 8] = [
        InboundKind::HardBounce,
        InboundKind::SoftBounce,
        InboundKind::Complaint,
        InboundKind::Unsubscribe,
        InboundKind::Delivered,
        InboundKind::AutoReply,
        InboundKind::Unmatched,
        InboundKind::Unrecognised,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InboundKind::HardBounce => "hard_bounce",
            InboundKind::SoftBounce => "soft_bounce",
            InboundKind::Complaint => "complaint",
            InboundKind::Unsubscribe => "unsubscribe",
            InboundKind::Delivered => "delivered",
            InboundKind::AutoReply => "auto_reply",
            InboundKind::Unmatched => "unmatched",
            InboundKind::Unrecognised => "unrecognised",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for InboundKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How an event reached tidings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Smtp,
    Lmtp,
    Imap,
    Ses,
    Postmark,
    Sendgrid,
    Mailgun,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Smtp => "smtp",
            Channel::Lmtp => "lmtp",
            Channel::Imap => "imap",
            Channel::Ses => "ses",
            Channel::Postmark => "postmark",
            Channel::Sendgrid => "sendgrid",
            Channel::Mailgun => "mailgun",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
