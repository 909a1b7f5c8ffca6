//! The delivery engine against a misbehaving SMTP server, a killed process
//! and a stopped one: every subscriber gets the issue, nobody twice (except,
//! after a SIGKILL, a message that was in flight at that moment).

use std::time::Duration;

use crate::support::http::FeedServer;
use crate::support::smtp::{Refusal, SmtpOptions, SmtpServer};
use crate::support::{Db, TestEnv, alpha_weekly, assert_exit, import_subscribers, stdout};

/// An env with one feed collected and `n` subscribers (`user{i}@example.com`,
/// plus any `extra` addresses), sending to `smtp` with `delivery` settings.
async fn setup(feeds: &FeedServer, smtp: &SmtpServer, delivery: &str, n: usize, extra: &[&str]) -> TestEnv {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        r#"
[smtp]
url = "smtp://127.0.0.1:{port}"
starttls = "never"

[delivery]
{delivery}
{tail}"#,
        port = smtp.port,
        tail = alpha_weekly(feeds, "0 0 8 * * Mon", ""),
    ));
    let mut list: Vec<(String, String)> = (0..n)
        .map(|i| (format!("user{i}@example.com"), format!("User {i}")))
        .collect();
    list.extend(extra.iter().map(|e| (e.to_string(), String::new())));
    import_subscribers(&env, &list).await;
    assert_exit(&env.run(&["collect"]).await, 0);
    env
}

fn expected(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i}@example.com")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_faults_are_retried_and_permanent_ones_suppressed() {
    faults_are_retried_and_suppressed(true).await;
}

/// The same through a server that does not pipeline: lettre's own
/// transaction, which ends the connection after a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_pipelining_faults_are_retried_and_suppressed_too() {
    faults_are_retried_and_suppressed(false).await;
}

