//! What comes back: bounces, complaints, unsubscribe mails and automatic
//! replies, over SMTP/LMTP ([`listener`]), a mailbox or a provider's
//! webhook, all through one [`Processor`]. It reads what a message means
//! ([`classify`]), finds the delivery by the signed token the message
//! carries, and records the event and its effect on the subscriber in one
//! commit. A message without a valid token changes nothing and is logged.

pub mod classify;
pub mod listener;
pub mod mailbox;
pub mod sns;
pub mod webhooks;

use sha2::{Digest, Sha256};

pub use classify::{Addresses, Envelope, Reading, TokenCandidate, classify};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::domain::{Channel, InboundKind};
use crate::store::{DeliveryRef, Effect, NewInboundEvent, Recorded, SoftBouncePolicy, Store, StoreError};
use crate::token::{Purpose, Signer};

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("cannot record the event (the sender should try again): {0}")]
    Store(#[from] StoreError),
}

/// What processing one message or event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub kind: InboundKind,
    /// The delivery's address, when a token named one.
    pub email: Option<String>,
    pub recorded: Recorded,
}

/// Reads and records what comes back; cheap to clone.
#[derive(Clone)]
pub struct Processor {
    store: Store,
    signer: Signer,
    addresses: Addresses,
    soft: SoftBouncePolicy,
    clock: SharedClock,
}

impl Processor {
    pub fn new(store: Store, signer: Signer, config: &Config, clock: SharedClock) -> Self {
        Processor {
            store,
            signer,
            addresses: Addresses {
                return_path: config.delivery.return_path.clone(),
                unsubscribe: config.site.unsubscribe_mailto.clone(),
            },
            soft: SoftBouncePolicy {
                limit: config.inbound.soft_bounce_limit,
                window: chrono::Duration::from_std(config.inbound.soft_bounce_window)
                    .unwrap_or(chrono::Duration::days(30)),
            },
            clock,
        }
    }

    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    /// One whole message (from the listener or a mailbox).
    pub async fn message(&self, raw: &[u8], envelope: &Envelope, channel: Channel) -> Result<Outcome, InboundError> {
        let reading = classify(raw, envelope, &self.addresses);
        let key = format!("msg:{}", hex(&Sha256::digest(raw)));
        self.reading(reading, &key, channel, Some(raw)).await
    }

    /// A message's or provider event's meaning, under a key unique to it.
    /// `raw` is kept when nothing could be made of it.
    pub async fn reading(
        &self,
        reading: Reading,
        key: &str,
        channel: Channel,
        raw: Option<&[u8]>,
    ) -> Result<Outcome, InboundError> {
        let (delivery, subscriber_id) = self.resolve(&reading.tokens).await?;
        let mut kind = reading.kind;
        let mut detail = reading.detail;
        let acts = matches!(
            kind,
            InboundKind::HardBounce
                | InboundKind::SoftBounce
                | InboundKind::Complaint
                | InboundKind::Unsubscribe
                | InboundKind::Delivered
        );
        if acts && delivery.is_none() && subscriber_id.is_none() {
            detail = format!("{kind} without a valid token: {detail}");
            kind = InboundKind::Unmatched;
        }
        // A soft bounce or a delivery report counts per delivery: one
        // without its delivery (only an old subscriber token) changes nothing.
        if matches!(kind, InboundKind::SoftBounce | InboundKind::Delivered) && delivery.is_none() {
            detail = format!("{kind} naming no delivery: {detail}");
            kind = InboundKind::Unmatched;
        }
        let keep_raw = matches!(kind, InboundKind::Unmatched | InboundKind::Unrecognised);
        let event = NewInboundEvent {
            message_key: key,
            channel,
            kind,
            delivery: delivery.as_ref(),
            subscriber_id,
            status_code: reading.status_code.as_deref(),
            detail: &detail,
            raw: raw.filter(|_| keep_raw),
            received_at: self.clock.now(),
        };
        let recorded = self.store.record_inbound(&event, self.soft).await?;
        let email = delivery.as_ref().map(|d| d.email.clone());
        log(kind, channel, email.as_deref(), &detail, &recorded);
        if !matches!(recorded, Recorded::Duplicate) {
            metrics::counter!("tidings_inbound_events_total", "kind" => kind.as_str(), "channel" => channel.as_str())
                .increment(1);
        }
        Ok(Outcome { kind, email, recorded })
    }

    /// The delivery (or, for an older unsubscribe token, the subscriber)
    /// that the first valid token names.
    async fn resolve(&self, tokens: &[TokenCandidate]) -> Result<(Option<DeliveryRef>, Option<i64>), InboundError> {
        for token in tokens {
            match token {
                TokenCandidate::Delivery(t) => {
                    if let Ok(id) = self.signer.verify_delivery(t)
                        && let Some(found) = self.store.delivery_ref(id).await?
                    {
                        return Ok((Some(found), None));
                    }
                }
                TokenCandidate::Subscriber(t) => {
                    if let Ok(id) = self
                        .signer
                        .verify(Purpose::Unsubscribe, t, self.clock.now().timestamp())
                        && self.store.subscriber(id).await?.is_some()
                    {
                        return Ok((None, Some(id)));
                    }
                }
            }
        }
        Ok((None, None))
    }
}

fn log(kind: InboundKind, channel: Channel, email: Option<&str>, detail: &str, recorded: &Recorded) {
    let email = email.unwrap_or("-");
    match recorded {
        Recorded::Duplicate => tracing::info!(%kind, %channel, email, "inbound message seen before: nothing more done"),
        Recorded::Event { effect, .. } => match (kind, effect) {
            (InboundKind::Unmatched | InboundKind::Unrecognised, _) => {
                tracing::warn!(%kind, %channel, "inbound message changes nothing: {detail}")
            }
            (_, Effect::Status(status, reason)) => {
                tracing::info!(%kind, %channel, email, status = status.as_str(), "subscriber {}: {reason}", status.as_str())
            }
            (_, Effect::SoftBounces(n)) => {
                tracing::info!(%kind, %channel, email, in_a_row = n, "soft bounce: {detail}")
            }
            (_, Effect::None) => tracing::info!(%kind, %channel, email, "{detail}"),
        },
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
