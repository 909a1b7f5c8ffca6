//! Curation end to end: the fixture corpus in tests/fixtures/curation is
//! parsed, tagged and clustered as the collector does, then each edition's
//! issue is selected and rendered with a fixed clock and compared with a
//! golden file in tests/golden. `TIDINGS_BLESS=1` rewrites the golden files
//! (review the diff before committing it).
//!
//! The editor's overrides through the CLI and the database are tested at
//! the end, on every database.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use tidings::collect::cluster::{ClusterCandidate, assign_clusters, title_keys};
use tidings::config::{Config, SourceLocation};
use tidings::domain::StoredStory;
use tidings::rank::{self, Overrides, RankPolicy, Selection, Verdict};
use tidings::render::{Renderer, build_issue_view};

use crate::support::{Db, TestEnv, assert_exit, databases, finish, stdout};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/curation")
        .join(name)
}

/// The clock of every issue here: the Monday 08:00 slot after the corpus's week.
fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().expect("time")
}

fn config() -> Config {
    Config::load(&fixture("tidings.toml"), &|_| None).expect("curation config")
}

/// The corpus as the collector would store it: ids in source order, clusters assigned.
fn corpus(config: &Config) -> Vec<StoredStory> {
    let mut stories = Vec::new();
    for source in &config.sources {
        let SourceLocation::File(path) = &source.location else {
            panic!("fixture sources are files")
        };
        let bytes = std::fs::read(path).expect("read fixture");
        let feed = tidings::collect::parse_feed(&bytes, None).expect("parse fixture");
        let batch = tidings::collect::stories_from_feed(feed, source, None, &config.tag_rules, 500, now());
        for s in batch.stories {
            stories.push(StoredStory {
                id: stories.len() as i64 + 1,
                source: s.source,
                title: s.title,
                link: s.link,
                summary_html: s.summary_html,
                summary_text: s.summary_text,
                content: None,
                published_at: s.published_at,
                // As if collected every half hour; the stale marker then
                // only shows where a feed was late.
                collected_at: s.published_at + chrono::Duration::minutes(30),
                cluster_id: None,
                tags: s.tags,
            });
        }
    }
    let candidates: Vec<ClusterCandidate> = stories
        .iter()
        .map(|s| ClusterCandidate {
            id: s.id,
            source: s.source.clone(),
            link: s.link.clone(),
            keys: title_keys(&s.title),
            cluster_id: None,
        })
        .collect();
    for (id, cluster) in assign_clusters(&[], &candidates) {
        if let Some(s) = stories.iter_mut().find(|s| s.id == id) {
            s.cluster_id = Some(cluster);
        }
    }
    stories
}

fn weights(config: &Config) -> HashMap<String, f64> {
    config.sources.iter().map(|s| (s.name.clone(), s.weight)).collect()
}

fn select<'a>(config: &Config, stories: &'a [StoredStory], edition: &str) -> Selection<'a> {
    let edition = config.edition(edition).expect("edition");
    let audience = config.audience(&edition.audience).expect("audience");
    let policy = RankPolicy::for_edition(edition, audience);
    rank::select(
        stories,
        audience,
        &weights(config),
        &policy,
        &Overrides::default(),
        now(),
    )
}

/// The plain-text part of the edition's issue, rendered once.
fn render_text(config: &Config, stories: &[StoredStory], edition: &str) -> (String, String) {
    let selection = select(config, stories, edition);
    let e = config.edition(edition).expect("edition");
    let view = build_issue_view(config, e, &selection, None, now(), &Default::default());
    let rendered = Renderer::load(&config.site.templates_dir)
        .expect("templates")
        .render_issue(&e.template, e.subject.as_deref(), &view)
        .expect("render");
    // The per-subscriber values show as the names templates use for them.
    let who = tidings::render::Recipient {
        name: None,
        email: "[subscriber.email]",
        unsubscribe_url: "[unsubscribe_url]",
        preferences_url: "[preferences_url]",
        archive_url: "[archive_url]",
    };
    let personal = tidings::render::personalize(&rendered, &who);
    (personal.text, personal.html)
}

fn titles(selection: &Selection<'_>) -> Vec<String> {
    selection.stories().map(|r| r.story.title.clone()).collect()
}

fn check_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name);
    if std::env::var_os("TIDINGS_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with TIDINGS_BLESS=1 to create it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |l| l);
        panic!(
            "{} differs from this digest from line {}:\n--- expected\n{}\n--- actual\n{}\n(TIDINGS_BLESS=1 rewrites it)",
            path.display(),
            line + 1,
            expected.lines().skip(line).take(5).collect::<Vec<_>>().join("\n"),
            actual.lines().skip(line).take(5).collect::<Vec<_>>().join("\n"),
        );
    }
}

