//! An issue's parts quoted-printable encoded once, for delivery: the
//! static pieces between the per-subscriber slots are encoded when the
//! delivery starts; a message then costs encoding the few values filled in
//! (name, address, links), not the whole 25 KB again.
//!
//! Pieces and values are joined with soft line breaks (`=` CRLF), which a
//! decoder removes, so the decoded part is exactly what [`super::personalize`]
//! gives, with CRLF line endings.

use super::RenderedIssue;
use super::slots::{Escape, Recipient, Slot, SlottedText};
use crate::text::escape_html;

/// One part (text or HTML) of a variant, encoded once.
#[derive(Debug, Clone)]
pub struct EncodedPart {
    /// Encoded static text; one more than `slots`.
    pieces: Vec<Vec<u8>>,
    slots: Vec<Slot>,
    escape: Escape,
}

/// Both parts of both variants, and the subjects (filled per message).
#[derive(Debug, Clone)]
pub struct EncodedIssue {
    pub named: EncodedVariant,
    pub anonymous: EncodedVariant,
}

#[derive(Debug, Clone)]
pub struct EncodedVariant {
    pub subject: SlottedText,
    pub text: EncodedPart,
    pub html: EncodedPart,
}

impl RenderedIssue {
    pub fn encode(&self) -> EncodedIssue {
        let variant = |v: &super::RenderedVariant| EncodedVariant {
            subject: v.subject.clone(),
            text: EncodedPart::new(&v.text, Escape::None),
            html: EncodedPart::new(&v.html, Escape::Html),
        };
        EncodedIssue {
            named: variant(&self.named),
            anonymous: variant(&self.anonymous),
        }
    }
}

impl EncodedPart {
    pub fn new(text: &SlottedText, escape: Escape) -> Self {
        let (pieces, slots) = text.parts();
        EncodedPart {
            pieces: pieces.iter().map(|p| encode(p)).collect(),
            slots: slots.to_vec(),
            escape,
        }
    }

    /// The encoded part with one subscriber's values.
    pub fn fill(&self, who: &Recipient<'_>) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.pieces.iter().map(Vec::len).sum::<usize>() + 64 * self.slots.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            out.extend_from_slice(piece);
            let Some(slot) = self.slots.get(i) else { break };
            let raw = who.value(*slot);
            let value = match self.escape {
                Escape::Html => escape_html(&raw),
                Escape::None => raw.into_owned(),
            };
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
    use crate::render::{RenderedVariant, personalize};

    /// A part as a render leaves it: static text around slots.
    fn slotted(parts: &[&str], slots: &[Slot]) -> SlottedText {
        let json = serde_json::json!({ "pieces": parts, "slots": slots });
        serde_json::from_value(json).expect("slotted text")
    }

    fn variant(body: &[&str; 3]) -> RenderedVariant {
        RenderedVariant {
            subject: SlottedText::plain("Weekly"),
            html: slotted(
                &[
                    &format!("<p>{}", body[0]),
                    body[1],
                    &format!("{}</p>\n<a href=\"", body[2]),
                    "\">Unsubscribe</a> ",
                    "",
                ],
                &[Slot::Name, Slot::Email, Slot::Unsubscribe, Slot::Archive],
            ),
            text: slotted(
                &[
                    body[0],
                    body[1],
                    &format!("{}\nUnsubscribe: ", body[2]),
                    "\nPreferences: ",
                    "\n",
                ],
                &[Slot::Name, Slot::Email, Slot::Unsubscribe, Slot::Preferences],
            ),
        }
    }

    #[test]
    fn filled_parts_decode_to_the_personalised_text() {
        let long = "Caf\u{e9} \u{1f5a5}\u{fe0f} news — ".repeat(40);
        let tail = format!(">, {long} trailing space \nnext line");
        let body = ["Hello ", " <", tail.as_str()];
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
        assert!(personal.html.contains("Hello Ada &lt;Ω&gt; Lovelace"));
        let encoded = issue.encode();
        for (part, expected) in [
            (&encoded.named.text, &personal.text),
            (&encoded.named.html, &personal.html),
        ] {
            let bytes = part.fill(&recipient);
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
