//! The model's answer, read strictly: the schema's fields and nothing
//! else, none empty or too long, no links, in the sources' language, then
//! marked by the grounding check. Anything else is a [`Rejection`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::grounding::Evidence;
use super::prompt::{MAX_FIELD, MAX_TAKEAWAY, MAX_TLDR};
use crate::domain::{AudienceText, Card, CardSource, CardText, MAX_TAKEAWAYS, Takeaway};

/// Why an answer was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    tldr: String,
    what_changed: String,
    why_it_matters: BTreeMap<String, String>,
    what_to_do_next: String,
    takeaways: Vec<RawTakeaway>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTakeaway {
    text: String,
    sources: Vec<usize>,
}

/// What a card is checked against: the sources the model read, in order.
pub struct CardInput<'a> {
    pub sources: Vec<(CardSource, &'a str)>,
    pub audiences: &'a [String],
    pub model: &'a str,
    pub now: DateTime<Utc>,
}

/// Reads `answer` as a card for `input`.
pub fn read_card(answer: &str, input: &CardInput<'_>) -> Result<Card, Rejection> {
    let raw: RawCard =
        serde_json::from_str(answer.trim()).map_err(|e| Rejection(format!("not a card in the schema: {e}")))?;
    let expected: Vec<&String> = input.audiences.iter().collect();
    let given: Vec<&String> = raw.why_it_matters.keys().collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    if given != expected_sorted {
        return Err(Rejection(format!(
            "why_it_matters is for {given:?}; the story ranks for {expected_sorted:?}"
        )));
    }
    if raw.takeaways.len() > MAX_TAKEAWAYS {
        return Err(Rejection(format!(
            "{} takeaways; at most {MAX_TAKEAWAYS}",
            raw.takeaways.len()
        )));
    }
    let all_text: Vec<&str> = input.sources.iter().map(|(_, t)| *t).collect();
    let evidence = Evidence::of(all_text.iter().copied());
    let source_language = language(&all_text.join(" "));
    let field = |name: &str, text: &str, max: usize, evidence: &Evidence| -> Result<CardText, Rejection> {
        let text = clean_field(name, text, max)?;
        if let (Some(want), Some(got)) = (source_language, language(&text))
            && want != got
        {
            return Err(Rejection(format!(
                "{name} is in {} but the sources are in {}",
                got.eng_name(),
                want.eng_name()
            )));
        }
        Ok(CardText {
            grounding: evidence.check(&text),
            text,
        })
    };
    // One sentence each, as the card promises: the first is kept.
    let tldr = field("tldr", &first_sentence(&raw.tldr), MAX_TLDR, &evidence)?;
    let what_changed = field("what_changed", &raw.what_changed, MAX_FIELD, &evidence)?;
    let mut why_it_matters = Vec::new();
    for audience in input.audiences {
        let text = raw.why_it_matters.get(audience).map(String::as_str).unwrap_or_default();
        why_it_matters.push(AudienceText {
            audience: audience.clone(),
            text: field(
                &format!("why_it_matters.{audience}"),
                &first_sentence(text),
                MAX_FIELD,
                &evidence,
            )?,
        });
    }
    let what_to_do_next = field("what_to_do_next", &raw.what_to_do_next, MAX_FIELD, &evidence)?;
    let mut takeaways: Vec<Takeaway> = Vec::new();
    for (i, t) in raw.takeaways.iter().enumerate() {
        let mut cited: Vec<usize> = t.sources.clone();
        cited.sort_unstable();
        cited.dedup();
        if cited.is_empty() || cited.iter().any(|&n| n == 0 || n > input.sources.len()) {
            return Err(Rejection(format!(
                "takeaways[{i}] cites sources {:?}; there are {}",
                t.sources,
                input.sources.len()
            )));
        }
        // Its figures must be in the sources it cites.
        let cited_evidence = Evidence::of(cited.iter().map(|&n| input.sources[n - 1].1));
        let text = field(&format!("takeaways[{i}]"), &t.text, MAX_TAKEAWAY, &cited_evidence)?;
        // The same point twice is said once.
        if takeaways.iter().any(|k| k.text.text.eq_ignore_ascii_case(&text.text)) {
            continue;
        }
        takeaways.push(Takeaway { text, sources: cited });
    }
    Ok(Card {
        tldr,
        what_changed,
        why_it_matters,
        what_to_do_next,
        takeaways,
        sources: input.sources.iter().map(|(s, _)| s.clone()).collect(),
        model: input.model.to_string(),
        drafted_at: input.now,
    })
}

/// The first sentence of `text` (all of it when it is one), on one line.
fn first_sentence(text: &str) -> String {
    let line = crate::text::clean_line(text);
    crate::render::tldr::split_sentences(&line)
        .first()
        .map(|s| s.to_string())
        .unwrap_or(line)
}