#[test]
fn security_digest_holds_what_its_profile_implies() {
    let config = config();
    let stories = corpus(&config);
    let selection = select(&config, &stories, "security-weekly");
    let got = titles(&selection);
    let sections: Vec<&str> = selection.sections.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(sections, ["Security", "Cloud"]);
    // The Northport story is told twice: one entry, with the other as "also".
    let northport: Vec<&String> = got.iter().filter(|t| t.contains("Northport")).collect();
    assert_eq!(northport.len(), 1, "{got:#?}");
    let first = &selection.sections[0].stories[0];
    assert!(first.story.title.contains("Northport"), "{got:#?}");
    assert_eq!(first.also.len(), 1);
    for wanted in [
        "Critical flaw in VaultGate VPN appliances exploited before a patch was ready",
        "Regulator opens inquiry into ransomware payments by insurers",
        "Nimbus Cloud cuts egress prices for European regions",
    ] {
        assert!(got.iter().any(|t| t == wanted), "{wanted} missing: {got:#?}");
    }
    for unwanted in [
        "Sponsored: five reasons to switch to our VPN",         // excluded tag
        "A short history of the firewall",                      // outside the window
        "Smartphone sales flat for the third quarter in a row", // no matching tag
        "EU Council agrees final text of the AI Liability Directive", // policy only
        "Data protection authority fines retailer over loyalty-card tracking",
    ] {
        assert!(!got.iter().any(|t| t == unwanted), "{unwanted} ranked: {got:#?}");
    }
    // Five Harbour stories rank; max_per_source = 3 keeps two out.
    let harbour = selection
        .stories()
        .filter(|r| r.story.source == "Harbour Security Wire")
        .count();
    assert_eq!(harbour, 3, "{got:#?}");
    let capped = selection
        .considered
        .iter()
        .filter(|c| matches!(&c.verdict, Verdict::LeftOut(why) if why.contains("max_per_source = 3")))
        .count();
    assert!(capped >= 1, "{:#?}", selection.considered);
    assert!(selection.len() <= 6);
}

#[test]
fn policy_digest_holds_what_its_profile_implies() {
    let config = config();
    let stories = corpus(&config);
    let got = titles(&select(&config, &stories, "policy-weekly"));
    assert_eq!(
        got.first().map(String::as_str),
        Some("EU Council agrees final text of the AI Liability Directive")
    );
    for wanted in [
        "Data protection authority fines retailer over loyalty-card tracking",
        "Parliament committee hears evidence on cloud sovereignty rules",
        "Procurement rules will require SBOMs from government software vendors",
        "Regulator opens inquiry into ransomware payments by insurers",
    ] {
        assert!(got.iter().any(|t| t == wanted), "{wanted} missing: {got:#?}");
    }
    assert!(
        !got.iter()
            .any(|t| t.contains("VaultGate") || t.contains("Nimbus") || t.contains("PrintHub")),
        "security and cloud stories in the policy digest: {got:#?}"
    );
}

#[test]
fn digests_match_their_golden_files_byte_for_byte() {
    let config = config();
    let stories = corpus(&config);
    for edition in ["security-weekly", "policy-weekly"] {
        let (text, html) = render_text(&config, &stories, edition);
        check_golden(&format!("{edition}.txt"), &text);
        // The same stories in another order give the same bytes.
        let mut reversed = stories.clone();
        reversed.reverse();
        let (text_again, html_again) = render_text(&config, &reversed, edition);
        assert_eq!(text, text_again, "{edition}: text depends on input order");
        assert_eq!(html, html_again, "{edition}: HTML depends on input order");
    }
}

#[test]
fn tldr_and_who_should_care_appear_in_the_digest() {
    let config = config();
    let stories = corpus(&config);
    let (text, _) = render_text(&config, &stories, "security-weekly");
    // The long Northport article becomes its key sentences; the boilerplate goes.
    assert!(text.contains("Operations at the Northport container"), "{text}");
    assert!(!text.contains("appeared first on"), "{text}");
    assert!(!text.contains("charity event"), "{text}");
    assert!(!text.contains("Continue reading"), "{text}");
    // The insurers' inquiry matters to both audiences (each above its threshold).
    let inquiry = text
        .split("\n\n")
        .skip_while(|p| !p.contains("Regulator opens inquiry"))
        .take(4)
        .collect::<Vec<_>>()
        .join("\n\n");
    assert!(
        inquiry.contains("Who should care: Policy & Compliance, Enterprise & Security Teams")
            || inquiry.contains("Who should care: Enterprise & Security Teams, Policy & Compliance"),
        "{inquiry}"
    );
}

#[tokio::test]
async fn editors_pin_exclude_and_write_a_note_and_the_issue_freezes_them() {
    for db in databases().await {
        editorial(db.clone()).await;
        finish(db).await;
    }
}

