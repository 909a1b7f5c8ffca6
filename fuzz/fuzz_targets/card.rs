//! A model's answer → a card, as the briefing reads it: whatever the
//! answer, a card that comes out is within its bounds — plain one-line
//! text of the allowed lengths, no link or markup, at most five takeaways
//! citing sources that exist — and every figure the grounding check
//! reports is written in the field it marks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::brief::card::{CardInput, read_card};
use tidings::brief::prompt::{MAX_FIELD, MAX_TAKEAWAY, MAX_TLDR};
use tidings::domain::{CardSource, CardText};

const SOURCES: [&str; 2] = [
    "Acme disclosed a ransomware breach on 2026-03-03 that exposed 1,400 records and cost $2.5 million.",
    "A second report says 38 percent of Acme's systems were encrypted within 3 days.",
];

fuzz_target!(|data: &[u8]| {
    let Ok(answer) = std::str::from_utf8(data) else {
        return;
    };
    let audiences = vec!["security".to_string(), "cloud".to_string()];
    let input = CardInput {
        sources: SOURCES
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
        audiences: &audiences,
        model: "m",
        now: chrono::DateTime::UNIX_EPOCH,
    };
    // The check alone, on any text: never a panic, figures found where reported.
    let evidence = tidings::brief::grounding::Evidence::of(SOURCES);
    for figure in evidence.check(answer).unsupported {
        assert!(answer.contains(&figure), "{figure:?} is not in the text");
    }
    let Ok(card) = read_card(answer, &input) else {
        return;
    };
    let check = |t: &CardText, max: usize| {
        assert!(t.text.chars().count() <= max);
        assert!(!t.text.contains("://") && !t.text.contains('<') && !t.text.contains('>'));
        assert!(!t.text.chars().any(char::is_control), "{:?}", t.text);
        assert!(!t.text.contains("TIDINGSx"), "markers are defused");
        for figure in &t.grounding.unsupported {
            assert!(t.text.contains(figure.as_str()), "{figure:?} not in {:?}", t.text);
        }
    };
    check(&card.tldr, MAX_TLDR);
    check(&card.what_changed, MAX_FIELD);
    check(&card.what_to_do_next, MAX_FIELD);
    assert_eq!(card.why_it_matters.len(), audiences.len());
    for w in &card.why_it_matters {
        check(&w.text, MAX_FIELD);
    }
    assert!(card.takeaways.len() <= 5);
    for t in &card.takeaways {
        check(&t.text, MAX_TAKEAWAY);
        assert!(!t.sources.is_empty() && t.sources.iter().all(|n| (1..=SOURCES.len()).contains(n)));
    }
});
