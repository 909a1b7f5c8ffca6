//! What an inbound message means, read from the message alone: an RFC 3464
//! delivery status notification, an RFC 5965 complaint report, one of the
//! common non-standard bounces (Exim, qmail, Exchange, Gmail's text), an
//! automatic reply, an unsubscribe mail, or none of these. Pure: no store,
//! no clock; which delivery it is about is decided by the caller from the
//! token candidates found here.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use crate::domain::{EmailAddress, InboundKind, ReturnPath};

/// The addresses tidings accepts mail for.
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    pub return_path: Option<ReturnPath>,
    pub unsubscribe: Option<EmailAddress>,
}

/// A signed token found in a message, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCandidate {
    /// A delivery token: from a VERP address (the envelope, an enclosed
    /// original's Return-Path, an ARF report's Original-Mail-From) or an
    /// unsubscribe subject.
    Delivery(String),
    /// A subscriber's unsubscribe token (an older mailto subject, or the
    /// enclosed original's unsubscribe link).
    Subscriber(String),
}

/// What a message means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub kind: InboundKind,
    /// The enhanced status code (RFC 3463), when one was given.
    pub status_code: Option<String>,
    /// One line for the operator: the diagnostic, the feedback type, why
    /// nothing could be made of it.
    pub detail: String,
    /// Tokens, most trusted first: envelope, then report fields, then text.
    pub tokens: Vec<TokenCandidate>,
}

/// The envelope a message came with (empty for a mailbox message).
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// `MAIL FROM`; `Some("")` for the null sender of a bounce.
    pub mail_from: Option<String>,
    pub recipients: Vec<String>,
}

/// Longest detail kept, in characters.
const MAX_DETAIL: usize = 300;

pub fn classify(raw: &[u8], envelope: &Envelope, addresses: &Addresses) -> Reading {
    let mut tokens = Vec::new();
    if let Some(rp) = &addresses.return_path {
        for rcpt in &envelope.recipients {
            push_unique(&mut tokens, rp.token_of(rcpt).map(TokenCandidate::Delivery));
        }
    }
    let Some(message) = MessageParser::default().parse(raw).filter(|m| !m.headers().is_empty()) else {
        return Reading {
            kind: InboundKind::Unrecognised,
            status_code: None,
            detail: "not an email message (no header could be read)".into(),
            tokens,
        };
    };
    // A mailbox message has no envelope: the headers a final delivery adds
    // name the address it was delivered to.
    if let Some(rp) = &addresses.return_path {
        for name in ["Delivered-To", "X-Original-To", "Envelope-To", "To"] {
            for value in header_values(&message, name) {
                for found in verp_tokens(&value, rp) {
                    push_unique(&mut tokens, Some(TokenCandidate::Delivery(found)));
                }
            }
        }
    }
    let report_type = message
        .content_type()
        .filter(|ct| {
            ct.ctype().eq_ignore_ascii_case("multipart")
                && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
        })
        .and_then(|ct| ct.attribute("report-type"))
        .map(str::to_ascii_lowercase);
    let mut reading = match report_type.as_deref() {
        Some("feedback-report") => complaint(&message),
        Some("delivery-status") => delivery_status(&message),
        _ => None,
    }
    .or_else(|| text_bounce(&message, envelope))
    .or_else(|| auto_reply(&message))
    .or_else(|| unsubscribe(&message))
    .unwrap_or_else(|| Reading {
        kind: InboundKind::Unrecognised,
        status_code: None,
        detail: format!(
            "not a bounce, complaint, automatic reply or unsubscribe mail (subject \"{}\")",
            clip(message.subject().unwrap_or(""), 80)
        ),
        tokens: Vec::new(),
    });
    // Tokens in what the report encloses, after the envelope's.
    for t in std::mem::take(&mut reading.tokens) {
        push_unique(&mut tokens, Some(t));
    }
    if matches!(
        reading.kind,
        InboundKind::HardBounce | InboundKind::SoftBounce | InboundKind::Complaint | InboundKind::Delivered
    ) {
        for t in enclosed_tokens(&message, addresses) {
            push_unique(&mut tokens, Some(t));
        }
    }
    reading.tokens = tokens;
    reading.detail = clip(&crate::text::clean_line(&reading.detail), MAX_DETAIL);
    reading
}

