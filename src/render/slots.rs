//! Per-subscriber values (name, address, links) live at the places the
//! template put them, recorded when the issue is rendered, never found
//! again by searching the text: text from outside (feeds, article pages,
//! model output, editor notes) can say anything and still never becomes
//! a reader's address or token.
//!
//! A render puts a fresh random marker for each value into the view, splits
//! the template's output at those markers into static pieces and slots, and
//! stores that. The markers exist only inside one render call.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::RenderError;

/// A per-subscriber value a template can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Slot {
    Name,
    Email,
    Unsubscribe,
    Preferences,
    Archive,
}

const ALL: [Slot; 5] = [
    Slot::Name,
    Slot::Email,
    Slot::Unsubscribe,
    Slot::Preferences,
    Slot::Archive,
];

/// One subscriber's values, as plain text.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recipient<'a> {
    /// `Some` picks the variant rendered for subscribers with a name.
    pub name: Option<&'a str>,
    pub email: &'a str,
    pub unsubscribe_url: &'a str,
    pub preferences_url: &'a str,
    /// The issue's page in the public archive.
    pub archive_url: &'a str,
}

impl Recipient<'_> {
    /// The value of one slot; a name is one line of text whatever was stored.
    pub fn value(&self, slot: Slot) -> Cow<'_, str> {
        match slot {
            Slot::Name => Cow::Owned(self.name.map(crate::text::clean_line).unwrap_or_default()),
            Slot::Email => Cow::Borrowed(self.email),
            Slot::Unsubscribe => Cow::Borrowed(self.unsubscribe_url),
            Slot::Preferences => Cow::Borrowed(self.preferences_url),
            Slot::Archive => Cow::Borrowed(self.archive_url),
        }
    }
}

/// How a value is written into its part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    Html,
    None,
}

/// Rendered text with the positions of its per-subscriber values: static
/// `pieces` around `slots` (always one piece more than slots).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredText")]
pub struct SlottedText {
    pieces: Vec<String>,
    slots: Vec<Slot>,
}

impl SlottedText {
    /// Text with no per-subscriber values.
    pub fn plain(text: impl Into<String>) -> Self {
        SlottedText {
            pieces: vec![text.into()],
            slots: Vec::new(),
        }
    }

    pub fn has(&self, slot: Slot) -> bool {
        self.slots.contains(&slot)
    }

    /// The static pieces and the slots between them.
    pub fn parts(&self) -> (&[String], &[Slot]) {
        (&self.pieces, &self.slots)
    }

    /// The text with one subscriber's values in their places.
    pub fn fill(&self, who: &Recipient<'_>, escape: Escape) -> String {
        let mut out = String::with_capacity(self.pieces.iter().map(String::len).sum::<usize>() + 64 * self.slots.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            out.push_str(piece);
            if let Some(slot) = self.slots.get(i) {
                let value = who.value(*slot);
                match escape {
                    Escape::Html => out.push_str(&crate::text::escape_html(&value)),
                    Escape::None => out.push_str(&value),
                }
            }
        }
        out
    }
}

/// The markers of one render call: random, so no text that existed before
/// the call can hold one.
pub(super) struct Markers {
    markers: Vec<(String, Slot)>,
}

impl Markers {
    pub(super) fn new() -> Result<Self, RenderError> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| RenderError::Random(e.to_string()))?;
        let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        // Letters and digits only: HTML escaping, CSS inlining and URL
        // encoding leave them as they are.
        let markers = ALL
            .iter()
            .enumerate()
            .map(|(i, slot)| (format!("tdg{nonce}s{i}e"), *slot))
            .collect();
        Ok(Markers { markers })
    }

    pub(super) fn marker(&self, slot: Slot) -> String {
        self.markers
            .iter()
            .find(|(_, s)| *s == slot)
            .map(|(m, _)| m.clone())
            .unwrap_or_default()
    }

    /// Whether `text` (what the template is given) already holds a marker.
    pub(super) fn found_in(&self, text: &str) -> bool {
        self.markers.iter().any(|(m, _)| text.contains(m.as_str()))
    }

    /// Splits a template's output at this render's markers.
    pub(super) fn split(&self, text: &str) -> SlottedText {
        split_at(text, self.markers.iter().map(|(m, s)| (m.as_str(), *s)))
    }
}

