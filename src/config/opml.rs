//! OPML, the format feed readers export their subscriptions in: read as
//! more sources (`[collect] opml`), written by `tidings sources export`.
//!
//! Real exports are loose (no `version`, an empty `<body>`, a bare `&` in a
//! URL, `xmlUrl` spelt `xmlurl`), so the reader takes what it can: every
//! `<outline>` with a feed URL is a source, the outlines around it (folders)
//! and its `category` attribute become its tags.

use std::path::Path;

use quick_xml::events::{BytesStart, Event};

use super::Source;
use super::raw::RawSource;

/// Larger OPML files are refused: subscriptions lists are kilobytes.
const MAX_OPML_BYTES: u64 = 8 << 20;

/// One feed outline of the file, and where it is ("outline 3 \"Name\"").
pub(super) struct Outline {
    pub(super) place: String,
    pub(super) source: RawSource,
}

pub(super) fn read_file(path: &Path) -> Result<Vec<Outline>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_OPML_BYTES {
        return Err(format!("{}: larger than {MAX_OPML_BYTES} bytes", path.display()));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read(&String::from_utf8_lossy(&bytes)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Feed outlines in document order.
pub(super) fn read(text: &str) -> Result<Vec<Outline>, String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let config = reader.config_mut();
    config.check_end_names = false;
    config.allow_unmatched_ends = true;
    config.trim_text(true);
    // Folders open around the outline being read: their names, or None
    // for an outline that is itself a feed (and has children, oddly).
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut outlines = Vec::new();
    let mut seen_opml = false;
    let mut index = 0usize;
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            // A broken tail: keep what was read before it.
            Err(e) if seen_opml => {
                tracing::warn!("OPML read up to byte {}: {e}", reader.buffer_position());
                break;
            }
            Err(e) => return Err(format!("not OPML: {e}")),
        };
        match event {
            Event::Start(tag) | Event::Empty(tag) if tag.local_name().as_ref().eq_ignore_ascii_case("opml") => {
                seen_opml = true;
            }
            Event::Start(tag) if is_outline(&tag) => {
                index += 1;
                let attrs = attributes(&tag);
                match feed_outline(&attrs, &folders, index) {
                    Some(o) => {
                        outlines.push(o);
                        folders.push(None);
                    }
                    None => folders.push(attr(&attrs, "title").or_else(|| attr(&attrs, "text"))),
                }
            }
            Event::Empty(tag) if is_outline(&tag) => {
                index += 1;
                let attrs = attributes(&tag);
                outlines.extend(feed_outline(&attrs, &folders, index));
            }
            Event::End(tag) if tag.local_name().as_ref().eq_ignore_ascii_case("outline") => {
                folders.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_opml {
        return Err("not OPML: no <opml> element".into());
    }
    Ok(outlines)
}

fn is_outline(tag: &BytesStart<'_>) -> bool {
    tag.local_name().as_ref().eq_ignore_ascii_case("outline")
}

/// Attribute names lower-cased (`xmlUrl`, `xmlurl` and `XMLURL` all
/// occur), values with entities resolved where they are entities.
fn attributes(tag: &BytesStart<'_>) -> Vec<(String, String)> {
    tag.html_attributes()
        .with_checks(false)
        .flatten()
        .map(|a| {
            let name = a.key.as_ref().to_ascii_lowercase();
            let raw = a.value.to_string();
            let value = quick_xml::escape::unescape(&raw).map_or(raw.clone(), |v| v.into_owned());
            (name, value.trim().to_string())
        })
        .collect()
}

fn attr(attrs: &[(String, String)], name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
}

fn feed_outline(attrs: &[(String, String)], folders: &[Option<String>], index: usize) -> Option<Outline> {
    let url = attr(attrs, "xmlurl")?;
    let name = attr(attrs, "title")
        .or_else(|| attr(attrs, "text"))
        .unwrap_or_else(|| url.clone());
    let mut tags: Vec<String> = folders.iter().flatten().cloned().collect();
    if let Some(categories) = attr(attrs, "category") {
        // OPML 2.0: comma-separated, each possibly a path ("/Tech/AI").
        for category in categories.split(',') {
            tags.extend(
                category
                    .split('/')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
        }
    }
    Some(Outline {
        place: format!("outline {index} \"{name}\""),
        source: RawSource {
            name,
            url,
            tags,
            weight: None,
            full_text: None,
        },
    })
}

/// Every source as OPML 2.0: grouped in folders by their first tag, all
/// tags in `category`, so reading the file back gives the same tags.
pub fn export(sources: &[Source], now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n  <head>\n");
    out.push_str("    <title>tidings sources</title>\n");
    out.push_str(&format!("    <dateCreated>{}</dateCreated>\n", now.to_rfc2822()));
    out.push_str("  </head>\n  <body>\n");
    let outline = |s: &Source, indent: &str| {
        let xml_url = s.location.to_string();
        let mut line = format!(
            "{indent}<outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{url}\"",
            name = escape(&s.name),
            url = escape(&xml_url)
        );
        if !s.tags.is_empty() {
            line.push_str(&format!(" category=\"{}\"", escape(&s.tags.join(","))));
        }
        line.push_str("/>\n");
        line
    };
    let mut folders: Vec<&str> = Vec::new();
    for s in sources {
        if let Some(first) = s.tags.first()
            && !folders.contains(&first.as_str())
        {
            folders.push(first);
        }
    }
    for folder in &folders {
        out.push_str(&format!("    <outline text=\"{0}\" title=\"{0}\">\n", escape(folder)));
        for s in sources
            .iter()
            .filter(|s| s.tags.first().map(String::as_str) == Some(*folder))
        {
            out.push_str(&outline(s, "      "));
        }
        out.push_str("    </outline>\n");
    }
    for s in sources.iter().filter(|s| s.tags.is_empty()) {
        out.push_str(&outline(s, "    "));
    }
    out.push_str("  </body>\n</opml>\n");
    out
}

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).replace('\n', "&#10;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_exports_are_read() {
        let text = r#"<?xml version="1.0"?>
<opml><head/><body>
  <outline text="Security">
    <outline text="Nested">
      <outline type="rss" text="Alpha &amp; Co" xmlurl="https://a.example/feed?x=1&y=2" category="/Tech/AI,cloud"/>
    </outline>
  </outline>
  <outline type="rss" title="Beta" xmlUrl="https://b.example/rss"></outline>
  <outline text="A folder with nothing"/>
  <outline type="rss" xmlUrl="https://c.example/atom"/>
</body>"#;
        let outlines = read(text).expect("reads");
        let got: Vec<(&str, &str, Vec<&str>)> = outlines
            .iter()
            .map(|o| {
                (
                    o.source.name.as_str(),
                    o.source.url.as_str(),
                    o.source.tags.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "Alpha & Co",
                    "https://a.example/feed?x=1&y=2",
                    vec!["Security", "Nested", "Tech", "AI", "cloud"]
                ),
                ("Beta", "https://b.example/rss", vec![]),
                ("https://c.example/atom", "https://c.example/atom", vec![]),
            ]
        );
        assert_eq!(outlines[1].place, "outline 4 \"Beta\"");
        assert!(read("<html><body>no</body></html>").is_err());
    }
}
