//! Provider webhooks (`/hooks/{ses,mailgun,sendgrid,postmark}`): each request's
//! signature checked by its provider's scheme, then its events read into
//! [`Reading`]s for the one processor. The delivery is named by the token
//! tidings put in the provider's own metadata header when it sent the
//! message (see `deliver::message::provider_headers`).
//!
//! - Mailgun: HMAC-SHA256 of `timestamp + token` with the webhook signing key.
//! - SendGrid (signed event webhook): ECDSA P-256 over `timestamp + body`,
//!   with the public key SendGrid shows (base64 DER).
//! - Postmark signs nothing: the webhook URL carries HTTP basic-auth
//!   credentials, compared in constant time.
//! - SES: SNS signs with a certificate fetched from SNS's host (see `sns`);
//!   [`ses`] reads the notification it carries.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{Reading, TokenCandidate};
use crate::config::{Secret, Webhooks as WebhookSecrets};
use crate::domain::InboundKind;

use crate::deliver::message::METADATA_KEY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Mailgun,
    Sendgrid,
    Postmark,
    Ses,
}

impl Provider {
    pub fn parse(s: &str) -> Option<Provider> {
        match s {
            "mailgun" => Some(Provider::Mailgun),
            "sendgrid" => Some(Provider::Sendgrid),
            "postmark" => Some(Provider::Postmark),
            "ses" => Some(Provider::Ses),
            _ => None,
        }
    }

    /// Whether `[inbound.webhooks]` names this provider's secret.
    pub fn configured(self, secrets: &WebhookSecrets) -> bool {
        match self {
            Provider::Mailgun => secrets.mailgun.is_some(),
            Provider::Sendgrid => secrets.sendgrid.is_some(),
            Provider::Postmark => secrets.postmark.is_some(),
            Provider::Ses => !secrets.ses_topic_arns.is_empty(),
        }
    }

