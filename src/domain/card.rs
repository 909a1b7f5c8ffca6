//! A story's card, as a model drafted it and the grounding check marked it,
//! and the fields an editor can rewrite.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most takeaways on a card.
pub const MAX_TAKEAWAYS: usize = 5;

/// The fields of a card, as `tidings issue edit` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardField {
    Tldr,
    WhatChanged,
    WhyItMatters,
    WhatToDoNext,
    Takeaways,
}

impl CardField {
    pub const ALL: [CardField; 5] = [
        CardField::Tldr,
        CardField::WhatChanged,
        CardField::WhyItMatters,
        CardField::WhatToDoNext,
        CardField::Takeaways,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CardField::Tldr => "tldr",
            CardField::WhatChanged => "what_changed",
            CardField::WhyItMatters => "why_it_matters",
            CardField::WhatToDoNext => "what_to_do_next",
            CardField::Takeaways => "takeaways",
        }
    }

    pub fn parse(name: &str) -> Option<CardField> {
        CardField::ALL.into_iter().find(|f| f.name() == name.trim())
    }
}

impl std::fmt::Display for CardField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the grounding check found in one piece of generated text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Grounding {
    /// Figures (numbers, amounts, percentages, dates) not found in the
    /// sources the text rests on, as written in it.
    pub unsupported: Vec<String>,
    /// The sentences holding them, for the editor.
    pub sentences: Vec<String>,
}

impl Grounding {
    pub fn verified(&self) -> bool {
        self.unsupported.is_empty()
    }
}

/// One generated text with its grounding marks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardText {
    pub text: String,
    pub grounding: Grounding,
}

impl CardText {
    pub fn verified(&self) -> bool {
        self.grounding.verified()
    }
}

/// "Why it matters" for one audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudienceText {
    /// The audience's name (its key in the configuration).
    pub audience: String,
    pub text: CardText,
}

/// A key takeaway and the numbers of the sources that support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Takeaway {
    pub text: CardText,
    /// 1-based numbers into [`Card::sources`].
    pub sources: Vec<usize>,
}

/// A source the model read, numbered from 1 in the order of
/// [`Card::sources`]; the first is the story itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardSource {
    pub story_id: i64,
    pub source: String,
    pub link: String,
}

/// A story's briefing as a model drafted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub tldr: CardText,
    pub what_changed: CardText,
    pub why_it_matters: Vec<AudienceText>,
    pub what_to_do_next: CardText,
    pub takeaways: Vec<Takeaway>,
    pub sources: Vec<CardSource>,
    /// The model that wrote it, as the configuration names it.
    pub model: String,
    pub drafted_at: DateTime<Utc>,
}

impl Card {
    /// Every field that failed the grounding check, by name.
    pub fn unverified_fields(&self) -> Vec<CardField> {
        let mut fields = Vec::new();
        if !self.tldr.verified() {
            fields.push(CardField::Tldr);
        }
        if !self.what_changed.verified() {
            fields.push(CardField::WhatChanged);
        }
        if self.why_it_matters.iter().any(|w| !w.text.verified()) {
            fields.push(CardField::WhyItMatters);
        }
        if !self.what_to_do_next.verified() {
            fields.push(CardField::WhatToDoNext);
        }
        if self.takeaways.iter().any(|t| !t.text.verified()) {
            fields.push(CardField::Takeaways);
        }
        fields
    }
}

/// An earlier story of the same thread, for a card's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadEvent {
    pub story_id: i64,
    pub title: String,
    pub source: String,
    pub link: String,
    pub published_at: DateTime<Utc>,
}

/// An editor's text for one field of one story's card in one edition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardEdit {
    pub story_id: i64,
    pub field: CardField,
    /// For `takeaways`, one takeaway per line.
    pub text: String,
}