/// A field as plain text on one line: never empty, never longer than
/// `max`, never a link.
pub(crate) fn clean_field(name: &str, text: &str, max: usize) -> Result<String, Rejection> {
    let text = crate::text::defuse_markers(crate::text::clean_line(text));
    let text = text.trim().to_string();
    if text.chars().filter(|c| c.is_alphanumeric()).count() < 2 {
        return Err(Rejection(format!("{name} is empty")));
    }
    let len = text.chars().count();
    if len > max {
        return Err(Rejection(format!("{name} is {len} characters long; at most {max}")));
    }
    if let Some(link) = text.split_whitespace().find(|w| looks_like_link(w)) {
        return Err(Rejection(format!(
            "{name} holds a link ({})",
            crate::text::shorten(link, 60)
        )));
    }
    if text.chars().any(|c| matches!(c, '<' | '>')) {
        return Err(Rejection(format!("{name} holds markup")));
    }
    if repeats_itself(&text) {
        return Err(Rejection(format!("{name} repeats itself")));
    }
    Ok(text)
}

/// A text that says one sentence three times or more: what small models
/// write when they run out of things to say.
fn repeats_itself(text: &str) -> bool {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for sentence in text.split(['.', '!', '?']) {
        let key: String = sentence.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
        if key.split(' ').count() < 4 {
            continue;
        }
        let n = seen.entry(key).or_default();
        *n += 1;
        if *n >= 3 {
            return true;
        }
    }
    false
}

/// Top-level domains a link written without a scheme or path ends in
/// (the common ones and those reserved for examples and tests).
const TLDS: &[&str] = &[
    "com", "org", "net", "io", "ai", "dev", "co", "gov", "edu", "info", "biz", "app", "xyz", "me", "ly", "tv", "uk",
    "de", "fr", "eu", "us", "ru", "cn", "in", "site", "online", "link", "top", "example", "test", "invalid", "local",
    "onion", "zip", "click", "sh", "gg", "to",
];

/// A word that is, or hides, a link: a scheme, `www.`, `mailto:`, a
/// markdown link, a host followed by a path (`evil.example/x`), or a host
/// with a known top-level domain (`evil.com`).
pub(crate) fn looks_like_link(word: &str) -> bool {
    // A scheme separator anywhere in the word, before any trimming: the
    // fuzzer found "://rt." slipping through once the colon was trimmed.
    if word.contains("://") {
        return true;
    }
    let w = word
        .trim_matches(|c: char| !c.is_alphanumeric() && c != '/')
        .to_ascii_lowercase();
    if w.starts_with("www.") || w.starts_with("mailto:") || w.contains("](") {
        return true;
    }
    // Protocol-relative: //host/path.
    if let Some(rest) = w.strip_prefix("//") {
        return looks_like_link(&format!("{rest}/"));
    }
    let (host, path) = match w.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (w.as_str(), None),
    };
    // An address's domain is a host too: it leads somewhere just the same.
    let host = host.rsplit('@').next().unwrap_or_default();
    let labels: Vec<&str> = host.split('.').collect();
    let host_like = labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        && labels[0].chars().any(|c| c.is_ascii_alphabetic())
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    host_like && (path.is_some() || labels.last().is_some_and(|tld| TLDS.contains(tld)))
}

/// The language of `text` when it is long enough to tell reliably.
pub(crate) fn language_of(text: &str) -> Option<whatlang::Lang> {
    language(text)
}