/// Tokens verified per message at most: a hostile message may hold
/// thousands, and each costs an HMAC and a lookup.
const MAX_TOKENS: usize = 32;

fn push_unique(tokens: &mut Vec<TokenCandidate>, t: Option<TokenCandidate>) {
    let Some(t) = t else { return };
    let (TokenCandidate::Delivery(text) | TokenCandidate::Subscriber(text)) = &t;
    if !text.is_empty() && tokens.len() < MAX_TOKENS && !tokens.contains(&t) {
        tokens.push(t);
    }
}

fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

fn header_values(message: &Message<'_>, name: &str) -> Vec<String> {
    message
        .headers_raw()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

fn header(message: &Message<'_>, name: &str) -> Option<String> {
    header_values(message, name).into_iter().next()
}

/// The parts of a message, depth first (nested messages not entered).
fn parts_of<'a>(message: &'a Message<'a>) -> impl Iterator<Item = &'a mail_parser::MessagePart<'a>> {
    message.parts.iter()
}

fn part_is(part: &mail_parser::MessagePart<'_>, ctype: &str, subtype: &str) -> bool {
    part.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case(ctype) && ct.subtype().is_some_and(|s| s.eq_ignore_ascii_case(subtype))
    })
}

/// RFC 3464 and RFC 5965 bodies are header fields in groups split by blank
/// lines: each group as (lower-case name, unfolded value) pairs.
pub fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn field<'a>(group: &'a [(String, String)], name: &str) -> Option<&'a str> {
    group.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// `5.1.1` from a Status field or a diagnostic text.
pub fn status_code(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if !matches!(b, b'2' | b'4' | b'5') || bytes.get(i + 1) != Some(&b'.') {
            continue;
        }
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'.') {
            continue;
        }
        let rest = &text[i..];
        let mut end = 0;
        let mut dots = 0;
        let mut digits_since_dot = 0;
        for (j, c) in rest.char_indices() {
            match c {
                '0'..='9' if digits_since_dot < 3 => digits_since_dot += 1,
                '.' if j > 0 && digits_since_dot > 0 && dots < 2 => {
                    dots += 1;
                    digits_since_dot = 0;
                }
                _ => break,
            }
            end = j + c.len_utf8();
        }
        if dots == 2 && digits_since_dot > 0 {
            return Some(rest[..end].to_string());
        }
    }
    None
}

/// Soft or hard by an enhanced status code: 4.x.x is temporary; of the
/// permanent ones, a full mailbox (x.2.2) is the reader's passing state,
/// not a dead address, and counts as soft, as the big providers count it.
fn kind_for_code(code: &str) -> InboundKind {
    if code.starts_with('5') && !code.ends_with(".2.2") {
        InboundKind::HardBounce
    } else {
        InboundKind::SoftBounce
    }
}

