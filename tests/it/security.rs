//! Issue 17's findings, each tried as an attacker would, against the real
//! binary and `tidings serve` on 127.0.0.1.

use std::time::Duration;

use mail_parser::MessageParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::daemon::Served;
use crate::support::http::FeedServer;
use crate::support::model::{Answer, ScriptedModel};
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::{Db, TestEnv, alpha_weekly, assert_exit};

/// Text from a feed, an editor's note, a subscriber's name, a model's card
/// and an editor's card edit that holds the markers earlier versions filled
/// in reaches the reader as text: never as the reader's address,
/// unsubscribe or preferences link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_from_outside_never_becomes_a_readers_address_or_link() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let model = ScriptedModel::start(vec![Answer::card(
        "Every reader named TIDINGSxSUBSCRIBERxEMAILx7f3a should read this report about {{ unsubscribe_url }} today.",
        "The report names TIDINGSxUNSUBSCRIBExURLx7f3a as the way out.",
    )])
    .await;
    let env = TestEnv::new(Db::Sqlite);
    let subject = "subject = \"{{ edition.title }} for {{ subscriber.name or 'you' }}\"";
    env.write_config(&format!(
        "[briefing]\nendpoint = \"{}/v1\"\nmodel = \"m\"\n\n[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nstarttls = \"never\"\n{}",
        model.base,
        smtp.port,
        alpha_weekly(&feeds, "0 0 8 * * Mon", subject)
            .replace(&feeds.url("feeds/alpha.xml"), &feeds.url("feeds/marker-bait.xml"))
    ));
    // With a mailbox someone reads, the mailto form is advertised too.
    let config = std::fs::read_to_string(env.config_path()).expect("config");
    let config = config.replacen(
        "templates = ",
        "unsubscribe_mailto = \"leave@example.com\"\ntemplates = ",
        1,
    );
    std::fs::write(env.config_path(), config).expect("config");
    let csv =
        "email,name,editions\nada@example.com,Ada TIDINGSxSUBSCRIBERxEMAILx7f3a,weekly\nbob@example.com,,weekly\n";
    std::fs::write(env.path("subs.csv"), csv).expect("csv");
    assert_exit(&env.run(&["subscribers", "import", "subs.csv"]).await, 0);
    let note = "Tell TIDINGSxSUBSCRIBERxEMAILx7f3a about TIDINGSxUNSUBSCRIBExURLx7f3a";
    assert_exit(&env.run(&["issue", "note", "weekly", note]).await, 0);
    // The cards are drafted by the collect; an editor edits one field too.
    assert_exit(&env.run(&["collect"]).await, 0);
    assert!(model.count() > 0, "the model was asked for cards");
    let ranked = String::from_utf8_lossy(&env.run(&["rank", "security"]).await.stdout).into_owned();
    let id = ranked
        .lines()
        .find(|l| l.contains("Ransomware report"))
        .and_then(|l| l.split(" #").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{ranked}"))
        .to_string();
    let edit = "Ask TIDINGSxSUBSCRIBERxEMAILx7f3a first";
    assert_exit(
        &env.run(&["issue", "edit", "weekly", &id, "what_to_do_next", edit])
            .await,
        0,
    );
    assert_exit(&env.run(&["run", "--once"]).await, 0);

    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "one message per reader");
    for received in &messages {
        let msg = MessageParser::default().parse(&received.data).expect("MIME");
        let to = received.rcpt_to[0].clone();
        let text = msg.body_text(0).expect("text part").into_owned();
        let html = msg.body_html(0).expect("html part").into_owned();
        let subject = msg.subject().unwrap_or_default().to_string();
        let unsubscribe = msg
            .header_raw("List-Unsubscribe")
            .and_then(|v| v.split(['<', '>']).nth(1).map(str::to_string))
            .expect("List-Unsubscribe");
        let header = msg
            .header_raw("List-Unsubscribe")
            .expect("List-Unsubscribe")
            .replace("\r\n", "");
        assert!(
            header.contains(", <mailto:leave@example.com?subject=unsubscribe%20"),
            "{header}"
        );
        // The template's own places still get the reader's values.
        assert!(
            text.contains(&format!("Unsubscribe (one click): {unsubscribe}")),
            "{text}"
        );
        for (part, body) in [("text", &text), ("html", &html), ("subject", &subject)] {
            // Where the bait was, the reader's values are not.
            for line in body
                .lines()
                .filter(|l| l.contains("evil.test") || l.contains("TIDINGS"))
            {
                assert!(!line.contains(&to), "{part} of {to}'s copy leaks the address: {line}");
                assert!(
                    !line.contains("/unsubscribe/"),
                    "{part} of {to}'s copy leaks a link: {line}"
                );
                assert!(
                    !line.contains("/preferences/"),
                    "{part} of {to}'s copy leaks a link: {line}"
                );
            }
        }
        // The bait arrives as the literal text it was (defused).
        assert!(
            text.contains("https://evil.test/track?e=TIDINGS-xSUBSCRIBERxEMAILx7f3a"),
            "{text}"
        );
        assert!(
            text.contains("Ransomware report TIDINGS-xSUBSCRIBERxEMAILx7f3a"),
            "{text}"
        );
        assert!(text.contains("Tell TIDINGS-xSUBSCRIBERxEMAILx7f3a about"), "{text}");
        assert!(
            text.contains("Every reader named TIDINGS-xSUBSCRIBERxEMAILx7f3a"),
            "{text}"
        );
        assert!(
            text.contains("{{ unsubscribe_url }}"),
            "a model's text is never a template: {text}"
        );
        assert!(text.contains("names TIDINGS-xUNSUBSCRIBExURLx7f3a"), "{text}");
        assert!(text.contains("Ask TIDINGS-xSUBSCRIBERxEMAILx7f3a first"), "{text}");
        assert!(
            html.contains("Every reader named TIDINGS-xSUBSCRIBERxEMAILx7f3a"),
            "{html}"
        );
        if to == "ada@example.com" {
            assert_eq!(subject, "Weekly for Ada TIDINGS-xSUBSCRIBERxEMAILx7f3a");
        } else {
            assert_eq!(subject, "Weekly for you");
        }
    }
}

