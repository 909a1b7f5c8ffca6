//! Small text helpers that several stages share: one-line text for
//! headers and names, shortening, HTML escaping, and defusing the old
//! per-subscriber markers. Sanitising feed HTML lives in
//! `collect::sanitize`; this module holds nothing feed-specific.

/// Breaks text that looks like the fixed per-subscriber markers of issues
/// stored by earlier versions (`TIDINGSx…`), so that no stored text can
/// become a reader's value even where such an issue is still delivered.
pub fn defuse_markers(s: String) -> String {
    if s.contains("TIDINGSx") {
        s.replace("TIDINGSx", "TIDINGS-x")
    } else {
        s
    }
}

/// One line of plain text: control characters (CR, LF, NUL, …) and runs of
/// white space become single spaces; text-direction overrides, embeddings
/// and isolates are dropped, since they can make a terminal or a page show
/// the line in another order than it has (names, titles, bounce reasons).
pub fn clean_line(s: &str) -> String {
    let mut line = OneLine::with_capacity(s.len());
    line.push(s);
    line.out
}

/// Text written as one line, a space wherever white space, a control
/// character or a block boundary was, none at either end.
pub(crate) struct OneLine {
    pub(crate) out: String,
    /// A separator seen since the last word: written before the next one.
    space: bool,
}

impl OneLine {
    pub(crate) fn with_capacity(n: usize) -> Self {
        OneLine {
            out: String::with_capacity(n),
            space: false,
        }
    }

    pub(crate) fn separate(&mut self) {
        self.space = !self.out.is_empty();
    }

    pub(crate) fn word(&mut self, w: &str) {
        if self.space {
            self.out.push(' ');
            self.space = false;
        }
        self.out.push_str(w);
    }

    pub(crate) fn push(&mut self, s: &str) {
        let bytes = s.as_bytes();
        let mut at = 0;
        while at < bytes.len() {
            let b = bytes[at];
            if b.is_ascii_graphic() {
                // Runs of printable ASCII are copied whole: most text is.
                let start = at;
                while at < bytes.len() && bytes[at].is_ascii_graphic() {
                    at += 1;
                }
                self.word(&s[start..at]);
            } else if b.is_ascii() {
                self.separate();
                at += 1;
            } else {
                let Some(c) = s[at..].chars().next() else { break };
                let len = c.len_utf8();
                if c.is_whitespace() || c.is_control() || c == '\u{FEFF}' {
                    self.separate();
                } else if is_direction_control(c) {
                    // Dropped without a space: it stood between letters.
                } else {
                    self.word(&s[at..at + len]);
                }
                at += len;
            }
        }
    }
}

/// U+202A–U+202E and U+2066–U+2069: characters that reorder the text
/// around them when it is shown.
fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// At most `max` characters, cut at a word boundary when one is near, with
/// an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = match cut.rfind(' ') {
        Some(at) if at > max / 2 => &cut[..at],
        _ => cut.as_str(),
    };
    format!(
        "{}…",
        cut.trim_end_matches(|c: char| c.is_whitespace() || c == ',' || c == '.')
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_loses_controls_and_direction_overrides() {
        assert_eq!(clean_line("550 \u{1b}[31mred\u{7}\0 user"), "550 [31mred user");
        assert_eq!(clean_line("invoice\u{202E}fdp.exe"), "invoicefdp.exe");
        assert_eq!(clean_line("a\u{2066}b\u{2069} \u{200F}c"), "ab \u{200F}c");
    }
}