async fn faults_are_retried_and_suppressed(pipelining: bool) {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions {
        no_pipelining: !pipelining,
        refusals: vec![
            Refusal {
                pattern: "grey".into(),
                reply: "450 4.2.0 greylisted, try again later".into(),
                times: Some(2),
            },
            Refusal {
                pattern: "busy".into(),
                reply: "421 4.3.2 too busy".into(),
                times: Some(1),
            },
            Refusal {
                pattern: "gone".into(),
                reply: "550 5.1.1 no such user".into(),
                times: None,
            },
        ],
        fail_every: Some((7, "451 4.3.0 temporary local problem".into())),
        drop_mid_data_every: Some(11),
        ..SmtpOptions::default()
    })
    .await;
    let extra = [
        "grey1@example.com",
        "grey2@example.com",
        "busy@example.com",
        "gone1@example.com",
        "gone2@example.com",
    ];
    let env = setup(
        &feeds,
        &smtp,
        "concurrency = 4\nretry_initial = \"200ms\"\nretry_max = \"1s\"\nmax_attempts = 8",
        40,
        &extra,
    )
    .await;
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("refused: gone1@example.com: 550"), "{text}");
    assert!(text.contains("refused: gone2@example.com: 550"), "{text}");

    let got = smtp.per_recipient();
    let mut want = expected(40);
    want.extend(["grey1@example.com", "grey2@example.com", "busy@example.com"].map(String::from));
    for who in &want {
        assert_eq!(got.get(who), Some(&1), "{who} gets the issue exactly once: {got:?}");
    }
    assert!(!got.contains_key("gone1@example.com") && !got.contains_key("gone2@example.com"));
    assert_eq!(got.len(), want.len(), "nobody else was mailed");

    // The permanently refused are suppressed from later issues.
    let list = stdout(&env.run(&["subscribers", "list"]).await);
    for gone in ["gone1@example.com", "gone2@example.com"] {
        assert!(
            list.lines().any(|l| l.starts_with(gone) && l.contains("bounced")),
            "{list}"
        );
    }
    // The report names the failures with the server's replies.
    let report = stdout(&env.run(&["deliveries", "1"]).await);
    assert!(
        report.contains("43 sent") && report.contains("2 failed of 45"),
        "{report}"
    );
    assert!(
        report.contains("failed: gone1@example.com: 550 5.1.1 no such user"),
        "{report}"
    );
    assert!(report.contains("messages/s"), "{report}");
    // MAIL, RCPT and DATA went out together only where the server said it
    // could take them.
    if pipelining {
        assert!(smtp.pipelined() >= 45, "pipelined {} transactions", smtp.pipelined());
    } else {
        assert_eq!(smtp.pipelined(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_beyond_the_wait_is_left_for_the_next_run() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions {
        refusals: vec![Refusal {
            pattern: "grey".into(),
            reply: "450 4.2.0 greylisted".into(),
            times: Some(1),
        }],
        ..SmtpOptions::default()
    })
    .await;
    let env = setup(&feeds, &smtp, "retry_initial = \"1s\"", 3, &["grey@example.com"]).await;
    // --resume composes nothing: with no issue yet, there is nothing to do.
    let out = env.run(&["send", "weekly", "--resume"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("nothing to resume"), "{}", stdout(&out));
    assert!(smtp.messages().is_empty());
    let out = env.run(&["send", "weekly", "--wait", "0s"]).await;
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("1 deliveries still waiting"), "{}", stdout(&out));
    assert_eq!(smtp.messages().len(), 3);
    // The binary timed the retry on the system clock; a manual clock a few
    // seconds past it finds the retry due, with no waiting.
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    let app = env.open_app(tidings::clock::ManualClock::new(later)).await;
    let reports = app
        .resume("weekly", &tidings::app::SendOptions::standard(), later)
        .await
        .expect("resume");
    assert!(
        matches!(&reports[..], [tidings::app::SendReport::Delivered { run, .. }] if run.sent == 1),
        "{reports:?}"
    );
    assert_eq!(smtp.per_recipient().get("grey@example.com"), Some(&1));
    assert_eq!(smtp.messages().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_attempts_is_a_failure_not_a_bounce() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions {
        refusals: vec![Refusal {
            pattern: "always".into(),
            reply: "452 4.2.2 mailbox full".into(),
            times: None,
        }],
        ..SmtpOptions::default()
    })
    .await;
    let env = setup(
        &feeds,
        &smtp,
        "retry_initial = \"100ms\"\nmax_attempts = 3",
        1,
        &["always@example.com"],
    )
    .await;
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("gave up after 3 attempts") && text.contains("452"),
        "{text}"
    );
    let list = stdout(&env.run(&["subscribers", "list"]).await);
    assert!(
        list.lines()
            .any(|l| l.starts_with("always@example.com") && l.contains("active")),
        "{list}"
    );
}

