//! Building one subscriber's message: headers (including RFC 8058 one-click
//! unsubscribe), and the text + HTML alternative parts.

use std::str::FromStr;
use std::time::SystemTime;

use lettre::Message;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox as LettreMailbox, MultiPart};

use super::DeliverError;
use crate::domain::Mailbox;
use crate::render::Personal;

/// What is the same for every message of one issue.
#[derive(Debug, Clone)]
pub struct MessageContext {
    pub from: Mailbox,
    /// `List-Id` as written on the wire, e.g. `"Weekly AI Recap"
    /// <weekly.example.com>` (see [`phrase`]).
    pub list_id: String,
    /// Address for the mailto form of `List-Unsubscribe`, when the
    /// operator reads that mailbox.
    pub unsubscribe_mailto: Option<String>,
    /// `Feedback-ID`, if configured.
    pub feedback_id: Option<String>,
    /// `[delivery] return_path`: the envelope sender becomes its VERP
    /// address for the delivery.
    pub return_path: Option<crate::domain::ReturnPath>,
    /// `[inbound.webhooks]`: the providers whose metadata header carries
    /// the delivery's token.
    pub webhooks: crate::config::Webhooks,
}

/// The metadata field tidings sets and the providers echo in their events.
pub const METADATA_KEY: &str = "tidings";

/// The headers that make each configured provider echo the delivery's
/// token in its webhook events.
pub fn provider_headers(webhooks: &crate::config::Webhooks, token: &str) -> Vec<(&'static str, String)> {
    let mut headers = Vec::new();
    if webhooks.mailgun.is_some() {
        headers.push(("X-Mailgun-Variables", format!("{{\"{METADATA_KEY}\": \"{token}\"}}")));
    }
    if webhooks.sendgrid.is_some() {
        headers.push((
            "X-SMTPAPI",
            format!("{{\"unique_args\": {{\"{METADATA_KEY}\": \"{token}\"}}}}"),
        ));
    }
    if webhooks.postmark.is_some() {
        headers.push(("X-PM-Metadata-tidings", token.to_string()));
    }
    if !webhooks.ses_topic_arns.is_empty() {
        // SES turns it into a message tag that its notifications carry.
        headers.push(("X-SES-MESSAGE-TAGS", format!("{METADATA_KEY}={token}")));
    }
    headers
}

pub struct Addressed<'a> {
    pub to_email: &'a str,
    pub to_name: Option<&'a str>,
    pub message_id: &'a str,
    pub unsubscribe_url: &'a str,
    /// The signed token the mailto unsubscribe and the return path carry:
    /// the delivery's, or the subscriber's where there is no delivery.
    pub mail_token: &'a str,
}

