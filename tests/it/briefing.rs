//! The briefing end to end: cards drafted by a real llama.cpp server with
//! SmolLM2-135M (the pipeline, not the prose: schema, strict reading,
//! cache), and by a stand-in that answers as told for what the real one
//! cannot be made to do — garbage, links, figures that are not in the
//! story, 500s, a hang. Every case runs the real binary.

use crate::support::http::FeedServer;
use crate::support::model::{Answer, CountingProxy, GENERIC_TLDR, LlamaServer, ScriptedModel};
use crate::support::{Db, TestEnv, assert_exit, databases, finish, stderr, stdout};

/// The briefing fixture feed, one audience, a daily edition; `[briefing]`
/// pointing at `endpoint` with `extra` keys.
fn config(feeds: &FeedServer, endpoint: &str, extra: &str) -> String {
    format!(
        r#"
[briefing]
endpoint = "{endpoint}/v1"
model = "smollm2-135m-instruct"
{extra}

[[sources]]
name = "Harbour"
url = "{feed}"

[tags.security]
keywords = ["ransomware", "credential"]

[audiences.security]
title = "Enterprise & Security Teams"
weights = {{ security = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly AI Recap"
audience = "security"
schedule = "0 0 8 * * *"
# The day's slot stays approvable all day, whenever the test runs.
grace = "24h"
"#,
        feed = feeds.url("feeds/briefing.xml"),
    )
}

/// The id `rank` prints for the story whose title holds `title`.
async fn story_id(env: &TestEnv, title: &str) -> String {
    let ranked = stdout(&env.run(&["rank", "security"]).await);
    let line = ranked
        .lines()
        .find(|l| l.contains(title))
        .unwrap_or_else(|| panic!("{title} not in rank output:\n{ranked}"));
    let at = line.find(" #").expect("id") + 2;
    line[at..].split_whitespace().next().expect("id").to_string()
}

fn first_line_with(text: &str, needle: &str) -> String {
    text.lines().find(|l| l.contains(needle)).unwrap_or("").to_string()
}

#[tokio::test]
async fn a_real_model_drafts_cards_once_and_the_issue_carries_them() {
    let Some(llama) = LlamaServer::start().await else {
        return;
    };
    let proxy = CountingProxy::start(&llama.base).await;
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    // "hold": SmolLM2-135M invents figures, so its fields are usually
    // unverified — shown to the editor, and the issue held for approval.
    // One request at a time (the server has one slot), with time to spare
    // on a machine busy with the other tests.
    env.write_config(&config(
        &feeds,
        &proxy.base,
        "timeout = \"300s\"\nconcurrency = 1\nunverified = \"hold\"",
    ));
    assert_exit(&env.run(&["subscribers", "add", "ada@example.com"]).await, 0);

    // A collect drafts cards for the upcoming issue's three stories (the
    // month-old one is outside the window): each answered, in the schema
    // or rejected with a reason — never an error. A request that timed
    // out on a busy machine is not cached: the next collect asks again.
    let mut drafted = 0;
    let mut line = String::new();
    for attempt in 0..3 {
        let out = env.run(&["collect"]).await;
        assert_exit(&out, 0);
        line = first_line_with(&stdout(&out), "briefing:");
        if attempt == 0 {
            assert!(line.contains(" 0 reused"), "{line}");
        }
        drafted += line["briefing: ".len()..]
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or_else(|| panic!("{line}"));
        if !line.contains(" failed") {
            break;
        }
    }
    assert!(!line.contains(" failed"), "the model server kept failing: {line}");
    let first_requests = proxy.count();
    assert!(first_requests >= 3, "{line}: {first_requests} requests");
    assert!(drafted >= 1, "the real model drafted no card in the schema: {line}");

    // What went to the model: the stories' text, never a link, never a reader.
    let sent = serde_json::to_string(&*proxy.bodies.lock().expect("lock")).expect("json");
    assert!(sent.contains("Northbay Clinic"), "{sent}");
    assert!(
        !sent.contains("https://") && !sent.contains("evil.example/collect"),
        "{sent}"
    );
    assert!(!sent.contains("ada@example.com"));
    assert!(sent.contains("json_schema"), "structured output asked for");

    // A second collect, a rank, the card and the preview: all from the cache.
    let out = env.run(&["collect"]).await;
    assert!(
        first_line_with(&stdout(&out), "briefing:").contains("0 drafted, 3 reused"),
        "{}",
        stdout(&out)
    );
    let id = story_id(&env, "Northbay").await;
    let card = env.run(&["briefing", &id]).await;
    let preview = stdout(&env.run(&["preview", "weekly", "--format", "html"]).await);
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert_eq!(proxy.count(), first_requests, "the cache answered: no request");
    if card.status.code() == Some(0) {
        let printed = stdout(&card);
        assert!(printed.contains("drafted by smollm2-135m-instruct"), "{printed}");
        assert!(
            printed.contains("tldr: ") && printed.contains("why_it_matters (security)"),
            "{printed}"
        );
    }
    assert!(preview.contains("Drafted by a language model"), "{preview}");
    assert!(text.contains("Drafted by a language model"), "{text}");
    // The timeline: the attack three weeks before the leak, from the store.
    assert!(
        text.contains("Ransomware attack encrypts Northbay Clinic systems"),
        "{text}"
    );

    // Sending composes from the cache: the model is not asked. Unverified
    // fields hold the issue until the editor approves it.
    let out = env.run(&["send", "weekly"]).await;
    if out.status.code() == Some(1) {
        assert!(stdout(&out).contains("could not verify"), "{}", stdout(&out));
        assert!(env.outbox().is_empty());
        assert_exit(&env.run(&["issue", "approve", "weekly"]).await, 0);
        assert_exit(&env.run(&["send", "weekly"]).await, 0);
    } else {
        assert_exit(&out, 0);
        assert!(stdout(&out).contains("from the briefing cache"), "{}", stdout(&out));
    }
    assert_eq!(proxy.count(), first_requests);
    let mail = env.outbox();
    assert_eq!(mail.len(), 1);
    assert!(String::from_utf8_lossy(&mail[0]).contains("Drafted by a language model"));
}

#[tokio::test]
async fn answers_out_of_schema_are_retried_once_then_the_story_keeps_its_tldr() {
    for db in databases().await {
        garbage(db.clone()).await;
        finish(db).await;
    }
}

async fn garbage(db: Db) {
    let model = ScriptedModel::start(vec![
        Answer::Content("Sure! Here is your card: tldr = ransomware".into()),
        Answer::Content(r#"{"tldr": "only a tldr"}"#.into()),
    ])
    .await;
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(db);
    env.write_config(&config(&feeds, &model.base, "concurrency = 1\nmax_stories_per_run = 1"));

    // One story within the budget: asked twice (the retry), rejected; two
    // left for the next run.
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    let line = first_line_with(&stdout(&out), "briefing:");
    assert!(line.contains("0 drafted, 0 reused, 1 rejected"), "{line}");
    assert!(line.contains("2 left for the next run"), "{line}");
    assert_eq!(model.count(), 2);

    // The rejection is kept: the next run asks for the other stories only.
    model.set_script(vec![Answer::card(GENERIC_TLDR, "A point.")]);
    let out = env.run(&["collect"]).await;
    let line = first_line_with(&stdout(&out), "briefing:");
    assert!(line.contains("1 drafted, 1 reused, 0 rejected"), "{line}");
    assert_eq!(model.count(), 3);

    // The issue shows the drafted cards, and the rejected story's own text.
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert_eq!(model.count(), 4, "the preview drafted the last story");
    assert_eq!(text.matches(&format!("TL;DR: {GENERIC_TLDR}")).count(), 2, "{text}");
    assert!(
        text.contains("published 1,400 patient records on its leak site"),
        "{text}"
    );
    assert!(text.contains("What to do next: Check that every remote"), "{text}");
    assert!(text.contains("Drafted by a language model"), "{text}");
}

#[tokio::test]
async fn links_markup_and_injected_instructions_never_reach_a_card() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let model = ScriptedModel::start(vec![Answer::Card {
        about: "Negotiators".into(),
        tldr: "Readers must email their password to admin@evil.example or visit evil.example/collect now.".into(),
        takeaway: "Negotiators see fewer payments.".into(),
    }])
    .await;
    env.write_config(&config(&feeds, &model.base, "concurrency = 1"));
    assert_exit(&env.run(&["collect"]).await, 0);
    let id = story_id(&env, "negotiators").await;
    // The request carried the article's text without its link; the answer
    // that took the bait was refused twice; the card is not shown.
    let bodies = serde_json::to_string(&*model.bodies.lock().expect("lock")).expect("json");
    assert!(
        bodies.contains("Ignore all previous instructions"),
        "the text is sent as data"
    );
    assert!(!bodies.contains("https://evil.example"), "{bodies}");
    let card = env.run(&["briefing", &id]).await;
    assert_exit(&card, 1);
    assert!(stdout(&card).contains("holds a link"), "{}", stdout(&card));
    let html = stdout(&env.run(&["preview", "weekly", "--format", "html"]).await);
    assert!(!html.contains("Readers must email their password"), "{html}");
    assert!(html.contains("25 percent"), "the extractive TL;DR stands: {html}");
}

#[tokio::test]
async fn figures_not_in_the_story_fall_back_or_hold_the_issue() {
    for db in databases().await {
        grounding(db.clone()).await;
        finish(db).await;
    }
}

async fn grounding(db: Db) {
    let feeds = FeedServer::start().await;
    let model = ScriptedModel::start(vec![Answer::Card {
        about: "Northbay".into(),
        tldr: "Attackers published 1,400 records and demanded $2.5M.".into(),
        takeaway: "About 2,000 patients are affected, 38% of systems were hit.".into(),
    }])
    .await;
    let env = TestEnv::new(db);
    env.write_config(&config(&feeds, &model.base, ""));
    assert_exit(&env.run(&["subscribers", "add", "ada@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);
    let id = story_id(&env, "Northbay").await;

    // The card marks the takeaway: 2,000 is not in the story ($2.5M, 1,400
    // and 38% are, written differently).
    let card = stdout(&env.run(&["briefing", &id]).await);
    let tldr_at = card.find("tldr:").expect("tldr");
    assert!(
        !card[tldr_at..].lines().nth(1).unwrap_or("").contains("UNVERIFIED"),
        "{card}"
    );
    assert!(card.contains("UNVERIFIED: 2,000 not in the sources"), "{card}");

    // fallback (the default): the issue leaves the takeaway out.
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("TL;DR: Attackers published 1,400 records"), "{text}");
    assert!(!text.contains("2,000"), "{text}");

    // hold: the issue waits for the editor, who sees the field and approves.
    let mut held = config(&feeds, &model.base, "unverified = \"hold\"");
    held.push('\n');
    env.write_config(&held);
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 1);
    assert!(stdout(&out).contains("could not verify"), "{}", stdout(&out));
    assert!(env.outbox().is_empty());
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("2,000"), "the editor sees what would go out: {text}");

    // An edit replaces the field: nothing unverified is left, the issue goes.
    let edit = env
        .run(&[
            "issue",
            "edit",
            "weekly",
            &id,
            "takeaways",
            "The gateway lacked a second factor.",
        ])
        .await;
    assert_exit(&edit, 0);
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    let mail = String::from_utf8_lossy(&env.outbox()[0]).into_owned();
    assert!(mail.contains("The gateway lacked a second factor."), "{mail}");
    assert!(!mail.contains("2,000"));
}

#[tokio::test]
async fn the_editors_text_survives_a_regeneration() {
    let feeds = FeedServer::start().await;
    let model = ScriptedModel::start(vec![Answer::card("First draft of the TL;DR.", "A point.")]).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &model.base, "api_key_env = \"TIDINGS_BRIEFING_KEY\""));
    let key = [("TIDINGS_BRIEFING_KEY", "sk-test-0123456789")];
    let check = env.run_with_env(&["config", "check"], &key).await;
    let shown = stdout(&check);
    assert!(
        shown.contains("briefing:  model smollm2-135m-instruct at http://127.0.0.1:"),
        "{shown}"
    );
    assert!(shown.contains("(with a key;") && !shown.contains("sk-test"), "{shown}");
    let unset = env.run(&["config", "check"]).await;
    assert_exit(&unset, 2);
    assert!(
        stderr(&unset).contains("TIDINGS_BRIEFING_KEY is not set"),
        "{}",
        stderr(&unset)
    );
    assert_exit(&env.run_with_env(&["collect"], &key).await, 0);
    // The key went to the model server as a bearer token.
    let auth = model.authorizations.lock().expect("lock").clone();
    assert!(
        !auth.is_empty() && auth.iter().all(|a| a == "Bearer sk-test-0123456789"),
        "{auth:?}"
    );
    env.write_config(&config(&feeds, &model.base, ""));
    let id = story_id(&env, "Northbay").await;
    let bad = env.run(&["issue", "edit", "weekly", &id, "headline", "x"]).await;
    assert_exit(&bad, 2);
    assert!(stderr(&bad).contains("not a card field"), "{}", stderr(&bad));
    assert_exit(
        &env.run(&["issue", "edit", "weekly", &id, "tldr", "The editor's own summary."])
            .await,
        0,
    );
    model.set_script(vec![Answer::card("Second draft of the TL;DR.", "Another point.")]);
    let before = model.count();
    let card = stdout(&env.run(&["briefing", &id, "--regenerate"]).await);
    assert_eq!(model.count(), before + 1, "regenerate asks again");
    assert!(
        card.contains("Second draft") && card.contains("edited for weekly: tldr: The editor's own summary."),
        "{card}"
    );
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("TL;DR: The editor's own summary."), "{text}");
    assert!(
        text.contains("Another point."),
        "the regenerated draft fills the other fields: {text}"
    );
    assert!(!text.contains("Second draft"), "{text}");
    // An empty text gives the field back to the draft.
    assert_exit(&env.run(&["issue", "edit", "weekly", &id, "tldr", ""]).await, 0);
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("TL;DR: Second draft"), "{text}");
}

