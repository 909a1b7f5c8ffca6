//! Stories as collected from feeds and as stored.

use chrono::{DateTime, Utc};

/// The identity of a story, used to de-duplicate: the feed's GUID (scoped to
/// its source, since GUIDs are only unique within a feed), else the canonical
/// link, else a hash of title and summary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoryKey(pub String);

impl StoryKey {
    pub fn from_guid(source: &str, guid: &str) -> Self {
        StoryKey(format!("guid:{source}:{guid}"))
    }
    pub fn from_link(link: &str) -> Self {
        StoryKey(format!("link:{link}"))
    }
    pub fn from_content_hash(hash: &str) -> Self {
        StoryKey(format!("hash:{hash}"))
    }
}

/// Why a story carries a tag; shown by `rank --explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagOrigin {
    /// Every story of the source gets it (`[[sources]] tags`).
    Source,
    /// From a feed category, as written in the feed.
    Category(String),
    /// A `[tags.NAME] keywords` rule matched this keyword.
    Keyword(String),
}

impl TagOrigin {
    pub fn encode(&self) -> String {
        match self {
            TagOrigin::Source => "source".to_string(),
            TagOrigin::Category(c) => format!("category:{c}"),
            TagOrigin::Keyword(k) => format!("keyword:{k}"),
        }
    }
    pub fn decode(s: &str) -> Self {
        if let Some(c) = s.strip_prefix("category:") {
            TagOrigin::Category(c.to_string())
        } else if let Some(k) = s.strip_prefix("keyword:") {
            TagOrigin::Keyword(k.to_string())
        } else {
            TagOrigin::Source
        }
    }
}

impl std::fmt::Display for TagOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TagOrigin::Source => f.write_str("source tag"),
            TagOrigin::Category(c) => write!(f, "feed category \"{c}\""),
            TagOrigin::Keyword(k) => write!(f, "keyword \"{k}\""),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaggedTag {
    pub tag: String,
    pub origin: TagOrigin,
}

/// A story ready to be stored: sanitised, tagged, keyed.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStory {
    pub key: StoryKey,
    pub source: String,
    pub guid: Option<String>,
    pub title: String,
    /// Canonical link: absolute, no fragment, no tracking parameters.
    pub link: String,
    /// Sanitised HTML (ammonia allow-list), safe to embed.
    pub summary_html: String,
    /// Plain text of the summary, for ranking and text mail.
    pub summary_text: String,
    pub published_at: DateTime<Utc>,
    pub collected_at: DateTime<Utc>,
    pub tags: Vec<TaggedTag>,
}

/// A story read back from the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredStory {
    pub id: i64,
    pub source: String,
    pub title: String,
    pub link: String,
    pub summary_html: String,
    pub summary_text: String,
    /// The article's text, for `full_text` sources whose page was read.
    pub content: Option<String>,
    pub published_at: DateTime<Utc>,
    pub collected_at: DateTime<Utc>,
    /// Stories telling the same news share a cluster (see `collect::cluster`).
    pub cluster_id: Option<i64>,
    pub tags: Vec<TaggedTag>,
}

/// Lower-case, words joined by '-': "Machine Learning" → "machine-learning".
/// `None` when nothing usable is left.
pub fn normalise_tag(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut pending_dash = false;
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '+' || c == '#' || c == '.' {
            if pending_dash && !out.is_empty() {
                out.push('-');
            }
            pending_dash = false;
            out.push(c);
        } else {
            pending_dash = true;
        }
    }
    let out = out.trim_matches('.').to_string();
    (!out.is_empty() && out.chars().count() <= 64).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_normalise() {
        assert_eq!(normalise_tag("Machine Learning").as_deref(), Some("machine-learning"));
        assert_eq!(normalise_tag("  AI/ML ").as_deref(), Some("ai-ml"));
        assert_eq!(normalise_tag("C++").as_deref(), Some("c++"));
        assert_eq!(normalise_tag("Zero-Day").as_deref(), Some("zero-day"));
        assert_eq!(normalise_tag(" -- ").as_deref(), None);
        assert_eq!(normalise_tag("Sécurité").as_deref(), Some("sécurité"));
    }

    #[test]
    fn tag_origin_round_trips() {
        for o in [
            TagOrigin::Source,
            TagOrigin::Category("AI".into()),
            TagOrigin::Keyword("breach".into()),
        ] {
            assert_eq!(TagOrigin::decode(&o.encode()), o);
        }
    }
}

/// Validators from the last successful fetch, sent back as a conditional GET.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}
