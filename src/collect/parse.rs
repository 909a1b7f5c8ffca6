//! Bytes → feed items. feed-rs does the parsing; this module repairs the
//! character set first and turns feed-rs' model into tidings' own
//! [`ParsedItem`], so feed-rs types never leak past it.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::recover;

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFeed {
    pub title: Option<String>,
    pub link: Option<String>,
    /// RSS `<ttl>`: minutes the feed may be cached.
    pub ttl: Option<u32>,
    pub items: Vec<ParsedItem>,
    /// Items in the document, including any beyond the parse cap.
    pub total_items: usize,
    /// What the recovering path repaired, when it did: `unescaped "&" in
    /// 3 places`. A warning for the operator, not an error.
    pub recovered: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedItem {
    /// The feed's own id (RSS guid, Atom id, JSON Feed id), if it has one.
    pub guid: Option<String>,
    pub title: String,
    /// As written in the feed (possibly relative).
    pub link: Option<String>,
    /// The summary, or the content when there is no summary; HTML.
    pub summary_html: Option<String>,
    pub categories: Vec<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    NotAFeed(String),
    #[error("empty body")]
    Empty,
}

/// Parses RSS 0.9x/1.0/2.0, Atom 0.3/1.0 or JSON Feed. Links stay as
/// written, except where an xml:base makes them absolute: the caller
/// resolves what is still relative against the feed's site link (what
/// publishers mean in practice, even when the feed is hosted elsewhere),
/// else the feed's own URL.
pub fn parse_feed(body: &[u8], http_charset: Option<&str>) -> Result<ParsedFeed, ParseError> {
    parse_feed_capped(body, http_charset, usize::MAX)
}

/// As [`parse_feed`], reading at most `cap` items (in document order). A
/// parsed item costs far more memory than its bytes, so a hostile feed with
/// 100,000 items is cut before parsing, not after.
///
/// Well-formed feeds take the strict path (feed-rs on the bytes). A feed
/// it cannot read, a dialect it does not know, or items it reads only in
/// part take the recovering path ([`super::recover`]): the document is
/// rewritten as well-formed XML and read again, and what was repaired
/// becomes [`ParsedFeed::recovered`].
pub fn parse_feed_capped(body: &[u8], http_charset: Option<&str>, cap: usize) -> Result<ParsedFeed, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(2048)]).to_ascii_lowercase();
    let looks_like_html = head.contains("<!doctype html") || head.trim_start().starts_with("<html");
    let is_json = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    // Atom 0.3, RSS 0.90 and entities a DOCTYPE declares are read only
    // through the rewrite.
    let old_dialect = head.contains("purl.org/atom/ns#")
        || head.contains("my.netscape.com/rdf/simple/0.9")
        || (head.contains("<!doctype") && head.contains("<!entity"));
    let strict = if old_dialect {
        None
    } else {
        Some(parse_strict(body, http_charset, cap))
    };
    let strict_error = match strict {
        Some(Ok((feed, total))) => {
            if is_json || !needs_rewrite(&feed, body) {
                return Ok(convert(feed, total, &[], None));
            }
            None
        }
        Some(Err(e)) if is_json => return Err(e),
        Some(Err(e)) => Some(e),
        None => None,
    };
    let recovered = parse_rewritten(body, http_charset, cap);
    match (recovered, strict_error) {
        (Ok(feed), _) => Ok(feed),
        (Err(_), Some(_)) if looks_like_html => {
            Err(ParseError::NotAFeed("the server sent an HTML page, not a feed".into()))
        }
        // The strict parser's words name the problem; the recovering
        // path's say why it could not help.
        (Err(ParseError::NotAFeed(why)), Some(ParseError::NotAFeed(strict))) => {
            Err(ParseError::NotAFeed(format!("{strict}; recovering: {why}")))
        }
        (Err(_), Some(strict)) => Err(strict),
        (Err(e), None) => Err(e),
    }
}

/// feed-rs on the document as it came (charset repaired).
fn parse_strict(
    body: &[u8],
    http_charset: Option<&str>,
    cap: usize,
) -> Result<(feed_rs::model::Feed, Option<usize>), ParseError> {
    let body = decode_to_parseable(body, http_charset);
    let (body, total_items) = cap_items(body, cap);
    let body = neutralise_stray_declarations(body);
    Ok((run_feed_rs(&body)?, total_items))
}