/// A `multipart/report; report-type=delivery-status` message.
fn delivery_status(message: &Message<'_>) -> Option<Reading> {
    let part = parts_of(message)
        .find(|p| part_is(p, "message", "delivery-status") || part_is(p, "message", "global-delivery-status"))?;
    let text = String::from_utf8_lossy(part.contents());
    let groups = field_groups(&text);
    let per_recipient = groups.iter().skip(1).filter(|g| field(g, "action").is_some());
    // The gravest recipient decides (tidings sends one recipient per
    // message, so there is one in practice).
    let mut best: Option<(u8, Reading)> = None;
    for group in per_recipient {
        let action = field(group, "action").unwrap_or("").to_ascii_lowercase();
        let status = field(group, "status").and_then(status_code);
        let diagnostic = field(group, "diagnostic-code").unwrap_or("");
        let recipient = field(group, "final-recipient")
            .or_else(|| field(group, "original-recipient"))
            .unwrap_or("");
        let (rank, kind) = match action.trim() {
            "failed" => (3, status.as_deref().map_or(InboundKind::HardBounce, kind_for_code)),
            "delayed" => (2, InboundKind::SoftBounce),
            "delivered" | "relayed" | "expanded" => (1, InboundKind::Delivered),
            _ => continue,
        };
        let detail = format!(
            "{action} for {}{}{}",
            recipient.rsplit(';').next().unwrap_or("").trim(),
            status.as_deref().map(|s| format!(", status {s}")).unwrap_or_default(),
            if diagnostic.is_empty() {
                String::new()
            } else {
                format!(": {diagnostic}")
            }
        );
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((
                rank,
                Reading {
                    kind,
                    status_code: status,
                    detail,
                    tokens: Vec::new(),
                },
            ));
        }
    }
    best.map(|(_, r)| r).or_else(|| {
        Some(Reading {
            kind: InboundKind::Unrecognised,
            status_code: None,
            detail: "a delivery status report without a recipient's Action field".into(),
            tokens: Vec::new(),
        })
    })
}

/// A `multipart/report; report-type=feedback-report` message (ARF).
fn complaint(message: &Message<'_>) -> Option<Reading> {
    let part = parts_of(message).find(|p| part_is(p, "message", "feedback-report"))?;
    let text = String::from_utf8_lossy(part.contents());
    let fields: Vec<(String, String)> = field_groups(&text).into_iter().flatten().collect();
    let feedback_type = field(&fields, "feedback-type")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let agent = field(&fields, "user-agent").unwrap_or("an unnamed reporter");
    // Original-Mail-From (the VERP address) is read with the enclosed
    // original's tokens.
    let tokens = Vec::new();
    let kind = match feedback_type.as_str() {
        // A report that a message is *not* spam, or about the sender's
        // authentication, is no reader's complaint.
        "not-spam" | "auth-failure" | "dmarc" => InboundKind::Unrecognised,
        "" => {
            return Some(Reading {
                kind: InboundKind::Unrecognised,
                status_code: None,
                detail: "a feedback report without a Feedback-Type".into(),
                tokens,
            });
        }
        _ => InboundKind::Complaint,
    };
    Some(Reading {
        kind,
        status_code: None,
        detail: format!("{feedback_type} report from {agent}"),
        tokens,
    })
}

/// Bounce subjects of the common MTAs and providers, lower case.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "mail delivery failed",
    "delivery status notification",
    "failure notice",
    "undeliverable:",
    "undeliverable mail",
    "returned mail:",
    "mail delivery subsystem",
    "delivery failure",
    "message not delivered",
    "warning: message",
    "mail delivery delayed",
    "delayed mail",
    "delivery delayed",
    "nondeliverable",
    "could not be delivered",
];

/// Phrases that say the failure is permanent, lower case.
const PERMANENT: &[&str] = &[
    "permanent error",
    "permanent failure",
    "permanently",
    "i've given up",
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "doesn't exist",
    "address not found",
    "recipient not found",
    "recipnotfound",
    "mailbox unavailable",
    "account has been disabled",
    "account is disabled",
    "no mailbox here",
    "address rejected",
    "invalid recipient",
];

/// Phrases that say the failure is temporary, lower case.
const TEMPORARY: &[&str] = &[
    "delayed",
    "has not yet been delivered",
    "not yet been delivered",
    "will retry",
    "will keep trying",
    "still trying",
    "temporary failure",
    "temporarily",
    "mailbox is full",
    "mailbox full",
    "over quota",
    "quota exceeded",
];

