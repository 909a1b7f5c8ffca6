//! What comes back after a send: bounces, complaints, unsubscribe mails and
//! automatic replies, handed to `tidings serve`'s inbound listener over SMTP
//! and LMTP, and the soft-bounce policy on a manual clock.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::daemon::Served;
use crate::support::http::FeedServer;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::{Db, TestEnv, alpha_weekly, assert_exit, databases, finish, import_subscribers, stdout};
use tidings::clock::Clock;
use tidings::domain::{Channel, InboundKind, SubscriberStatus};
use tidings::inbound::{Envelope, Processor};
use tidings::store::{Effect, Recorded};

const RETURN_PATH: &str = "bounces@example.com";
const UNSUBSCRIBE: &str = "unsubscribe@example.com";

/// A fixture of tests/fixtures/inbound for one delivery.
pub fn fixture(name: &str, verp: &str, rcpt: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inbound")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    let token = verp
        .strip_prefix("bounces+")
        .and_then(|t| t.split('@').next())
        .unwrap_or("no-token");
    text.replace("%VERP%", verp)
        .replace("%TOKEN%", token)
        .replace("%RCPT%", rcpt)
        .replace("%UNSUBSCRIBE%", UNSUBSCRIBE)
        .replace('\n', "\r\n")
        .into_bytes()
}

/// Hands one message to an SMTP (or, with `lmtp`, LMTP) server the way an
/// MTA does, and returns every reply line after the greeting's.
pub async fn hand_over(address: &str, lmtp: bool, mail_from: &str, rcpts: &[&str], message: &[u8]) -> Vec<String> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect to the listener");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    // One reply: its lines up to the one with a space after the code.
    async fn reply(lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>) -> String {
        let mut all = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push_str(&line);
            all.push('\n');
            if line.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        all
    }
    let mut replies = Vec::new();
    let greeting = reply(&mut lines).await;
    assert!(greeting.starts_with("220"), "{greeting}");
    let hello = if lmtp { "LHLO" } else { "EHLO" };
    for command in [format!("{hello} mta.test"), format!("MAIL FROM:<{mail_from}>")] {
        write
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .expect("write");
        replies.push(reply(&mut lines).await);
    }
    let mut accepted = 0;
    for rcpt in rcpts {
        write
            .write_all(format!("RCPT TO:<{rcpt}>\r\n").as_bytes())
            .await
            .expect("write");
        let r = reply(&mut lines).await;
        if r.starts_with("250") {
            accepted += 1;
        }
        replies.push(r);
    }
    if accepted > 0 {
        write.write_all(b"DATA\r\n").await.expect("write");
        let r = reply(&mut lines).await;
        let go = r.starts_with("354");
        replies.push(r);
        if go {
            let mut data = Vec::with_capacity(message.len() + 8);
            for line in message.split_inclusive(|b| *b == b'\n') {
                if line.starts_with(b".") {
                    data.push(b'.');
                }
                data.extend_from_slice(line);
            }
            if !data.ends_with(b"\r\n") {
                data.extend_from_slice(b"\r\n");
            }
            data.extend_from_slice(b".\r\n");
            write.write_all(&data).await.expect("write");
            for _ in 0..if lmtp { accepted } else { 1 } {
                replies.push(reply(&mut lines).await);
            }
        }
    }
    let _ = write.write_all(b"QUIT\r\n").await;
    replies
}

/// `(recipient, envelope sender)` of each message the sink took.
fn envelope_senders(smtp: &SmtpServer) -> std::collections::BTreeMap<String, String> {
    smtp.messages()
        .into_iter()
        .map(|m| (m.rcpt_to[0].clone(), m.mail_from.clone()))
        .collect()
}

