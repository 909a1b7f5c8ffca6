//! The grounding check: every figure a model writes — a number, an amount,
//! a percentage, a date — must appear in the text it was given. Figures
//! are compared as values, so `1,400` matches `1400`, `$75B` matches
//! `$75 billion`, `40%` matches `40 percent`, and `2026-03-03` gives the
//! year, month and day that `March 3, 2026` is checked against.

use crate::domain::Grounding;

/// A figure as compared: its value, and whether it is a percentage (a
/// percentage only matches a percentage).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Figure {
    value: f64,
    percent: bool,
}

/// A figure and where it was written in the text (byte range).
#[derive(Debug, Clone)]
struct Found {
    figure: Figure,
    start: usize,
    end: usize,
    /// Further values it stands for (the parts of an ISO date).
    parts: Vec<f64>,
}

/// The figures of `sources`, ready to check texts against.
pub struct Evidence {
    figures: Vec<Figure>,
}

impl Evidence {
    pub fn of<'a>(sources: impl IntoIterator<Item = &'a str>) -> Evidence {
        let mut figures = Vec::new();
        for text in sources {
            for word in text.split(|c: char| !c.is_alphabetic()) {
                let lower = word.to_lowercase();
                if let Some(month) = MONTHS
                    .iter()
                    .position(|m| lower.len() >= 3 && m.starts_with(&lower) && (lower.len() == 3 || lower == *m))
                {
                    figures.push(Figure {
                        value: (month + 1) as f64,
                        percent: false,
                    });
                }
            }
            for found in figures_in(text) {
                figures.push(found.figure);
                figures.extend(found.parts.iter().map(|&value| Figure { value, percent: false }));
            }
        }
        Evidence { figures }
    }

    fn supports(&self, f: &Figure) -> bool {
        self.figures
            .iter()
            .any(|e| e.percent == f.percent && (e.value - f.value).abs() <= f.value.abs() * 1e-9)
    }

    /// Checks `text` against the evidence.
    pub fn check(&self, text: &str) -> Grounding {
        let mut grounding = Grounding::default();
        for found in figures_in(text) {
            // An ISO date needs its year, month and day; a month may be written as a name.
            let ok = if found.parts.is_empty() {
                self.supports(&found.figure)
            } else {
                found
                    .parts
                    .iter()
                    .all(|&value| self.supports(&Figure { value, percent: false }))
            };
            if ok {
                continue;
            }
            grounding.unsupported.push(text[found.start..found.end].to_string());
            let sentence = sentence_around(text, found.start);
            if !grounding.sentences.contains(&sentence) {
                grounding.sentences.push(sentence);
            }
        }
        grounding
    }
}

/// The sentence of `text` that holds byte `at`.
fn sentence_around(text: &str, at: usize) -> String {
    let is_end = |(i, c): &(usize, char)| {
        matches!(c, '.' | '!' | '?') && text[i + c.len_utf8()..].starts_with(|n: char| n.is_whitespace())
    };
    let start = text[..at]
        .char_indices()
        .rev()
        .find(is_end)
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let end = text[at..]
        .char_indices()
        .map(|(i, c)| (i + at, c))
        .find(is_end)
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(text.len());
    text[start..end].trim().to_string()
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Words that multiply the number before them.
const SCALES: &[(&str, f64)] = &[
    ("thousand", 1e3),
    ("million", 1e6),
    ("mln", 1e6),
    ("billion", 1e9),
    ("bln", 1e9),
    ("bn", 1e9),
    ("trillion", 1e12),
    ("tn", 1e12),
    ("k", 1e3),
    ("m", 1e6),
    ("b", 1e9),
    ("t", 1e12),
];

/// Every figure written in `text`.
fn figures_in(text: &str) -> Vec<Found> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        // An ISO date: 2026-03-03.
        if let Some((end, parts)) = iso_date(bytes, i) {
            out.push(Found {
                figure: Figure {
                    value: parts[0],
                    percent: false,
                },
                start,
                end,
                parts,
            });
            i = end;
            continue;
        }
        // Digits with thousands separators and one decimal point.
        let mut digits = String::new();
        let mut seen_point = false;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_digit() {
                digits.push(b as char);
                i += 1;
            } else if b == b','
                && bytes
                    .get(i + 1..i + 4)
                    .is_some_and(|g| g.iter().all(u8::is_ascii_digit))
                && !bytes.get(i + 4).is_some_and(u8::is_ascii_digit)
                && !seen_point
            {
                i += 1; // a thousands separator: 1,400
            } else if b == b'.' && !seen_point && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
                seen_point = true;
                digits.push('.');
                i += 1;
            } else {
                break;
            }
        }
        let Ok(mut value) = digits.parse::<f64>() else {
            continue;
        };
        let mut end = i;
        let mut percent = false;
        // What follows: a percent sign or word, an ordinal ending, a scale.
        let rest = &text[i..];
        let after_space = rest.trim_start_matches([' ', '\u{a0}']);
        let skipped = rest.len() - after_space.len();
        let lower: String = after_space.chars().take(12).collect::<String>().to_ascii_lowercase();
        let word_end = |w: &str| !lower[w.len()..].chars().next().is_some_and(|c| c.is_alphanumeric());
        if rest.starts_with('%') {
            percent = true;
            end += 1;
        } else if lower.starts_with("percent") && word_end("percent") {
            percent = true;
            end += skipped + "percent".len();
        } else if lower.starts_with("per cent") && word_end("per cent") {
            percent = true;
            end += skipped + "per cent".len();
        } else if let Some(suffix) = ["st", "nd", "rd", "th"]
            .into_iter()
            .find(|s| rest.to_ascii_lowercase().starts_with(s) && !rest[2..].starts_with(char::is_alphanumeric))
        {
            end += suffix.len();
        } else if let Some((word, scale)) = SCALES.iter().find(|(w, _)| {
            lower.starts_with(w)
                && word_end(w)
                // A one-letter scale only right after the digits: "$75B", not "75 m".
                && (w.len() > 1 || skipped == 0)
        }) {
            value *= scale;
            end += skipped + word.len();
        }
        out.push(Found {
            figure: Figure { value, percent },
            start,
            end,
            parts: Vec::new(),
        });
        i = end.max(i);
    }
    out
}

