//! `tidings serve`: slots fire once, missed slots are caught up within the
//! grace window, replicas share the work, reloads and signals are honoured.
//! Time passes on a manual clock: the daemon runs in this process and is
//! stepped; the binary is run where signals and the process's exit matter.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use tidings::app::App;
use tidings::clock::{ManualClock, SharedClock};
use tidings::daemon::{Control, Daemon};
use tidings::domain::EmailAddress;
use tidings::token::{Purpose, Signer};
use tokio::io::AsyncBufReadExt;

use crate::support::http::FeedServer;
use crate::support::smtp::{SmtpOptions, SmtpServer};
use crate::support::{Db, SECRET, TestEnv, alpha_weekly, assert_exit, databases, finish, import_subscribers, stdout};

fn config(feeds: &FeedServer, smtp: &SmtpServer, schedule: &str, grace: &str) -> String {
    format!(
        r#"
[smtp]
url = "smtp://127.0.0.1:{port}"
starttls = "never"

[web]
listen = "127.0.0.1:0"

[collect]
schedule = "0 0 0 1 1 *"

[delivery]
retry_initial = "1s"
{tail}"#,
        port = smtp.port,
        tail = alpha_weekly(feeds, schedule, &format!("grace = \"{grace}\"")),
    )
}

async fn add_subscribers(env: &TestEnv, n: usize) {
    let list: Vec<(String, String)> = (0..n)
        .map(|i| (format!("reader{i}@example.com"), String::new()))
        .collect();
    import_subscribers(env, &list).await;
}

/// An issue for `readers` that takes seconds to send: a relay answering
/// each message after 40 ms, `concurrency` connections, the slot at the top
/// of this hour (caught up when `serve` starts), stories collected.
async fn slow_send(readers: usize, concurrency: usize) -> (FeedServer, SmtpServer, TestEnv) {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::slow(Duration::from_millis(40)).await;
    let env = TestEnv::new(Db::Sqlite);
    let text = config(&feeds, &smtp, "0 0 * * * *", "2h").replace(
        "retry_initial = \"1s\"",
        &format!("retry_initial = \"1s\"\nconcurrency = {concurrency}"),
    );
    env.write_config(&text);
    add_subscribers(&env, readers).await;
    assert_exit(&env.run(&["collect"]).await, 0);
    (feeds, smtp, env)
}

/// A running `tidings serve` with its JSON log lines.
pub(crate) struct Served {
    child: tokio::process::Child,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub(crate) async fn start(env: &TestEnv) -> Served {
        let mut child = env
            .command(&["--log-format", "json", "serve"])
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn serve");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&logs);
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().expect("lock").push(line);
            }
        });
        Served { child, logs }
    }

    fn logged(&self, needle: &str) -> bool {
        self.logs.lock().expect("lock").iter().any(|l| l.contains(needle))
    }

    pub(crate) fn all_logs(&self) -> String {
        self.logs.lock().expect("lock").join("\n")
    }

    pub(crate) async fn address(&self) -> String {
        self.address_logged_as("listening").await
    }

    /// The address of the log line whose message is `message`.
    pub(crate) async fn address_logged_as(&self, message: &str) -> String {
        for _ in 0..200 {
            let found = self.logs.lock().expect("lock").iter().find_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                (v["fields"]["message"] == message).then(|| v["fields"]["address"].as_str().map(str::to_string))?
            });
            if let Some(a) = found {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("serve did not listen:\n{}", self.all_logs());
    }

    async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("pid").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGKILL: the daemon dies wherever it is, as in a crash.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("kill serve");
    }

    pub(crate) async fn stop(mut self) -> std::process::ExitStatus {
        self.signal("-TERM").await;
        tokio::time::timeout(Duration::from_secs(40), self.child.wait())
            .await
            .expect("serve stops on SIGTERM")
            .expect("wait")
    }
}

async fn http_get(url: String) -> reqwest::Result<reqwest::Response> {
    tidings::install_crypto_provider();
    reqwest::get(url).await
}