fn split_at<'m>(text: &str, markers: impl Iterator<Item = (&'m str, Slot)> + Clone) -> SlottedText {
    let mut pieces = Vec::new();
    let mut slots = Vec::new();
    let mut rest = text;
    loop {
        let next = markers
            .clone()
            .filter_map(|(marker, slot)| rest.find(marker).map(|at| (at, marker.len(), slot)))
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((at, len, slot)) => {
                pieces.push(rest[..at].to_string());
                slots.push(slot);
                rest = &rest[at + len..];
            }
            None => {
                pieces.push(rest.to_string());
                break;
            }
        }
    }
    SlottedText { pieces, slots }
}

/// How issues were stored: slotted, or (issues composed before slots were
/// recorded) one string with fixed markers, read the old way.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredText {
    Slotted { pieces: Vec<String>, slots: Vec<Slot> },
    Legacy(String),
}

/// The fixed markers of issues stored before slots were recorded. The
/// collector defuses these in everything it stores (`crate::text::defuse_markers`).
pub const LEGACY_MARKERS: [(&str, Slot); 5] = [
    ("TIDINGSxSUBSCRIBERxNAMEx7f3a", Slot::Name),
    ("TIDINGSxSUBSCRIBERxEMAILx7f3a", Slot::Email),
    ("TIDINGSxUNSUBSCRIBExURLx7f3a", Slot::Unsubscribe),
    ("TIDINGSxPREFERENCESxURLx7f3a", Slot::Preferences),
    ("TIDINGSxARCHIVExURLx7f3a", Slot::Archive),
];

impl From<StoredText> for SlottedText {
    fn from(stored: StoredText) -> Self {
        match stored {
            StoredText::Slotted { mut pieces, slots } => {
                // Keep the invariant whatever the stored JSON says.
                pieces.resize(slots.len() + 1, String::new());
                SlottedText { pieces, slots }
            }
            StoredText::Legacy(text) => split_at(&text, LEGACY_MARKERS.iter().copied()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_looks_like_a_marker_stays_text() {
        let markers = Markers::new().expect("randomness");
        let outside = "https://evil.test/?e=TIDINGSxSUBSCRIBERxEMAILx7f3a&u=tdg00s1e";
        let rendered = format!("{outside} {}", markers.marker(Slot::Email));
        let text = markers.split(&rendered);
        let who = Recipient {
            email: "ada@example.com",
            ..Recipient::default()
        };
        assert_eq!(text.fill(&who, Escape::None), format!("{outside} ada@example.com"));
    }

    #[test]
    fn two_renders_never_share_markers() {
        let a = Markers::new().expect("randomness");
        let b = Markers::new().expect("randomness");
        assert_ne!(a.marker(Slot::Email), b.marker(Slot::Email));
        assert!(!a.found_in(&b.marker(Slot::Email)));
    }

    #[test]
    fn stored_forms_round_trip_and_legacy_strings_still_read() {
        let markers = Markers::new().expect("randomness");
        let text = markers.split(&format!("<a href=\"{}\">x</a>", markers.marker(Slot::Unsubscribe)));
        let json = serde_json::to_string(&text).expect("json");
        assert_eq!(serde_json::from_str::<SlottedText>(&json).expect("read back"), text);
        let legacy: SlottedText = serde_json::from_str("\"see TIDINGSxUNSUBSCRIBExURLx7f3a now\"").expect("legacy");
        assert_eq!(legacy.parts().1, &[Slot::Unsubscribe]);
        let broken: SlottedText = serde_json::from_str(r#"{"pieces":[],"slots":["email"]}"#).expect("short pieces");
        assert_eq!(broken.parts().0.len(), 2);
    }
}