/// `subscribers list` as address → its tab-separated columns.
async fn subscriber_lines(env: &TestEnv) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = env.run(&["subscribers", "list"]).await;
    assert_exit(&out, 0);
    stdout(&out)
        .lines()
        .map(|l| {
            let cols: Vec<String> = l.split('\t').map(str::to_string).collect();
            (cols[0].clone(), cols)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_complaints_and_unsubscribes_come_back_through_the_listener() {
    for db in databases().await {
        listener_loop(db.clone()).await;
        finish(db).await;
    }
}

async fn listener_loop(db: Db) {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(db);
    env.write_config_with_site(
        &format!("unsubscribe_mailto = \"{UNSUBSCRIBE}\""),
        &format!(
            r#"
[smtp]
url = "smtp://127.0.0.1:{port}"
starttls = "never"

[web]
listen = "127.0.0.1:0"

[delivery]
return_path = "{RETURN_PATH}"

[inbound]
listen = "127.0.0.1:0"
max_message_bytes = 8192
{tail}"#,
            port = smtp.port,
            tail = alpha_weekly(&feeds, "0 0 8 * * Mon", ""),
        ),
    );
    let readers: Vec<String> = (0..6).map(|i| format!("reader{i}@reader.example")).collect();
    import_subscribers(
        &env,
        &readers.iter().map(|r| (r.clone(), String::new())).collect::<Vec<_>>(),
    )
    .await;
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_exit(&env.run(&["send", "weekly"]).await, 0);

    // Each message went out from its own VERP address, and its mailto
    // unsubscribe carries the same token.
    let senders = envelope_senders(&smtp);
    assert_eq!(senders.len(), 6, "{senders:?}");
    for message in smtp.messages() {
        let sender = &message.mail_from;
        let token = sender
            .strip_prefix("bounces+")
            .and_then(|t| t.strip_suffix("@example.com"))
            .unwrap_or_else(|| panic!("not a VERP address: {sender}"));
        let (id, mac) = token.split_once('-').expect("id-mac");
        assert!(id.parse::<i64>().is_ok() && mac.len() == 24, "{token}");
        let raw = String::from_utf8_lossy(&message.data);
        assert!(
            raw.contains(&format!("subject=unsubscribe%20{token}>")),
            "the mailto names the delivery:\n{raw}"
        );
    }
    let verp = |i: usize| senders[&readers[i]].clone();

    env.set_var("TIDINGS_EDITOR_TOKEN", crate::web::EDITOR_TOKEN);
    let served = Served::start(&env).await;
    let inbound = served.address_logged_as("inbound mail listening (SMTP and LMTP)").await;
    let web = served.address().await;

    // A hard bounce, through LMTP as Postfix's lmtp: transport hands it over.
    let bounce = fixture("postfix-hard.eml", &verp(0), &readers[0]);
    let replies = hand_over(&inbound, true, "", &[&verp(0)], &bounce).await;
    assert!(replies.last().is_some_and(|r| r.starts_with("250")), "{replies:?}");
    // The same message again (a retry after a lost reply): recorded once.
    let again = hand_over(&inbound, false, "", &[&verp(0)], &bounce).await;
    assert!(again.last().is_some_and(|r| r.starts_with("250")), "{again:?}");
    // A complaint, sent to the feedback address, naming the delivery in
    // its Original-Mail-From only.
    let complaint = fixture("arf-complaint.eml", &verp(1), &readers[1]);
    let replies = hand_over(
        &inbound,
        false,
        "fbl@feedback.mailbox-provider.example",
        &[UNSUBSCRIBE],
        &complaint,
    )
    .await;
    assert!(replies.last().is_some_and(|r| r.starts_with("250")), "{replies:?}");
    // The mailto form of List-Unsubscribe.
    let unsubscribe = fixture("unsubscribe.eml", &verp(2), &readers[2]);
    hand_over(&inbound, false, &readers[2], &[UNSUBSCRIBE], &unsubscribe).await;
    // A bounce with a forged token: accepted, logged, changes nothing.
    let forged = verp(3).replacen("bounces+", "bounces+9", 1);
    let replies = hand_over(
        &inbound,
        false,
        "",
        &[&forged],
        &fixture("exim-hard.eml", &forged, &readers[3]),
    )
    .await;
    assert!(replies.last().is_some_and(|r| r.starts_with("250")), "{replies:?}");
    // An out-of-office reply to the return path is not a bounce.
    hand_over(
        &inbound,
        false,
        &readers[4],
        &[&verp(4)],
        &fixture("auto-reply.eml", &verp(4), &readers[4]),
    )
    .await;
    // No relaying: any other recipient is refused, and so is mail too big.
    let relay = hand_over(
        &inbound,
        false,
        "spammer@elsewhere.example",
        &["victim@elsewhere.example"],
        b"Subject: hi\r\n\r\nhi\r\n",
    )
    .await;
    assert!(relay.iter().any(|r| r.starts_with("550 5.7.1")), "{relay:?}");
    let big = [b"Subject: big\r\n\r\n".to_vec(), vec![b'x'; 20_000]].concat();
    let too_big = hand_over(&inbound, false, "", &[&verp(5)], &big).await;
    assert!(too_big.last().is_some_and(|r| r.starts_with("552")), "{too_big:?}");

    tidings::install_crypto_provider();
    let metrics = reqwest::get(format!("http://{web}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    for line in [
        "tidings_inbound_events_total{kind=\"hard_bounce\",channel=\"lmtp\"} 1",
        "tidings_inbound_events_total{kind=\"complaint\",channel=\"smtp\"} 1",
        "tidings_inbound_events_total{kind=\"unsubscribe\",channel=\"smtp\"} 1",
        "tidings_inbound_events_total{kind=\"unmatched\",channel=\"smtp\"} 1",
        "tidings_inbound_events_total{kind=\"auto_reply\",channel=\"smtp\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    // The editor's dashboard shows the issue's rates, with warnings above
    // the providers' thresholds (one complaint of six is far above 0.3 %).
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let login = client
        .post(format!("http://{web}/editor/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={}", crate::web::EDITOR_TOKEN))
        .send()
        .await
        .expect("login");
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("cookie")
        .to_string();
    let dashboard = client
        .get(format!("http://{web}/editor"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("dashboard")
        .text()
        .await
        .expect("body");
    assert!(
        dashboard.contains("What came back") && dashboard.contains("1 (16.67 %)"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("Warning: complaints at 16.67 %: above the 0.3 % at which Gmail and Yahoo refuse bulk mail"),
        "{dashboard}"
    );
    assert!(dashboard.contains("Warning: hard bounces at 16.67 %"), "{dashboard}");
    let logs = served.all_logs();
    assert!(logs.contains("without a valid token"), "{logs}");
    assert!(served.stop().await.success());

    let list = subscriber_lines(&env).await;
    let status = |i: usize| list[&readers[i]][2].clone();
    assert_eq!(status(0), "bounced", "{list:?}");
    assert!(
        list[&readers[0]][5].contains("hard bounce") && list[&readers[0]][5].contains("5.1.1"),
        "{list:?}"
    );
    assert_eq!(status(1), "complained", "{list:?}");
    assert!(
        list[&readers[1]][5].contains("abuse report from ExampleFBL"),
        "{list:?}"
    );
    assert_eq!(status(2), "unsubscribed", "{list:?}");
    assert!(list[&readers[2]][5].contains("unsubscribed by mail"), "{list:?}");
    for i in 3..6 {
        assert_eq!(status(i), "active", "{list:?}");
        assert_eq!(list[&readers[i]].len(), 4, "no reason for an active address: {list:?}");
    }

    let deliveries = stdout(&env.run(&["deliveries", "1"]).await);
    assert!(
        deliveries.contains(
            "came back: 1 hard bounces (16.67%), 0 soft bounces, 1 complaints (16.67%), 1 unsubscribed by mail"
        ),
        "{deliveries}"
    );
    assert!(
        deliveries.contains(&format!("hard_bounce {} (5.1.1)", readers[0])),
        "{deliveries}"
    );
    assert_eq!(
        deliveries.matches("hard_bounce").count(),
        1,
        "recorded once:\n{deliveries}"
    );

    // The next issue skips all three.
    assert_exit(&env.run(&["send", "weekly", "--dry-run"]).await, 0);
}

/// The soft-bounce policy with `soft_bounce_limit = 2` in a 10-day window,
/// on weekly issues: a clean delivery between two soft bounces starts the
/// count again, a bounce outside the window does not count, and the second
/// in a row suppresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_bounces_count_in_a_row_expire_and_then_suppress() {
    for db in databases().await {
        soft_bounce_policy(db.clone()).await;
        finish(db).await;
    }
}

async fn soft_bounce_policy(db: Db) {
    let env = TestEnv::new(db);
    env.write_config(&format!(
        r#"
[delivery]
return_path = "{RETURN_PATH}"

[inbound]
soft_bounce_limit = 2
soft_bounce_window = "10d"

[[sources]]
name = "Weekly file"
url = "weekly.xml"

[tags.security]
keywords = ["ransomware"]

[audiences.security]
title = "Security"
weights = {{ security = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly"
audience = "security"
schedule = "0 0 8 * * Mon"
"#
    ));
    let readers = ["ann@reader.example".to_string(), "bob@reader.example".to_string()];
    import_subscribers(
        &env,
        &readers.iter().map(|r| (r.clone(), String::new())).collect::<Vec<_>>(),
    )
    .await;
    // Mondays 08:00 UTC, a week apart.
    let monday = |week: i64| Utc.with_ymd_and_hms(2030, 1, 7, 8, 0, 0).single().expect("date") + Duration::weeks(week);
    let clock = tidings::clock::ManualClock::new(monday(0));
    let app = env.open_app(clock.clone()).await;
    let signer = app.signer().await.expect("signer");
    let processor = Processor::new(app.store.clone(), signer, &app.config, Arc::clone(app.clock()));

    // The VERP address of each reader's delivery of the issue just sent,
    // from the Return-Path the mailbox folder writes.
    let send = |week: i64| {
        let app = &app;
        let clock = &clock;
        let env = &env;
        async move {
            // A new story each week, collected the day before.
            clock.set(monday(week) - Duration::days(1));
            let published = clock.now().to_rfc2822();
            std::fs::write(
                env.path("weekly.xml"),
                format!(
                    "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>W</title><link>https://w.example/</link>\
                     <description>w</description><item><title>Ransomware report, week {week}</title>\
                     <link>https://w.example/{week}</link><guid>w{week}</guid><pubDate>{published}</pubDate>\
                     <description>Ransomware news of week {week}.</description></item></channel></rss>"
                ),
            )
            .expect("feed");
            app.collect(clock.now(), true, &|_| {}).await.expect("collect");
            clock.set(monday(week) + Duration::minutes(5));
            let _ = std::fs::remove_dir_all(env.path("outbox"));
            let report = app
                .send_slot(
                    "weekly",
                    monday(week),
                    &tidings::app::SendOptions::standard(),
                    clock.now(),
                )
                .await
                .expect("send");
            assert!(
                matches!(report, tidings::app::SendReport::Delivered { .. }),
                "week {week}: {report:?}"
            );
            let mut verps = std::collections::HashMap::new();
            for raw in env.outbox() {
                let text = String::from_utf8_lossy(&raw).into_owned();
                let to = text
                    .lines()
                    .find_map(|l| l.strip_prefix("To: "))
                    .unwrap_or("")
                    .to_string();
                let rp = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Return-Path: <"))
                    .map(|l| l.trim_end_matches('>').to_string())
                    .expect("Return-Path");
                verps.insert(to, rp);
            }
            verps
        }
    };
    let soft = |verp: String, reader: &str| {
        let raw = fixture("delayed-soft.eml", &verp, reader);
        let processor = &processor;
        async move {
            processor
                .message(
                    &raw,
                    &Envelope {
                        mail_from: Some(String::new()),
                        recipients: vec![verp],
                    },
                    Channel::Lmtp,
                )
                .await
                .expect("process")
        }
    };
    let effect = |outcome: tidings::inbound::Outcome| match outcome.recorded {
        Recorded::Event { effect, .. } => effect,
        Recorded::Duplicate => panic!("not a duplicate: {outcome:?}"),
    };

    let week0 = send(0).await;
    assert_eq!(week0.len(), 2);
    let ann0 = week0
        .iter()
        .find(|(to, _)| to.contains("ann"))
        .map(|(_, v)| v.clone())
        .expect("ann");
    let bob0 = week0
        .iter()
        .find(|(to, _)| to.contains("bob"))
        .map(|(_, v)| v.clone())
        .expect("bob");
    assert_ne!(ann0, bob0);
    let first = soft(ann0.clone(), &readers[0]).await;
    assert_eq!(first.kind, InboundKind::SoftBounce);
    assert_eq!(effect(first), Effect::SoftBounces(1));
    assert_eq!(effect(soft(bob0.clone(), &readers[1]).await), Effect::SoftBounces(1));
    // The same bounce handed over twice is one event.
    assert_eq!(soft(ann0, &readers[0]).await.recorded, Recorded::Duplicate);

    let week1 = send(1).await; // Ann's goes through cleanly.
    let bob1 = week1
        .iter()
        .find(|(to, _)| to.contains("bob"))
        .map(|(_, v)| v.clone())
        .expect("bob");
    // Bob's second bounce arrives late, 12 days after his first: that one
    // is out of the window.
    clock.set(monday(0) + Duration::days(12));
    assert_eq!(effect(soft(bob1, &readers[1]).await), Effect::SoftBounces(1));

    let week2 = send(2).await;
    let ann2 = week2
        .iter()
        .find(|(to, _)| to.contains("ann"))
        .map(|(_, v)| v.clone())
        .expect("ann");
    assert_eq!(
        effect(soft(ann2, &readers[0]).await),
        Effect::SoftBounces(1),
        "the clean delivery of week 1 started the count again"
    );
    let week3 = send(3).await;
    let ann3 = week3
        .iter()
        .find(|(to, _)| to.contains("ann"))
        .map(|(_, v)| v.clone())
        .expect("ann");
    match effect(soft(ann3, &readers[0]).await) {
        Effect::Status(SubscriberStatus::Bounced, reason) => {
            assert!(
                reason.contains("2 soft bounces in a row within 10 days") && reason.contains("4.4.1"),
                "{reason}"
            )
        }
        other => panic!("suppressed at the second in a row: {other:?}"),
    }
    let subscribers = app.subscribers().await.expect("subscribers");
    let ann = subscribers
        .iter()
        .find(|s| s.email.as_str() == readers[0])
        .expect("ann");
    let bob = subscribers
        .iter()
        .find(|s| s.email.as_str() == readers[1])
        .expect("bob");
    assert_eq!(ann.status, SubscriberStatus::Bounced);
    assert_eq!(ann.status_since, Some(monday(3) + Duration::minutes(5)));
    assert_eq!(bob.status, SubscriberStatus::Active);
    // The next issue goes to Bob only.
    let week4 = send(4).await;
    assert_eq!(week4.keys().collect::<Vec<_>>(), vec![&readers[1]], "Bob's only");
    app.close().await;
}

/// The whole loop with real software on both sides: tidings sends through
/// a real Postfix, which takes the message (250), fails to deliver it to a
/// local address that does not exist, and sends its own bounce to the
/// VERP return path — routed over LMTP to `tidings serve`'s listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_postfix_bounce_comes_back_over_lmtp_and_suppresses() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let write = |smtp_port: u16| {
        env.write_config(&format!(
            r#"
[smtp]
url = "smtp://127.0.0.1:{smtp_port}"
starttls = "never"

[web]
listen = "127.0.0.1:0"

[delivery]
return_path = "{RETURN_PATH}"

[inbound]
listen = "127.0.0.1:0"
{tail}"#,
            tail = alpha_weekly(&feeds, "0 0 8 * * Mon", ""),
        ))
    };
    // The listener's port first (Postfix routes to it), then Postfix.
    write(1);
    let readers = ["ghost@reader.test".to_string(), "phantom@reader.test".to_string()];
    import_subscribers(
        &env,
        &readers.iter().map(|r| (r.clone(), String::new())).collect::<Vec<_>>(),
    )
    .await;
    assert_exit(&env.run(&["collect"]).await, 0);
    let served = Served::start(&env).await;
    let inbound = served.address_logged_as("inbound mail listening (SMTP and LMTP)").await;
    let lmtp_port: u16 = inbound.rsplit(':').next().and_then(|p| p.parse().ok()).expect("port");
    let Some(postfix) = crate::support::postfix::Postfix::start("reader.test", "example.com", lmtp_port) else {
        return;
    };
    write(postfix.port);
    let sent = env.run(&["send", "weekly"]).await;
    assert_exit(&sent, 0);
    assert!(stdout(&sent).contains("2 sent"), "{}", stdout(&sent));

    let mut list = subscriber_lines(&env).await;
    for _ in 0..150 {
        if readers.iter().all(|r| list[r][2] == "bounced") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        list = subscriber_lines(&env).await;
    }
    for r in &readers {
        assert_eq!(
            list[r][2],
            "bounced",
            "{list:?}\npostfix:\n{}\ntidings:\n{}",
            postfix.log(),
            served.all_logs()
        );
        assert!(
            list[r][5].contains("hard bounce") && list[r][5].contains("5.1.1"),
            "{list:?}"
        );
    }
    // Postfix said 250 to tidings, and handed its bounce over by LMTP.
    let log = postfix.log();
    assert!(log.contains("status=bounced"), "{log}");
    assert!(
        log.contains("relay=127.0.0.1[127.0.0.1]:") && log.contains("status=sent (250 2.0.0 Recorded)"),
        "{log}"
    );
    let deliveries = stdout(&env.run(&["deliveries", "1"]).await);
    assert!(
        deliveries.contains("2 sent") && deliveries.contains("came back: 2 hard bounces (100.00%)"),
        "{deliveries}"
    );
    assert!(served.stop().await.success());
}

const MAILGUN_KEY: &str = "key-mailgun-webhook-signing-0123456789";
const POSTMARK_CREDENTIALS: &str = "postmark:hook-password-0123456789";

/// A Mailgun webhook body for one event, signed with `key`.
fn mailgun_body(key: &str, event: serde_json::Value) -> String {
    use hmac::{KeyInit, Mac};
    let (timestamp, token) = ("1796600000", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6ab");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    serde_json::json!({
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": event,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_webhooks_are_verified_and_name_their_delivery() {
    use base64::Engine;
    use ring::signature::KeyPair;
    let b64 = base64::engine::general_purpose::STANDARD;
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(&ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .expect("key");
    let sendgrid_key = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        pkcs8.as_ref(),
        &rng,
    )
    .expect("key");
    // The public key as SendGrid shows it: base64 of a DER SubjectPublicKeyInfo.
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
        0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    spki.extend_from_slice(sendgrid_key.public_key().as_ref());
    let sendgrid_public = b64.encode(&spki);

    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        r#"
[smtp]
url = "smtp://127.0.0.1:{port}"
starttls = "never"

[web]
listen = "127.0.0.1:0"

[delivery]
return_path = "{RETURN_PATH}"

[inbound.webhooks]
mailgun_signing_key_env = "MG_KEY"
sendgrid_public_key_env = "SG_KEY"
postmark_credentials_env = "PM_CREDENTIALS"
{tail}"#,
        port = smtp.port,
        tail = alpha_weekly(&feeds, "0 0 8 * * Mon", ""),
    ));
    let vars = [
        ("MG_KEY", MAILGUN_KEY),
        ("SG_KEY", sendgrid_public.as_str()),
        ("PM_CREDENTIALS", POSTMARK_CREDENTIALS),
    ];
    for (name, value) in vars {
        env.set_var(name, value);
    }
    let readers: Vec<String> = (0..4).map(|i| format!("reader{i}@reader.example")).collect();
    import_subscribers(
        &env,
        &readers.iter().map(|r| (r.clone(), String::new())).collect::<Vec<_>>(),
    )
    .await;
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    // Each message carries its delivery's token where each provider echoes it.
    let mut token_of = std::collections::HashMap::new();
    for m in smtp.messages() {
        let token = m
            .mail_from
            .strip_prefix("bounces+")
            .and_then(|t| t.split('@').next())
            .expect("verp")
            .to_string();
        let raw = String::from_utf8_lossy(&m.data).into_owned();
        for header in [
            format!("X-Mailgun-Variables: {{\"tidings\": \"{token}\"}}"),
            format!("X-SMTPAPI: {{\"unique_args\": {{\"tidings\": \"{token}\"}}}}"),
            format!("X-PM-Metadata-tidings: {token}"),
        ] {
            assert!(raw.contains(&header), "{header} in\n{raw}");
        }
        token_of.insert(m.rcpt_to[0].clone(), token);
    }

    let served = Served::start(&env).await;
    let base = format!("http://{}", served.address().await);
    tidings::install_crypto_provider();
    let client = reqwest::Client::new();
    let post = |path: &str, body: String, headers: Vec<(&'static str, String)>| {
        let mut request = client.post(format!("{base}{path}")).body(body);
        for (k, v) in headers {
            request = request.header(k, v);
        }
        async move {
            let response = request.send().await.expect("post");
            (response.status().as_u16(), response.text().await.unwrap_or_default())
        }
    };

    // Mailgun: a permanent failure for reader0, signed; then forged and unsigned ones for reader1.
    let failed = |reader: usize| {
        serde_json::json!({
            "id": format!("mg-event-{reader}"), "event": "failed", "severity": "permanent",
            "recipient": readers[reader],
            "delivery-status": {"code": 550, "message": "5.1.1 The email account does not exist"},
            "user-variables": {"tidings": token_of[&readers[reader]]},
        })
    };
    let signed = mailgun_body(MAILGUN_KEY, failed(0));
    assert_eq!(post("/hooks/mailgun", signed.clone(), vec![]).await.0, 200);
    assert_eq!(
        post("/hooks/mailgun", signed, vec![]).await.0,
        200,
        "a retried request is fine"
    );
    assert_eq!(
        post(
            "/hooks/mailgun",
            mailgun_body("another key entirely", failed(1)),
            vec![]
        )
        .await
        .0,
        401
    );
    let unsigned = serde_json::json!({"event-data": failed(1)}).to_string();
    assert_eq!(post("/hooks/mailgun", unsigned, vec![]).await.0, 401);

    // SendGrid: a spam report for reader1, signed over timestamp + body.
    let events = serde_json::json!([
        {"email": readers[1], "event": "spamreport", "sg_event_id": "sg-1", "timestamp": 1796600000,
         "tidings": token_of[&readers[1]]},
        {"email": readers[1], "event": "open", "sg_event_id": "sg-2", "timestamp": 1796600001},
    ])
    .to_string();
    let timestamp = "1796600002".to_string();
    let signature = sendgrid_key
        .sign(&rng, [timestamp.as_bytes(), events.as_bytes()].concat().as_slice())
        .expect("sign");
    let sg_headers = |sig: &[u8]| {
        vec![
            ("X-Twilio-Email-Event-Webhook-Signature", b64.encode(sig)),
            ("X-Twilio-Email-Event-Webhook-Timestamp", timestamp.clone()),
        ]
    };
    // The body changed after signing: refused.
    let tampered = events.replace("spamreport", "delivered ");
    assert_eq!(
        post("/hooks/sendgrid", tampered, sg_headers(signature.as_ref()))
            .await
            .0,
        401
    );
    let (status, body) = post("/hooks/sendgrid", events, sg_headers(signature.as_ref())).await;
    assert_eq!((status, body.as_str()), (200, "1 events\n"));

    // Postmark: basic auth; a hard bounce for reader2, wrong password for reader3.
    let bounce = |reader: usize| {
        serde_json::json!({
            "RecordType": "Bounce", "Type": "HardBounce", "ID": 4000 + reader, "Email": readers[reader],
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Metadata": {"tidings": token_of[&readers[reader]]},
        })
        .to_string()
    };
    let auth = |credentials: &str| vec![("Authorization", format!("Basic {}", b64.encode(credentials)))];
    assert_eq!(post("/hooks/postmark", bounce(3), auth("postmark:wrong")).await.0, 401);
    assert_eq!(post("/hooks/postmark", bounce(3), vec![]).await.0, 401);
    assert_eq!(
        post("/hooks/postmark", bounce(2), auth(POSTMARK_CREDENTIALS)).await.0,
        200
    );
    // Not configured, or no such provider.
    assert_eq!(post("/hooks/ses", "{}".into(), vec![]).await.0, 404);
    assert_eq!(post("/hooks/mailgun", "not json".into(), vec![]).await.0, 400);
    assert!(served.stop().await.success());

    let list = subscriber_lines(&env).await;
    assert_eq!(list[&readers[0]][2], "bounced", "{list:?}");
    assert!(
        list[&readers[0]][5].contains("mailgun failed") && list[&readers[0]][5].contains("5.1.1"),
        "{list:?}"
    );
    assert_eq!(list[&readers[1]][2], "complained", "{list:?}");
    assert_eq!(list[&readers[2]][2], "bounced", "{list:?}");
    assert_eq!(
        list[&readers[3]][2], "active",
        "forged requests change nothing: {list:?}"
    );
    let deliveries = stdout(&env.run(&["deliveries", "1"]).await);
    assert_eq!(deliveries.matches("hard_bounce").count(), 2, "{deliveries}");
    assert!(
        deliveries.contains("came back: 2 hard bounces (50.00%), 0 soft bounces, 1 complaints (25.00%)"),
        "{deliveries}"
    );
}

/// An env whose weekly issue went to `n` readers through `smtp`, from the
/// VERP return path, with `inbound` (TOML) added to the configuration.
async fn sent_to_readers(feeds: &FeedServer, smtp: &SmtpServer, inbound: &str, n: usize) -> (TestEnv, Vec<String>) {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        r#"
[smtp]
url = "smtp://127.0.0.1:{port}"
starttls = "never"

[web]
listen = "127.0.0.1:0"

[delivery]
return_path = "{RETURN_PATH}"

{inbound}
{tail}"#,
        port = smtp.port,
        tail = alpha_weekly(feeds, "0 0 8 * * Mon", ""),
    ));
    let readers: Vec<String> = (0..n).map(|i| format!("reader{i}@reader.example")).collect();
    import_subscribers(
        &env,
        &readers.iter().map(|r| (r.clone(), String::new())).collect::<Vec<_>>(),
    )
    .await;
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    (env, readers)
}

/// The mailbox path against a real Dovecot: bounces dropped in INBOX are
/// read by the daemon, recorded, and moved to the processed folder — never
/// deleted — and one handed over twice is acted on once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounces_in_an_imap_mailbox_are_recorded_and_moved_never_lost() {
    use crate::support::dovecot::{Dovecot, PASSWORD};
    let Some(dovecot) = Dovecot::start() else { return };
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let inbound = format!(
        "[inbound]\nmailbox = \"imap://bounces:{PASSWORD}@127.0.0.1:{}/INBOX\"\nmailbox_poll = \"1s\"",
        dovecot.port
    );
    let (env, readers) = sent_to_readers(&feeds, &smtp, &inbound, 3).await;
    let senders = envelope_senders(&smtp);
    let verp = |i: usize| senders[&readers[i]].clone();

    // What a relay drops into the mailbox: a bounce, a complaint, a bounce
    // twice (a move that failed after the first was recorded), and junk.
    let mailbox = crate::support::load_config(&env.config_path())
        .expect("config")
        .inbound
        .mailbox
        .expect("mailbox");
    let mut imap = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tidings::inbound::mailbox::connect(&mailbox),
    )
    .await
    .unwrap_or_else(|_| panic!("IMAP connect hangs:\n{}", dovecot.log()))
    .expect("imap");
    let bounce = fixture("gmail-hard.eml", &verp(0), &readers[0]);
    for message in [
        bounce.clone(),
        fixture("arf-complaint.eml", &verp(1), &readers[1]),
        bounce,
        b"this is not an email at all".to_vec(),
    ] {
        imap.append("INBOX", None, None, &message).await.expect("append");
    }

    let served = Served::start(&env).await;
    let mut list = subscriber_lines(&env).await;
    let mut left = usize::MAX;
    for _ in 0..100 {
        imap.noop().await.expect("noop");
        left = imap.select("INBOX").await.expect("select").exists as usize;
        if left == 0 && list[&readers[0]][2] == "bounced" && list[&readers[1]][2] == "complained" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        list = subscriber_lines(&env).await;
    }
    assert_eq!(
        left,
        0,
        "every message left INBOX\n{}\n{}",
        served.all_logs(),
        dovecot.log()
    );
    assert_eq!(list[&readers[0]][2], "bounced", "{list:?}\n{}", served.all_logs());
    assert!(list[&readers[0]][5].contains("5.1.1"), "{list:?}");
    assert_eq!(list[&readers[1]][2], "complained", "{list:?}");
    assert_eq!(list[&readers[2]][2], "active", "{list:?}");
    let processed = imap.select("Processed").await.expect("processed folder");
    assert_eq!(processed.exists, 4, "all four kept, none deleted");
    let deliveries = stdout(&env.run(&["deliveries", "1"]).await);
    assert_eq!(deliveries.matches("hard_bounce").count(), 1, "{deliveries}");
    assert!(served.stop().await.success());
    let events = stdout(&env.run(&["deliveries", "1"]).await);
    assert!(events.contains("came back: 1 hard bounces"), "{events}");
}

const SNS_HOST: &str = "sns.us-east-1.amazonaws.com";
const SES_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:tidings-feedback";

/// SNS's side of `/hooks/ses`: an HTTPS server answering for
/// sns.us-east-1.amazonaws.com (under a test CA), serving the signing
/// certificate and taking subscription confirmations; and the RSA key that
/// signs messages as SNS does (SignatureVersion 2: SHA-256).
struct SnsSide {
    address: std::net::SocketAddr,
    ca_pem: String,
    requests: Arc<std::sync::Mutex<Vec<String>>>,
    key: ring::rsa::KeyPair,
}

impl SnsSide {
    async fn start() -> SnsSide {
        tidings::install_crypto_provider();
        let key_pem = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys/rsa-2048.pem"),
        )
        .expect("key");
        let signing = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).expect("rsa key");
        let mut params = rcgen::CertificateParams::new(vec!["sns.amazonaws.com".to_string()]).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sns.amazonaws.com");
        let signing_cert = params.self_signed(&signing).expect("signing cert").pem();
        let key = ring::rsa::KeyPair::from_pkcs8(&signing.serialize_der()).expect("ring key");

        // The TLS side: a CA, and a server certificate for the SNS host.
        let tls = crate::support::smtp::tls_for(SNS_HOST);
        let acceptor = tls.acceptor;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let requests = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, seen, cert) = (acceptor.clone(), Arc::clone(&seen), signing_cert.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let mut stream = BufReader::new(tls);
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.is_err() {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or_default().to_string();
                    loop {
                        let mut header = String::new();
                        match stream.read_line(&mut header).await {
                            Ok(n) if n > 2 => {}
                            _ => break,
                        }
                    }
                    seen.lock().expect("lock").push(path.clone());
                    let body = if path.ends_with(".pem") {
                        cert
                    } else {
                        "<ConfirmSubscriptionResponse/>".to_string()
                    };
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.get_mut().write_all(response.as_bytes()).await;
                    let _ = stream.get_mut().shutdown().await;
                });
            }
        });
        SnsSide {
            address,
            ca_pem: tls.ca_pem,
            requests,
            key,
        }
    }

    /// A client that trusts the test CA and finds the SNS host here.
    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).expect("ca")])
            .resolve(SNS_HOST, self.address)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("lock").clone()
    }

    /// An SNS message of `kind` carrying `message`, signed with the key.
    fn signed(&self, kind: &str, id: &str, topic: &str, message: &str, cert_url: &str) -> serde_json::Value {
        use base64::Engine;
        let timestamp = "2026-12-06T10:00:00.000Z";
        let mut v = serde_json::json!({
            "Type": kind, "MessageId": id, "TopicArn": topic, "Message": message,
            "Timestamp": timestamp, "SignatureVersion": "2", "SigningCertURL": cert_url,
        });
        let mut fields = vec![("Message", message.to_string()), ("MessageId", id.to_string())];
        if kind == "SubscriptionConfirmation" {
            let subscribe = format!("https://{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={topic}&Token=tok-1");
            v["SubscribeURL"] = subscribe.clone().into();
            v["Token"] = "tok-1".into();
            fields.push(("SubscribeURL", subscribe));
            fields.push(("Timestamp", timestamp.into()));
            fields.push(("Token", "tok-1".into()));
        } else {
            fields.push(("Timestamp", timestamp.into()));
        }
        fields.push(("TopicArn", topic.into()));
        fields.push(("Type", kind.into()));
        let text: String = fields.iter().map(|(k, v)| format!("{k}\n{v}\n")).collect();
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                text.as_bytes(),
                &mut signature,
            )
            .expect("sign");
        v["Signature"] = base64::engine::general_purpose::STANDARD.encode(signature).into();
        v
    }
}

