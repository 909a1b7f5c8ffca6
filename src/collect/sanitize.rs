//! Making feed text safe and clean: an ammonia allow-list for HTML, plain
//! text for ranking and text mail, canonical links without tracking
//! parameters.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

use url::Url;

/// Query parameters that only track the reader; removed from every link.
const TRACKING_PARAMS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "gbraid",
    "wbraid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "yclid",
    "_hsenc",
    "_hsmi",
    "mkt_tok",
    "igshid",
    "ref_src",
    "oly_enc_id",
    "oly_anon_id",
    "vero_id",
    "__s",
    "s_cid",
];

fn is_tracking_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("utm_") || TRACKING_PARAMS.contains(&lower.as_str())
}

/// Absolute http(s) URL, resolved against `base`, without fragment or
/// tracking parameters, host lower-cased (the url crate does that). `None`
/// for anything that is not http(s).
pub fn canonical_link(raw: &str, base: Option<&Url>) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let mut url = match Url::parse(raw) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(raw).ok()?,
        Err(_) => return None,
    };
    if url.scheme() != "http" && url.scheme() != "https" {
        return None;
    }
    url.set_fragment(None);
    if url.query().is_some() {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    Some(url.to_string())
}

/// The HTML cleaner for one feed: relative links resolve against `base`.
pub struct Sanitizer {
    builder: ammonia::Builder<'static>,
}

impl Sanitizer {
    pub fn new(base: Option<Url>) -> Self {
        let mut b = ammonia::Builder::empty();
        let filter_base = base.clone();
        b.tags(HashSet::from([
            "a",
            "abbr",
            "b",
            "blockquote",
            "br",
            "cite",
            "code",
            "del",
            "em",
            "h3",
            "h4",
            "i",
            "ins",
            "li",
            "ol",
            "p",
            "pre",
            "q",
            "s",
            "small",
            "strong",
            "sub",
            "sup",
            "u",
            "ul",
        ]))
        .clean_content_tags(HashSet::from([
            "script", "style", "iframe", "noscript", "template", "textarea", "select", "object", "embed", "svg",
            "math", "title",
        ]))
        // `Builder::empty()` empties only the tags: without this, `lang`
        // and `title` stay allowed on every element (found by fuzzing).
        .generic_attributes(HashSet::new())
        .tag_attributes(std::collections::HashMap::from([
            ("a", HashSet::from(["href", "title"])),
            ("abbr", HashSet::from(["title"])),
        ]))
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true)
        .attribute_filter(move |element, attribute, value| {
            if element == "a" && attribute == "href" && !value.starts_with("mailto:") {
                // Runs before url_relative: resolve here, and drop what is not http(s).
                return canonical_link(value, filter_base.as_ref()).map(Cow::Owned);
            }
            Some(Cow::Borrowed(value))
        });
        match base {
            Some(base) => b.url_relative(ammonia::UrlRelative::RewriteWithBase(base)),
            None => b.url_relative(ammonia::UrlRelative::Deny),
        };
        Sanitizer { builder: b }
    }

    /// Allow-listed HTML: no script, style, frame, form, event handler,
    /// `javascript:`/`data:` URL or image (so no tracking pixel).
    pub fn clean_html(&self, html: &str) -> String {
        self.builder.clean(html).to_string().trim().to_string()
    }
}

/// Visible text of an HTML fragment on one line: entities decoded, the
/// content of script, style and similar elements dropped, block elements
/// and line breaks separating words, white space and control characters
/// collapsed to single spaces. html5ever's tokenizer (the parser ammonia
/// uses) does the HTML; a layout engine such as html2text would also wrap
/// and indent text only to have it flattened again — a fifth of a collect's
/// CPU time when it did this job.
pub fn html_to_text(html: &str) -> String {
    use html5ever::tendril::StrTendril;
    use html5ever::tokenizer::{BufferQueue, Tokenizer, TokenizerOpts};
    if !html.contains(['<', '&']) {
        return crate::text::clean_line(html);
    }
    let sink = TextSink {
        line: RefCell::new(crate::text::OneLine::with_capacity(html.len())),
        hidden: Cell::new(0),
    };
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(html));
    // The sink never pauses the tokenizer (it never asks to run a script),
    // so one feed consumes the whole input.
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.line.into_inner().out
}

/// Elements whose content is never shown as text. The first group holds
/// raw text (the tokenizer must be told, as a tree builder would); the
/// second holds markup, counted so nested elements close properly.
const RAW_HIDDEN: &[&str] = &[
    "script", "style", "iframe", "noscript", "noembed", "noframes", "xmp", "textarea", "title",
];
const NESTED_HIDDEN: &[&str] = &["template", "svg", "math", "select", "object", "head"];
/// Elements that separate words: "<p>a</p><p>b</p>" reads "a b", where
/// inline elements ("<b>a</b>b") join.
const BREAKING: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

