//! Feed bytes → stories: charset detection, parsing, normalising and
//! sanitising, as the collector runs them on a fetched body.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use tidings::collect::{parse::parse_feed_capped, recover, stories_from_feed};
use tidings::config::{Source, SourceLocation, TagRule};
use tidings_fuzz::{assert_one_line, assert_safe_html};
use url::Url;

/// What a server's Content-Type may claim, right or wrong.
const CHARSETS: [Option<&str>; 7] = [
    None,
    Some("utf-8"),
    Some("iso-8859-1"),
    Some("windows-1252"),
    Some("utf-16"),
    Some("tis-620"),
    Some("no-such-charset"),
];

fuzz_target!(|data: &[u8]| {
    // tidings catches panics inside the feed parser (a third-party crate)
    // and reports the source as failed; libFuzzer's hook would abort on
    // those too. Panics are therefore recorded, not fatal, while the
    // target runs, and any panic that escapes tidings aborts below.
    tidings_fuzz::quiet_caught_panics();
    if let Err(panic) = std::panic::catch_unwind(|| check(data)) {
        tidings_fuzz::abort_with(panic);
    }
});

fn check(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let charset = CHARSETS[usize::from(selector) % CHARSETS.len()];
    check_recovery(body, charset);
    let Ok(feed) = parse_feed_capped(body, charset, 100) else {
        return;
    };
    let base = Url::parse("https://feeds.example.org/path/feed.xml").expect("constant URL");
    let source = Source {
        name: "fuzz".into(),
        location: SourceLocation::Http(base.clone()),
        tags: vec!["fuzz".into()],
        weight: 1.0,
            full_text: false,
    };
    let rules = [TagRule {
        tag: "security".into(),
        keywords: vec!["ransomware".into(), "zero-day".into()],
    }];
    let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("valid time");
    let batch = stories_from_feed(feed, &source, Some(&base), &rules, 50, now);
    assert!(batch.stories.len() <= 50, "more stories than max_items");
    for story in &batch.stories {
        assert_safe_html(&story.summary_html);
        assert_one_line("title", &story.title);
        assert_one_line("summary text", &story.summary_text);
        assert!(!story.title.is_empty(), "a story without a title");
        let link = Url::parse(&story.link).unwrap_or_else(|e| panic!("link {:?} does not parse: {e}", story.link));
        assert!(
            matches!(link.scheme(), "http" | "https"),
            "link {:?} is not http(s)",
            story.link
        );
        assert!(link.fragment().is_none(), "link {:?} kept its fragment", story.link);
        assert!(story.published_at <= now, "a story published in the future");
        for tag in &story.tags {
            assert_one_line("tag", &tag.tag);
        }
    }
}

/// The recovering path on its own: bounded output, and what it writes is
/// well-formed: rewriting it again finds nothing to repair.
fn check_recovery(body: &[u8], charset: Option<&str>) {
    let mut fixes = recover::Fixes::default();
    let text = recover::decode(body, charset, &mut fixes);
    let Ok(once) = recover::rewrite(&text, fixes) else {
        return;
    };
    assert!(
        once.xml.len() <= text.len() * 2 + (1 << 20) + 4096,
        "rewrite grew {} bytes into {}",
        text.len(),
        once.xml.len()
    );
    let twice = recover::rewrite(&once.xml, recover::Fixes::default()).expect("the rewrite has a root element");
    assert!(twice.fixes.is_empty(), "the rewrite left something to repair: {}", twice.fixes);
}
