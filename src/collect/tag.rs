//! Tags for a story: the source's own, the feed's categories (normalised),
//! and the configured keyword rules (case-insensitive, whole words, over
//! title, summary and categories). Each tag remembers what added it.

use crate::config::TagRule;
use crate::domain::{TagOrigin, TaggedTag, normalise_tag};

pub fn tag_story(
    source_tags: &[String],
    categories: &[String],
    rules: &[TagRule],
    title: &str,
    summary: &str,
) -> Vec<TaggedTag> {
    let mut tags: Vec<TaggedTag> = Vec::new();
    let mut add = |tag: String, origin: TagOrigin| {
        if !tags.iter().any(|t| t.tag == tag) {
            tags.push(TaggedTag { tag, origin });
        }
    };
    for t in source_tags {
        add(t.clone(), TagOrigin::Source);
    }
    for c in categories {
        if let Some(t) = normalise_tag(c) {
            add(t, TagOrigin::Category(c.clone()));
        }
    }
    let haystack = format!("{title}\n{summary}\n{}", categories.join("\n")).to_lowercase();
    for rule in rules {
        if let Some(k) = rule.keywords.iter().find(|k| contains_word(&haystack, k)) {
            add(rule.tag.clone(), TagOrigin::Keyword(k.clone()));
        }
    }
    tags
}

/// Whether `needle` occurs in `haystack` with no letter or digit touching it
/// on either side ("breach" matches "a breach." but not "breaches").
pub fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(tag: &str, kw: &[&str]) -> TagRule {
        TagRule {
            tag: tag.into(),
            keywords: kw.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn whole_words_only() {
        assert!(contains_word("a major breach.", "breach"));
        assert!(!contains_word("breaches everywhere", "breach"));
        assert!(contains_word("new zero-day in x", "zero-day"));
        assert!(!contains_word("ai", ""));
        assert!(contains_word("(ransomware)", "ransomware"));
    }

    #[test]
    fn sources_categories_and_keywords() {
        let tags = tag_story(
            &["enterprise".into()],
            &["Cloud Computing".into(), "AI".into()],
            &[
                rule("security", &["ransomware", "breach"]),
                rule("policy", &["regulation"]),
            ],
            "Ransomware gang hits hospital",
            "Details inside.",
        );
        let names: Vec<&str> = tags.iter().map(|t| t.tag.as_str()).collect();
        assert_eq!(names, ["enterprise", "cloud-computing", "ai", "security"]);
        assert_eq!(tags[3].origin, TagOrigin::Keyword("ransomware".into()));
        assert_eq!(tags[1].origin, TagOrigin::Category("Cloud Computing".into()));
    }
}