fn run_feed_rs(body: &[u8]) -> Result<feed_rs::model::Feed, ParseError> {
    let parser = feed_rs::parser::Builder::new()
        // An empty id means "the feed has none": tidings then falls back to
        // the link or a content hash, instead of feed-rs' generated id.
        .id_generator(|_, _, _| String::new())
        .build();
    // feed-rs (through quick-xml) has panicked on malformed documents (see
    // `neutralise_stray_declarations`). Should another input do so, the
    // panic costs this one source, not the collect run: the parser only
    // reads `body`, so nothing is left half-changed.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse(body)))
        .map_err(|panic| ParseError::NotAFeed(format!("the feed parser failed on it ({})", panic_message(&panic))))?
        .map_err(|e| ParseError::NotAFeed(e.to_string()))
}

/// Whether feed-rs left out what the rewrite notes per item: a title only
/// in `dc:title`, a link only in a permalink guid, an RSS 1.0 id, DCMI
/// dates; or whether it found no items in a document that has some.
fn needs_rewrite(feed: &feed_rs::model::Feed, body: &[u8]) -> bool {
    let rdf = feed.feed_type == feed_rs::model::FeedType::RSS1 || feed.feed_type == feed_rs::model::FeedType::RSS0;
    let dcterms = memchr::memmem::find(body, b"purl.org/dc/terms").is_some();
    if feed.entries.is_empty() {
        return !item_starts(body).is_empty();
    }
    feed.entries.iter().any(|e| {
        e.title.as_ref().is_none_or(|t| t.content.trim().is_empty())
            || e.links.is_empty()
            || (rdf && e.id.is_empty())
            || (dcterms && e.published.is_none() && e.updated.is_none())
    })
}

/// The recovering path: decode, rewrite as well-formed XML, feed-rs again.
fn parse_rewritten(body: &[u8], http_charset: Option<&str>, cap: usize) -> Result<ParsedFeed, ParseError> {
    let mut fixes = recover::Fixes::default();
    let text = recover::decode(body, http_charset, &mut fixes);
    let (cut, total_items) = cap_items(Cow::Borrowed(text.as_bytes()), cap);
    // The cut falls before an item's `<`, so it stays UTF-8.
    let cut = match cut {
        Cow::Borrowed(_) => None,
        Cow::Owned(bytes) => Some(String::from_utf8_lossy(&bytes).into_owned()),
    };
    let text = cut.as_deref().unwrap_or(&text);
    let rewritten = recover::rewrite(text, fixes).map_err(|e| ParseError::NotAFeed(e.to_string()))?;
    let feed = run_feed_rs(rewritten.xml.as_bytes())?;
    if feed.entries.is_empty() && !rewritten.fixes.is_empty() {
        return Err(ParseError::NotAFeed(format!(
            "no complete item left after repairing it ({})",
            rewritten.fixes
        )));
    }
    let extras = if feed.entries.len() == rewritten.items.len() {
        rewritten.items
    } else {
        // RSS 1.0 items without a link are dropped by feed-rs.
        let linked: Vec<recover::ItemExtras> = rewritten.items.into_iter().filter(|i| i.has_link).collect();
        if linked.len() == feed.entries.len() {
            linked
        } else {
            Vec::new()
        }
    };
    let warning = (!rewritten.fixes.is_empty()).then(|| rewritten.fixes.to_string());
    Ok(convert(feed, total_items, &extras, warning))
}

fn convert(
    feed: feed_rs::model::Feed,
    total_items: Option<usize>,
    extras: &[recover::ItemExtras],
    recovered: Option<String>,
) -> ParsedFeed {
    let none = recover::ItemExtras::default();
    let items: Vec<ParsedItem> = feed
        .entries
        .into_iter()
        .enumerate()
        .map(|(index, e)| {
            let extra = extras.get(index).unwrap_or(&none);
            let link = pick_link(&e.links).or_else(|| {
                // A permalink guid is the item's link when it has none.
                extra
                    .permalink_guid
                    .as_deref()
                    .map(str::trim)
                    .filter(|g| g.starts_with("https://") || g.starts_with("http://"))
                    .map(str::to_string)
            });
            let summary_html = e
                .summary
                .as_ref()
                .filter(|t| !t.content.trim().is_empty())
                .map(text_as_html)
                .or_else(|| {
                    let content = e.content.as_ref()?;
                    let body = content.body.as_deref().filter(|b| !b.trim().is_empty())?;
                    Some(if content.content_type.subty() == "plain" {
                        super::sanitize::text_to_html(body)
                    } else {
                        body.to_string()
                    })
                });
            let mut categories: Vec<String> = Vec::new();
            for c in &e.categories {
                let label = c.label.as_deref().unwrap_or(&c.term);
                for part in split_categories(label) {
                    if !categories.contains(&part) {
                        categories.push(part);
                    }
                }
            }
            let title = e
                .title
                .map(|t| plain_title(&t))
                .filter(|t| !t.is_empty())
                .or_else(|| extra.dc_title.as_deref().map(plain_text_title))
                .unwrap_or_default();
            ParsedItem {
                guid: Some(e.id)
                    .filter(|id| !id.trim().is_empty())
                    .map(|id| id.trim().to_string())
                    .or_else(|| extra.about.clone()),
                title,
                link,
                summary_html,
                categories,
                published: e.published.or_else(|| extra.issued.as_deref().and_then(parse_dc_date)),
                updated: e.updated.or_else(|| extra.modified.as_deref().and_then(parse_dc_date)),
            }
        })
        .collect();

    let total_items = total_items.unwrap_or(items.len()).max(items.len());
    ParsedFeed {
        title: feed.title.map(|t| plain_title(&t)),
        link: pick_link(&feed.links),
        ttl: feed.ttl,
        items,
        total_items,
        recovered,
    }
}

