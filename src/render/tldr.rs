//! A story's TL;DR: the feed's own summary when it is short and clean,
//! otherwise two or three of its sentences picked extractively (no external
//! service): sentences are scored by how many of the text's frequent words
//! and of the title's words they carry, with a bonus for coming first, and
//! shown in their original order. Blog-engine boilerplate ("The post …
//! appeared first on …", "Continue reading") is removed first.

use std::collections::{BTreeMap, HashSet};

/// Most sentences in a TL;DR.
const MAX_SENTENCES: usize = 3;

/// Words that say nothing about what a sentence is about.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by", "can",
    "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "his", "how", "i", "if", "in",
    "into", "is", "it", "its", "just", "more", "most", "new", "no", "not", "now", "of", "on", "one", "or", "our",
    "out", "over", "said", "says", "she", "so", "some", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "up", "us", "was", "we", "were", "what", "when", "which", "who", "will", "with",
    "would", "you", "your",
];

/// Trailing phrases that link to the full post rather than say anything.
const TRAILERS: &[&str] = &[
    "continue reading",
    "read more",
    "read the full story",
    "read the full article",
    "keep reading",
    "(more…)",
    "(more...)",
    "[…]",
    "[...]",
    "…",
];

/// The TL;DR of a story with `title` whose plain-text summary is `text`,
/// at most `max_chars` characters long.
pub fn tldr(title: &str, text: &str, max_chars: usize) -> String {
    let text = strip_boilerplate(text);
    if text.chars().count() <= max_chars {
        return text;
    }
    let sentences = split_sentences(&text);
    if sentences.len() <= 1 {
        return crate::text::shorten(&text, max_chars);
    }
    let frequency = word_frequency(&sentences);
    let title_words: HashSet<String> = words(title).collect();
    let mut scored: Vec<(usize, f64)> = sentences
        .iter()
        .enumerate()
        .map(|(i, s)| (i, sentence_score(i, s, &frequency, &title_words)))
        .collect();
    // Best first; ties to the earlier sentence, so the result never varies.
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = 0;
    for (i, _) in scored {
        let len = sentences[i].chars().count() + usize::from(!chosen.is_empty());
        if used + len <= max_chars {
            chosen.push(i);
            used += len;
        }
        if chosen.len() == MAX_SENTENCES {
            break;
        }
    }
    if chosen.is_empty() {
        // Every sentence is longer than the budget: cut the first.
        return crate::text::shorten(sentences[0], max_chars);
    }
    chosen.sort_unstable();
    chosen.iter().map(|&i| sentences[i]).collect::<Vec<_>>().join(" ")
}

/// Removes "The post X appeared first on Y." and trailing "Continue
/// reading" / "Read more" / "[…]" links.
pub fn strip_boilerplate(text: &str) -> String {
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = text.to_lowercase();
    // `to_lowercase` can change byte lengths, so positions are searched in
    // the lower-cased text only where both agree (ASCII prefix).
    if let Some(at) = lower.rfind("the post ")
        && lower[at..].contains(" appeared first on ")
        && text.is_char_boundary(at)
        && lower.len() == text.len()
    {
        text.truncate(at);
    }
    loop {
        let trimmed = text.trim_end().trim_end_matches(['→', '»', '›', ':']).trim_end();
        let lower = trimmed.to_lowercase();
        let Some(trailer) = TRAILERS.iter().find(|t| lower.ends_with(*t)) else {
            let len = trimmed.len();
            text.truncate(len);
            break;
        };
        if lower.len() != trimmed.len() {
            break;
        }
        let len = trimmed.len() - trailer.len();
        text.truncate(len);
    }
    text.trim().to_string()
}

/// Sentences of `text`: split after `.`, `!` or `?` followed by a space and
/// an upper-case letter, a digit or a quote — not after initials and common
/// abbreviations ("U.S.", "e.g.", "Dr.").
pub(crate) fn split_sentences(text: &str) -> Vec<&str> {
    const ABBREVIATIONS: &[&str] = &[
        "e.g", "i.e", "etc", "vs", "mr", "mrs", "ms", "dr", "prof", "inc", "ltd", "co", "corp", "jr", "sr", "st", "no",
        "fig", "approx",
    ];
    let mut sentences = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    for w in 0..chars.len() {
        let (at, c) = chars[w];
        if !matches!(c, '.' | '!' | '?') {
            continue;
        }
        let (Some(&(_, space)), Some(&(_, next))) = (chars.get(w + 1), chars.get(w + 2)) else {
            continue;
        };
        if space != ' ' || !(next.is_uppercase() || next.is_ascii_digit() || matches!(next, '"' | '“' | '\'')) {
            continue;
        }
        if c == '.' {
            let word = text[start..at].rsplit(' ').next().unwrap_or_default().to_lowercase();
            let initial = word.chars().count() == 1 || word.contains('.');
            if initial || ABBREVIATIONS.contains(&word.as_str()) {
                continue;
            }
        }
        let end = at + c.len_utf8();
        let sentence = text[start..end].trim();
        if !sentence.is_empty() {
            sentences.push(sentence);
        }
        start = end;
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        sentences.push(rest);
    }
    sentences
}

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 1)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
}

