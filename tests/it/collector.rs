//! The collector against real-world quirks and hostile servers: a fixture
//! corpus read through `tidings inspect --json`, and a run where every kind
//! of bad source is served at once beside healthy ones.

use serde_json::Value;

use crate::support::http::FeedServer;
use crate::support::{Db, TestEnv, assert_exit, stderr, stdout};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/feeds/{name}", env!("CARGO_MANIFEST_DIR"))
}

async fn inspect(env: &TestEnv, target: &str) -> Value {
    let out = env.run(&["inspect", "--json", target]).await;
    assert_exit(&out, 0);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{target}: not JSON ({e}): {}", stdout(&out)))
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fixture_corpus_parses_as_a_reader_would_expect() {
    // No configuration file: inspect works without one.
    let env = TestEnv::new(Db::Sqlite);
    // (file, feed title, first item: title, link, published)
    type Case<'a> = (&'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
    let cases: &[Case<'_>] = &[
        (
            "rss091.xml",
            "Old School News",
            "Mainframe still running after forty years",
            Some("http://oldschool.example.com/mainframe.html"),
            None,
        ),
        (
            "rdf.xml",
            "RDF Weekly",
            "Semantic web turns twenty-five",
            Some("https://rdf.example.org/a"),
            Some("2026-11-20T08:30:00Z"),
        ),
        (
            "atom03.xml",
            "Legacy Atom",
            "Atom 0.3 is not dead yet",
            Some("https://legacy-atom.example.net/2026/11/not-dead"),
            Some("2026-11-21T08:00:00Z"),
        ),
        (
            "atom-xmlbase.xml",
            "Base & Entities",
            "Q&A: why relative links break",
            Some("https://base.example.com/blog/posts/relative-links"),
            Some("2026-11-22T11:00:00Z"),
        ),
        (
            "jsonfeed10.json",
            "JSON One",
            "JSON Feed version one",
            Some("https://json-one.example.com/first?ref=home"),
            Some("2026-11-19T12:00:00Z"),
        ),
        (
            "gamma.json",
            "Gamma Wire",
            "🖥️ Browser flaw patched — 東京 team credited",
            Some("https://gamma.example.net/browser-zero-day"),
            None,
        ),
        (
            "podcast.xml",
            "Security Chatter (podcast)",
            "Episode 42: the breach that wasn't",
            Some("https://podcast.example.com/ep42"),
            Some("2026-11-24T06:00:00Z"),
        ),
        (
            "entities-cdata.xml",
            "Entities & CDATA",
            "AT&T & Verizon: “quotes” bold",
            Some("https://entities.example.com/1"),
            Some("2026-11-25T10:00:00Z"),
        ),
        (
            "windows-1252.xml",
            "Windows 1252",
            "“Smart quotes” and € prices – cañón",
            Some("https://cp1252.example.com/1"),
            None,
        ),
        (
            "utf16.xml",
            "Sixteen",
            "UTF-16 Überschrift 東京",
            Some("https://utf16.example.com/1"),
            None,
        ),
        (
            "mislabelled.xml",
            "Mislabelled",
            "🖥️ Weekly — Zürich",
            Some("https://mislabelled.example.com/1"),
            None,
        ),
        (
            "double-encoded.xml",
            "Double",
            "Café — menu",
            Some("https://double.example.com/1"),
            None,
        ),
        (
            "delta-latin1.xml",
            "Delta Café",
            "Café chain reports breach in Zürich",
            Some("https://delta.example.com/cafe"),
            None,
        ),
    ];
    for (file, feed_title, title, link, published) in cases {
        let v = inspect(&env, &fixture(file)).await;
        assert_eq!(s(&v["feed"]["title"]), Some(*feed_title), "{file}");
        let item = &v["items"][0];
        assert_eq!(s(&item["title"]), Some(*title), "{file}");
        assert_eq!(s(&item["link"]), *link, "{file}");
        if published.is_some() {
            assert_eq!(s(&item["published"]), *published, "{file}");
        }
    }

    // Broken and unusual feeds, written for this repository: (file, first
    // item's title, link, id, published, what recovery reports).
    type Real<'a> = (
        &'a str,
        &'a str,
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
    );
    let real_web: &[Real<'_>] = &[
        (
            "recover/bare-ampersand.xml",
            "Patch Tuesday & the long tail",
            "https://recover.example.org/patch",
            None,
            None,
            Some("unescaped \"&\" in 4 places"),
        ),
        (
            "recover/html-entities.xml",
            "Café chain breach — 2 million cards",
            "https://recover.example.org/cafe",
            None,
            None,
            None,
        ),
        (
            "recover/truncated.xml",
            "First complete story",
            "https://recover.example.org/1",
            None,
            None,
            Some("the document was cut off (1 incomplete item dropped)"),
        ),
        (
            "recover/junk-before-declaration.xml",
            "Junk does not hide me",
            "https://recover.example.org/junk",
            None,
            None,
            None,
        ),
        (
            "recover/bom-whitespace.xml",
            "A BOM in the wrong place",
            "https://recover.example.org/bom",
            None,
            None,
            None,
        ),
        (
            "recover/second-declaration.xml",
            "Declared twice",
            "https://recover.example.org/twice",
            None,
            None,
            None,
        ),
        (
            "recover/undeclared-prefix.xml",
            "Prefixes without namespaces",
            "https://recover.example.org/prefix",
            None,
            None,
            None,
        ),
        (
            "recover/stray-lt.xml",
            "Laptops for < $500 are back",
            "https://recover.example.org/cheap",
            None,
            None,
            Some("stray \"<\" in 4 places"),
        ),
        (
            "recover/control-characters.xml",
            "Vertical tab and bell",
            "https://recover.example.org/ctrl",
            None,
            None,
            None,
        ),
        (
            "recover/mixed-encoding.xml",
            "Übersicht: résumé “quoted”",
            "https://recover.example.org/mixed",
            None,
            None,
            None,
        ),
        (
            "recover/unclosed-markup.xml",
            "Unclosed paragraph",
            "https://recover.example.org/p",
            None,
            None,
            Some("unescaped HTML tags in 2 places"),
        ),
        (
            "recover/doctype-entities.xml",
            "Example Widgets Ltd opens a new plant",
            "https://entities.example.org/plant",
            None,
            None,
            None,
        ),
        (
            "formats/rss090.xml",
            "Dial-up modems return as a hobby",
            "https://ninety.example.com/modems",
            None,
            None,
            None,
        ),
        (
            "formats/rdf-about.xml",
            "Item identified by its about",
            "https://about.example.org/items/7?via=rss",
            Some("https://about.example.org/items/7"),
            Some("2026-11-25T10:15:00Z"),
            None,
        ),
        (
            "formats/dublin-core.xml",
            "Title only in dc:title",
            "https://dc.example.org/a",
            None,
            Some("2026-11-20T07:00:00Z"),
            None,
        ),
        (
            "formats/guid-as-link.xml",
            "Permalink by default",
            "https://guid.example.org/posts/default",
            Some("https://guid.example.org/posts/default"),
            None,
            None,
        ),
        (
            "formats/atom-prefixed.xml",
            "Namespaces with prefixes are still Atom",
            "https://prefixed.example.net/2026/ns",
            Some("urn:prefixed:1"),
            None,
            None,
        ),
        (
            "formats/atom03-windows-1252.xml",
            "Crème brûlée — “quoted”",
            "https://cafe-atom.example.net/creme",
            Some("tag:cafe-atom.example.net,2026:1"),
            Some("2026-11-21T08:00:00Z"),
            None,
        ),
        (
            "formats/atom03-modes.xml",
            "Decoded from base64",
            "https://modes.example.net/base64",
            Some("tag:modes,1"),
            Some("2026-11-21T08:00:00Z"),
            None,
        ),
        (
            "formats/atom-text-types.xml",
            "Empty type is text",
            "https://types.example.net/empty",
            Some("urn:types:1"),
            None,
            None,
        ),
    ];
    for (file, title, link, id, published, recovered) in real_web {
        let v = inspect(&env, &fixture(file)).await;
        let item = &v["items"][0];
        assert_eq!(s(&item["title"]), Some(*title), "{file}");
        assert_eq!(s(&item["link"]), Some(*link), "{file}");
        assert_eq!(s(&item["id"]), *id, "{file}");
        if published.is_some() {
            assert_eq!(s(&item["published"]), *published, "{file}");
        }
        assert_eq!(s(&v["feed"]["recovered"]), *recovered, "{file}");
    }
    let items = |v: &Value, key: &str| -> Vec<Option<String>> {
        v["items"]
            .as_array()
            .map_or_else(Vec::new, |a| a.iter().map(|i| s(&i[key]).map(str::to_string)).collect())
    };
    let titles = |v: &Value| items(v, "title").into_iter().flatten().collect::<Vec<_>>();
    let v = inspect(&env, &fixture("recover/truncated.xml")).await;
    assert_eq!(
        titles(&v),
        ["First complete story", "Second complete story", "Third complete story"]
    );
    let v = inspect(&env, &fixture("recover/many-faults.xml")).await;
    assert_eq!(titles(&v), ["Café & bar", "Second"]);
    assert_eq!(s(&v["items"][0]["link"]), Some("https://recover.example.org/a?x=1&y=2"));
    assert_eq!(s(&v["items"][0]["summary"]), Some("Price < 5 €"));
    let v = inspect(&env, &fixture("recover/unclosed-markup.xml")).await;
    assert_eq!(
        s(&v["items"][0]["summary"]),
        Some("Opened never closed"),
        "unescaped HTML is read as HTML"
    );
    let v = inspect(&env, &fixture("recover/doctype-entities.xml")).await;
    assert_eq!(s(&v["feed"]["title"]), Some("Example Widgets Ltd"));
    assert_eq!(
        s(&v["items"][0]["summary"]),
        Some("From the Example Widgets Ltd newsroom.")
    );
    let v = inspect(&env, &fixture("formats/rss090.xml")).await;
    assert_eq!(titles(&v).len(), 2, "RSS 0.90 items");
    let v = inspect(&env, &fixture("formats/dublin-core.xml")).await;
    assert_eq!(
        items(&v, "published")[1].as_deref(),
        Some("2026-11-21T07:00:00Z"),
        "dcterms:issued"
    );
    assert_eq!(
        items(&v, "updated")[2].as_deref(),
        Some("2026-11-22T07:00:00Z"),
        "dcterms:modified"
    );
    let v = inspect(&env, &fixture("formats/guid-as-link.xml")).await;
    let links = items(&v, "link");
    assert_eq!(links[1].as_deref(), Some("https://guid.example.org/posts/explicit"));
    assert_eq!(
        links[2].as_deref(),
        Some("https://guid.example.org/"),
        "isPermaLink=false is no link: the feed's page"
    );
    assert!(
        !v.to_string().contains("from-the-image"),
        "the channel image's link is nobody's"
    );
    let v = inspect(&env, &fixture("formats/atom03-modes.xml")).await;
    assert_eq!(
        titles(&v),
        [
            "Decoded from base64",
            "Escaped title",
            "Plain MIME type title",
            "XHTML title"
        ]
    );
    assert_eq!(items(&v, "summary")[0].as_deref(), Some("Summary in base64"));
    assert_eq!(items(&v, "summary")[3].as_deref(), Some("XHTML content"));
    let v = inspect(&env, &fixture("formats/atom-text-types.xml")).await;
    assert_eq!(titles(&v), ["Empty type is text", "Unknown type is text"]);
    let out = env.run(&["inspect", &fixture("recover/nothing.xml")]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("no root element"), "{}", stderr(&out));
    let out = env.run(&["inspect", &fixture("broken.xml")]).await;
    assert_exit(&out, 1);
    assert!(
        stderr(&out).contains("no complete item left after repairing it"),
        "{}",
        stderr(&out)
    );

    // Entities and markup in summaries and categories become plain text.
    let v = inspect(&env, &fixture("entities-cdata.xml")).await;
    assert_eq!(s(&v["items"][1]["title"]), Some("Rock & Roll — it’s ☃ time"));
    let v = inspect(&env, &fixture("atom-xmlbase.xml")).await;
    assert_eq!(s(&v["items"][0]["summary"]), Some("See about — it’s fine."));
    assert_eq!(v["items"][0]["tags"], serde_json::json!(["web-development"]));
    let v = inspect(&env, &fixture("jsonfeed10.json")).await;
    assert_eq!(
        s(&v["items"][0]["summary"]),
        Some("Plain text content with <angle brackets> that must stay text."),
        "content_text is text, not HTML"
    );
    assert_eq!(v["items"][0]["tags"], serde_json::json!(["feeds", "json"]));
    // Unreadable dates are null (stored as the collection time), readable ones kept.
    let v = inspect(&env, &fixture("invalid-dates.xml")).await;
    let published: Vec<Option<&str>> = (0..3).map(|i| s(&v["items"][i]["published"])).collect();
    assert_eq!(published, [None, None, Some("2026-11-26T07:15:00Z")]);
    assert_eq!(v["items"][0]["id"], Value::Null, "absent values are null");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_over_http_resolves_relative_links_and_uses_the_http_charset() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let v = inspect(&env, &feeds.url("feeds/relative-links.xml")).await;
    assert_eq!(
        s(&v["items"][0]["link"]),
        Some(feeds.url("feeds/articles/one.html").as_str()),
        "relative to the feed's URL, fragment dropped"
    );
    let v = inspect(&env, &feeds.url("feeds/delta-latin1.xml")).await;
    assert_eq!(s(&v["items"][0]["title"]), Some("Café chain reports breach in Zürich"));

    let out = env.run(&["inspect", &feeds.url("feeds/page.html")]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("HTML page"), "{}", stderr(&out));
    let out = env.run(&["inspect", "--json", &feeds.url("status/404")]).await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sources_fail_alone_with_reasons_and_memory_stays_bounded() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let hostile: &[(&str, &str)] = &[
        ("Healthy Alpha", "feeds/alpha.xml"),
        ("Healthy Beta", "feeds/beta.atom"),
        ("Healthy XSS", "feeds/xss.xml"),
        ("Slow Body", "hostile/slow-body"),
        ("Slow Headers", "hostile/slow-headers"),
        ("Redirect Loop", "hostile/loop-a"),
        ("Redirect Chain", "hostile/chain/6"),
        ("Moved", "hostile/moved"),
        ("Temporary", "hostile/temporary"),
        ("Fifty MiB", "hostile/big"),
        ("Gzip Bomb", "hostile/bomb"),
        ("Many Items", "hostile/many"),
        ("Not Found", "status/404"),
        ("Server Error", "status/500"),
        ("Rate Limited", "status/429?retry_after=7200"),
        ("Unavailable", "status/503"),
        ("Gone", "status/410"),
        ("Malformed", "feeds/broken.xml"),
        ("Late Declaration", "feeds/late-declaration.xml"),
        ("Web Page", "feeds/page.html"),
        ("Cut Off", "feeds/recover/truncated.xml"),
        ("Many Faults", "feeds/recover/many-faults.xml"),
        ("No Element", "feeds/recover/nothing.xml"),
    ];
    let mut config = String::from("[collect]\ntimeout = \"2s\"\nconnect_timeout = \"2s\"\n\n");
    for (name, path) in hostile {
        config.push_str(&format!(
            "[[sources]]\nname = \"{name}\"\nurl = \"{}\"\n\n",
            feeds.url(path)
        ));
    }
    config.push_str(
        r#"
[tags.security]
keywords = ["ransomware", "breach", "victim"]

[audiences.security]
title = "Security"
weights = { security = 1.0 }

[[editions]]
name = "weekly"
title = "Weekly"
audience = "security"
schedule = "0 0 8 * * Mon"
max_stories = 50
"#,
    );
    env.write_config(&config);

    let started = std::time::Instant::now();
    let (out, peak_kib) = env.run_measured(&["collect"]).await;
    assert_exit(&out, 1);
    assert!(
        started.elapsed().as_secs() < 30,
        "slow servers are cut off by the timeout"
    );
    let text = stdout(&out);
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
            .to_string()
    };
    let expect = |name: &str, needles: &[&str]| {
        let l = line(name);
        for n in needles {
            assert!(l.contains(n), "{name}: expected {n:?} in {l:?}");
        }
    };
    expect("Healthy Alpha", &[" ok ", "4 new"]);
    expect("Healthy Beta", &[" ok ", "1 new"]);
    expect("Healthy XSS", &[" ok ", "2 new"]);
    expect("Slow Body", &["FAILED", "timed out"]);
    expect("Slow Headers", &["FAILED", "timed out"]);
    expect("Redirect Loop", &["FAILED", "redirect loop"]);
    expect("Redirect Chain", &["FAILED", "too many redirects"]);
    expect("Moved", &[" ok ", "moved permanently to", "/feeds/gamma.json"]);
    expect("Temporary", &[" ok "]);
    assert!(!line("Temporary").contains("moved"), "a 302 does not move the source");
    expect("Fifty MiB", &["FAILED", "larger than 10485760 bytes"]);
    expect("Gzip Bomb", &["FAILED", "larger than 10485760 bytes"]);
    expect("Many Items", &[" ok ", "500 new", "99500 over the item limit dropped"]);
    expect("Not Found", &["FAILED", "HTTP 404 Not Found"]);
    expect("Server Error", &["FAILED", "HTTP 500"]);
    expect("Rate Limited", &["FAILED", "HTTP 429"]);
    expect("Unavailable", &["FAILED", "HTTP 503"]);
    expect("Gone", &["DISABLED", "410"]);
    expect("Malformed", &["FAILED", "not a feed"]);
    expect("Late Declaration", &[" ok ", "1 new"]);
    expect("Web Page", &["FAILED", "HTML page"]);
    expect(
        "Cut Off",
        &[
            " ok ",
            "3 new",
            "(recovered: the document was cut off (1 incomplete item dropped))",
        ],
    );
    expect(
        "Many Faults",
        &[
            " ok ",
            "2 new",
            "recovered: unescaped \"&\" in 3 places; HTML entities in 3 places",
        ],
    );
    expect(
        "No Element",
        &["FAILED", "no root element", "recovering: no XML element"],
    );
    eprintln!(
        "collect of {} sources: peak memory {} MiB",
        hostile.len(),
        peak_kib / 1024
    );
    assert!(peak_kib > 0, "memory was sampled");
    assert!(
        peak_kib < 160 * 1024,
        "peak memory {} MiB: bodies must be cut off while streaming",
        peak_kib / 1024
    );

    // Retry-After is honoured: two hours, not the five-minute backoff.
    let rate_limited = line("Rate Limited");
    let next_try = rate_limited
        .rsplit("next try ")
        .next()
        .unwrap_or_default()
        .trim_end_matches(" UTC");
    let next_try = chrono::NaiveDateTime::parse_from_str(next_try, "%Y-%m-%d %H:%M").expect("next try time");
    let wait = next_try.and_utc() - chrono::Utc::now();
    assert!(
        wait > chrono::Duration::minutes(115) && wait <= chrono::Duration::minutes(121),
        "{rate_limited}"
    );

    // The second run: failing sources back off, the gone one stays off, the
    // moved one is fetched from its new home.
    let out = env.run(&["collect"]).await;
    let text = stdout(&out);
    for name in ["Rate Limited", "Not Found", "Slow Body"] {
        let l = text.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        assert!(l.contains("backing off"), "{name}: {l}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("Gone") && l.contains("DISABLED")),
        "{text}"
    );
    let sources = stdout(&env.run(&["sources"]).await);
    let moved = sources.lines().find(|l| l.starts_with("Moved")).unwrap_or_default();
    assert!(
        moved.contains(&format!("moved to {}", feeds.url("feeds/gamma.json"))),
        "{sources}"
    );
    let cut = sources.lines().find(|l| l.starts_with("Cut Off")).unwrap_or_default();
    assert!(
        cut.contains("stories 3") && cut.contains("— recovered: the document was cut off"),
        "a recovered source is ok with a warning: {sources}"
    );
    let gone = sources.lines().find(|l| l.starts_with("Gone")).unwrap_or_default();
    assert!(
        gone.contains("disabled") && gone.contains("next fetch never"),
        "{sources}"
    );

    // Hostile markup and control characters never reach a subscriber.
    assert_exit(&env.run(&["subscribers", "add", "ann@example.com"]).await, 0);
    let out = env
        .run(&["preview", "weekly", "--format", "eml", "--out", "x.eml"])
        .await;
    assert_exit(&out, 0);
    let eml = std::fs::read(env.path("x.eml")).expect("eml");
    let msg = mail_parser::MessageParser::default().parse(&eml).expect("MIME");
    let html = msg.body_html(0).expect("html").to_lowercase();
    let plain = msg.body_text(0).expect("text").to_string();
    assert!(html.contains("harmless title"), "the XSS story is in the issue");
    for bad in [
        "<script",
        "javascript:",
        "vbscript:",
        "onerror",
        "onmouseover",
        "onload",
        "<iframe",
        "<object",
        "<svg",
        "<form",
        "pixel.example",
        "data:text",
    ] {
        assert!(!html.contains(bad), "{bad} reached the email");
    }
    assert!(
        !plain.contains('\u{1b}') && !plain.contains('\u{7}'),
        "control characters removed"
    );
    assert!(
        plain.contains("Line one Bcc: victim@example.com tab"),
        "CRLF folded into one line"
    );
    let headers =
        String::from_utf8_lossy(&eml[..eml.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(eml.len())]).to_string();
    assert!(
        !headers.lines().any(|l| l.starts_with("Bcc:")),
        "no header injection:\n{headers}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hints_defer_the_next_fetch_unless_forced() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        "[[sources]]\nname = \"Cached\"\nurl = \"{}\"\n",
        feeds.url("hostile/cached")
    ));
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("1 new"), "{}", stdout(&out));
    let before = feeds.request_count();
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("not due"),
        "max-age=3600 is honoured: {}",
        stdout(&out)
    );
    assert_eq!(feeds.request_count(), before, "no request while not due");
    let out = env.run(&["collect", "--force"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("0 new, 1 unchanged"), "{}", stdout(&out));
    assert_eq!(feeds.request_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_news_from_two_sources_is_one_entry_with_also_covered_by() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        r#"
[[sources]]
name = "Alpha Security"
url = "{}"

[[sources]]
name = "Echo Wire"
url = "{}"

[tags.security]
keywords = ["ransomware"]

[tags.cloud]
keywords = ["cloud"]

[audiences.security]
title = "Security"
weights = {{ security = 3.0, cloud = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly"
audience = "security"
schedule = "0 0 8 * * Mon"
"#,
        feeds.url("feeds/alpha.xml"),
        feeds.url("feeds/echo.xml")
    ));
    assert_exit(&env.run(&["collect"]).await, 0);
    let out = env.run(&["preview", "weekly", "--format", "text"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    let entries = |a: &str, b: &str| usize::from(text.contains(a)) + usize::from(text.contains(b));
    assert_eq!(
        entries("Ransomware hits port operator", "Port operator hit by ransomware"),
        1,
        "the reworded headline is not a second entry:\n{text}"
    );
    assert_eq!(
        entries("Quarterly cloud pricing update", "Cloud prices: the quarterly round-up"),
        1,
        "the same link is one entry:\n{text}"
    );
    assert_eq!(text.matches("Also covered by").count(), 2, "{text}");
    assert!(
        text.contains("https://echo.example.com/port-operator-ransomware"),
        "{text}"
    );
    assert!(
        text.contains("https://alpha.example.com/news/port-ransomware?id=7"),
        "{text}"
    );
}

/// `collect_settings` followed by six sources on the feed server's paced
/// route (each answers slowly and records the order it was asked in),
/// named "`name` 0" to "`name` 5".
fn paced_sources(collect_settings: &str, name: &str, feeds: &FeedServer) -> String {
    let mut config = String::from(collect_settings);
    for n in 0..6 {
        config.push_str(&format!(
            "\n[[sources]]\nname = \"{name} {n}\"\nurl = \"{}\"\n",
            feeds.url(&format!("paced/{n}"))
        ));
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_queued_for_a_busy_host_do_not_hold_up_another_host() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    // Six slow feeds on one host, listed first, then one on another host
    // ("localhost": the same server under another name).
    let mut config = paced_sources("[collect]\nconcurrency = 2\nper_host = 1\n", "Busy", &feeds);
    let other = feeds.url("paced/99").replace("127.0.0.1", "localhost");
    config.push_str(&format!("\n[[sources]]\nname = \"Other host\"\nurl = \"{other}\"\n"));
    env.write_config(&config);
    assert_exit(&env.run(&["collect"]).await, 0);
    let order = feeds.paced_order.lock().map(|o| o.clone()).unwrap_or_default();
    assert_eq!(order.len(), 7, "{order:?}");
    // The busy host's queue waits for its one connection without taking
    // the run's other fetch slot: the other host is fetched beside its
    // first feed, not after the whole queue.
    let at = order.iter().position(|&n| n == 99);
    assert!(at.is_some_and(|at| at < 2), "fetched in this order: {order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_are_fetched_in_parallel_but_politely_per_host() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let config = paced_sources("[collect]\nconcurrency = 16\nper_host = 2\n", "Paced", &feeds);
    env.write_config(&config);
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_eq!(
        feeds.max_in_flight.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "at most per_host connections to one host, and more than one"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_text_reads_each_article_once_politely_and_keeps_the_summary_when_it_cannot() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        r#"
[collect]
timeout = "2s"
connect_timeout = "2s"

[[sources]]
name = "Coast Wire"
url = "{}"
full_text = true
tags = ["coast"]

# Not full_text: its pages are never fetched.
[[sources]]
name = "Alpha Security"
url = "{}"
tags = ["coast"]

[audiences.all]
title = "Everyone"
weights = {{ coast = 1.0 }}

[[editions]]
name = "daily"
title = "Daily"
audience = "all"
schedule = "0 0 8 * * *"
template = "weekly"
"#,
        feeds.url("feeds/full-text.xml"),
        feeds.url("feeds/alpha.xml")
    ));

    // What would be extracted, shown before anything is stored.
    let out = env
        .run(&["inspect", "--json", "--full-text", &feeds.url("feeds/full-text.xml")])
        .await;
    assert_exit(&out, 0);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let article = |i: usize| &v["items"][i]["article"];
    let text = s(&article(0)["text"]).unwrap_or_default();
    assert!(text.starts_with("The harbour authority confirmed on Tuesday"), "{text}");
    assert!(
        text.contains("\n\nOperators switched to paper manifests"),
        "paragraphs: {text}"
    );
    for noise in [
        "Accept cookies",
        "Related stories",
        "First!",
        "Subscribe to our newsletter",
        "Buy the new phone",
    ] {
        assert!(!text.contains(noise), "{noise:?} kept: {text}");
    }
    assert!(article(0)["words"].as_u64().unwrap_or(0) > 150, "{}", article(0));
    let errors: Vec<&str> = (1..7).map(|i| s(&article(i)["error"]).unwrap_or("(none)")).collect();
    let expected = [
        "disallowed by robots.txt",
        "no article text found",
        "not an HTML page (image/png)",
        "larger than",
        "timed out",
        "redirect loop",
    ];
    for (got, want) in errors.iter().zip(expected) {
        assert!(got.contains(want), "expected {want:?}, got {got:?} ({errors:?})");
    }

    let requests_before = feeds.requests.load(std::sync::atomic::Ordering::SeqCst);
    let started = std::time::Instant::now();
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("articles: 1 extracted, 5 without text, 1 refused by robots.txt"),
        "{text}"
    );
    assert!(
        started.elapsed().as_secs() < 20,
        "slow pages are cut off by the timeout"
    );
    // Two feeds, robots.txt once, each of the seven pages but the disallowed one.
    let fetched = feeds.requests.load(std::sync::atomic::Ordering::SeqCst) - requests_before;
    assert!(fetched <= 2 + 1 + 6 + 4, "{fetched} requests");

    // The TL;DR comes from the article; a story without text keeps its teaser.
    assert_exit(&env.run(&["subscribers", "add", "ann@example.com"]).await, 0);
    let out = env.run(&["preview", "daily", "--format", "text"]).await;
    assert_exit(&out, 0);
    let preview = stdout(&out);
    assert!(preview.contains("The harbour authority confirmed"), "{preview}");
    assert!(!preview.contains("A one-line teaser"), "{preview}");
    assert!(preview.contains("Teaser three."), "{preview}");

    // One fetch per story, never again: a second collect reads no page.
    let requests_before = feeds.requests.load(std::sync::atomic::Ordering::SeqCst);
    let out = env.run(&["collect", "--force"]).await;
    assert_exit(&out, 0);
    assert!(!stdout(&out).contains("articles:"), "{}", stdout(&out));
    let fetched = feeds.requests.load(std::sync::atomic::Ordering::SeqCst) - requests_before;
    assert_eq!(fetched, 2, "only the feeds themselves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_come_from_opml_go_back_to_opml_and_are_discovered_on_a_page() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let opml = std::fs::read_to_string(fixture("subscriptions.opml"))
        .expect("fixture")
        .replace("%%BASE%%", &feeds.url(""));
    std::fs::write(env.path("feeds.opml"), opml).expect("write");
    env.write_config(&format!(
        r#"
[collect]
opml = "feeds.opml"

[[sources]]
name = "Alpha Security"
url = "{}"
tags = ["security"]

[audiences.all]
title = "Everyone"
weights = {{ security = 1.0 }}
"#,
        feeds.url("feeds/alpha.xml")
    ));
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    for name in ["Alpha Security", "Beta Cloud", "Gamma Wire", "Legacy Atom"] {
        assert!(
            text.lines().any(|l| l.starts_with(name) && l.contains(" ok ")),
            "{name}: {text}"
        );
    }
    // OPML categories and folders became tags.
    let out = env.run(&["sources", "export"]).await;
    assert_exit(&out, 0);
    let exported = stdout(&out);
    assert!(
        exported.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">"),
        "{exported}"
    );
    assert!(
        exported.contains(&format!(
            "<outline type=\"rss\" text=\"Beta Cloud\" title=\"Beta Cloud\" xmlUrl=\"{}\" category=\"cloud,infrastructure\"/>",
            feeds.url("feeds/beta.atom")
        )),
        "{exported}"
    );
    assert!(
        exported.contains("category=\"technology,news,wire\""),
        "nested folders and a category path: {exported}"
    );
    // What was exported reads back as the same sources.
    std::fs::write(env.path("feeds.opml"), &exported).expect("write");
    env.write_config(
        "[collect]\nopml = \"feeds.opml\"\n\n[audiences.all]\ntitle = \"Everyone\"\nweights = { cloud = 1.0 }\n",
    );
    let again = stdout(&env.run(&["sources", "export"]).await);
    let outlines = |t: &str| {
        t.lines()
            .filter(|l| l.contains("<outline"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(outlines(&again), outlines(&exported));

    // A name used twice, in TOML and OPML, is named with the file and outline.
    std::fs::write(
        env.path("feeds.opml"),
        format!(
            "<opml version=\"1.0\"><body><outline text=\"Alpha Security\" xmlUrl=\"{}\"/><outline text=\"No URL here\"/><outline text=\"Bad\" xmlUrl=\"ftp://x\"/></body></opml>",
            feeds.url("feeds/beta.atom")
        ),
    )
    .expect("write");
    env.write_config(&format!(
        "[collect]\nopml = \"feeds.opml\"\n\n[[sources]]\nname = \"Alpha Security\"\nurl = \"{}\"\n\n[audiences.all]\ntitle = \"Everyone\"\nweights = {{ cloud = 1.0 }}\n",
        feeds.url("feeds/alpha.xml")
    ));
    let out = env.run(&["config", "check"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("feeds.opml: outline 1 \"Alpha Security\".name: \"Alpha Security\" is used by another source"),
        "{err}"
    );
    assert!(err.contains("feeds.opml: outline 3 \"Bad\".url"), "{err}");
    std::fs::write(env.path("feeds.opml"), "not xml at all").expect("write");
    let out = env.run(&["config", "check"]).await;
    assert_exit(&out, 2);
    assert!(
        stderr(&out).contains("collect.opml:") && stderr(&out).contains("feeds.opml"),
        "{}",
        stderr(&out)
    );

    // Discovery: the page's alternate links, checked, as [[sources]] blocks.
    env.write_config("[audiences.all]\ntitle = \"Everyone\"\nweights = { cloud = 1.0 }\n");
    let out = env
        .run(&["sources", "discover", &feeds.url("feeds/articles/with-feeds.html")])
        .await;
    assert_exit(&out, 0);
    let found = stdout(&out);
    assert!(
        found.contains(&format!(
            "[[sources]]\nname = \"Alpha Security\"\nurl = \"{}\"",
            feeds.url("feeds/alpha.xml")
        )),
        "{found}"
    );
    assert!(
        found.contains(&format!("url = \"{}\"", feeds.url("feeds/beta.atom"))),
        "{found}"
    );
    assert!(
        !found.contains("missing.xml"),
        "an advertised feed that does not parse is left out: {found}"
    );
    let out = env
        .run(&["sources", "discover", &feeds.url("feeds/articles/short.html")])
        .await;
    assert_exit(&out, 1);
    assert!(stderr(&out).contains("no feed found"), "{}", stderr(&out));
}