/// The Prometheus text `serve` answers at `/metrics`.
async fn metrics_of(address: &str) -> String {
    let response = http_get(format!("http://{address}/metrics")).await.expect("metrics");
    response.text().await.expect("metrics body")
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..400 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The daemon in this process on a manual clock, over this env's config.
struct Stepped {
    clock: Arc<ManualClock>,
    daemon: Daemon,
}

impl Stepped {
    async fn start(env: &TestEnv, clock: &Arc<ManualClock>) -> Stepped {
        let app = env.open_app(Arc::clone(clock) as SharedClock).await;
        let daemon = Daemon::start(app).await.expect("daemon");
        Stepped {
            clock: Arc::clone(clock),
            daemon,
        }
    }

    /// Moves the clock on by `by`, starts what is due, and waits for it.
    async fn step(&mut self, by: chrono::Duration) {
        let now = self.clock.advance(by);
        self.daemon.tick(now);
        self.daemon.settle().await;
    }
}

/// The first top of the hour at least five minutes from now: stories the
/// tests collect now are inside its issue's window.
fn next_hour() -> DateTime<Utc> {
    let soon = Utc::now() + chrono::Duration::minutes(5);
    let hour = soon
        .with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .expect("top of the hour");
    hour + chrono::Duration::hours(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_slot_runs_once_when_its_time_comes() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &smtp, "0 0 * * * *", "10m"));
    add_subscribers(&env, 3).await;
    assert_exit(&env.run(&["collect"]).await, 0);

    let slot = next_hour();
    let clock = ManualClock::new(slot - chrono::Duration::minutes(2));
    let mut stepped = Stepped::start(&env, &clock).await;
    assert_eq!(stepped.daemon.next_slot(), Some(slot));
    stepped.step(chrono::Duration::seconds(90)).await;
    assert!(smtp.messages().is_empty(), "nothing before the slot");
    stepped.step(chrono::Duration::seconds(31)).await;
    assert_eq!(smtp.messages().len(), 3, "the slot's issue, to each subscriber");
    assert_eq!(stepped.daemon.next_slot(), Some(slot + chrono::Duration::hours(1)));
    // Ticks within the same slot and a later slot with no new story send
    // nothing more.
    stepped.step(chrono::Duration::seconds(1)).await;
    stepped.step(chrono::Duration::hours(1)).await;
    assert_eq!(smtp.messages().len(), 3, "each subscriber got the issue once");
    let issues = stdout(&env.run(&["deliveries"]).await);
    assert_eq!(
        issues.lines().filter(|l| l.starts_with("issue #")).count(),
        1,
        "{issues}"
    );
    // Several slots that passed while busy run as one (the latest).
    stepped.step(chrono::Duration::hours(5)).await;
    assert_eq!(stepped.daemon.next_slot(), Some(slot + chrono::Duration::hours(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_slot_is_caught_up_once_within_the_grace_window_and_skipped_beyond_it() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let slot = next_hour();

    // Started half an hour after an hourly slot, inside a 2 h grace window.
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &smtp, "0 0 * * * *", "2h"));
    add_subscribers(&env, 2).await;
    assert_exit(&env.run(&["collect"]).await, 0);
    let clock = ManualClock::new(slot + chrono::Duration::minutes(30));
    let mut stepped = Stepped::start(&env, &clock).await;
    stepped.daemon.settle().await;
    assert_eq!(smtp.messages().len(), 2, "the missed slot is caught up");
    // A restart does not send the slot again.
    let mut restarted = Stepped::start(&env, &clock).await;
    restarted.step(chrono::Duration::minutes(1)).await;
    assert_eq!(smtp.messages().len(), 2, "caught up once");

    // With a grace window shorter than the time since the slot: skipped.
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &smtp, "0 0 * * * *", "20m"));
    add_subscribers(&env, 2).await;
    assert_exit(&env.run(&["collect"]).await, 0);
    let mut stepped = Stepped::start(&env, &clock).await;
    stepped.step(chrono::Duration::minutes(1)).await;
    assert!(smtp.messages().is_empty(), "a slot past its grace is skipped");
    // The next slot runs as usual.
    stepped.step(chrono::Duration::minutes(30)).await;
    assert_eq!(smtp.messages().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deliver_one_issue_to_every_subscriber_exactly_once() {
    for db in databases().await {
        let feeds = FeedServer::start().await;
        let smtp = SmtpServer::slow(Duration::from_millis(5)).await;
        let env = TestEnv::new(db.clone());
        env.write_config(&config(&feeds, &smtp, "0 */10 * * * *", "6h"));
        add_subscribers(&env, 60).await;
        assert_exit(&env.run(&["collect"]).await, 0);
        let slot = next_hour();
        let clock = ManualClock::new(slot - chrono::Duration::minutes(1));
        let mut first = Stepped::start(&env, &clock).await;
        let mut second = Stepped::start(&env, &clock).await;
        // Both catch up the slot a minute before the hour ...
        tokio::join!(first.daemon.settle(), second.daemon.settle());
        // ... and reach each of four later slots at the same instant.
        for _ in 0..4 {
            let now = clock.advance(chrono::Duration::minutes(10));
            first.daemon.tick(now);
            second.daemon.tick(now);
            tokio::join!(first.daemon.settle(), second.daemon.settle());
        }
        let got = smtp.per_recipient();
        assert_eq!(got.len(), 60, "{db:?}");
        assert!(got.values().all(|c| *c == 1), "{db:?}: duplicates {got:?}");
        drop((first, second));
        finish(db).await;
    }
}

/// Three replicas, one with its clock five minutes ahead and one five
/// minutes behind: each reaches an hourly slot at its own time, and each
/// slot still runs once — one issue per slot, each reader mailed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_clocks_apart_run_each_slot_once() {
    for db in databases().await {
        let feeds = FeedServer::start().await;
        let smtp = SmtpServer::start(SmtpOptions::default()).await;
        let env = TestEnv::new(db.clone());
        // A second source, a local file that gets a new story between slots.
        let later = env.path("later.xml");
        std::fs::write(
            &later,
            "<rss version=\"2.0\"><channel><title>Later</title></channel></rss>",
        )
        .expect("feed");
        let text = config(&feeds, &smtp, "0 0 * * * *", "10m");
        env.write_config(&format!(
            "{text}\n[[sources]]\nname = \"Later\"\nurl = \"{}\"\n",
            later.display()
        ));
        add_subscribers(&env, 20).await;
        assert_exit(&env.run(&["collect"]).await, 0);
        let slot = next_hour();
        let start = slot - chrono::Duration::minutes(10);
        let mut replicas = Vec::new();
        for minutes in [0, 5, -5] {
            let clock = ManualClock::new(start + chrono::Duration::minutes(minutes));
            replicas.push(Stepped::start(&env, &clock).await);
        }
        // A minute at a time on every clock: twenty minutes around the
        // first slot, then, after a new story, twenty around the next.
        for minute in 0..60 {
            if minute == 20 {
                let got = smtp.per_recipient();
                assert_eq!(got.len(), 20, "{db:?}: the first slot reached everyone");
                assert!(got.values().all(|c| *c == 1), "{db:?}: the first slot once: {got:?}");
                let item = format!(
                    "<item><title>Ransomware at a second port</title><link>https://later.example/2</link><guid>later-2</guid><pubDate>{}</pubDate></item>",
                    Utc::now().to_rfc2822()
                );
                std::fs::write(
                    &later,
                    format!("<rss version=\"2.0\"><channel><title>Later</title>{item}</channel></rss>"),
                )
                .expect("feed");
                assert_exit(&env.run(&["collect"]).await, 0);
            }
            let by = chrono::Duration::minutes(if minute == 20 { 30 } else { 1 });
            for r in &mut replicas {
                let now = r.clock.advance(by);
                r.daemon.tick(now);
            }
            for r in &mut replicas {
                r.daemon.settle().await;
            }
        }
        let got = smtp.per_recipient();
        assert_eq!(got.len(), 20, "{db:?}");
        assert!(got.values().all(|c| *c == 2), "{db:?}: each slot once: {got:?}");
        let issues = stdout(&env.run(&["deliveries"]).await);
        assert_eq!(
            issues.lines().filter(|l| l.starts_with("issue #")).count(),
            2,
            "{db:?}: {issues}"
        );
        drop(replicas);
        finish(db).await;
    }
}