    pub fn channel(self) -> crate::domain::Channel {
        match self {
            Provider::Mailgun => crate::domain::Channel::Mailgun,
            Provider::Sendgrid => crate::domain::Channel::Sendgrid,
            Provider::Postmark => crate::domain::Channel::Postmark,
            Provider::Ses => crate::domain::Channel::Ses,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    #[error("the {0} webhook is not configured")]
    NotConfigured(&'static str),
    #[error("the request is not signed by the provider: {0}")]
    Unsigned(String),
    #[error("the request body is not what the provider sends: {0}")]
    Malformed(String),
    /// Something tidings needs to check the request is out of reach; the
    /// provider should send it again later.
    #[error("cannot check the request now: {0}")]
    Unavailable(String),
}

/// One provider event: a key unique to it, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub key: String,
    pub reading: Reading,
}

/// Checks the request's signature, then reads its events. `header` looks
/// a request header up by (lower-case) name.
pub fn read(
    provider: Provider,
    secrets: &WebhookSecrets,
    header: &dyn Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<Vec<ProviderEvent>, WebhookError> {
    match provider {
        Provider::Mailgun => {
            let key = secrets.mailgun.as_ref().ok_or(WebhookError::NotConfigured("mailgun"))?;
            mailgun(key, body)
        }
        Provider::Sendgrid => {
            let key = secrets
                .sendgrid
                .as_ref()
                .ok_or(WebhookError::NotConfigured("sendgrid"))?;
            verify_sendgrid(key, header, body)?;
            sendgrid(body)
        }
        Provider::Postmark => {
            let credentials = secrets
                .postmark
                .as_ref()
                .ok_or(WebhookError::NotConfigured("postmark"))?;
            verify_basic_auth(credentials, header)?;
            postmark(body)
        }
        // Its signature needs a fetched certificate: see `sns`.
        Provider::Ses => Err(WebhookError::NotConfigured("ses")),
    }
}

fn json(body: &[u8]) -> Result<Value, WebhookError> {
    serde_json::from_slice(body).map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for p in path {
        at = at.get(p)?;
    }
    match at {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn tokens(token: Option<String>) -> Vec<TokenCandidate> {
    token.into_iter().map(TokenCandidate::Delivery).collect()
}

fn reading(kind: InboundKind, status: Option<String>, detail: String, token: Option<String>) -> Reading {
    Reading {
        kind,
        status_code: status,
        detail: crate::text::clean_line(&detail).chars().take(300).collect(),
        tokens: tokens(token),
    }
}

/// An enhanced status code from a text, or one implied by a bare SMTP code.
fn status_from(code: Option<&str>, message: &str) -> Option<String> {
    super::classify::status_code(message).or_else(|| {
        code.filter(|c| c.len() == 3 && (c.starts_with('4') || c.starts_with('5')))
            .map(|c| format!("{}.0.0", &c[..1]))
    })
}

fn mailgun(key: &Secret, body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let v = json(body)?;
    let (Some(timestamp), Some(token), Some(signature)) = (
        text(&v, &["signature", "timestamp"]),
        text(&v, &["signature", "token"]),
        text(&v, &["signature", "signature"]),
    ) else {
        return Err(WebhookError::Unsigned("no signature object".into()));
    };
    let expected = hex_decode(&signature).ok_or_else(|| WebhookError::Unsigned("the signature is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::Unsigned("the signature does not match the signing key".into()))?;
    let data = v
        .get("event-data")
        .ok_or_else(|| WebhookError::Malformed("no event-data".into()))?;
    let event = text(data, &["event"]).unwrap_or_default();
    let id = text(data, &["id"]).unwrap_or(token);
    let token = text(data, &["user-variables", METADATA_KEY]);
    let recipient = text(data, &["recipient"]).unwrap_or_default();
    let code = text(data, &["delivery-status", "code"]);
    let message = [
        text(data, &["delivery-status", "message"]),
        text(data, &["delivery-status", "description"]),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ");
    let kind = match (event.as_str(), text(data, &["severity"]).as_deref()) {
        ("failed", Some("permanent")) => InboundKind::HardBounce,
        ("failed", _) => InboundKind::SoftBounce,
        ("complained", _) => InboundKind::Complaint,
        ("unsubscribed", _) => InboundKind::Unsubscribe,
        ("delivered", _) => InboundKind::Delivered,
        // Opens, clicks, acceptance: nothing for tidings.
        _ => return Ok(Vec::new()),
    };
    let status = status_from(code.as_deref(), &message);
    Ok(vec![ProviderEvent {
        key: format!("mailgun:{id}"),
        reading: reading(
            kind,
            status,
            format!("mailgun {event} for {recipient}: {message}"),
            token,
        ),
    }])
}

/// SendGrid's signed event webhook: ECDSA P-256 / SHA-256 (ASN.1 DER
/// signature) over the timestamp header followed by the raw body.
fn verify_sendgrid(key: &Secret, header: &dyn Fn(&str) -> Option<String>, body: &[u8]) -> Result<(), WebhookError> {
    let signature = header("x-twilio-email-event-webhook-signature")
        .ok_or_else(|| WebhookError::Unsigned("no X-Twilio-Email-Event-Webhook-Signature header".into()))?;
    let timestamp = header("x-twilio-email-event-webhook-timestamp")
        .ok_or_else(|| WebhookError::Unsigned("no X-Twilio-Email-Event-Webhook-Timestamp header".into()))?;
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| WebhookError::Unsigned("the signature is not base64".into()))?;
    let point = sendgrid_public_key(key.expose())
        .ok_or_else(|| WebhookError::Unsigned("the configured SendGrid key is not a P-256 public key".into()))?;
    let mut signed = timestamp.trim().as_bytes().to_vec();
    signed.extend_from_slice(body);
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_ASN1, point)
        .verify(&signed, &signature)
        .map_err(|_| WebhookError::Unsigned("the signature does not match the SendGrid key".into()))
}

/// The uncompressed point of a base64 DER SubjectPublicKeyInfo.
pub fn sendgrid_public_key(base64_der: &str) -> Option<Vec<u8>> {
    let der = STANDARD.decode(base64_der.trim()).ok()?;
    let spki = pkcs8::spki::SubjectPublicKeyInfoRef::try_from(der.as_slice()).ok()?;
    let point = spki.subject_public_key.as_bytes()?;
    (point.len() == 65 && point[0] == 4).then(|| point.to_vec())
}

fn sendgrid(body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let v = json(body)?;
    let events = v
        .as_array()
        .ok_or_else(|| WebhookError::Malformed("not an array of events".into()))?;
    let mut out = Vec::new();
    for e in events {
        let event = text(e, &["event"]).unwrap_or_default();
        let email = text(e, &["email"]).unwrap_or_default();
        let reason = text(e, &["reason"])
            .or_else(|| text(e, &["response"]))
            .unwrap_or_default();
        let kind = match (event.as_str(), text(e, &["type"]).as_deref()) {
            ("bounce", Some("blocked")) | ("deferred", _) => InboundKind::SoftBounce,
            ("bounce", _) => InboundKind::HardBounce,
            ("spamreport", _) => InboundKind::Complaint,
            ("unsubscribe" | "group_unsubscribe", _) => InboundKind::Unsubscribe,
            ("delivered", _) => InboundKind::Delivered,
            _ => continue,
        };
        let Some(id) = text(e, &["sg_event_id"]) else {
            return Err(WebhookError::Malformed("an event without sg_event_id".into()));
        };
        let status = text(e, &["status"])
            .and_then(|s| super::classify::status_code(&s))
            .or_else(|| status_from(None, &reason));
        out.push(ProviderEvent {
            key: format!("sendgrid:{id}"),
            reading: reading(
                kind,
                status,
                format!("sendgrid {event} for {email}: {reason}"),
                text(e, &[METADATA_KEY]),
            ),
        });
    }
    Ok(out)
}

fn verify_basic_auth(credentials: &Secret, header: &dyn Fn(&str) -> Option<String>) -> Result<(), WebhookError> {
    use subtle::ConstantTimeEq;
    let given = header("authorization")
        .and_then(|h| h.strip_prefix("Basic ").map(|b| b.trim().to_string()))
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or_else(|| WebhookError::Unsigned("no basic-auth credentials".into()))?;
    let expected = credentials.expose().as_bytes();
    if given.len() == expected.len() && bool::from(given.as_slice().ct_eq(expected)) {
        Ok(())
    } else {
        Err(WebhookError::Unsigned("the basic-auth credentials do not match".into()))
    }
}

fn postmark(body: &[u8]) -> Result<Vec<ProviderEvent>, WebhookError> {
    let v = json(body)?;
    let record = text(&v, &["RecordType"]).ok_or_else(|| WebhookError::Malformed("no RecordType".into()))?;
    let email = text(&v, &["Email"])
        .or_else(|| text(&v, &["Recipient"]))
        .unwrap_or_default();
    let details = text(&v, &["Details"])
        .or_else(|| text(&v, &["Description"]))
        .unwrap_or_default();
    let kind = match (record.as_str(), text(&v, &["Type"]).as_deref()) {
        ("Bounce", Some("HardBounce" | "BadEmailAddress" | "ManuallyDeactivated" | "Unknown")) => {
            InboundKind::HardBounce
        }
        ("Bounce", Some("AutoResponder")) => InboundKind::AutoReply,
        ("Bounce", _) => InboundKind::SoftBounce,
        ("SpamComplaint", _) => InboundKind::Complaint,
        ("Delivery", _) => InboundKind::Delivered,
        ("SubscriptionChange", _) if v.get("SuppressSending").and_then(Value::as_bool) == Some(true) => {
            InboundKind::Unsubscribe
        }
        _ => return Ok(Vec::new()),
    };
    let id = text(&v, &["ID"])
        .or_else(|| text(&v, &["MessageID"]))
        .ok_or_else(|| WebhookError::Malformed("an event without ID or MessageID".into()))?;
    let status = status_from(None, &details);
    Ok(vec![ProviderEvent {
        key: format!("postmark:{record}:{id}"),
        reading: reading(
            kind,
            status,
            format!("postmark {record} for {email}: {details}"),
            text(&v, &["Metadata", METADATA_KEY]),
        ),
    }])
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}

/// One SES notification (the `Message` of an SNS notification, bounce,
/// complaint or delivery, in either the notification or the event-publishing
/// shape), one event per recipient. The delivery is named by the `tidings`
/// message tag (header `X-SES-MESSAGE-TAGS`) or by the VERP envelope sender.
pub fn ses(
    sns_message_id: &str,
    message: &str,
    return_path: Option<&crate::domain::ReturnPath>,
) -> Result<Vec<ProviderEvent>, WebhookError> {
    let v: Value = serde_json::from_str(message)
        .map_err(|e| WebhookError::Malformed(format!("the SES notification is not JSON: {e}")))?;
    let kind = text(&v, &["notificationType"])
        .or_else(|| text(&v, &["eventType"]))
        .ok_or_else(|| WebhookError::Malformed("an SES notification without notificationType".into()))?;
    let mut tokens = Vec::new();
    if let Some(tag) = v
        .get("mail")
        .and_then(|m| m.get("tags"))
        .and_then(|t| t.get(METADATA_KEY))
        .and_then(|t| t.get(0))
        .and_then(Value::as_str)
    {
        tokens.push(TokenCandidate::Delivery(tag.to_string()));
    }
    if let Some(token) = text(&v, &["mail", "source"]).and_then(|s| return_path?.token_of(&s)) {
        tokens.push(TokenCandidate::Delivery(token));
    }
    let recipients = |section: &str, list: &str| -> Vec<Value> {
        v.get(section)
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut push = |i: usize, kind: InboundKind, status: Option<String>, detail: String| {
        out.push(ProviderEvent {
            key: format!("ses:{sns_message_id}:{i}"),
            reading: Reading {
                kind,
                status_code: status,
                detail: crate::text::clean_line(&detail).chars().take(300).collect(),
                tokens: tokens.clone(),
            },
        });
    };
    match kind.as_str() {
        "Bounce" => {
            let bounce_type = text(&v, &["bounce", "bounceType"]).unwrap_or_default();
            let sub_type = text(&v, &["bounce", "bounceSubType"]).unwrap_or_default();
            let kind = if bounce_type == "Permanent" {
                InboundKind::HardBounce
            } else {
                // Transient, and Undetermined: SES could not tell, so the
                // address gets the benefit of the soft-bounce count.
                InboundKind::SoftBounce
            };
            for (i, r) in recipients("bounce", "bouncedRecipients").iter().enumerate() {
                let email = text(r, &["emailAddress"]).unwrap_or_default();
                let diagnostic = text(r, &["diagnosticCode"]).unwrap_or_default();
                let status = text(r, &["status"])
                    .and_then(|s| super::classify::status_code(&s))
                    .or_else(|| status_from(None, &diagnostic));
                push(
                    i,
                    kind,
                    status,
                    format!("ses {bounce_type}/{sub_type} bounce for {email}: {diagnostic}"),
                );
            }
        }
        "Complaint" => {
            let feedback = text(&v, &["complaint", "complaintFeedbackType"]).unwrap_or_else(|| "abuse".into());
            if feedback == "not-spam" {
                return Ok(Vec::new());
            }
            for (i, r) in recipients("complaint", "complainedRecipients").iter().enumerate() {
                let email = text(r, &["emailAddress"]).unwrap_or_default();
                push(
                    i,
                    InboundKind::Complaint,
                    None,
                    format!("ses complaint ({feedback}) from {email}"),
                );
            }
        }
        "Delivery" => {
            for (i, r) in recipients("delivery", "recipients").iter().enumerate() {
                let email = r.as_str().unwrap_or_default();
                push(i, InboundKind::Delivered, None, format!("ses delivery to {email}"));
            }
        }
        // Sends, opens, clicks, rejects before sending: nothing for tidings.
        _ => {}
    }
    Ok(out)
}