/// A bounce that is not a DSN: from the mailer daemon, or with a bounce's
/// subject; soft or hard by its status code, else by its wording.
fn text_bounce(message: &Message<'_>, envelope: &Envelope) -> Option<Reading> {
    let subject = message.subject().unwrap_or("").to_ascii_lowercase();
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_daemon = ["mailer-daemon@", "postmaster@", "mail-daemon@"]
        .iter()
        .any(|p| from.starts_with(p));
    let null_sender = envelope
        .mail_from
        .as_deref()
        .is_some_and(|f| f.trim_matches(['<', '>']).is_empty())
        || header(message, "Return-Path").is_some_and(|r| r.trim() == "<>");
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    if !(from_daemon || (bounce_subject && (null_sender || from.contains("daemon")))) {
        return None;
    }
    let body: String = message
        .text_bodies()
        .filter_map(|p| p.text_contents())
        .collect::<Vec<_>>()
        .join("\n");
    let lower = body.to_ascii_lowercase();
    let code = status_code(&body).or_else(|| smtp_reply_code(&body));
    let kind = match &code {
        Some(code) => kind_for_code(code),
        None if PERMANENT.iter().any(|p| lower.contains(p)) => InboundKind::HardBounce,
        // Wording that says neither: soft, so one odd message never
        // suppresses an address.
        None => InboundKind::SoftBounce,
    };
    let kind = if code.is_none() && TEMPORARY.iter().any(|p| lower.contains(p) || subject.contains(p)) {
        InboundKind::SoftBounce
    } else {
        kind
    };
    let diagnostic = body
        .lines()
        .map(str::trim)
        .find(|l| code.as_deref().is_some_and(|c| l.contains(c)))
        .unwrap_or_else(|| message.subject().unwrap_or("").trim());
    Some(Reading {
        kind,
        status_code: code.filter(|c| c.contains('.')),
        detail: format!(
            "bounce from {}: {diagnostic}",
            if from.is_empty() { "the mailer" } else { &from }
        ),
        tokens: Vec::new(),
    })
}

/// A bare SMTP reply code (`550`, `452`) on a line that quotes a server,
/// as qmail and Exchange write them, turned into the class it implies
/// (`5.0.0`, `4.0.0`).
fn smtp_reply_code(body: &str) -> Option<String> {
    for line in body.lines() {
        let lower = line.to_ascii_lowercase();
        if !["said", "smtp", "remote server", "returned", "error", "reply"]
            .iter()
            .any(|w| lower.contains(w))
        {
            continue;
        }
        let bytes = line.as_bytes();
        for i in 0..bytes.len().saturating_sub(2) {
            let three = &bytes[i..i + 3];
            let bounded_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            let bounded_after = bytes
                .get(i + 3)
                .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'.');
            if bounded_before
                && bounded_after
                && matches!(three[0], b'4' | b'5')
                && three[1].is_ascii_digit()
                && three[2].is_ascii_digit()
                && three[1] <= b'5'
            {
                return Some(format!("{}.0.0", three[0] as char));
            }
        }
    }
    None
}

/// Subjects of automatic replies, lower case, in the languages most seen.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "auto:",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
    "risposta automatica",
    "on vacation",
    "away from the office",
];

fn auto_reply(message: &Message<'_>) -> Option<Reading> {
    let auto_submitted = header(message, "Auto-Submitted")
        .map(|v| v.to_ascii_lowercase())
        .filter(|v| !v.starts_with("no"));
    let marked = auto_submitted.is_some()
        || header(message, "X-Autoreply").is_some()
        || header(message, "X-Autorespond").is_some()
        || header(message, "X-Autogenerated").is_some()
        || header(message, "Precedence").is_some_and(|p| p.eq_ignore_ascii_case("auto_reply"));
    let subject = message.subject().unwrap_or("").to_lowercase();
    let by_subject = AUTO_REPLY_SUBJECTS.iter().any(|s| subject.contains(s));
    (marked || by_subject).then(|| Reading {
        kind: InboundKind::AutoReply,
        status_code: None,
        detail: format!("automatic reply: {}", message.subject().unwrap_or("").trim()),
        tokens: Vec::new(),
    })
}