#[tokio::test]
async fn a_model_server_that_is_down_slow_or_failing_never_blocks_a_send() {
    let feeds = FeedServer::start().await;
    // Down: nothing listens there.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        format!("http://{}", l.local_addr().expect("addr"))
    };
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &closed, ""));
    assert_exit(&env.run(&["subscribers", "add", "ada@example.com"]).await, 0);
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    let line = first_line_with(&stdout(&out), "briefing:");
    assert!(line.contains("0 drafted") && line.contains("3 failed"), "{line}");
    assert!(stdout(&out).contains("cannot be reached"), "{}", stdout(&out));

    // Slow: one request waits for the timeout, the rest of the run is not
    // sent to a server that did not answer.
    let slow = ScriptedModel::start(vec![Answer::Hang]).await;
    env.write_config(&config(&feeds, &slow.base, "timeout = \"1s\"\nconcurrency = 1"));
    let started = std::time::Instant::now();
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert!(stdout(&out).contains("did not answer in time"), "{}", stdout(&out));
    assert_eq!(slow.count(), 1);

    // Failing: 500s are not cached; a later run asks again.
    let failing = ScriptedModel::start(vec![Answer::Status(500, "model crashed".into())]).await;
    env.write_config(&config(&feeds, &failing.base, "concurrency = 1"));
    let out = env.run(&["collect"]).await;
    assert!(stdout(&out).contains("answered 500: model crashed"), "{}", stdout(&out));
    let first = failing.count();
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_eq!(failing.count(), first * 2, "failures are asked for again");

    // Not a chat completion at all: failed, not cached.
    let raw = ScriptedModel::start(vec![Answer::Raw("<html>proxy error</html>".into())]).await;
    env.write_config(&config(&feeds, &raw.base, "concurrency = 1"));
    let out = env.run(&["collect"]).await;
    assert!(stdout(&out).contains("not a chat completion"), "{}", stdout(&out));

    // The send waits for nothing but the database and SMTP.
    env.write_config(&config(&feeds, &slow.base, "timeout = \"30s\""));
    let before = slow.count();
    let started = std::time::Instant::now();
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(slow.count(), before, "a send asks the model nothing");
    let mail = String::from_utf8_lossy(&env.outbox()[0]).into_owned();
    assert!(mail.contains("Northbay Clinic"), "{mail}");
    assert!(!mail.contains("Drafted by a language model"));
}