/// `YYYY-MM-DD` at `i`: its end and [year, month, day].
fn iso_date(b: &[u8], i: usize) -> Option<(usize, Vec<f64>)> {
    let s = b.get(i..i + 10)?;
    let digit = |r: std::ops::Range<usize>| s[r].iter().all(u8::is_ascii_digit);
    if !(digit(0..4) && s[4] == b'-' && digit(5..7) && s[7] == b'-' && digit(8..10)) {
        return None;
    }
    if b.get(i + 10).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| std::str::from_utf8(&s[r]).ok()?.parse::<f64>().ok();
    Some((i + 10, vec![n(0..4)?, n(5..7)?, n(8..10)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sources: &[&str], text: &str) -> Vec<String> {
        Evidence::of(sources.iter().copied()).check(text).unsupported
    }

    #[test]
    fn figures_match_as_values_whatever_their_spelling() {
        let source =
            "The breach exposed 1400 accounts and cost $75 billion; 40 percent of users were hit on 2026-03-03.";
        assert!(check(&[source], "About 1,400 accounts were exposed.").is_empty());
        assert!(check(&[source], "Losses reached $75B.").is_empty());
        assert!(check(&[source], "Losses reached 75 billion dollars.").is_empty());
        assert!(check(&[source], "40% of users were affected.").is_empty());
        assert!(check(&[source], "It happened on March 3, 2026.").is_empty());
        assert!(check(&[source], "It happened on the 3rd.").is_empty());
        assert!(check(&["on March 3, 2026"], "on 2026-03-03").is_empty());
        assert_eq!(check(&["on March 3, 2026"], "on 2026-04-03"), vec!["2026-04-03"]);
    }

    #[test]
    fn a_figure_the_sources_lack_is_reported_with_its_sentence() {
        let source = "The breach exposed 1400 accounts.";
        let g = Evidence::of([source]).check("The breach is serious. It exposed 2,000 accounts. Patch now.");
        assert_eq!(g.unsupported, vec!["2,000"]);
        assert_eq!(g.sentences, vec!["It exposed 2,000 accounts."]);
        // A percentage is not the plain number it shares digits with.
        assert_eq!(check(&["40 servers"], "40% of servers"), vec!["40%"]);
        // A scale changes the value: $75 million is not $75 billion.
        assert_eq!(check(&["$75 billion"], "$75 million"), vec!["75 million"]);
        assert_eq!(check(&["in 2025"], "in 2026"), vec!["2026"]);
        assert_eq!(check(&["on 2026-03-03"], "on 2026-03-04"), vec!["2026-03-04"]);
    }

    #[test]
    fn text_without_figures_is_verified() {
        assert!(
            Evidence::of(["nothing here"])
                .check("Patch your servers today.")
                .verified()
        );
        assert!(Evidence::of(Vec::<&str>::new()).check("").verified());
    }

    #[test]
    fn decimals_and_separators_are_read_as_written() {
        assert!(check(&["grew 3.5% to 12,500,000"], "12.5 million, up 3.5%").is_empty());
        assert_eq!(check(&["grew 3.5%"], "grew 3.6%"), vec!["3.6%"]);
        // A comma between numbers is a list, not a separator.
        assert!(check(&["versions 1, 2 and 3"], "versions 1,2").is_empty());
    }
}