struct TextSink {
    line: RefCell<crate::text::OneLine>,
    /// Depth inside hidden elements; text counts only at 0.
    hidden: Cell<u32>,
}

impl html5ever::tokenizer::TokenSink for TextSink {
    type Handle = ();

    fn process_token(
        &self,
        token: html5ever::tokenizer::Token,
        _line: u64,
    ) -> html5ever::tokenizer::TokenSinkResult<()> {
        use html5ever::tokenizer::states::RawKind;
        use html5ever::tokenizer::{TagKind, Token, TokenSinkResult};
        match token {
            Token::CharacterTokens(text) if self.hidden.get() == 0 => self.line.borrow_mut().push(&text),
            Token::NullCharacterToken => self.line.borrow_mut().separate(),
            Token::TagToken(tag) => {
                let name: &str = &tag.name;
                let opening = tag.kind == TagKind::StartTag && !tag.self_closing;
                if RAW_HIDDEN.contains(&name) || NESTED_HIDDEN.contains(&name) {
                    let depth = self.hidden.get();
                    if opening {
                        self.hidden.set(depth + 1);
                    } else if tag.kind == TagKind::EndTag {
                        self.hidden.set(depth.saturating_sub(1));
                    }
                    if opening && RAW_HIDDEN.contains(&name) {
                        let kind = match name {
                            "script" => RawKind::ScriptData,
                            "textarea" | "title" => RawKind::Rcdata,
                            _ => RawKind::Rawtext,
                        };
                        return TokenSinkResult::RawData(kind);
                    }
                } else if BREAKING.contains(&name) {
                    self.line.borrow_mut().separate();
                }
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Repairs text that went through a wrong decoding once: UTF-8 bytes read
/// as windows-1252 ("CafÃ©", "â€™") or as Thai windows-874 ("๐Ÿ–ฅ๏ธ" for
/// "🖥️"; such decoders fall back to windows-1252 for the bytes 0x80–0x9F).
/// The text is mapped back to bytes through the suspected table; if every
/// character fits and the bytes read as UTF-8 with non-ASCII text, that was
/// the real text. A sequence cut short (a byte the wrong decoder dropped)
/// is tolerated once. Anything else is left alone.
pub fn repair_mojibake(text: &str) -> Cow<'_, str> {
    // Mojibake of UTF-8 always contains one of these lead characters.
    const MARKERS: &[char] = &[
        'Ã', 'Â', 'â', 'ð', 'Å', 'Ä', 'Ð', 'Ñ', 'Ø', 'Ù', 'à', 'ï', 'Î', 'Ï', 'ã', 'ä', 'å', '๐', '๏', 'เ', 'โ', 'ใ',
        'ไ',
    ];
    if text.is_ascii() || !text.contains(MARKERS) {
        return Cow::Borrowed(text);
    }
    for table in [&*WINDOWS_1252_BYTES, &*WINDOWS_874_BYTES] {
        let Some(bytes) = text
            .chars()
            .map(|c| table.get(&c).copied())
            .collect::<Option<Vec<u8>>>()
        else {
            continue;
        };
        if bytes.is_ascii() {
            continue;
        }
        let fixed = match std::str::from_utf8(&bytes) {
            Ok(f) => f.to_string(),
            Err(_) => {
                let lossy = String::from_utf8_lossy(&bytes);
                if lossy.matches('\u{FFFD}').count() > 1 {
                    continue;
                }
                lossy.replace('\u{FFFD}', "")
            }
        };
        if !fixed.is_ascii() && fixed.chars().count() < text.chars().count() {
            return Cow::Owned(fixed);
        }
    }
    Cow::Borrowed(text)
}

/// Character → byte for a single-byte table, with windows-1252 for what the
/// table leaves undefined and C1 controls passed through as their byte.
fn byte_table(encoding: &'static encoding_rs::Encoding) -> std::collections::HashMap<char, u8> {
    let mut map = std::collections::HashMap::new();
    for b in 0u8..=255 {
        if (0x80..=0x9F).contains(&b) {
            map.insert(char::from(b), b);
        }
    }
    for enc in [encoding_rs::WINDOWS_1252, encoding] {
        for b in 0u8..=255 {
            let byte = [b];
            let (decoded, had_errors) = enc.decode_without_bom_handling(&byte);
            if let (false, Some(c)) = (had_errors, decoded.chars().next()) {
                map.insert(c, b);
            }
        }
    }
    map
}

static WINDOWS_1252_BYTES: std::sync::LazyLock<std::collections::HashMap<char, u8>> =
    std::sync::LazyLock::new(|| byte_table(encoding_rs::WINDOWS_1252));
static WINDOWS_874_BYTES: std::sync::LazyLock<std::collections::HashMap<char, u8>> =
    std::sync::LazyLock::new(|| byte_table(encoding_rs::WINDOWS_874));

/// Text to HTML, for summaries that a feed gives as plain text.
pub fn text_to_html(text: &str) -> String {
    let escaped = text
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    format!("<p>{escaped}</p>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracking_parameters_and_fragments_go() {
        let base = Url::parse("https://Example.COM/feed/").ok();
        assert_eq!(
            canonical_link("/a/b?id=3&utm_source=x&fbclid=y#top", base.as_ref()).as_deref(),
            Some("https://example.com/a/b?id=3")
        );
        assert_eq!(
            canonical_link("https://EXAMPLE.com:443/x?utm_medium=rss", None).as_deref(),
            Some("https://example.com/x")
        );
        assert_eq!(canonical_link("javascript:alert(1)", base.as_ref()), None);
        assert_eq!(canonical_link("rel/path", None), None);
    }

    #[test]
    fn hostile_html_is_neutralised() {
        let s = Sanitizer::new(Url::parse("https://news.example/").ok());
        let dirty = r#"<p onclick="x()">Hi <script>alert(1)</script><a href="javascript:alert(2)">j</a>
            <a href="/story?utm_source=feed">rel</a><img src="https://t.example/pixel.gif">
            <iframe src="https://evil.example">fallback</iframe><style>p{}</style>
            <a href="data:text/html,hi">d</a><form action="/x"><input></form></p>"#;
        let clean = s.clean_html(dirty);
        for bad in [
            "script",
            "onclick",
            "javascript:",
            "<img",
            "iframe",
            "<style",
            "data:",
            "<form",
            "<input",
            "alert",
        ] {
            assert!(!clean.contains(bad), "{bad} survived in {clean}");
        }
        assert!(clean.contains(r#"href="https://news.example/story""#), "{clean}");
        assert!(clean.contains(r#"rel="noopener noreferrer""#), "{clean}");
        // Only the listed attributes, on the listed elements (found by fuzzing:
        // ammonia's defaults allowed `title` and `lang` everywhere).
        let clean =
            s.clean_html(r#"<p title lang="en" x>a</p><abbr title="t" lang="en">b</abbr><a title="u" href="/x">c</a>"#);
        assert_eq!(
            clean,
            r#"<p>a</p><abbr title="t">b</abbr><a title="u" href="https://news.example/x" rel="noopener noreferrer">c</a>"#
        );
    }

    #[test]
    fn mojibake_is_repaired_and_real_text_left_alone() {
        assert_eq!(repair_mojibake("CafÃ© â€” menu"), "Café — menu");
        assert_eq!(repair_mojibake("๐Ÿ–ฅ๏ธ\u{8f} Weekly"), "🖥️ Weekly");
        // The same with the invisible last byte lost on the way.
        assert_eq!(repair_mojibake("๐Ÿ–ฅ๏ธ Weekly"), "🖥 Weekly");
        for fine in ["Café — menu", "Ünïcödé", "東京 🖥️", "plain", "Ça va, Ø"] {
            assert_eq!(repair_mojibake(fine), fine);
        }
    }

    #[test]
    fn text_is_flattened() {
        assert_eq!(html_to_text("<p>One &amp; two</p>\n<p>three</p>"), "One & two three");
        // Inline elements join words, blocks and line breaks separate them.
        assert_eq!(
            html_to_text("a<b>b</b>c<br>d<ul><li>x</li><li>y</li></ul>z"),
            "abc d x y z"
        );
        assert_eq!(html_to_text("<table><tr><td>a</td><td>b</td></tr></table>"), "a b");
        // Raw feed text: no script, style or template content, even with
        // markup-like text inside it.
        assert_eq!(
            html_to_text(
                "<script>if (a < b) alert('</p>')</script>Title <style>p{}</style>x<template><p>t</p></template>"
            ),
            "Title x"
        );
        assert_eq!(
            html_to_text("AT&amp;T &lt;b&gt;&nbsp;caf&#233; <!-- c -->ok"),
            "AT&T <b> café ok"
        );
        assert_eq!(html_to_text("plain\u{0}text\u{FEFF} é"), "plain text é");
        assert_eq!(crate::text::clean_line("a\r\nb\u{0}c\t d"), "a b c d");
    }
}