/// SES through SNS against the daemon's web server in this process: the
/// signing certificate is fetched (over HTTPS, from the SNS host only) and
/// checked, the topic must be ours, subscriptions are confirmed, and a
/// bounce or complaint names its delivery by the message tag or the VERP
/// envelope sender SES reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_notifications_through_sns_are_verified_by_certificate_and_topic() {
    let sns = SnsSide::start().await;
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let inbound = format!("[inbound.webhooks]\nses_topic_arns = [\"{SES_TOPIC}\"]");
    let (env, readers) = sent_to_readers(&feeds, &smtp, &inbound, 3).await;
    let mut token_of = std::collections::HashMap::new();
    for m in smtp.messages() {
        let token = m
            .mail_from
            .strip_prefix("bounces+")
            .and_then(|t| t.split('@').next())
            .expect("verp");
        let raw = String::from_utf8_lossy(&m.data).into_owned();
        assert!(raw.contains(&format!("X-SES-MESSAGE-TAGS: tidings={token}")), "{raw}");
        token_of.insert(m.rcpt_to[0].clone(), (token.to_string(), m.mail_from.clone()));
    }

    let config = env.load_config().expect("config");
    let app = Arc::new(std::sync::RwLock::new(Arc::new(
        tidings::app::App::open(config.clone()).await.expect("open"),
    )));
    let state = tidings::web::WebState::new(app, None).with_sns_client(sns.client());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(tidings::web::serve(
        listener,
        tidings::web::router(state),
        config.web.clone(),
        stopped,
    ));
    let client = reqwest::Client::new();
    let post = |body: String| {
        let request = client.post(format!("{base}/hooks/ses")).body(body);
        async move {
            let response = request.send().await.expect("post");
            (response.status().as_u16(), response.text().await.unwrap_or_default())
        }
    };
    let cert_url = format!("https://{SNS_HOST}/SimpleNotificationService-0123.pem");
    let bounce = |reader: usize, tagged: bool| {
        let (token, source) = &token_of[&readers[reader]];
        let mut mail = serde_json::json!({"source": source, "messageId": "0100-ses", "destination": [readers[reader]]});
        if tagged {
            mail["tags"] = serde_json::json!({"tidings": [token], "ses:configuration-set": ["news"]});
        }
        serde_json::json!({
            "notificationType": "Bounce",
            "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "fb-1",
                "bouncedRecipients": [{"emailAddress": readers[reader], "action": "failed", "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]},
            "mail": mail,
        })
        .to_string()
    };

    // A subscription to our topic is confirmed at its SubscribeURL.
    let confirm = sns.signed(
        "SubscriptionConfirmation",
        "c-1",
        SES_TOPIC,
        "You have chosen to subscribe",
        &cert_url,
    );
    assert_eq!(post(confirm.to_string()).await, (200, "0 events\n".to_string()));
    assert!(
        sns.requests()
            .iter()
            .any(|p| p.starts_with("/?Action=ConfirmSubscription")),
        "{:?}",
        sns.requests()
    );

    // A permanent bounce for reader0, named by its tag; SNS retries it.
    let notification = sns.signed("Notification", "n-1", SES_TOPIC, &bounce(0, true), &cert_url);
    assert_eq!(post(notification.to_string()).await, (200, "1 events\n".to_string()));
    assert_eq!(post(notification.to_string()).await.0, 200, "a retry is fine");

    // A complaint for reader1 without tags: the envelope sender names it.
    let complaint = serde_json::json!({
        "notificationType": "Complaint",
        "complaint": {"complaintFeedbackType": "abuse", "feedbackId": "fb-2",
            "complainedRecipients": [{"emailAddress": readers[1]}]},
        "mail": {"source": token_of[&readers[1]].1, "messageId": "0100-ses-2"},
    })
    .to_string();
    let signed = sns.signed("Notification", "n-2", SES_TOPIC, &complaint, &cert_url);
    assert_eq!(post(signed.to_string()).await.0, 200);

    // Refused, and nothing changes for reader2: the message altered after
    // signing, another account's topic, a certificate from elsewhere, the
    // SHA-1 signature version, and what is not SNS at all.
    let mut altered = sns.signed("Notification", "n-3", SES_TOPIC, &bounce(2, true), &cert_url);
    altered["Message"] = bounce(2, false).into();
    assert_eq!(post(altered.to_string()).await.0, 401);
    let other_topic = "arn:aws:sns:us-east-1:999999999999:someone-else";
    let foreign = sns.signed("Notification", "n-4", other_topic, &bounce(2, true), &cert_url);
    assert_eq!(post(foreign.to_string()).await.0, 401);
    let fetched_before = sns.requests().len();
    for cert_elsewhere in [
        format!("https://{SNS_HOST}.evil.example/cert.pem"),
        format!("http://{SNS_HOST}/cert.pem"),
        format!("https://{SNS_HOST}/not-a-cert.txt"),
    ] {
        let elsewhere = sns.signed("Notification", "n-5", SES_TOPIC, &bounce(2, true), &cert_elsewhere);
        let (status, body) = post(elsewhere.to_string()).await;
        assert_eq!(status, 401, "{cert_elsewhere}: {body}");
    }
    assert_eq!(sns.requests().len(), fetched_before, "nothing fetched from elsewhere");
    let mut sha1 = sns.signed("Notification", "n-6", SES_TOPIC, &bounce(2, true), &cert_url);
    sha1["SignatureVersion"] = "1".into();
    let (status, body) = post(sha1.to_string()).await;
    assert_eq!(status, 401);
    assert!(body.contains("SignatureVersion"), "{body}");
    assert_eq!(post("{\"Type\": \"Notification\"}".into()).await.0, 400);
    assert_eq!(
        sns.requests().iter().filter(|p| p.ends_with(".pem")).count(),
        1,
        "the certificate is fetched once: {:?}",
        sns.requests()
    );
    drop(stop);

    let list = subscriber_lines(&env).await;
    assert_eq!(list[&readers[0]][2], "bounced", "{list:?}");
    assert!(
        list[&readers[0]][5].contains("ses Permanent/General bounce"),
        "{list:?}"
    );
    assert_eq!(list[&readers[1]][2], "complained", "{list:?}");
    assert_eq!(list[&readers[2]][2], "active", "{list:?}");
    let deliveries = stdout(&env.run(&["deliveries", "1"]).await);
    assert_eq!(
        deliveries.matches("hard_bounce").count(),
        1,
        "recorded once: {deliveries}"
    );
}

/// A crash in the middle of a mailbox pass: the daemon is killed (SIGKILL)
/// while it works through 300 messages, then started again. Every message
/// ends up in the processed folder, none is deleted, and each distinct
/// message is recorded exactly once — those recorded but not yet moved
/// when it died are recognised on the second pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_the_middle_of_a_mailbox_pass_loses_and_doubles_nothing() {
    use crate::support::dovecot::{Dovecot, PASSWORD};
    let Some(dovecot) = Dovecot::start() else { return };
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let inbound = format!(
        "[inbound]\nmailbox = \"imap://bounces:{PASSWORD}@127.0.0.1:{}/INBOX\"\nmailbox_poll = \"1s\"\nsoft_bounce_limit = 1000",
        dovecot.port
    );
    let (env, readers) = sent_to_readers(&feeds, &smtp, &inbound, 10).await;
    let senders = envelope_senders(&smtp);
    let mailbox = crate::support::load_config(&env.config_path())
        .expect("config")
        .inbound
        .mailbox
        .expect("mailbox");
    let mut imap = tidings::inbound::mailbox::connect(&mailbox).await.expect("imap");
    // 270 distinct delay notices (soft bounces, which change little) and 30
    // of them a second time.
    let distinct = 270;
    let message = |i: usize| {
        let reader = &readers[i % readers.len()];
        let text = String::from_utf8(fixture("delayed-soft.eml", &senders[reader], reader)).expect("utf-8");
        text.replacen("Subject:", &format!("X-Sequence: {i}\r\nSubject:"), 1)
            .into_bytes()
    };
    for i in (0..distinct).chain(0..30) {
        imap.append("INBOX", None, None, &message(i)).await.expect("append");
    }

    let app = env.open_app(Arc::new(tidings::clock::SystemClock)).await;
    let recorded = async || app.store.recent_inbound_events(10_000).await.expect("events").len();
    let served = Served::start(&env).await;
    let mut at_crash = 0;
    for _ in 0..400 {
        at_crash = recorded().await;
        if at_crash >= 40 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    served.kill().await;
    assert!(
        (40..distinct).contains(&at_crash),
        "killed in the middle of the pass ({at_crash} recorded)"
    );
    imap.noop().await.expect("noop");
    let left_at_crash = imap.select("INBOX").await.expect("select").exists;
    assert!(left_at_crash > 0, "messages were left when it died");

    let served = Served::start(&env).await;
    let mut left = u32::MAX;
    for _ in 0..300 {
        imap.noop().await.expect("noop");
        left = imap.select("INBOX").await.expect("select").exists;
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(left, 0, "INBOX emptied after the restart\n{}", served.all_logs());
    assert!(served.stop().await.success());
    let processed = imap.select("Processed").await.expect("processed");
    assert_eq!(processed.exists, 300, "every message kept, none deleted");
    assert_eq!(recorded().await, distinct, "each distinct message recorded once");
}

/// What the listener does with clients that are not a relay handing over
/// mail: one that trickles a command byte by byte, one that says nothing,
/// one over the connection limit, one over its rate, one that only sends
/// junk. Each is cut off with a reason; an honest message still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_sheds_slow_silent_crowding_and_junk_clients() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config_with_site(
        &format!("unsubscribe_mailto = \"{UNSUBSCRIBE}\""),
        &format!(
            r#"
[web]
listen = "127.0.0.1:0"

[delivery]
return_path = "{RETURN_PATH}"

[inbound]
listen = "127.0.0.1:0"
timeout = "1s"
max_connections = 3
messages_per_minute = 2
{tail}"#,
            tail = alpha_weekly(&feeds, "0 0 8 * * Mon", ""),
        ),
    );
    let served = Served::start(&env).await;
    let address = served.address_logged_as("inbound mail listening (SMTP and LMTP)").await;
    let connect = || async {
        let stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        let (read, write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let greeting = lines.next_line().await.expect("read").expect("greeting");
        assert!(greeting.starts_with("220"), "{greeting}");
        (lines, write)
    };
    let started = std::time::Instant::now();

    // A command trickled one byte every 300 ms never completes in time,
    // although the client is never silent for a whole second.
    let (mut lines, mut write) = connect().await;
    let trickle = tokio::spawn(async move {
        for byte in b"EHLO a-very-slow-client.example\r\n" {
            if write.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    });
    let cut = tokio::time::timeout(std::time::Duration::from_secs(5), lines.next_line())
        .await
        .expect("cut off well before the command could end")
        .ok()
        .flatten()
        .unwrap_or_default();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    trickle.abort();
    assert!(cut.starts_with("421 4.4.2"), "{cut:?}");

    // A silent client is closed after the timeout.
    let (mut lines, _write) = connect().await;
    let line = lines.next_line().await.expect("read").unwrap_or_default();
    assert!(line.starts_with("421 4.4.2"), "{line}");

    // Three connections are the limit; the fourth is told to come back.
    let held = [connect().await, connect().await, connect().await];
    let stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let mut lines = BufReader::new(stream).lines();
    let line = lines.next_line().await.expect("read").unwrap_or_default();
    assert!(line.starts_with("421 4.3.2"), "{line}");
    drop(held);
    // The listener frees the slots as it sees the connections close.
    let mut freed = false;
    for _ in 0..100 {
        let stream = tokio::net::TcpStream::connect(&address).await.expect("connect");
        let mut lines = BufReader::new(stream).lines();
        if lines
            .next_line()
            .await
            .ok()
            .flatten()
            .is_some_and(|l| l.starts_with("220"))
        {
            freed = true;
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(freed, "the slots were never freed");

    // Junk only: ten errors close the session.
    let (mut lines, mut write) = connect().await;
    for _ in 0..12 {
        let _ = write.write_all(b"\x00\xff GARBAGE\r\n").await;
    }
    let mut last = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        last = line;
    }
    assert!(last.starts_with("421 4.7.0"), "{last}");

    // Two messages a minute from one address: the third is deferred.
    let message = fixture("unsubscribe.eml", "none", "reader@reader.example");
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(hand_over(&address, false, "reader@reader.example", &[UNSUBSCRIBE], &message).await);
    }
    assert!(answers[0].iter().any(|r| r.starts_with("250 2.0.0")), "{answers:?}");
    assert!(answers[2].iter().any(|r| r.starts_with("450 4.7.1")), "{answers:?}");
    assert!(served.stop().await.success());
}