/// Starts `tidings send`, waits until the server has `at` messages, sends
/// `signal`, and returns the process's output.
async fn interrupt(env: &TestEnv, smtp: &SmtpServer, at: usize, signal: &str) -> std::process::Output {
    let child = env
        .command(&["send", "weekly"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn send");
    let pid = child.id().expect("pid").to_string();
    for _ in 0..600 {
        if smtp.messages().len() >= at {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(smtp.messages().len() >= at, "the send started");
    let status = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    child.wait_with_output().await.expect("wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_send_loses_nobody_when_restarted() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::slow(Duration::from_millis(15)).await;
    let n = 150;
    let env = setup(&feeds, &smtp, "concurrency = 4\nlease = \"1s\"", n, &[]).await;
    let out = interrupt(&env, &smtp, 40, "-KILL").await;
    assert!(out.status.code().is_none(), "killed by the signal");
    let before = smtp.messages().len();
    assert!(before < n, "killed mid-run ({before} of {n})");

    // Restarted: rows leased by the dead process are taken over once the
    // lease runs out; `send` waits for that.
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    let got = smtp.per_recipient();
    for who in expected(n) {
        assert!(got.get(&who).is_some_and(|c| *c >= 1), "{who} lost");
    }
    let duplicates: usize = got.values().map(|c| c - 1).sum();
    eprintln!("SIGKILL drill: {before} sent before the kill, {duplicates} duplicates");
    // In flight at the kill: up to `concurrency` (4) being sent, and up to
    // `concurrency` accepted whose records were not committed yet.
    assert!(
        duplicates <= 8,
        "only messages in flight at the kill may be doubled: {duplicates}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_the_next_run_finishes_without_duplicates() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::slow(Duration::from_millis(15)).await;
    let n = 150;
    let env = setup(&feeds, &smtp, "concurrency = 4", n, &[]).await;
    let out = interrupt(&env, &smtp, 40, "-TERM").await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "stopped with work left: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("stopped by a signal"));
    let before = smtp.messages().len();
    assert!(before < n, "stopped mid-run");
    let report = stdout(&env.run(&["deliveries", "1"]).await);
    assert!(report.contains(" 0 sending"), "nothing left leased: {report}");
    assert!(
        report.contains(&format!("{before} sent")),
        "the ledger matches the server: {report}"
    );

    // The next run picks up at once (nothing leased) and doubles nothing.
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    let got = smtp.per_recipient();
    for who in expected(n) {
        assert_eq!(got.get(&who), Some(&1), "{who}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_paces_the_send() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = setup(&feeds, &smtp, "rate_per_second = 20\nconcurrency = 8", 40, &[]).await;
    let started = std::time::Instant::now();
    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    // 40 messages at 20/s with a burst of 20 cannot take less than a second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(smtp.messages().len(), 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_signatures_verify_with_an_independent_verifier() {
    let root = env!("CARGO_MANIFEST_DIR");
    let python = std::env::var("TIDINGS_TEST_PYTHON").unwrap_or_else(|_| format!("{root}/target/test-venv/bin/python"));
    assert!(
        std::path::Path::new(&python).exists(),
        "{python} is missing: run the tests with scripts/test, which installs dkimpy"
    );
    // (key, public key, algorithm tag, canonicalization setting, c= tag)
    for (key, public, algorithm, setting, canonicalization) in [
        (
            "ed25519.pem",
            "ed25519.pub.pem",
            "a=ed25519-sha256",
            "",
            "c=relaxed/simple",
        ),
        (
            "rsa2048.pem",
            "rsa2048.pub.pem",
            "a=rsa-sha256",
            "canonicalization = \"relaxed/relaxed\"\n",
            "c=relaxed/relaxed",
        ),
    ] {
        let feeds = FeedServer::start().await;
        let smtp = SmtpServer::start(SmtpOptions::default()).await;
        let delivery = format!(
            "feedback_id = \"weekly:tidings\"\n\n[dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nprivate_key_file = \"{root}/tests/fixtures/dkim/{key}\"\n{setting}"
        );
        let env = setup(&feeds, &smtp, &delivery, 1, &["ünïcode.name@example.com"]).await;
        // dkimpy's verdict on one message file, with the public key given.
        let dkimpy = |file: &std::path::Path| {
            std::process::Command::new(&python)
                .arg(format!("{root}/tests/fixtures/dkim/verify.py"))
                .arg(file)
                .arg(format!("{root}/tests/fixtures/dkim/{public}"))
                .output()
                .expect("run dkimpy")
        };
        assert_exit(&env.run(&["send", "weekly"]).await, 0);
        for (i, message) in smtp.messages().iter().enumerate() {
            let file = env.path(&format!("signed-{i}.eml"));
            std::fs::write(&file, &message.data).expect("write eml");
            let text = String::from_utf8_lossy(&message.data);
            assert!(text.contains(algorithm), "{key}: {algorithm} in\n{text}");
            assert!(text.contains(canonicalization), "{key}: {canonicalization} in\n{text}");
            assert!(text.contains("Feedback-ID: weekly:tidings"), "{text}");
            let out = dkimpy(&file);
            let report = String::from_utf8_lossy(&out.stdout).to_lowercase();
            assert!(
                out.status.success(),
                "{key}: dkimpy says {report} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            for header in [
                "from",
                "subject",
                "date",
                "message-id",
                "list-unsubscribe",
                "list-unsubscribe-post",
            ] {
                assert!(
                    report.contains(&format!(" {header}")),
                    "{key}: {header} not signed: {report}"
                );
            }
        }
        // A message altered on the way no longer verifies: its subject, or
        // a word of its body.
        let original = String::from_utf8_lossy(&std::fs::read(env.path("signed-0.eml")).expect("read")).into_owned();
        let body_at = original.find("\r\n\r\n").expect("header/body split");
        let (head, body) = original.split_at(body_at);
        for (what, tampered) in [
            ("subject", original.replacen("Subject: ", "Subject: Re: ", 1)),
            (
                "body",
                format!("{head}{}", body.replacen("unsubscribe", "unsubscribf", 1)),
            ),
        ] {
            assert_ne!(tampered, original, "{key}: {what} was not changed");
            let file = env.path("tampered.eml");
            std::fs::write(&file, tampered).expect("write");
            let out = dkimpy(&file);
            assert!(!out.status.success(), "{key}: a tampered {what} must fail");
        }
    }
}

/// Two `send`s of one issue on one database share it, and each ends when
/// the issue is done: the one that runs out of rows first does not sleep
/// until the other's lease ends (60 s), which is only for a process that
/// died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sends_of_one_issue_end_together_not_at_the_lease() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::slow(Duration::from_millis(20)).await;
    let env = setup(&feeds, &smtp, "concurrency = 4\nlease = \"60s\"", 200, &[]).await;
    let started = std::time::Instant::now();
    let (a, b) = tokio::join!(env.run(&["send", "weekly"]), env.run(&["send", "weekly"]));
    let took = started.elapsed();
    assert_exit(&a, 0);
    assert_exit(&b, 0);
    assert!(took < Duration::from_secs(20), "both sends took {took:?}");
    let mut got: Vec<String> = smtp.messages().iter().flat_map(|m| m.rcpt_to.clone()).collect();
    got.sort();
    let mut want = expected(200);
    want.sort();
    assert_eq!(got, want, "everyone exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_senders_rows_are_taken_over_once_its_lease_runs_out_not_at_the_end() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::slow(Duration::from_millis(10)).await;
    let env = setup(&feeds, &smtp, "concurrency = 2\nlease = \"2s\"", 1000, &[]).await;
    let mut first = env.command(&["send", "weekly"]).spawn().expect("spawn");
    // The first send is well under way.
    smtp.wait_for_messages(40, Duration::from_secs(60)).await;
    first.start_kill().expect("kill");
    first.wait().await.expect("reaped");
    let sent_first = smtp.messages().len();
    // The rows the killed process had claimed and not finished.
    let leased: Vec<String> = {
        use sqlx::Connection;
        let url = format!("sqlite://{}", env.path("tidings.db").display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the ledger");
        sqlx::query_scalar(
            "SELECT email FROM deliveries WHERE status IN ('pending', 'sending') AND lease_until IS NOT NULL",
        )
        .fetch_all(&mut conn)
        .await
        .expect("leased rows")
    };
    assert!(!leased.is_empty(), "the killed send held rows");

    let second = env.run(&["send", "weekly"]).await;
    assert_exit(&second, 0);
    let messages = smtp.messages();
    let (before_kill, after_kill) = messages.split_at(sent_first);
    let sent_before: std::collections::HashSet<&String> = before_kill.iter().flat_map(|m| &m.rcpt_to).collect();
    let order: Vec<&String> = after_kill.iter().flat_map(|m| &m.rcpt_to).collect();
    let last_taken_over = order
        .iter()
        .rposition(|r| leased.contains(r) && !sent_before.contains(r))
        .expect("the killed send's untried rows were sent");
    assert!(
        last_taken_over < order.len() * 7 / 10,
        "taken over at {last_taken_over} of {} messages: soon after the 2 s lease, not at the end",
        order.len()
    );
    let per = smtp.per_recipient();
    assert!(expected(1000).iter().all(|r| per.contains_key(r)), "nobody lost");
}
