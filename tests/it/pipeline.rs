//! The whole pipeline through the real binary: feeds over HTTP, a SQLite
//! file (and PostgreSQL when configured), an SMTP server with STARTTLS and
//! AUTH, and the messages parsed with a MIME parser.

use mail_parser::MessageParser;
use tidings::token::{Purpose, Signer};

use crate::support::http::FeedServer;
use crate::support::smtp::{Refusal, SmtpOptions, SmtpServer, test_ca};
use crate::support::{Db, SECRET, TestEnv, assert_exit, databases, finish, stdout};

fn feeds_config(feeds: &FeedServer, extra_sources: &str) -> String {
    format!(
        r#"
[[sources]]
name = "Alpha Security"
url = "{alpha}"

[[sources]]
name = "Beta Cloud"
url = "{beta}"
tags = ["cloud"]
weight = 2.0

[[sources]]
name = "Gamma Wire"
url = "{gamma}"

[[sources]]
name = "Delta Latin1"
url = "{delta}"

{extra_sources}

[tags.security]
keywords = ["ransomware", "breach"]

[tags.cloud]
keywords = ["kubernetes", "cloud"]

[audiences.security]
title = "Enterprise & Security Teams"
weights = {{ security = 3.0, cloud = 2.0 }}

[audiences.gardeners]
title = "Gardeners"
weights = {{ gardening = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly AI Recap"
audience = "security"
schedule = "0 0 8 * * Mon"
timezone = "Europe/Berlin"
window_days = 7
max_stories = 10
template = "weekly"
subject = "🖥️ {{{{ edition.title }}}} · 東京 — {{{{ issue.date }}}}"
"#,
        alpha = feeds.url("feeds/alpha.xml"),
        beta = feeds.url("feeds/beta.atom"),
        gamma = feeds.url("feeds/gamma.json"),
        delta = feeds.url("feeds/delta-latin1.xml"),
    )
}

/// Expected order for the security audience (see the fixtures' dates,
/// source weights and tags).
const EXPECTED_ORDER: [&str; 5] = [
    "Kubernetes breach disclosed",
    "🖥️ Browser flaw patched — 東京 team credited",
    "Ransomware hits port operator",
    "Café chain reports breach in Zürich",
    "Quarterly cloud pricing update",
];

/// A header as sent, unfolded.
fn header_text(msg: &mail_parser::Message<'_>, name: &str) -> String {
    msg.header_raw(name)
        .map(|v| v.replace("\r\n", "").trim().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_rank_render_and_deliver_over_smtp_with_starttls_and_auth() {
    for db in databases().await {
        end_to_end(db.clone()).await;
        finish(db).await;
    }
}

async fn end_to_end(db: Db) {
    let feeds = FeedServer::start().await;
    let ca = test_ca();
    let smtp = SmtpServer::start(SmtpOptions {
        tls: Some(ca.acceptor.clone()),
        auth: Some(("mailer".into(), "p@ss word".into())),
        ..SmtpOptions::default()
    })
    .await;
    let env = TestEnv::new(db.clone());
    std::fs::write(env.path("ca.pem"), &ca.ca_pem).expect("write ca");
    // A local-file source too, relative to the config file.
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples/cloud-notes.atom"),
        env.path("local.atom"),
    )
    .expect("copy");
    let extra = format!(
        r#"[[sources]]
name = "Broken"
url = "{}"

[[sources]]
name = "Local Notes"
url = "local.atom"
weight = 0.01

[smtp]
url = "smtp://mailer:p%40ss%20word@127.0.0.1:{}"
starttls = "required"
ca_file = "ca.pem"
"#,
        feeds.url("feeds/broken.xml"),
        smtp.port
    );
    env.write_config(&feeds_config(&feeds, &extra));

    assert_exit(&env.run(&["config", "check"]).await, 0);
    assert_exit(
        &env.run(&["subscribers", "add", "ada@example.com", "--name", "Ada Ω Lovelace"])
            .await,
        0,
    );
    assert_exit(&env.run(&["subscribers", "add", "bob@example.org"]).await, 0);

    // One broken source is reported; the others are collected; exit 1.
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("Broken") && text.contains("FAILED"), "{text}");
    for ok in [
        "Alpha Security",
        "Beta Cloud",
        "Gamma Wire",
        "Delta Latin1",
        "Local Notes",
    ] {
        let line = text.lines().find(|l| l.starts_with(ok)).unwrap_or_default();
        assert!(line.contains(" ok "), "{ok} not collected: {text}");
    }
    assert!(text.contains("4 new"), "alpha has 4 items: {text}");

    // Collecting again stores nothing twice: the HTTP sources answer 304 to
    // the conditional GET, the local file is parsed and nothing is new, and
    // the broken source waits for its backoff.
    let requests_before = feeds.request_count();
    let again = stdout(&env.run(&["collect"]).await);
    assert_eq!(
        feeds.request_count() - requests_before,
        4,
        "one request per healthy HTTP source"
    );
    let broken = again.lines().find(|l| l.starts_with("Broken")).unwrap_or_default();
    assert!(
        broken.contains("backing off") && broken.contains("after 1 failures"),
        "{again}"
    );
    for http in ["Alpha Security", "Beta Cloud", "Gamma Wire", "Delta Latin1"] {
        let line = again.lines().find(|l| l.starts_with(http)).unwrap_or_default();
        assert!(line.contains("not modified"), "{http}: {again}");
    }
    let local = again.lines().find(|l| l.starts_with("Local Notes")).unwrap_or_default();
    assert!(local.contains("0 new, 3 unchanged"), "{again}");

    // Ranking order, with explanation.
    let out = env.run(&["rank", "security", "--explain"]).await;
    assert_exit(&out, 0);
    let ranked = stdout(&out);
    let positions: Vec<usize> = EXPECTED_ORDER
        .iter()
        .map(|t| {
            ranked
                .find(t)
                .unwrap_or_else(|| panic!("{t} missing from rank output:\n{ranked}"))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "wrong order:\n{ranked}");
    assert!(!ranked.contains("Gardening"), "zero-score story ranked:\n{ranked}");
    assert!(
        !ranked.contains("Old ransomware"),
        "story outside the window ranked:\n{ranked}"
    );
    assert!(ranked.contains("via keyword \"breach\""), "{ranked}");

    // Send: both subscribers get one message each, over TLS with AUTH.
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("2 sent"), "{}", stdout(&out));
    let received = smtp.messages();
    assert_eq!(received.len(), 2, "one message per subscriber");
    let signer = Signer::new(SECRET.as_bytes());
    let mut message_ids = Vec::new();
    for r in &received {
        assert!(r.tls, "STARTTLS was required");
        assert_eq!(r.auth_user.as_deref(), Some("mailer"));
        assert_eq!(r.mail_from, "recap@example.com");
        let msg = MessageParser::default().parse(&r.data).expect("parses as MIME");
        let to = msg.to().and_then(|a| a.first()).expect("To");
        let to_addr = to.address().unwrap_or_default().to_string();
        assert_eq!(r.rcpt_to, vec![to_addr.clone()]);
        if to_addr == "ada@example.com" {
            assert_eq!(to.name(), Some("Ada Ω Lovelace"), "name arrives exactly as written");
        } else {
            assert_eq!(to.name(), None);
        }
        // Emoji and non-Latin text arrive exactly as written.
        let subject = msg.subject().expect("subject");
        assert!(subject.starts_with("🖥️ Weekly AI Recap · 東京 — "), "{subject}");
        assert!(msg.date().is_some(), "Date header");
        let from = msg.from().and_then(|a| a.first()).expect("From");
        assert_eq!(from.address(), Some("recap@example.com"));
        message_ids.push(msg.message_id().expect("Message-ID").to_string());

        // List-Unsubscribe: an https link with a valid signed token, and no
        // mailto, since no `[site] unsubscribe_mailto` says someone reads it.
        let lu = header_text(&msg, "List-Unsubscribe");
        let start = lu
            .find("https://news.example.com/unsubscribe/")
            .expect("https unsubscribe link")
            + 37;
        let token: String = lu[start..]
            .chars()
            .take_while(|c| *c != '>' && *c != ',' && !c.is_whitespace())
            .collect();
        let subscriber_id = signer.verify(Purpose::Unsubscribe, &token, 0).expect("token verifies");
        assert!(subscriber_id > 0);
        assert_eq!(lu, format!("<https://news.example.com/unsubscribe/{token}>"));
        assert_eq!(header_text(&msg, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");

        // Both parts, both with the unsubscribe link and the stories in order.
        let text = msg.body_text(0).expect("text part").to_string();
        let html = msg.body_html(0).expect("html part").to_string();
        assert!(
            text.contains(&format!("https://news.example.com/unsubscribe/{token}")),
            "{text}"
        );
        assert!(
            html.contains(&format!("href=\"https://news.example.com/unsubscribe/{token}\"")),
            "{html}"
        );
        for body in [&text, &html] {
            let positions: Vec<usize> = EXPECTED_ORDER
                .iter()
                .map(|t| body.find(t).unwrap_or_else(|| panic!("{t} missing from\n{body}")))
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]), "story order in\n{body}");
            assert!(!body.contains("Gardening"));
            assert!(
                body.contains("Alpha Security") && body.contains("Enterprise &"),
                "source and audience shown"
            );
        }
        // Nothing from a feed can run or track; CSS is inlined.
        let lower = html.to_lowercase();
        for bad in [
            "<script",
            "javascript:",
            "onclick",
            "tracker.example",
            "document.cookie",
            "<style",
        ] {
            assert!(!lower.contains(bad), "{bad} in html");
        }
        assert!(html.contains("style=\""), "CSS inlined into elements");
        // Canonical links: tracking parameters and fragments gone, relative resolved.
        assert!(
            html.contains("https://alpha.example.com/news/port-ransomware?id=7\""),
            "{html}"
        );
        // Stale marker: collected 72 h after publication (threshold 48 h), not at 24 h.
        let meta_line = |title: &str| {
            let at = text.find(title).expect("title in text");
            text[at..].lines().nth(1).unwrap_or_default().to_string()
        };
        assert!(meta_line("Kubernetes breach disclosed").contains("stale"), "{text}");
        assert!(!meta_line("Ransomware hits port operator").contains("stale"), "{text}");
    }
    message_ids.sort();
    message_ids.dedup();
    assert_eq!(message_ids.len(), 2, "Message-IDs are unique");

    // A second send for the same period delivers nothing and says so.
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("already sent"), "{}", stdout(&out));
    assert_eq!(smtp.messages().len(), 2, "nothing sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_recipient_is_suppressed_and_reported_while_others_are_delivered() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions {
        refusals: vec![Refusal {
            pattern: "gone@".into(),
            reply: "550 5.1.1 no such mailbox".into(),
            times: None,
        }],
        ..SmtpOptions::default()
    })
    .await;
    let env = TestEnv::new(Db::Sqlite);
    let extra = format!(
        "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nstarttls = \"never\"\n",
        smtp.port
    );
    env.write_config(&feeds_config(&feeds, &extra));
    for who in ["ok@example.com", "gone@example.com"] {
        assert_exit(&env.run(&["subscribers", "add", who]).await, 0);
    }
    assert_exit(&env.run(&["collect"]).await, 0);
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("refused: gone@example.com: ") && text.contains("550"),
        "{text}"
    );
    assert_eq!(smtp.messages().len(), 1);
    let list = stdout(&env.run(&["subscribers", "list"]).await);
    assert!(
        list.lines()
            .any(|l| l.starts_with("gone@example.com") && l.contains("bounced")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("ok@example.com") && l.contains("active")),
        "{list}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_smtp_password_stops_the_send_and_loses_no_recipient() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions {
        auth: Some(("mailer".into(), "right-Pw-8xQ2".into())),
        ..SmtpOptions::default()
    })
    .await;
    let env = TestEnv::new(Db::Sqlite);
    let config = |pass: &str| {
        feeds_config(
            &feeds,
            &format!(
                "[smtp]\nurl = \"smtp://mailer:{pass}@127.0.0.1:{}\"\nstarttls = \"never\"\n",
                smtp.port
            ),
        )
    };
    env.write_config(&config("wrong-and-secret"));
    assert_exit(&env.run(&["subscribers", "add", "a@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);
    // At the most verbose logging, neither the password (as written, or as
    // AUTH PLAIN puts it on the wire) nor TIDINGS_SECRET may show up.
    let trace = [("RUST_LOG", "trace")];
    let leaks = |out: &std::process::Output, password: &str| {
        use base64::Engine;
        let wire = base64::engine::general_purpose::STANDARD.encode(format!("\0mailer\0{password}"));
        let all = format!("{}{}", stdout(out), crate::support::stderr(out));
        assert!(all.len() > 1000, "trace logging is on: {all}");
        [password, wire.as_str(), SECRET]
            .into_iter()
            .filter(|secret| all.contains(secret))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let out = env.run_with_env(&["send", "weekly"], &trace).await;
    assert_exit(&out, 1);
    let err = crate::support::stderr(&out);
    assert!(err.contains("535") || err.contains("authentication"), "{err}");
    assert_eq!(
        leaks(&out, "wrong-and-secret"),
        Vec::<String>::new(),
        "secrets in the output"
    );
    assert!(smtp.messages().is_empty());
    // Fixed password: the same issue goes out, to the same subscriber.
    env.write_config(&config("right-Pw-8xQ2"));
    let out = env.run_with_env(&["send", "weekly"], &trace).await;
    assert_exit(&out, 0);
    assert_eq!(
        leaks(&out, "right-Pw-8xQ2"),
        Vec::<String>::new(),
        "secrets in the output"
    );
    assert_eq!(smtp.messages().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_example_runs_into_the_mailbox_folder() {
    // The README's first command, in a copy of the repository's config.
    let env = TestEnv::new(Db::Sqlite);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&root.join("config"), &env.path("config"));
    copy_dir(&root.join("templates"), &env.path("templates"));
    let config = env.path("config/tidings.toml");
    let config = config.to_str().expect("utf-8 path");
    let run = |args: &'static [&'static str]| {
        let env = &env;
        async move {
            let mut all = vec!["--config", config];
            all.extend_from_slice(args);
            env.run(&all).await
        }
    };
    assert_exit(
        &run(&["subscribers", "import", "config/examples/subscribers.csv"]).await,
        0,
    );
    let out = run(&["run", "--once"]).await;
    assert_exit(&out, 0);
    let outbox = env.path("outbox");
    let files: Vec<_> = std::fs::read_dir(&outbox).expect("outbox exists").flatten().collect();
    assert_eq!(files.len(), 3, "one .eml per subscriber");
    for f in &files {
        let bytes = std::fs::read(f.path()).expect("read eml");
        let msg = MessageParser::default().parse(&bytes).expect("valid MIME");
        assert!(msg.body_html(0).is_some() && msg.body_text(0).is_some());
        assert!(msg.subject().unwrap_or_default().starts_with("Weekly AI Recap — "));
    }
    // Running again sends nothing new (`run` alone is `run --once`).
    let out = run(&["run"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("already sent"), "{}", stdout(&out));
    assert_eq!(std::fs::read_dir(&outbox).expect("outbox").count(), 3);
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// Display names with emoji, quotes and non-Latin script are valid RFC
/// 5322 / 2047 phrases in From, To and List-Id: an independent parser
/// reads back exactly what was configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_with_emoji_quotes_and_other_scripts_read_back_exactly() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let title = r#"🖥️ "Weekly" Recap — 東京 édition"#;
    env.write_config(
        &crate::support::alpha_weekly(&feeds, "0 0 8 * * Mon", "")
            .replace("title = \"Weekly\"", &format!("title = '{title}'")),
    );
    let config = std::fs::read_to_string(env.config_path()).expect("config");
    let from_name = r#"Ada "the Editor" Łukasz 東京 📰"#;
    let config = config.replacen(
        "from = \"Weekly AI Recap <recap@example.com>\"",
        &format!("from = '{from_name} <recap@example.com>'"),
        1,
    );
    std::fs::write(env.config_path(), config).expect("config");
    let reader = r#"Zoë "Z" Müller-Øre 李雷 🎉"#;
    assert_exit(
        &env.run(&["subscribers", "add", "zoe@example.com", "--name", reader])
            .await,
        0,
    );
    assert_exit(&env.run(&["run", "--once"]).await, 0);
    let files: Vec<_> = std::fs::read_dir(env.path("outbox"))
        .expect("outbox")
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let bytes = std::fs::read(files[0].path()).expect("read eml");
    for line in bytes.split(|b| *b == b'\n') {
        assert!(
            line.is_ascii(),
            "raw 8-bit header or body line: {}",
            String::from_utf8_lossy(line)
        );
    }
    let msg = MessageParser::default().parse(&bytes).expect("valid MIME");
    let from = msg.from().and_then(|a| a.first()).expect("From");
    assert_eq!(from.name(), Some(from_name));
    let to = msg.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.name(), Some(reader));
    assert_eq!(to.address(), Some("zoe@example.com"));
    let list_id = msg
        .header("List-Id")
        .and_then(|h| h.as_address())
        .and_then(|a| a.first())
        .expect("List-Id");
    assert_eq!(list_id.name(), Some(title));
    assert_eq!(list_id.address(), Some("weekly.example.com"));
}

/// A relay whose certificate cannot be trusted is named once, in words,
/// with what to do — and nobody's delivery is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_relay_certificates_are_explained_in_words() {
    use crate::support::smtp::{BadCert, tls_with};
    let feeds = FeedServer::start().await;
    for (bad, words) in [
        (BadCert::CaAsServer, "is a CA certificate used as the server's own"),
        (BadCert::Expired, "has expired"),
        (BadCert::WrongName, "is issued for another host name"),
        (
            BadCert::UnknownIssuer,
            "is signed by an authority this machine does not trust",
        ),
    ] {
        let tls = tls_with(Some(bad));
        let smtp = SmtpServer::start(SmtpOptions {
            tls: Some(tls.acceptor.clone()),
            ..SmtpOptions::default()
        })
        .await;
        let env = TestEnv::new(Db::Sqlite);
        std::fs::write(env.path("ca.pem"), &tls.ca_pem).expect("write ca");
        env.write_config(&format!(
            "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nstarttls = \"required\"\nca_file = \"ca.pem\"\n{}",
            smtp.port,
            crate::support::alpha_weekly(&feeds, "0 0 8 * * Mon", "")
        ));
        assert_exit(&env.run(&["subscribers", "add", "ann@example.com"]).await, 0);
        assert_exit(&env.run(&["collect"]).await, 0);
        let out = env.run(&["send", "weekly", "--wait", "0s"]).await;
        assert_exit(&out, 1);
        let all = format!("{}{}", stdout(&out), crate::support::stderr(&out));
        assert!(all.contains(words), "{bad:?}: {all}");
        assert_eq!(
            all.matches("TLS: the SMTP server's certificate").count(),
            1,
            "{bad:?}: once\n{all}"
        );
        for jargon in ["CaUsedAsEndEntity", "InvalidCertificate", "OtherError"] {
            assert!(!all.contains(jargon), "{bad:?}: {all}");
        }
        assert!(smtp.messages().is_empty());
        let deliveries = stdout(&env.run(&["deliveries"]).await);
        assert!(!deliveries.contains("1 sent"), "{deliveries}");
    }
}
