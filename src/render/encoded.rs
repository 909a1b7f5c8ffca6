//! An issue's parts quoted-printable encoded once, for delivery: the
//! static pieces between the per-subscriber slots are encoded when the
//! delivery starts; a message then costs encoding the few values filled in
//! (name, address, links), not the whole 25 KB again.
//!
//! Pieces and values are joined with soft line breaks (`=` CRLF), which a
//! decoder removes, so the decoded part is exactly what [`super::personalize`]
//! gives, with CRLF line endings.

use super::{ARCHIVE_SLOT, EMAIL_SLOT, NAME_SLOT, PREFERENCES_SLOT, RenderedIssue, UNSUBSCRIBE_SLOT, escape_html};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Name,
    Email,
    Unsubscribe,
    Preferences,
    Archive,
}

const SLOTS: [(&str, Slot); 5] = [
    (NAME_SLOT, Slot::Name),
    (EMAIL_SLOT, Slot::Email),
    (UNSUBSCRIBE_SLOT, Slot::Unsubscribe),
    (PREFERENCES_SLOT, Slot::Preferences),
    (ARCHIVE_SLOT, Slot::Archive),
];

/// The values of one subscriber's slots, as plain text.
pub struct SlotValues<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    pub archive_url: &'a str,
}

/// One part (text or HTML) of a variant, encoded once.
#[derive(Debug, Clone)]
pub struct EncodedPart {
    /// Encoded static text; one more than `slots`.
    pieces: Vec<Vec<u8>>,
    slots: Vec<Slot>,
    /// HTML-escape the values (the HTML part).
    html: bool,
}

/// Both parts of both variants, and the subjects (filled per message).
#[derive(Debug, Clone)]
pub struct EncodedIssue {
    pub named: EncodedVariant,
    pub anonymous: EncodedVariant,
}

#[derive(Debug, Clone)]
pub struct EncodedVariant {
    pub subject: String,
    pub text: EncodedPart,
    pub html: EncodedPart,
}

impl RenderedIssue {
    pub fn encode(&self) -> EncodedIssue {
        let variant = |v: &super::RenderedVariant| EncodedVariant {
            subject: v.subject.clone(),
            text: EncodedPart::new(&v.text, false),
            html: EncodedPart::new(&v.html, true),
        };
        EncodedIssue {
            named: variant(&self.named),
            anonymous: variant(&self.anonymous),
        }
    }
}

impl EncodedPart {
    pub fn new(text: &str, html: bool) -> Self {
        let mut pieces = Vec::new();
        let mut slots = Vec::new();
        let mut rest = text;
        loop {
            let next = SLOTS
                .iter()
                .filter_map(|(marker, slot)| rest.find(marker).map(|at| (at, *marker, *slot)))
                .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, marker, slot)) => {
                    pieces.push(encode(&rest[..at]));
                    slots.push(slot);
                    rest = &rest[at + marker.len()..];
                }
                None => {
                    pieces.push(encode(rest));
                    break;
                }
            }
        }
        EncodedPart { pieces, slots, html }
    }

    /// The encoded part with one subscriber's values.
    pub fn fill(&self, values: &SlotValues<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pieces.iter().map(Vec::len).sum::<usize>() + 64 * self.slots.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            out.extend_from_slice(piece);
            let Some(slot) = self.slots.get(i) else { break };
            let raw = match slot {
                Slot::Name => values.name,
                Slot::Email => values.email,
                Slot::Unsubscribe => values.unsubscribe_url,
                Slot::Preferences => values.preferences_url,
                Slot::Archive => values.archive_url,
            };
            let value = if self.html { escape_html(raw) } else { raw.to_string() };
            // Soft breaks around the value keep every line short (none at
            // the very end: a part does not end in a soft break).
            out.extend_from_slice(b"=\r\n");
            out.extend_from_slice(&encode(&value));
            let last = i + 1 == self.slots.len() && self.pieces[i + 1].is_empty();
            if !last {
                out.extend_from_slice(b"=\r\n");
            }
        }
        out
    }
}

/// Quoted-printable with CRLF line endings, as lettre encodes a body.
fn encode(text: &str) -> Vec<u8> {
    let crlf = text.replace("\r\n", "\n").replace('\n', "\r\n");
    quoted_printable::encode(crlf.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Recipient, RenderedVariant, personalize};

    fn variant(body: &str) -> RenderedVariant {
        RenderedVariant {
            subject: "Weekly".into(),
            html: format!("<p>{body}</p>\n<a href=\"{UNSUBSCRIBE_SLOT}\">Unsubscribe</a> {ARCHIVE_SLOT}"),
            text: format!("{body}\nUnsubscribe: {UNSUBSCRIBE_SLOT}\nPreferences: {PREFERENCES_SLOT}\n"),
        }
    }

    #[test]
    fn filled_parts_decode_to_the_personalised_text() {
        let long = "Caf\u{e9} \u{1f5a5}\u{fe0f} news — ".repeat(40);
        let body = format!("Hello {NAME_SLOT} <{EMAIL_SLOT}>, {long} trailing space \nnext line");
        let issue = RenderedIssue {
            named: variant(&body),
            anonymous: variant(&body),
            web: None,
        };
        let recipient = Recipient {
            name: Some("Ada <Ω> Lovelace"),
            email: "ada@example.com",
            unsubscribe_url: "https://news.example.com/unsubscribe/1.0.abc?x=1&y=2",
            preferences_url: "https://news.example.com/preferences/1.0.def",
            archive_url: "https://news.example.com/archive/weekly/7",
        };
        let personal = personalize(&issue, &recipient);
        let encoded = issue.encode();
        let values = SlotValues {
            name: "Ada <Ω> Lovelace",
            email: recipient.email,
            unsubscribe_url: recipient.unsubscribe_url,
            preferences_url: recipient.preferences_url,
            archive_url: recipient.archive_url,
        };
        for (part, expected) in [
            (&encoded.named.text, &personal.text),
            (&encoded.named.html, &personal.html),
        ] {
            let bytes = part.fill(&values);
            for line in bytes.split(|b| *b == b'\n') {
                assert!(line.len() <= 78, "line too long: {}", String::from_utf8_lossy(line));
                assert!(line.is_ascii());
            }
            let decoded = quoted_printable::decode(&bytes, quoted_printable::ParseMode::Strict)
                .unwrap_or_else(|e| panic!("{e:?} in {}", String::from_utf8_lossy(&bytes)));
            assert_eq!(
                String::from_utf8(decoded).expect("utf-8"),
                expected.replace('\n', "\r\n")
            );
        }
    }
}