fn language(text: &str) -> Option<whatlang::Lang> {
    if text.split_whitespace().count() < 8 {
        return None;
    }
    whatlang::detect(text).filter(|i| i.is_reliable()).map(|i| i.lang())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STORY: &str = "Acme disclosed a ransomware breach on Monday that exposed 1,400 customer records. \
        The company said attackers used stolen credentials and that it has reset every password.";

    fn input<'a>(sources: &'a [&'a str], audiences: &'a [String]) -> CardInput<'a> {
        CardInput {
            sources: sources
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        CardSource {
                            story_id: i as i64 + 1,
                            source: format!("S{i}"),
                            link: format!("https://example.com/{i}"),
                        },
                        *t,
                    )
                })
                .collect(),
            audiences,
            model: "m",
            now: DateTime::UNIX_EPOCH,
        }
    }

    fn answer(tldr: &str, takeaway: &str, cites: &str) -> String {
        format!(
            r#"{{"tldr": "{tldr}", "what_changed": "Acme reset every password after the breach.",
               "why_it_matters": {{"security": "Stolen credentials keep opening doors for ransomware crews."}},
               "what_to_do_next": "Check whether your team reuses passwords at Acme.",
               "takeaways": [{{"text": "{takeaway}", "sources": {cites}}}]}}"#
        )
    }

    #[test]
    fn a_card_in_the_schema_is_read_and_marked() {
        let audiences = vec!["security".to_string()];
        let card = read_card(
            &answer(
                "Acme lost 1,400 customer records to a ransomware crew.",
                "About 2,000 records leaked.",
                "[1]",
            ),
            &input(&[STORY], &audiences),
        )
        .expect("card");
        assert!(card.tldr.verified());
        assert_eq!(card.why_it_matters[0].audience, "security");
        assert!(!card.takeaways[0].text.verified());
        assert_eq!(card.takeaways[0].text.grounding.unsupported, vec!["2,000"]);
        assert_eq!(card.unverified_fields(), vec![crate::domain::CardField::Takeaways]);
    }

    #[test]
    fn a_takeaway_is_checked_against_the_sources_it_cites() {
        let audiences = vec!["security".to_string()];
        let other = "A second report says the breach began 3 weeks ago and that no ransom was paid by the firm.";
        let sources = [STORY, other];
        let cites_second = read_card(
            &answer("Acme was breached.", "It began 3 weeks ago.", "[2]"),
            &input(&sources, &audiences),
        )
        .expect("card");
        assert!(cites_second.takeaways[0].text.verified());
        let cites_first = read_card(
            &answer("Acme was breached.", "It began 3 weeks ago.", "[1]"),
            &input(&sources, &audiences),
        )
        .expect("card");
        assert!(!cites_first.takeaways[0].text.verified());
        let out_of_range = read_card(
            &answer("Acme was breached.", "It began.", "[3]"),
            &input(&sources, &audiences),
        );
        assert!(out_of_range.is_err());
    }

    #[test]
    fn answers_out_of_schema_are_rejected() {
        let audiences = vec!["security".to_string()];
        let i = input(&[STORY], &audiences);
        for (bad, why) in [
            ("not json", "not a card"),
            (r#"{"tldr": "x"}"#, "not a card"),
            (
                &answer("Acme was breached.", "Point.", "[1]").replace("\"takeaways\"", "\"extra\": 1, \"takeaways\""),
                "not a card",
            ),
            (&answer("", "Point.", "[1]"), "tldr is empty"),
            (&answer(&"long ".repeat(100), "Point.", "[1]"), "characters long"),
            (
                &answer("See https://evil.example for more.", "Point.", "[1]"),
                "holds a link",
            ),
            (&answer("See evil.com for more.", "Point.", "[1]"), "holds a link"),
            (&answer("Acme <b>was</b> breached.", "Point.", "[1]"), "markup"),
            (
                &answer(
                    "Acme was breached.",
                    &"The clinic has not said how they got in. ".repeat(3),
                    "[1]",
                ),
                "repeats itself",
            ),
            (
                &answer(
                    "Acme a été victime d'une attaque par rançongiciel qui a touché les données de ses clients lundi.",
                    "Point.",
                    "[1]",
                ),
                "is in French",
            ),
            (
                &answer("Acme was breached.", "Point.", "[1]").replace("\"security\"", "\"other\""),
                "ranks for",
            ),
        ] {
            let err = read_card(bad, &i).expect_err(bad);
            assert!(err.0.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn the_tldr_and_why_it_matters_are_one_sentence() {
        let audiences = vec!["security".to_string()];
        let two = answer(
            "Acme lost 1,400 records to a ransomware crew. It said so on Monday, e.g. in a filing.",
            "Point.",
            "[1]",
        );
        let card = read_card(&two, &input(&[STORY], &audiences)).expect("card");
        assert_eq!(card.tldr.text, "Acme lost 1,400 records to a ransomware crew.");
        assert_eq!(
            card.why_it_matters[0].text.text,
            "Stolen credentials keep opening doors for ransomware crews."
        );
    }

    #[test]
    fn the_same_takeaway_twice_is_kept_once() {
        let audiences = vec!["security".to_string()];
        let twice = answer("Acme was breached.", "Passwords were reset.", "[1]").replace(
            r#""takeaways": ["#,
            r#""takeaways": [{"text": "passwords were reset.", "sources": [1]}, "#,
        );
        let card = read_card(&twice, &input(&[STORY], &audiences)).expect("card");
        assert_eq!(card.takeaways.len(), 1);
    }

    #[test]
    fn links_are_recognised_in_their_disguises() {
        for w in [
            "https://a.b",
            "www.example.org",
            "example.com/path",
            "(evil.io)",
            "mailto:x@y.z",
            "[a](b)",
            "evil.example/collect",
            "admin@evil.example",
            "evil.example.",
            "://rt.",
            "(://x)",
            "//evil.example/path",
        ] {
            assert!(looks_like_link(w), "{w}");
        }
        for w in ["U.S.", "3.5", "e.g.", "Node.js", "v1.2.3", "end.", "and/or", "24/7"] {
            assert!(!looks_like_link(w), "{w}");
        }
    }
}