/// An unsubscribe mail: "unsubscribe TOKEN" in the subject (the mailto of
/// `List-Unsubscribe`), or in the first line of the body.
fn unsubscribe(message: &Message<'_>) -> Option<Reading> {
    let subject = message.subject().unwrap_or("");
    let first_line = message
        .body_text(0)
        .and_then(|b| b.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string))
        .unwrap_or_default();
    let mut asked = false;
    let mut tokens = Vec::new();
    for text in [subject, first_line.as_str()] {
        let words: Vec<&str> = text.split_whitespace().collect();
        for (i, w) in words.iter().enumerate() {
            let w = w.trim_matches(|c: char| !c.is_ascii_alphanumeric());
            if !w.eq_ignore_ascii_case("unsubscribe") {
                continue;
            }
            asked = true;
            if let Some(token) = words.get(i + 1) {
                let token = token.trim_matches(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '\''));
                tokens.push(token_candidate(token));
            }
        }
    }
    asked.then(|| Reading {
        kind: InboundKind::Unsubscribe,
        status_code: None,
        detail: format!("unsubscribe mail: {}", subject.trim()),
        tokens,
    })
}

/// A delivery token is `ID-HEX`; a subscriber's unsubscribe token has dots.
fn token_candidate(token: &str) -> TokenCandidate {
    if token.contains('.') {
        TokenCandidate::Subscriber(token.to_string())
    } else {
        TokenCandidate::Delivery(token.to_string())
    }
}