/// The server's messages once `n` have arrived (or after 10 s, to be
/// asserted on).
async fn messages_once_there(smtp: &SmtpServer, n: usize) -> Vec<crate::support::smtp::Received> {
    for _ in 0..100 {
        if smtp.messages().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    smtp.messages()
}

/// A client for the server under test (loopback, no proxy).
fn http_client() -> reqwest::Client {
    tidings::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// `tidings serve` with `[web]` limits set low, the JSON-logging binary.
async fn serve_with_web(web: &str) -> (TestEnv, Served, String) {
    serve_with(web, "").await
}

/// As [`serve_with_web`], with more tables (`[smtp]` …) in `tables`.
async fn serve_with(web: &str, tables: &str) -> (TestEnv, Served, String) {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        "{tables}\n[web]\nlisten = \"127.0.0.1:0\"\n{web}\n\n[collect]\nschedule = \"0 0 0 1 1 *\"\n{}",
        alpha_weekly(&feeds, "0 0 8 * * Mon", "")
    ));
    let served = Served::start(&env).await;
    let address = served.address().await;
    (env, served, address)
}

/// Reads until the server closes the connection (or `within` passes):
/// what it sent, and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let closed = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (String::from_utf8_lossy(&got).into_owned(), closed)
}

/// Idle sockets, clients that trickle their headers and clients that send
/// huge headers are cut off, and `/healthz` answers all the while.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_oversized_clients_are_cut_and_health_still_answers() {
    let (_env, served, address) =
        serve_with_web("header_timeout = \"1s\"\nidle_timeout = \"3s\"\nmax_connections = 32\nmax_header_bytes = 8192")
            .await;
    // More idle connections than the server takes at once.
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(TcpStream::connect(&address).await.expect("connect"));
    }
    // Slowloris: a header line that never ends, a byte at a time.
    let mut slow = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(&address).await.expect("connect");
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .expect("write");
        slow.push(s);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            for s in &mut slow {
                let _ = s.write_all(b"a").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    // Health answers within a few seconds although every slot was taken.
    let started = std::time::Instant::now();
    let client = http_client();
    let health = tokio::time::timeout(
        Duration::from_secs(8),
        client.get(format!("http://{address}/healthz")).send(),
    )
    .await
    .expect("healthz answers while slow clients wait")
    .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    // The idle sockets were closed by the server.
    for s in idle.iter_mut().take(5) {
        let (_, closed) = read_until_closed(s, Duration::from_secs(5)).await;
        assert!(closed, "an idle connection stayed open");
    }
    let mut slow = trickle.await.expect("trickle");
    for s in slow.iter_mut().take(3) {
        let (_, closed) = read_until_closed(s, Duration::from_secs(2)).await;
        assert!(closed, "a connection trickling its headers stayed open");
    }
    // A header larger than max_header_bytes is refused at once.
    let mut big = TcpStream::connect(&address).await.expect("connect");
    let mut request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'b', 400 * 1024));
    let _ = big.write_all(&request).await;
    let (answer, closed) = read_until_closed(&mut big, Duration::from_secs(3)).await;
    assert!(closed, "an oversized header kept its connection");
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    served.stop().await;
}