/// `concurrency` is the most connections a replica opens to the relay: the
/// delivery pass, which runs every two seconds, leaves alone an issue the
/// slot's own send is still delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_opens_no_more_connections_than_its_concurrency() {
    // Sending takes about 4 s, so delivery passes run meanwhile.
    let (_feeds, smtp, env) = slow_send(200, 2).await;
    let served = Served::start(&env).await;
    wait_for("the caught-up issue", || smtp.messages().len() >= 200).await;
    assert!(served.stop().await.success());
    assert_eq!(smtp.messages().len(), 200);
    assert!(
        smtp.connections() <= 2,
        "{} connections for concurrency 2",
        smtp.connections()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_health_and_metrics_and_stops_cleanly_on_sigterm() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    // The slot at the top of this hour is caught up at start.
    env.write_config(&config(&feeds, &smtp, "0 0 * * * *", "2h"));
    add_subscribers(&env, 3).await;
    assert_exit(&env.run(&["collect"]).await, 0);

    let served = Served::start(&env).await;
    let address = served.address().await;
    wait_for("the caught-up issue", || smtp.messages().len() >= 3).await;
    assert!(served.logged("catching up the slot missed while stopped"));
    let health = http_get(format!("http://{address}/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), "ok\n");
    wait_for("the sends to be counted", || served.logged("send finished")).await;
    let metrics = metrics_of(&address).await;
    assert!(
        metrics.contains("tidings_deliveries_total{status=\"sent\"} 3"),
        "{metrics}"
    );
    assert!(metrics.contains("tidings_schedule_lag_seconds"), "{metrics}");

    let status = served.stop().await;
    assert_eq!(status.code(), Some(0), "clean exit on SIGTERM");
    assert_eq!(smtp.messages().len(), 3, "each subscriber got the issue once");
}

/// A reader who unsubscribes while an issue goes out is not mailed the rest
/// of it, and `/metrics` counts the delivery withdrawn beside those sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_withdrawn_during_a_send_is_counted_in_metrics() {
    // One connection: the issue takes about 4 s, and the last reader's turn
    // comes long after the first message.
    let (_feeds, smtp, env) = slow_send(100, 1).await;
    let leaving = "reader99@example.com";
    let app = env.open_app(tidings::clock::system()).await;
    let address = EmailAddress::parse(leaving).expect("address");
    let id = app
        .store
        .subscriber_by_email(&address)
        .await
        .expect("store")
        .expect("reader")
        .id;
    app.store.close().await;

    let served = Served::start(&env).await;
    let web = served.address().await;
    wait_for("the first message", || !smtp.messages().is_empty()).await;
    let token = Signer::new(SECRET.as_bytes()).sign(Purpose::Unsubscribe, id, None);
    tidings::install_crypto_provider();
    let response = reqwest::Client::new()
        .post(format!("http://{web}/unsubscribe/{token}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("one-click unsubscribe");
    assert_eq!(response.status(), 200);
    wait_for("the send to finish", || served.logged("send finished")).await;

    let metrics = metrics_of(&web).await;
    assert!(
        metrics.contains("tidings_deliveries_total{status=\"withdrawn\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tidings_deliveries_total{status=\"sent\"} 99"),
        "{metrics}"
    );
    assert!(served.stop().await.success());
    let mailed = smtp.messages();
    assert_eq!(mailed.len(), 99);
    assert!(mailed.iter().all(|m| !m.rcpt_to.iter().any(|r| r == leaving)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_takes_a_good_configuration_and_keeps_the_old_one_when_bad() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    let good = config(&feeds, &smtp, "0 0 0 1 1 *", "1s");
    env.write_config(&good);
    let load = {
        let path = env.config_path();
        move || crate::support::load_config(&path)
    };
    let app = App::open(load().expect("config")).await.expect("open");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (control, controlled) = tokio::sync::mpsc::channel(4);
    let served = tokio::spawn(tidings::daemon::serve(app, listener, controlled, load));
    let page = || async {
        let response = http_get(format!("http://{address}/subscribe")).await.expect("GET");
        assert_eq!(response.status(), 200);
        response.text().await.expect("body")
    };
    assert!(page().await.contains("Weekly AI Recap"));

    std::fs::write(env.config_path(), "this is = not [valid toml").expect("write");
    control.send(Control::Reload).await.expect("control");
    let health = http_get(format!("http://{address}/healthz")).await.expect("healthz");
    assert_eq!(health.status(), 200, "still serving with the old configuration");
    assert!(page().await.contains("Weekly AI Recap"));

    env.write_config(&good);
    let renamed = std::fs::read_to_string(env.config_path())
        .expect("config")
        .replace("title = \"Weekly AI Recap\"", "title = \"Monday Security Notes\"");
    std::fs::write(env.config_path(), renamed).expect("write");
    control.send(Control::Reload).await.expect("control");
    let mut reloaded = false;
    for _ in 0..100 {
        if page().await.contains("Monday Security Notes") {
            reloaded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(reloaded, "the new configuration serves the pages");
    control.send(Control::Stop).await.expect("control");
    let stopped = tokio::time::timeout(Duration::from_secs(40), served).await;
    assert!(matches!(stopped, Ok(Ok(Ok(())))), "stops cleanly: {stopped:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_lists_the_next_fire_times_in_local_time_and_utc() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    let text = config(&feeds, &smtp, "0 0 8 * * *", "6h").replace(
        "schedule = \"0 0 8 * * *\"",
        "schedule = \"0 0 8 * * *\"\ntimezone = \"Europe/Berlin\"",
    );
    env.write_config(&text);
    let out = env.run(&["schedule"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    let edition: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("edition weekly"))
        .skip(1)
        .take(5)
        .collect();
    assert_eq!(edition.len(), 5, "{text}");
    for line in edition {
        assert!(line.contains(" 08:00:00 CE"), "08:00 local: {line}");
        assert!(
            line.contains(" 07:00:00 UTC") || line.contains(" 06:00:00 UTC"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_send_loses_nothing_and_the_next_start_finishes_the_issue() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::slow(Duration::from_millis(15)).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(
        &config(&feeds, &smtp, "0 0 * * * *", "2h")
            .replace("retry_initial = \"1s\"", "retry_initial = \"1s\"\nconcurrency = 4"),
    );
    add_subscribers(&env, 150).await;
    assert_exit(&env.run(&["collect"]).await, 0);
    let served = Served::start(&env).await;
    wait_for("the send to start", || smtp.messages().len() >= 30).await;
    assert_eq!(served.stop().await.code(), Some(0), "clean exit on SIGTERM");
    let sent_before = smtp.messages().len();
    assert!(sent_before < 150, "stopped mid-send");
    let report = stdout(&env.run(&["deliveries", "1"]).await);
    assert!(report.contains(" 0 sending"), "in-flight rows were released: {report}");

    let served = Served::start(&env).await;
    wait_for("the rest of the issue", || smtp.per_recipient().len() >= 150).await;
    assert_eq!(served.stop().await.code(), Some(0));
    let got = smtp.per_recipient();
    assert!(got.values().all(|c| *c == 1), "nothing doubled: {got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_keep_their_local_time_across_both_daylight_saving_changes() {
    let feeds = FeedServer::start().await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &smtp, "0 0 8 * * *", "1m").replace(
        "schedule = \"0 0 8 * * *\"",
        "schedule = \"0 0 8 * * *\"\ntimezone = \"Europe/Berlin\"",
    ));
    let utc = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .expect("time")
    };
    // 08:00 in Berlin: 07:00 UTC in winter, 06:00 UTC in summer.
    let clock = ManualClock::new(utc("2026-03-28T12:00:00Z"));
    let mut stepped = Stepped::start(&env, &clock).await;
    assert_eq!(stepped.daemon.next_slot(), Some(utc("2026-03-29T06:00:00Z")));
    stepped.step(chrono::Duration::hours(18)).await;
    assert_eq!(stepped.daemon.next_slot(), Some(utc("2026-03-30T06:00:00Z")));
    clock.set(utc("2026-10-24T12:00:00Z"));
    let mut stepped = Stepped::start(&env, &clock).await;
    assert_eq!(stepped.daemon.next_slot(), Some(utc("2026-10-25T07:00:00Z")));
    stepped.step(chrono::Duration::hours(19)).await;
    assert_eq!(stepped.daemon.next_slot(), Some(utc("2026-10-26T07:00:00Z")));
    assert!(smtp.messages().is_empty(), "no subscriber, nothing sent");
}