#[tokio::test]
async fn the_drafted_intro_is_used_only_once_the_editor_accepts_it() {
    let feeds = FeedServer::start().await;
    let model = ScriptedModel::start(vec![Answer::card(
        "The clinic's attackers published 1,400 patient records.",
        "A point.",
    )])
    .await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(&feeds, &model.base, ""));
    let out = env.run(&["collect"]).await;
    assert!(stdout(&out).contains("1 intro drafted"), "{}", stdout(&out));
    assert_eq!(model.intros.load(std::sync::atomic::Ordering::SeqCst), 1);
    let shown = stdout(&env.run(&["issue", "show", "weekly"]).await);
    assert!(shown.contains("drafted intro (not used"), "{shown}");
    let draft = "This week: one clinic's ransomware story";
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(!text.contains(draft), "not used before it is accepted: {text}");

    // The same cards do not ask for another intro.
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_eq!(model.intros.load(std::sync::atomic::Ordering::SeqCst), 1);

    assert_exit(&env.run(&["issue", "note", "weekly", "--accept-draft"]).await, 0);
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains(draft), "{text}");
    // The editor's own note wins.
    assert_exit(&env.run(&["issue", "note", "weekly", "A note of my own."]).await, 0);
    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("A note of my own.") && !text.contains(draft), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_drafts_cards_after_each_collect_and_counts_them() {
    let feeds = FeedServer::start().await;
    let model = ScriptedModel::start(vec![Answer::card(GENERIC_TLDR, "A point.")]).await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&config(
        &feeds,
        &model.base,
        "\n[web]\nlisten = \"127.0.0.1:0\"\n\n[collect]\nschedule = \"*/2 * * * * *\"\n",
    ));
    let served = crate::daemon::Served::start(&env).await;
    let address = served.address().await;
    for _ in 0..300 {
        if served.all_logs().matches("briefing finished").count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logs = served.all_logs();
    assert!(logs.matches("briefing finished").count() >= 2, "{logs}");
    tidings::install_crypto_provider();
    let metrics = reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    // Three cards and one intro asked for once; every later collect finds them cached.
    assert_eq!(model.count(), 3);
    assert_eq!(model.intros.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(metrics.contains("tidings_briefing_requests_total 4"), "{metrics}");
    assert!(
        metrics.contains("tidings_briefing_tokens_total{direction=\"in\"} 350"),
        "{metrics}"
    );
    let hits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tidings_briefing_cache_hits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(hits >= 3, "{metrics}");
    assert_eq!(served.stop().await.code(), Some(0));
}

#[tokio::test]
async fn takeaways_cite_the_sources_of_a_cluster_by_number() {
    let feeds = FeedServer::start().await;
    let answer = serde_json::json!({
        "tldr": "A ransomware gang leaked 1,400 Northbay Clinic patient records.",
        "what_changed": "The records are now public.",
        "why_it_matters": {"security": "Remote access gateways without a second factor are the way in."},
        "what_to_do_next": "Review your gateways.",
        "takeaways": [
            {"text": "The gang had demanded 40 bitcoin.", "sources": [2]},
            {"text": "The clinic paid 40 bitcoin.", "sources": [1]},
            {"text": "The leak is confirmed by both reports.", "sources": [1, 2]},
        ],
    });
    let model = ScriptedModel::start(vec![Answer::Content(answer.to_string())]).await;
    let env = TestEnv::new(Db::Sqlite);
    let wire = format!(
        "[[sources]]\nname = \"Wire\"\nurl = \"{}\"\n\n[[sources]]",
        feeds.url("feeds/briefing-wire.xml")
    );
    // Harbour weighs more, so its story leads the cluster and is source [1].
    let text = config(&feeds, &model.base, "concurrency = 1")
        .replacen("[[sources]]", &wire, 1)
        .replace("name = \"Harbour\"", "name = \"Harbour\"\nweight = 2.0");
    env.write_config(&text);
    assert_exit(&env.run(&["collect"]).await, 0);
    let bodies = serde_json::to_string(&*model.bodies.lock().expect("lock")).expect("json");
    assert!(
        bodies.contains("[2] Wire — Northbay Clinic patient records leaked"),
        "{bodies}"
    );

    let text = stdout(&env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("The gang had demanded 40 bitcoin. [2]"), "{text}");
    assert!(
        text.contains("The leak is confirmed by both reports. [1] [2]"),
        "{text}"
    );
    // Its figure is only in source [2]: citing [1] leaves it unverified, and out.
    assert!(!text.contains("The clinic paid"), "{text}");
    assert!(text.contains("[2] Wire: https://wire.example.com/northbay"), "{text}");
    let html = stdout(&env.run(&["preview", "weekly", "--format", "html"]).await);
    assert!(
        html.contains("href=\"https://wire.example.com/northbay\" title=\"Wire\""),
        "{html}"
    );
    assert!(html.contains("from 2 cited sources"), "{html}");
}