fn word_frequency(sentences: &[&str]) -> BTreeMap<String, usize> {
    let mut frequency = BTreeMap::new();
    for s in sentences {
        for w in words(s) {
            *frequency.entry(w).or_insert(0) += 1;
        }
    }
    frequency
}

fn sentence_score(index: usize, sentence: &str, frequency: &BTreeMap<String, usize>, title: &HashSet<String>) -> f64 {
    let words: Vec<String> = words(sentence).collect();
    if words.is_empty() {
        return 0.0;
    }
    // Words used again elsewhere in the text carry its topic.
    let topical: usize = words
        .iter()
        .map(|w| frequency.get(w).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    let in_title = words.iter().filter(|w| title.contains(*w)).count();
    let density = (topical as f64 + 2.0 * in_title as f64) / (words.len() as f64).sqrt();
    // Leads carry the news; fragments and run-ons rarely do.
    let position = match index {
        0 => 1.5,
        1 => 1.15,
        _ => 1.0,
    };
    let chars = sentence.chars().count();
    let shape = if chars < 40 {
        0.5
    } else if chars > 400 {
        0.7
    } else {
        1.0
    };
    (density + 0.1) * position * shape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boilerplate_is_removed() {
        let cases = [
            (
                "Patch now. The post Critical flaw in Foo appeared first on Example News.",
                "Patch now.",
            ),
            ("A new release is out. Continue reading →", "A new release is out."),
            (
                "Kernel 7.1 ships with a new scheduler […]",
                "Kernel 7.1 ships with a new scheduler",
            ),
            ("Short and clean.", "Short and clean."),
            ("Details inside. Read more »", "Details inside."),
        ];
        for (input, want) in cases {
            assert_eq!(strip_boilerplate(input), want, "{input}");
        }
    }

    #[test]
    fn sentences_split_but_not_after_abbreviations() {
        let s = split_sentences("The U.S. agency acted on Monday. Dr. Smith said so! Is 2027 next? \"Yes,\" she said.");
        assert_eq!(
            s,
            [
                "The U.S. agency acted on Monday.",
                "Dr. Smith said so!",
                "Is 2027 next?",
                "\"Yes,\" she said."
            ]
        );
    }

    #[test]
    fn a_short_summary_is_kept_as_is() {
        let text = "A ransomware gang hit a port operator; ships are delayed.";
        assert_eq!(tldr("Port hit by ransomware", text, 320), text);
    }

    #[test]
    fn a_long_text_becomes_its_key_sentences_in_order() {
        let title = "Ransomware attack halts container port operations";
        let text = "Operations at the largest container port in the region stopped on Tuesday after a ransomware attack. \
            The weather was mild and the coffee in the canteen was reportedly excellent that morning. \
            The port operator said the ransomware encrypted the systems that schedule container cranes. \
            Several journalists attended a press conference that ran for about an hour in total. \
            Officials expect container operations to resume once the ransomware is removed from backups. \
            The post Ransomware attack halts port appeared first on Harbour Wire.";
        let got = tldr(title, text, 320);
        assert!(got.starts_with("Operations at the largest container port"), "{got}");
        assert!(got.contains("encrypted the systems"), "{got}");
        assert!(!got.contains("coffee"), "{got}");
        assert!(!got.contains("appeared first"), "{got}");
        assert!(got.chars().count() <= 320, "{got}");
        // The same input always gives the same TL;DR.
        assert_eq!(got, tldr(title, text, 320));
    }

    #[test]
    fn one_endless_sentence_is_cut() {
        let text = "word ".repeat(200);
        let got = tldr("t", &text, 100);
        assert!(got.chars().count() <= 101 && got.ends_with('…'), "{got}");
    }
}