async fn editorial(db: Db) {
    let env = TestEnv::new(db);
    for file in ["harbour.xml", "cloud-ledger.atom", "policy-desk.json", "daily-byte.xml"] {
        std::fs::copy(fixture(file), env.path(file)).expect("copy fixture");
    }
    let text = std::fs::read_to_string(fixture("tidings.toml")).expect("config");
    // The test env writes [site] and [database]; the rest is the fixture's,
    // with every story of the corpus in the window whenever the test runs.
    let body = text[text.find("[tags.security]").expect("tags")..].replace("window_days = 7", "window_days = 3660");
    env.write_config(&body);
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_exit(
        &env.run(&["subscribers", "add", "ed@example.com", "--edition", "security-weekly"])
            .await,
        0,
    );

    let ranked = stdout(&env.run(&["rank", "security", "--explain"]).await);
    let id_of = |title: &str| -> String {
        let line = ranked
            .lines()
            .find(|l| l.contains(title))
            .unwrap_or_else(|| panic!("{title} not in rank output:\n{ranked}"));
        let at = line.find(" #").expect("id") + 2;
        line[at..].split_whitespace().next().expect("id").to_string()
    };
    assert!(
        ranked.contains("left out: already 3 stories from Harbour Security Wire"),
        "{ranked}"
    );
    assert!(ranked.contains("× cluster 1.25 (1 other source)"), "{ranked}");
    let vaultgate = id_of("VaultGate");

    // Pin a story that does not rank for this audience, by its link, at the top;
    // exclude one that does, by the id rank printed; write a note.
    let pin = env
        .run(&[
            "issue",
            "pin",
            "security-weekly",
            "https://daily-byte.example/phones-flat?utm_campaign=x#top",
            "--position",
            "1",
        ])
        .await;
    assert_exit(&pin, 0);
    assert_exit(&env.run(&["issue", "exclude", "security-weekly", &vaultgate]).await, 0);
    assert_exit(
        &env.run(&["issue", "note", "security-weekly", "A quiet week, except in Northport."])
            .await,
        0,
    );
    let unknown = env.run(&["issue", "pin", "security-weekly", "999999"]).await;
    assert_exit(&unknown, 2);
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no story #999999"));

    let shown = stdout(&env.run(&["issue", "show", "security-weekly"]).await);
    assert!(
        shown.contains("note: A quiet week") && shown.contains("at position 1"),
        "{shown}"
    );

    // The preview shows exactly that.
    let preview = stdout(&env.run(&["preview", "security-weekly", "--format", "text"]).await);
    assert!(preview.contains("A quiet week, except in Northport."), "{preview}");
    assert!(!preview.contains("VaultGate"), "{preview}");
    let phones = preview.find("Smartphone sales flat").expect("pinned story in preview");
    let first_story = preview.find("1. ").expect("a first story");
    assert!(phones < first_story + 10, "the pinned story is not first:\n{preview}");

    // Sending composes the issue with the overrides frozen in, and uses them up.
    assert_exit(&env.run(&["send", "security-weekly"]).await, 0);
    let mail: Vec<String> = std::fs::read_dir(env.path("outbox"))
        .expect("outbox")
        .flatten()
        .map(|f| std::fs::read_to_string(f.path()).expect("read mail"))
        .collect();
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("A quiet week") && mail[0].contains("Smartphone sales flat"));
    let shown = stdout(&env.run(&["issue", "show", "security-weekly"]).await);
    assert!(shown.contains("note: (none)") && !shown.contains("pinned:"), "{shown}");
}

#[tokio::test]
async fn an_edition_with_approval_waits_for_the_editor() {
    for db in databases().await {
        approval(db.clone()).await;
        finish(db).await;
    }
}

async fn approval(db: Db) {
    let feeds = crate::support::http::FeedServer::start().await;
    let env = TestEnv::new(db);
    // A month of grace: this week's Monday slot can still be approved.
    env.write_config(&crate::support::alpha_weekly(
        &feeds,
        "0 0 8 * * Mon",
        "approval = true\ngrace = \"30d\"",
    ));
    assert_exit(&env.run(&["subscribers", "add", "ada@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);
    let outbox = env.path("outbox");
    let sent = || std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);

    // Not approved: `send` composes nothing and sends nothing.
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 1);
    assert!(
        stdout(&out).contains("waits for an editor's approval"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sent(), 0);

    // The editor approves what the preview shows: it is composed at once.
    let preview = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(preview.contains("Ransomware hits port operator"), "{preview}");
    let approve = env.run(&["issue", "approve", "weekly"]).await;
    assert_exit(&approve, 0);
    assert!(
        stdout(&approve).contains("approved and composed"),
        "{}",
        stdout(&approve)
    );
    // Approving again is about the next slot's issue, which has no new story yet.
    let again = env.run(&["issue", "approve", "weekly"]).await;
    assert!(stdout(&again).contains("0 stories rank"), "{}", stdout(&again));

    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    assert_eq!(sent(), 1);
    let mail = std::fs::read_dir(&outbox)
        .expect("outbox")
        .flatten()
        .map(|f| std::fs::read_to_string(f.path()).expect("mail"))
        .collect::<String>();
    assert!(mail.contains("Ransomware hits port operator"));
}