/// VERP tokens of `rp` anywhere in `text`.
fn verp_tokens(text: &str, rp: &ReturnPath) -> Vec<String> {
    let lower = text.to_ascii_lowercase();
    let needle = rp.for_token("");
    let (prefix, suffix) = needle.split_once("+@").map_or((needle.as_str(), ""), |(p, s)| (p, s));
    let prefix = format!("{prefix}+");
    let suffix = format!("@{suffix}");
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = lower[from..].find(&prefix) {
        let start = from + at + prefix.len();
        let end = lower[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .map_or(lower.len(), |e| start + e);
        if lower[end..].starts_with(&suffix) && end > start {
            found.push(lower[start..end].to_string());
        }
        from = end.max(start);
        if found.len() >= 8 {
            break;
        }
    }
    found
}

/// Tokens in the original message a report encloses (a `message/rfc822`
/// or `text/rfc822-headers` part) or quotes in its text: its Return-Path
/// and To (the VERP address) and its `List-Unsubscribe`.
fn enclosed_tokens(message: &Message<'_>, addresses: &Addresses) -> Vec<TokenCandidate> {
    let mut texts: Vec<String> = Vec::new();
    for part in parts_of(message) {
        match &part.body {
            PartType::Message(inner) => texts.push(String::from_utf8_lossy(inner.raw_message()).into_owned()),
            PartType::Text(t) if part_is(part, "text", "rfc822-headers") => texts.push(t.to_string()),
            PartType::Text(t) => texts.push(t.to_string()),
            PartType::Binary(b)
                if part_is(part, "message", "feedback-report") || part_is(part, "message", "delivery-status") =>
            {
                texts.push(String::from_utf8_lossy(b).into_owned())
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for text in &texts {
        if let Some(rp) = &addresses.return_path {
            for t in verp_tokens(text, rp) {
                out.push(TokenCandidate::Delivery(t));
            }
        }
        // The mailto's subject and the link of List-Unsubscribe.
        for marker in ["subject=unsubscribe%20", "/unsubscribe/"] {
            let mut from = 0;
            while let Some(at) = text[from..].find(marker) {
                let start = from + at + marker.len();
                let end = text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                    .map_or(text.len(), |e| start + e);
                if end > start && out.len() < MAX_TOKENS {
                    out.push(token_candidate(&text[start..end]));
                }
                from = end;
            }
        }
    }
    out.truncate(16);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_found_in_text() {
        assert_eq!(status_code("5.1.1").as_deref(), Some("5.1.1"));
        assert_eq!(
            status_code("smtp; 550 5.1.1 <a@b.c>: user unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(status_code("#4.4.7 expired").as_deref(), Some("4.4.7"));
        assert_eq!(status_code("version 1.5.2.1 only"), None);
        assert_eq!(status_code("10.5.1 and 3.1.1"), None);
        assert_eq!(status_code("5.1."), None);
    }

    #[test]
    fn field_groups_unfold_and_split() {
        let groups = field_groups(
            "Reporting-MTA: dns; mx\r\n\r\nFinal-Recipient: rfc822; a@b.c\r\nDiagnostic-Code: smtp; 550\r\n  user unknown\r\nAction: failed\r\n",
        );
        assert_eq!(groups.len(), 2);
        assert_eq!(field(&groups[1], "diagnostic-code"), Some("smtp; 550 user unknown"));
        assert_eq!(field(&groups[1], "action"), Some("failed"));
    }

    #[test]
    fn bare_reply_codes_need_a_server_context() {
        assert_eq!(
            smtp_reply_code("host mx said: 550 no such user").as_deref(),
            Some("5.0.0")
        );
        assert_eq!(smtp_reply_code("we wrote 550 words"), None);
        assert_eq!(
            smtp_reply_code("Remote Server returned '452 try later'").as_deref(),
            Some("4.0.0")
        );
    }

    #[test]
    fn tokens_are_never_empty_and_few() {
        let addresses = Addresses {
            return_path: ReturnPath::parse("bounces@example.com").ok(),
            unsubscribe: EmailAddress::parse("unsubscribe@example.com").ok(),
        };
        // Found by the inbound fuzz target: an unsubscribe subject whose
        // token trims away to nothing.
        let empty = b"From: a@b.example\r\nTo: unsubscribe@example.com\r\nSubject: unsubscribe <>\r\n\r\nx\r\n";
        let r = classify(empty, &Envelope::default(), &addresses);
        assert!(r.tokens.is_empty(), "{r:?}");
        let mut many = Vec::new();
        for i in 0..100 {
            push_unique(&mut many, Some(TokenCandidate::Delivery(format!("{i}-ab"))));
            push_unique(&mut many, Some(TokenCandidate::Delivery(String::new())));
        }
        assert_eq!(many.len(), MAX_TOKENS);
    }

    #[test]
    fn verp_tokens_are_read_case_blind() {
        let rp = ReturnPath::parse("bounces@example.com").expect("valid");
        assert_eq!(
            verp_tokens("Return-Path: <BOUNCES+12-ABC@Example.com>", &rp),
            vec!["12-abc".to_string()]
        );
        assert!(verp_tokens("bounces+12-abc@example.org", &rp).is_empty());
    }

    /// A fixture of tests/fixtures/inbound with its placeholders filled.
    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inbound")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        text.replace("%VERP%", "bounces+42-00112233445566778899aabb@example.com")
            .replace("%TOKEN%", "42-00112233445566778899aabb")
            .replace("%RCPT%", "reader@reader.example")
            .replace("%UNSUBSCRIBE%", "unsubscribe@example.com")
            .replace('\n', "\r\n")
            .into_bytes()
    }

    fn addresses() -> Addresses {
        Addresses {
            return_path: Some(ReturnPath::parse("bounces@example.com").expect("valid")),
            unsubscribe: Some(EmailAddress::parse("unsubscribe@example.com").expect("valid")),
        }
    }

    const TOKEN: &str = "42-00112233445566778899aabb";

    fn read(name: &str) -> Reading {
        // As from a mailbox: no envelope, the token must come from the message.
        classify(&fixture(name), &Envelope::default(), &addresses())
    }

    #[test]
    fn each_shape_of_bounce_is_read_with_its_token() {
        for (name, kind, code) in [
            ("postfix-hard.eml", InboundKind::HardBounce, Some("5.1.1")),
            ("gmail-hard.eml", InboundKind::HardBounce, Some("5.1.1")),
            ("exim-hard.eml", InboundKind::HardBounce, Some("5.1.1")),
            ("qmail-hard.eml", InboundKind::HardBounce, Some("5.1.1")),
            ("exchange-hard.eml", InboundKind::HardBounce, Some("5.1.10")),
            ("delayed-soft.eml", InboundKind::SoftBounce, Some("4.4.1")),
            ("mailbox-full-soft.eml", InboundKind::SoftBounce, Some("5.2.2")),
        ] {
            let r = read(name);
            assert_eq!(r.kind, kind, "{name}: {r:?}");
            assert_eq!(r.status_code.as_deref(), code, "{name}: {r:?}");
            assert_eq!(
                r.tokens.first(),
                Some(&TokenCandidate::Delivery(TOKEN.into())),
                "{name}: {r:?}"
            );
            assert!(!r.detail.is_empty() && !r.detail.contains('\n'), "{name}: {r:?}");
        }
    }

    #[test]
    fn complaints_unsubscribes_and_auto_replies() {
        let arf = read("arf-complaint.eml");
        assert_eq!(arf.kind, InboundKind::Complaint, "{arf:?}");
        assert!(
            arf.detail.contains("abuse") && arf.detail.contains("ExampleFBL"),
            "{arf:?}"
        );
        assert!(arf.tokens.contains(&TokenCandidate::Delivery(TOKEN.into())), "{arf:?}");

        let unsubscribe = read("unsubscribe.eml");
        assert_eq!(unsubscribe.kind, InboundKind::Unsubscribe);
        assert_eq!(unsubscribe.tokens, vec![TokenCandidate::Delivery(TOKEN.into())]);

        let auto = classify(
            &fixture("auto-reply.eml"),
            &Envelope {
                mail_from: Some("reader@reader.example".into()),
                recipients: vec![format!("bounces+{TOKEN}@example.com")],
            },
            &addresses(),
        );
        assert_eq!(auto.kind, InboundKind::AutoReply, "{auto:?}");

        let reply = read("human-reply.eml");
        assert_eq!(reply.kind, InboundKind::Unrecognised, "{reply:?}");
        assert!(reply.tokens.is_empty());
    }

    #[test]
    fn garbage_is_unrecognised_never_a_panic() {
        for raw in [
            &b""[..],
            b"\x00\x01\x02",
            b"just words, no header",
            b"Subject: x\r\n\r\n",
        ] {
            let r = classify(raw, &Envelope::default(), &addresses());
            assert_eq!(r.kind, InboundKind::Unrecognised, "{raw:?}: {r:?}");
        }
        // A report whose parts say nothing.
        let empty_report = b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; a\r\n--x--\r\n";
        assert_eq!(
            classify(empty_report, &Envelope::default(), &addresses()).kind,
            InboundKind::Unrecognised
        );
    }

    #[test]
    fn a_bounce_names_its_delivery_by_the_envelope_first() {
        let r = classify(
            &fixture("qmail-hard.eml"),
            &Envelope {
                mail_from: Some(String::new()),
                recipients: vec!["BOUNCES+7-aaaaaaaaaaaaaaaaaaaaaaaa@EXAMPLE.com".into()],
            },
            &addresses(),
        );
        assert_eq!(
            r.tokens[0],
            TokenCandidate::Delivery("7-aaaaaaaaaaaaaaaaaaaaaaaa".into())
        );
        assert!(r.tokens.contains(&TokenCandidate::Delivery(TOKEN.into())));
    }
}