/// A display name as an RFC 5322 phrase: a quoted string when it is
/// ASCII, else RFC 2047 encoded words (UTF-8, base64, each at most 75
/// characters, whole characters only), folded onto their own lines.
pub fn phrase(name: &str) -> String {
    use base64::Engine;
    let name = crate::text::clean_line(name);
    if name.is_ascii() {
        let escaped = name.replace('\\', "\\\\").replace('"', "\\\"");
        return format!("\"{escaped}\"");
    }
    // 45 bytes are 60 base64 characters: with "=?utf-8?b?" and "?=", 72 of 75.
    const BYTES_PER_WORD: usize = 45;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in name.chars() {
        if chunk.len() + c.len_utf8() > BYTES_PER_WORD {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(w)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

pub fn to_lettre_mailbox(name: Option<&str>, email: &str) -> Result<LettreMailbox, DeliverError> {
    let address = lettre::Address::from_str(email).map_err(|e| DeliverError::Address(format!("{email}: {e}")))?;
    // Names go in a header: no line breaks, ever.
    let name = name.map(crate::text::clean_line).filter(|n| !n.is_empty());
    Ok(LettreMailbox::new(name, address))
}

pub fn build_message(
    ctx: &MessageContext,
    to: &Addressed<'_>,
    content: &Personal,
    date: SystemTime,
) -> Result<Message, DeliverError> {
    let body = MultiPart::alternative_plain_html(content.text.clone(), content.html.clone());
    build_list_message(ctx, to, &content.subject, body, date)
}

/// A list message whose parts are already quoted-printable encoded
/// (see `render::EncodedPart`).
pub fn build_encoded_message(
    ctx: &MessageContext,
    to: &Addressed<'_>,
    subject: &str,
    text_qp: Vec<u8>,
    html_qp: Vec<u8>,
    date: SystemTime,
) -> Result<Message, DeliverError> {
    use lettre::message::header::{ContentTransferEncoding, ContentType};
    use lettre::message::{Body, SinglePart};
    let part = |kind: ContentType, bytes: Vec<u8>| {
        SinglePart::builder().header(kind).body(Body::dangerous_pre_encoded(
            bytes,
            ContentTransferEncoding::QuotedPrintable,
        ))
    };
    let body = MultiPart::alternative()
        .singlepart(part(ContentType::TEXT_PLAIN, text_qp))
        .singlepart(part(ContentType::TEXT_HTML, html_qp));
    build_list_message(ctx, to, subject, body, date)
}

fn build_list_message(
    ctx: &MessageContext,
    to: &Addressed<'_>,
    subject: &str,
    body: MultiPart,
    date: SystemTime,
) -> Result<Message, DeliverError> {
    let from = to_lettre_mailbox(ctx.from.name.as_deref(), ctx.from.email.as_str())?;
    let recipient = to_lettre_mailbox(to.to_name, to.to_email)?;
    let list_unsubscribe = match &ctx.unsubscribe_mailto {
        Some(mailbox) => format!(
            "<{}>, <mailto:{mailbox}?subject=unsubscribe%20{}>",
            to.unsubscribe_url, to.mail_token
        ),
        None => format!("<{}>", to.unsubscribe_url),
    };
    let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
    let mut builder = Message::builder()
        .from(from)
        .to(recipient)
        .subject(crate::text::clean_line(subject))
        .date(date)
        .message_id(Some(to.message_id.to_string()))
        .raw_header(HeaderValue::dangerous_new_pre_encoded(
            HeaderName::new_from_ascii_str("List-Id"),
            ctx.list_id.clone(),
            ctx.list_id.clone(),
        ))
        .raw_header(header("List-Unsubscribe", list_unsubscribe))
        .raw_header(header("Precedence", "bulk".to_string()))
        .raw_header(header("Auto-Submitted", "auto-generated".to_string()));
    // RFC 8058 one-click needs an https URI; with an http `base_url` (a
    // local trial) the header would be a false promise.
    if to.unsubscribe_url.starts_with("https://") {
        builder = builder.raw_header(header(
            "List-Unsubscribe-Post",
            "List-Unsubscribe=One-Click".to_string(),
        ));
    }
    if let Some(id) = &ctx.feedback_id {
        builder = builder.raw_header(header("Feedback-ID", id.clone()));
    }
    for (name, value) in provider_headers(&ctx.webhooks, to.mail_token) {
        builder = builder.raw_header(header(name, value));
    }
    if let Some(return_path) = &ctx.return_path {
        let verp = return_path.for_token(to.mail_token);
        let sender = lettre::Address::from_str(&verp).map_err(|e| DeliverError::Address(format!("{verp}: {e}")))?;
        let recipient = lettre::Address::from_str(to.to_email)
            .map_err(|e| DeliverError::Address(format!("{}: {e}", to.to_email)))?;
        let envelope = lettre::address::Envelope::new(Some(sender), vec![recipient])
            .map_err(|e| DeliverError::Build(e.to_string()))?;
        builder = builder.envelope(envelope);
    }
    builder.multipart(body).map_err(|e| DeliverError::Build(e.to_string()))
}

/// A one-off message to one person (a subscription confirmation): no list
/// headers, since it is not list mail, but marked as automatic.
pub fn build_transactional(
    from: &Mailbox,
    to_email: &str,
    message_id: &str,
    content: &Personal,
    date: SystemTime,
) -> Result<Message, DeliverError> {
    let header = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
    Message::builder()
        .from(to_lettre_mailbox(from.name.as_deref(), from.email.as_str())?)
        .to(to_lettre_mailbox(None, to_email)?)
        .subject(crate::text::clean_line(&content.subject))
        .date(date)
        .message_id(Some(message_id.to_string()))
        .raw_header(header("Auto-Submitted", "auto-generated".to_string()))
        .multipart(MultiPart::alternative_plain_html(
            content.text.clone(),
            content.html.clone(),
        ))
        .map_err(|e| DeliverError::Build(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::phrase;

    #[test]
    fn phrases_are_quoted_or_encoded_in_whole_characters() {
        assert_eq!(phrase(r#"Weekly "AI" \ Recap"#), r#""Weekly \"AI\" \\ Recap""#);
        let long = "東京 🖥️ ".repeat(20);
        let encoded = phrase(&long);
        for word in encoded.split("\r\n ") {
            assert!(
                word.len() <= 75 && word.starts_with("=?utf-8?b?") && word.ends_with("?="),
                "{word}"
            );
        }
        assert!(encoded.split("\r\n ").count() > 1);
    }
}