/// A W3C date-time as Dublin Core writes it (`2026-11-20`,
/// `2026-11-20T07:00Z`, `2026-11-20T07:00:00+01:00`), or an RFC 2822 one.
fn parse_dc_date(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%#z"] {
        if let Ok(t) = DateTime::parse_from_str(text, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    let date = chrono::NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc())
}

/// quick-xml 0.42 panics ("set_encoding() called after prefix buffer was
/// drained") on an XML declaration that is not at the start of the
/// document, e.g. inside a title (found by fuzzing). XML allows the
/// declaration only at the very start, so a later `<?xml …?>` is renamed
/// into an ordinary processing instruction, which feed-rs skips.
fn neutralise_stray_declarations(body: Cow<'_, [u8]>) -> Cow<'_, [u8]> {
    const DECL: &[u8] = b"<?xml";
    let is_stray = |at: usize| {
        at > 0
            && body[at..].starts_with(DECL)
            && body
                .get(at + DECL.len())
                .is_some_and(|b| b.is_ascii_whitespace() || *b == b'?')
            && !body[..at].iter().all(u8::is_ascii_whitespace)
    };
    let stray: Vec<usize> = body
        .iter()
        .enumerate()
        .filter(|(at, b)| **b == b'<' && is_stray(*at))
        .map(|(at, _)| at)
        .collect();
    if stray.is_empty() {
        return body;
    }
    let mut out = Vec::with_capacity(body.len() + stray.len() * 6);
    let mut from = 0;
    for at in stray {
        out.extend_from_slice(&body[from..at + DECL.len()]);
        out.extend_from_slice(b"-stray");
        from = at + DECL.len();
    }
    out.extend_from_slice(&body[from..]);
    Cow::Owned(out)
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

fn pick_link(links: &[feed_rs::model::Link]) -> Option<String> {
    links
        .iter()
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or_else(|| {
            links
                .iter()
                .find(|l| l.rel.as_deref() != Some("self") && l.rel.as_deref() != Some("enclosure"))
        })
        .map(|l| l.href.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn text_as_html(t: &feed_rs::model::Text) -> String {
    if t.content_type.subty() == "plain" {
        super::sanitize::text_to_html(&t.content)
    } else {
        t.content.clone()
    }
}

/// A title as one line of plain text. Titles often carry entities or markup
/// ("AT&amp;T", "<b>New</b>") even when declared as plain text.
fn plain_title(t: &feed_rs::model::Text) -> String {
    plain_text_title(&t.content)
}

fn plain_text_title(text: &str) -> String {
    // Plain text without '<' or '&' takes html_to_text's own fast path.
    super::sanitize::html_to_text(&super::sanitize::repair_mojibake(text))
}

/// Some feeds pack several categories in one element: "AI, Security".
/// Markup in a category is dropped, its text kept.
fn split_categories(label: &str) -> Vec<String> {
    super::sanitize::html_to_text(label)
        .split([',', ';', '|'])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Returns bytes feed-rs can parse. It honours a BOM and the XML encoding
/// declaration itself, but never sees the HTTP charset: when the document
/// has no declaration, or declares UTF-8 but is not, decode here.
fn decode_to_parseable<'a>(body: &'a [u8], http_charset: Option<&str>) -> Cow<'a, [u8]> {
    if body.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Cow::Borrowed(&body[3..]);
    }
    if body.starts_with(&[0xFF, 0xFE]) || body.starts_with(&[0xFE, 0xFF]) {
        // UTF-16 with a BOM: decode ourselves and drop the (now false) declaration.
        let (text, _, _) = encoding_rs::UTF_16LE.decode(body);
        return Cow::Owned(strip_xml_encoding(&text).into_bytes());
    }
    let declared = xml_declared_encoding(body);
    let is_utf8 = std::str::from_utf8(body).is_ok();
    match declared.as_deref() {
        // Declared as a single-byte encoding but valid UTF-8 with non-ASCII
        // text: the declaration is wrong (decoding as declared would turn
        // "🖥️" into "๐Ÿ–¥๏¸"). Real Latin-1 or Thai text is practically never
        // valid UTF-8.
        Some(enc) if !is_utf8_label(enc) && is_utf8 && !body.is_ascii() && !is_utf16_label(enc) => {
            Cow::Owned(strip_xml_encoding(&String::from_utf8_lossy(body)).into_bytes())
        }
        // A declared non-UTF-8 encoding: feed-rs decodes it.
        Some(enc) if !is_utf8_label(enc) => Cow::Borrowed(body),
        _ if is_utf8 => Cow::Borrowed(body),
        // No declaration (or a false UTF-8 one) and not valid UTF-8: use the
        // HTTP charset when it names a real encoding, else windows-1252,
        // the encoding such feeds nearly always turn out to be in.
        _ => {
            let text = match http_charset
                .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
                .filter(|e| *e != encoding_rs::UTF_8)
            {
                Some(encoding) => encoding.decode(body).0.into_owned(),
                // Valid UTF-8 stays so; only the bytes that are not are
                // read as windows-1252 (pasted text in a UTF-8 feed).
                None => recover::utf8_with_1252_fallback(body, &mut recover::Fixes::default()),
            };
            Cow::Owned(strip_xml_encoding(&text).into_bytes())
        }
    }
}

/// Cuts an XML feed after its `cap`-th item (closing the document so it
/// still parses) or a JSON Feed's `items` array. Returns the body and, when
/// it was cut, how many items the document had.
fn cap_items(body: Cow<'_, [u8]>, cap: usize) -> (Cow<'_, [u8]>, Option<usize>) {
    if cap == usize::MAX || body.len() < 64 * 1024 {
        return (body, None);
    }
    let first = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(0);
    if body.get(first) == Some(&b'{') {
        return cap_json_items(body, cap);
    }
    let starts = item_starts(&body);
    if starts.len() <= cap {
        return (body, None);
    }
    let head = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    let closing = if head.contains("<rdf:RDF") {
        "</rdf:RDF>"
    } else if head.contains("<feed") {
        "</feed>"
    } else {
        "</channel></rss>"
    };
    let mut cut = body[..starts[cap]].to_vec();
    cut.extend_from_slice(closing.as_bytes());
    (Cow::Owned(cut), Some(starts.len()))
}

/// Byte offsets of `<item` and `<entry` start tags.
fn item_starts(body: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut i = 0;
    while let Some(at) = body[i..].iter().position(|b| *b == b'<') {
        let at = i + at;
        let rest = &body[at + 1..];
        for tag in [&b"item"[..], &b"entry"[..]] {
            if rest.starts_with(tag)
                && rest
                    .get(tag.len())
                    .is_some_and(|c| *c == b'>' || c.is_ascii_whitespace() || *c == b'/')
            {
                starts.push(at);
            }
        }
        i = at + 1;
    }
    starts
}

fn cap_json_items(body: Cow<'_, [u8]>, cap: usize) -> (Cow<'_, [u8]>, Option<usize>) {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (body, None); // feed-rs reports the error
    };
    let Some(items) = value.get_mut("items").and_then(|i| i.as_array_mut()) else {
        return (body, None);
    };
    let total = items.len();
    if total <= cap {
        return (body, None);
    }
    items.truncate(cap);
    match serde_json::to_vec(&value) {
        Ok(bytes) => (Cow::Owned(bytes), Some(total)),
        Err(_) => (body, None),
    }
}

fn is_utf16_label(label: &str) -> bool {
    label.to_ascii_lowercase().starts_with("utf-16")
}

fn is_utf8_label(label: &str) -> bool {
    matches!(label.to_ascii_lowercase().as_str(), "utf-8" | "utf8")
}

/// The `encoding="…"` of an `<?xml …?>` declaration at the start.
pub(super) fn xml_declared_encoding(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(256)];
    let head = String::from_utf8_lossy(head);
    let decl = head.trim_start().strip_prefix("<?xml")?;
    let decl = &decl[..decl.find("?>")?];
    let at = decl.find("encoding")?;
    let rest = decl[at + "encoding".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &rest[1..];
    Some(rest[..rest.find(quote)?].to_string())
}

/// Removes the encoding declaration from text that is now UTF-8.
fn strip_xml_encoding(text: &str) -> String {
    let trimmed = text.trim_start_matches('\u{FEFF}');
    if let Some(end) = trimmed.find("?>").filter(|_| trimmed.starts_with("<?xml")) {
        let rest = &trimmed[end + 2..];
        return format!("<?xml version=\"1.0\"?>{rest}");
    }
    trimmed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_encoding_is_found() {
        assert_eq!(
            xml_declared_encoding(b"<?xml version=\"1.0\" encoding='ISO-8859-1'?><rss/>").as_deref(),
            Some("ISO-8859-1")
        );
        assert_eq!(xml_declared_encoding(b"<rss/>"), None);
    }

    #[test]
    fn latin1_without_declaration_decodes() {
        let body = b"<rss version=\"2.0\"><channel><title>Caf\xe9</title><item><title>Na\xefve r\xe9sum\xe9</title><guid>1</guid></item></channel></rss>";
        let feed = parse_feed(body, Some("iso-8859-1")).expect("parses");
        assert_eq!(feed.title.as_deref(), Some("Café"));
        assert_eq!(feed.items[0].title, "Naïve résumé");
    }

    #[test]
    fn false_utf8_declaration_is_repaired() {
        let body = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>x</title><item><title>Se\xf1or</title></item></channel></rss>";
        let feed = parse_feed(body, None).expect("parses");
        assert_eq!(feed.items[0].title, "Señor");
        assert_eq!(feed.items[0].guid, None);
    }

    #[test]
    fn utf8_declared_as_thai_or_latin1_is_read_as_utf8() {
        for enc in ["windows-874", "ISO-8859-1"] {
            let body = format!(
                "<?xml version=\"1.0\" encoding=\"{enc}\"?><rss version=\"2.0\"><channel><title>x</title><item><title>🖥️ Übersicht</title></item></channel></rss>"
            );
            let feed = parse_feed(body.as_bytes(), None).expect("parses");
            assert_eq!(feed.items[0].title, "🖥️ Übersicht", "{enc}");
        }
    }

    #[test]
    fn huge_feeds_are_cut_before_parsing() {
        let mut rss = String::from("<rss version=\"2.0\"><channel><title>t</title>");
        for i in 0..5000 {
            rss.push_str(&format!(
                "<item><title>Item {i}</title><link>https://x.example/{i}</link></item>"
            ));
        }
        rss.push_str("</channel></rss>");
        let feed = parse_feed_capped(rss.as_bytes(), None, 10).expect("parses");
        assert_eq!(feed.items.len(), 10);
        assert_eq!(feed.total_items, 5000);
        assert_eq!(feed.items[9].title, "Item 9");

        let mut atom = String::from("<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>t</title>");
        for i in 0..5000 {
            atom.push_str(&format!("<entry><title>E{i}</title><id>urn:{i}</id></entry>"));
        }
        atom.push_str("</feed>");
        let feed = parse_feed_capped(atom.as_bytes(), None, 3).expect("parses");
        assert_eq!((feed.items.len(), feed.total_items), (3, 5000));

        let items: Vec<String> = (0..5000)
            .map(|i| format!("{{\"id\":\"{i}\",\"title\":\"J{i}\"}}"))
            .collect();
        let json = format!(
            "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"j\",\"items\":[{}]}}",
            items.join(",")
        );
        let feed = parse_feed_capped(json.as_bytes(), None, 4).expect("parses");
        assert_eq!((feed.items.len(), feed.total_items), (4, 5000));
    }

    #[test]
    fn a_stray_declaration_neither_panics_nor_hides_the_feed() {
        // Made the parser panic before (found by fuzzing).
        let body = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/feeds/late-declaration.xml"
        ))
        .expect("fixture");
        let feed = parse_feed(&body, None).expect("parses");
        assert_eq!(feed.items.len(), 1);
        assert_eq!(feed.items[0].title, "Found by fuzzing");
        let title = feed.title.unwrap_or_default();
        assert!(
            title.starts_with("Second declaration") && !title.contains("xml"),
            "{title}"
        );
        // The declaration at the start is left alone.
        let ok = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title></channel></rss>";
        assert!(matches!(
            neutralise_stray_declarations(Cow::Borrowed(ok)),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn html_page_is_named() {
        let err = parse_feed(b"<!DOCTYPE html><html><body>hi</body></html>", None).expect_err("html");
        assert!(err.to_string().contains("HTML page"), "{err}");
    }
}
