//! Rendering benchmark (`bench/render/run`, or `cargo bench --bench render`).
//!
//! tidings renders an issue through the templates once, quoted-printable
//! encodes it once, and per subscriber only fills in the slots (name,
//! address, signed unsubscribe and preferences links) and writes the MIME
//! message. The peer, in the same run, is the obvious design it replaced:
//! run the templates (and CSS inlining) again for every subscriber and let
//! lettre encode each message. Both produce the complete message bytes.
//!
//! Prints a Markdown table and one `render:` line of figures for bench/run.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use chrono::{TimeZone, Utc};
use tidings::config::Config;
use tidings::deliver::message::{Addressed, MessageContext, build_message};
use tidings::deliver::{IssueDelivery, dkim};
use tidings::domain::{StoredStory, TagOrigin, TaggedTag};
use tidings::rank::{self, Overrides, RankPolicy};
use tidings::render::{Recipient, Renderer, build_issue_view, personalize};
use tidings::store::{DeliveryRow, IssueRow};
use tidings::token::Signer;

const SUBSCRIBERS: usize = 1_000;

fn bench_config(root: &Path, dkim: bool) -> Config {
    let mut text = format!(
        r#"
[site]
title = "Bench"
base_url = "https://news.example.com"
from = "Bench <bench@example.com>"
templates = "{root}/templates"

[database]
url = "sqlite://unused.db"

[[sources]]
name = "Bench Feed"
url = "https://feeds.example.com/feed.xml"
tags = ["security"]

[audiences.security]
title = "Security"
weights = {{ security = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly Bench"
audience = "security"
schedule = "0 0 8 * * Mon"
max_stories = 10
max_per_source = 10
"#,
        root = root.display()
    );
    if dkim {
        text.push_str(&format!(
            "\n[dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nprivate_key_file = \"{}/tests/fixtures/dkim/ed25519.pem\"\n",
            root.display()
        ));
    }
    let env = |name: &str| (name == "TIDINGS_SECRET").then(|| "bench secret, long enough to sign".to_string());
    Config::parse(&text, &root.join("bench/render/bench.toml"), &env).expect("the bench config validates")
}

/// Ten stories of about the size a news site's summary has.
fn stories() -> Vec<StoredStory> {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 27, 9, 0, 0)
        .single()
        .expect("valid time");
    let words = "cloud security breach ransomware model training inference policy vendor patch kernel network \
                 storage cluster latency budget release audit compliance regulation privacy identity";
    let words: Vec<&str> = words.split_whitespace().collect();
    (0..10)
        .map(|i| {
            let sentence = |n: usize, k: usize| -> String {
                (0..n)
                    .map(|j| words[(i * 7 + j * k) % words.len()])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let text = format!("{}. {}. {}.", sentence(25, 3), sentence(30, 5), sentence(28, 11));
            StoredStory {
                id: i as i64 + 1,
                source: "Bench Feed".into(),
                title: format!("Story {i}: {}", sentence(8, 13)),
                link: format!("https://news.example.com/story/{i}"),
                summary_html: format!("<p>{text}</p>"),
                summary_text: text,
                content: None,
                published_at: now - chrono::Duration::hours(i as i64 * 6),
                collected_at: now,
                cluster_id: None,
                tags: vec![TaggedTag {
                    tag: "security".into(),
                    origin: TagOrigin::Source,
                }],
            }
        })
        .collect()
}

fn per_item(total: Duration, n: usize) -> f64 {
    total.as_secs_f64() * 1e6 / n as f64
}

fn main() {
    tidings::install_crypto_provider();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = bench_config(root, false);
    let edition = config.edition("weekly").expect("edition");
    let audience = config.audience(&edition.audience).expect("audience");
    let stories = stories();
    let now = Utc
        .with_ymd_and_hms(2026, 11, 28, 8, 0, 0)
        .single()
        .expect("valid time");
    let weights: HashMap<String, f64> = HashMap::new();
    let selection = rank::select(
        &stories,
        audience,
        &weights,
        &RankPolicy::for_edition(edition, audience),
        &Overrides::default(),
        now,
    );
    let view = build_issue_view(&config, edition, &selection, None, now, &Default::default());
    let renderer = Renderer::load(&config.site.templates_dir).expect("templates load");

    // One issue: templates, CSS inlining, both variants and the web page.
    let rounds = 50;
    let start = Instant::now();
    let mut rendered = None;
    for _ in 0..rounds {
        rendered = Some(renderer.render_issue(&edition.template, None, &view).expect("renders"));
    }
    let render_us = per_item(start.elapsed(), rounds);
    let rendered = rendered.expect("rendered at least once");

    let signer = Signer::new(b"bench secret, long enough to sign");
    let rows: Vec<DeliveryRow> = (0..SUBSCRIBERS)
        .map(|i| DeliveryRow {
            id: i as i64 + 1,
            subscriber_id: i as i64 + 1,
            email: tidings::domain::EmailAddress::parse(&format!("reader{i}@example.com")).expect("address"),
            name: (i % 2 == 0).then(|| format!("Reader {i}")),
            message_id: format!("<tidings.1.bench.{i}@example.com>"),
            attempts: 1,
        })
        .collect();
    let context = MessageContext {
        from: tidings::domain::Mailbox::parse("Bench <bench@example.com>").expect("address"),
        list_id: "\"Weekly Bench\" <weekly.news.example.com>".into(),
        unsubscribe_mailto: Some("bench@example.com".into()),
        feedback_id: None,
        return_path: None,
        webhooks: Default::default(),
    };
    let delivery = |dkim: Option<dkim::DkimSigner>| IssueDelivery {
        issue: IssueRow {
            id: 1,
            edition: "weekly".into(),
            slot_at: now,
            composed_at: now,
            subject: rendered.public_subject(),
            content: String::new(),
        },
        encoded: rendered.encode(),
        rendered: rendered.clone(),
        context: context.clone(),
        signer: signer.clone(),
        base_url: "https://news.example.com".into(),
        dkim,
    };
    let date = SystemTime::now();
    let mut bytes = 0usize;

    // tidings: encode once, fill per subscriber.
    let plain = delivery(None);
    let start = Instant::now();
    let encode_start = Instant::now();
    let _ = rendered.encode();
    let encode_us = per_item(encode_start.elapsed(), 1);
    for row in &rows {
        bytes += plain.message_for(row, date).expect("message").formatted().len();
    }
    let fill_us = per_item(start.elapsed(), SUBSCRIBERS);

    let dkim_config = bench_config(root, true);
    let signing = delivery(Some(
        dkim::load(dkim_config.delivery.dkim.as_ref().expect("dkim settings")).expect("key loads"),
    ));
    let start = Instant::now();
    for row in &rows {
        bytes += signing.message_for(row, date).expect("message").formatted().len();
    }
    let fill_dkim_us = per_item(start.elapsed(), SUBSCRIBERS);

    // The peer: the whole template run again for every subscriber.
    let naive_n = 200;
    let start = Instant::now();
    for row in rows.iter().take(naive_n) {
        let issue = renderer.render_issue(&edition.template, None, &view).expect("renders");
        // The same links as tidings' own messages, from the same helpers.
        let token = plain.unsubscribe_token(row.subscriber_id);
        let url = plain.unsubscribe_url(&token);
        let personal = personalize(
            &issue,
            &Recipient {
                name: row.name.as_deref(),
                email: row.email.as_str(),
                unsubscribe_url: &url,
                preferences_url: &plain.preferences_url(row.subscriber_id),
                archive_url: &plain.archive_url(),
            },
        );
        let message = build_message(
            &context,
            &Addressed {
                to_email: row.email.as_str(),
                to_name: row.name.as_deref(),
                message_id: &row.message_id,
                unsubscribe_url: &url,
                mail_token: &token,
            },
            &personal,
            date,
        )
        .expect("message");
        bytes += message.formatted().len();
    }
    let naive_us = per_item(start.elapsed(), naive_n);

    let issue_1000_s = (render_us + encode_us + fill_us * SUBSCRIBERS as f64) / 1e6;
    let naive_1000_s = naive_us * SUBSCRIBERS as f64 / 1e6;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "rendering benchmark: 10-story issue, {SUBSCRIBERS} subscribers, one core of {cores}, {bytes} bytes written"
    );
    println!();
    println!("| step | tidings | re-render per subscriber (peer) | peer / tidings |");
    println!("|---|---|---|---|");
    println!(
        "| render the issue (templates, CSS inlining, 3 variants) | {:.2} ms | — | — |",
        render_us / 1e3
    );
    println!(
        "| encode it once (quoted-printable) | {:.2} ms | — | — |",
        encode_us / 1e3
    );
    println!(
        "| per subscriber: complete message | {fill_us:.1} µs | {naive_us:.1} µs | {:.0}x |",
        naive_us / fill_us
    );
    println!("| per subscriber with Ed25519 DKIM | {fill_dkim_us:.1} µs | — | — |");
    println!(
        "| issue for {SUBSCRIBERS} subscribers | {issue_1000_s:.3} s ({:.1} issues/s) | {naive_1000_s:.3} s ({:.2} issues/s) | {:.0}x |",
        1.0 / issue_1000_s,
        1.0 / naive_1000_s,
        naive_1000_s / issue_1000_s
    );
    println!(
        "render: render_ms={:.2} per_subscriber_us={fill_us:.1} per_subscriber_dkim_us={fill_dkim_us:.1} naive_us={naive_us:.1} issues_per_s={:.2} ratio={:.0}",
        render_us / 1e3,
        1.0 / issue_1000_s,
        naive_1000_s / issue_1000_s
    );
}