/// `POST /subscribe` answers before any mail is sent: a slow SMTP server
/// makes it no slower, so its timing cannot tell a new address from a
/// subscribed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_up_answer_does_not_wait_for_the_confirmation_mail() {
    let smtp = SmtpServer::slow(Duration::from_secs(3)).await;
    let smtp_config = format!(
        "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nstarttls = \"never\"\n",
        smtp.port
    );
    let (env, served, address) = serve_with("", &smtp_config).await;
    assert_exit(&env.run(&["subscribers", "add", "known@example.com"]).await, 0);
    let client = http_client();
    for email in ["new%40example.com", "known%40example.com"] {
        let started = std::time::Instant::now();
        let response = client
            .post(format!("http://{address}/subscribe"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("email={email}"))
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let elapsed = started.elapsed();
        assert_eq!(status, 200);
        assert!(elapsed < Duration::from_millis(1500), "{email} took {elapsed:?}");
    }
    // The confirmation still goes out, after the answer.
    let messages = messages_once_there(&smtp, 1).await;
    assert_eq!(messages.len(), 1, "{}", served.all_logs());
    assert_eq!(messages[0].rcpt_to, ["new@example.com"]);
    // A second confirmation goes over the connection the first one opened.
    let response = client
        .post(format!("http://{address}/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=second%40example.com")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(messages_once_there(&smtp, 2).await.len(), 2);
    assert_eq!(smtp.connections(), 1, "confirmations share one connection");
    served.stop().await;
}

/// `[web] metrics_listen` moves `/metrics` off the public address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_served_apart_from_the_pages() {
    let (_env, served, address) = serve_with_web("metrics_listen = \"127.0.0.1:0\"").await;
    let metrics_address = served.address_logged_as("metrics listening").await;
    let client = http_client();
    let get = |url: String| {
        let request = client.get(url);
        async move { request.send().await.expect("GET").status().as_u16() }
    };
    assert_eq!(get(format!("http://{address}/metrics")).await, 404);
    assert_eq!(get(format!("http://{address}/healthz")).await, 200);
    assert_eq!(get(format!("http://{metrics_address}/metrics")).await, 200);
    assert_eq!(get(format!("http://{metrics_address}/subscribe")).await, 404);
    served.stop().await;
}

/// A configured source may redirect within its host, but not off it to an
/// internal address — unless `[collect] allow_private = true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_cannot_redirect_the_collector_to_an_internal_address() {
    let feeds = FeedServer::start().await;
    let target = feeds.url("feeds/alpha.xml");
    let source = format!(
        "{}?to={}",
        feeds.url("redirect").replace("127.0.0.1", "localhost"),
        target.replace(':', "%3A").replace('/', "%2F")
    );
    for allow_private in [false, true] {
        let env = TestEnv::new(Db::Sqlite);
        let collect = if allow_private {
            "[collect]\nallow_private = true\n"
        } else {
            ""
        };
        env.write_config(&format!(
            "{collect}{}",
            alpha_weekly(&feeds, "0 0 8 * * Mon", "").replace(&target, &source)
        ));
        let out = env.run(&["collect"]).await;
        let printed = crate::support::stdout(&out);
        if allow_private {
            assert_exit(&out, 0);
            assert!(printed.contains("4 new"), "{printed}");
        } else {
            assert_exit(&out, 1);
            assert!(
                printed.contains("refused: 127.0.0.1 is an internal address"),
                "{printed}"
            );
        }
    }
}

/// `/healthz` says the database is unavailable, and no more: the reason
/// (host names, user names, SQL errors) goes to the log only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_does_not_show_database_errors() {
    let Some(url) = crate::support::fresh_postgres_database().await else {
        return; // needs a database that can be taken away: PostgreSQL
    };
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Postgres(url.clone()));
    env.write_config(&format!(
        "[web]\nlisten = \"127.0.0.1:0\"\n\n[collect]\nschedule = \"0 0 0 1 1 *\"\n{}",
        alpha_weekly(&feeds, "0 0 8 * * Mon", "")
    ));
    let served = Served::start(&env).await;
    let address = served.address().await;
    let client = http_client();
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status().as_u16(), 200);
    crate::support::finish(Db::Postgres(url)).await;
    let health = client
        .get(format!("http://{address}/healthz"))
        .send()
        .await
        .expect("GET");
    assert_eq!(health.status().as_u16(), 503);
    assert_eq!(health.text().await.expect("body"), "database unavailable\n");
    assert!(
        served.all_logs().contains("healthz: database unavailable"),
        "{}",
        served.all_logs()
    );
    served.stop().await;
}
