//! The command line's contracts: exit codes, error messages that name the
//! culprit, subscriber management, preview and dry runs.

use crate::support::http::FeedServer;
use crate::support::{Db, TestEnv, assert_exit, stderr, stdout};

const MINIMAL: &str = r#"
[tags.security]
keywords = ["breach"]

[audiences.security]
title = "Security"
weights = { security = 1.0 }

[[editions]]
name = "weekly"
title = "Weekly AI Recap"
audience = "security"
schedule = "0 0 8 * * Mon"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_exits_2_naming_file_and_key() {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(
        &MINIMAL
            .replace("0 0 8 * * Mon", "0 8 * * Mon")
            .replace("title = \"Security\"", "title = \"Security\"\nwieghts = {}"),
    );
    let out = env.run(&["config", "check"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("tidings.toml"), "{err}");
    assert!(err.contains("wieghts"), "{err}");

    env.write_config(&MINIMAL.replace("0 0 8 * * Mon", "0 8 * * Mon"));
    let out = env.run(&["collect"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("editions[0].schedule") && err.contains("6"), "{err}");

    env.write_config(&MINIMAL.replace("audience = \"security\"", "audience = \"nobody\""));
    let err = stderr(&env.run(&["config", "check"]).await);
    assert!(err.contains("editions[0].audience") && err.contains("nobody"), "{err}");

    let out = env
        .run_with_env(&["--config", "/nonexistent/tidings.toml", "config", "check"], &[])
        .await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("/nonexistent/tidings.toml"));

    // Usage errors from clap are exit code 2 too.
    assert_exit(&env.run(&["send"]).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_secret_is_refused_before_anything_is_sent() {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(MINIMAL);
    let out = env
        .run_with_env(&["send", "weekly"], &[("TIDINGS_SECRET", "too-short-1234")])
        .await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("TIDINGS_SECRET") && err.contains("32"), "{err}");
    assert!(!err.contains("too-short-1234"), "the secret is never echoed: {err}");
    assert!(!env.path("outbox").exists(), "nothing was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_check_prints_what_it_found_without_secrets() {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        "{MINIMAL}\n[smtp]\nurl = \"smtps://u:hunter22secret@mail.example.com\"\n"
    ));
    let out = env.run(&["config", "check"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("weekly") && text.contains("smtps://mail.example.com:465"),
        "{text}"
    );
    assert!(!text.contains("hunter22secret"), "{text}");

    // Paths are shown as an operator reads them, `..` resolved.
    let config = std::fs::read_to_string(env.config_path()).expect("config");
    let config = config
        .replace("sqlite://tidings.db", "sqlite://data/../tidings.db")
        .replace("/templates\"", "/templates/../templates\"");
    std::fs::write(env.config_path(), config).expect("config");
    let text = stdout(&env.run(&["config", "check"]).await);
    let database = env.path("tidings.db").display().to_string();
    assert!(text.contains(&format!("database:  sqlite://{database}")), "{text}");
    assert!(!text.contains(".."), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_add_list_remove_and_import() {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(MINIMAL);
    let out = env.run(&["subscribers", "add", "not-an-address"]).await;
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("not a valid email address"));
    assert_exit(
        &env.run(&["subscribers", "add", "x@example.com", "--edition", "nope"])
            .await,
        2,
    );

    assert_exit(
        &env.run(&["subscribers", "add", "Ann@Example.COM", "--name", "Ann"])
            .await,
        0,
    );
    std::fs::write(
        env.path("subs.csv"),
        "email,name,editions\nbea@example.com,\"Bea, B.\",weekly\nbroken-address,Nope,weekly\ncy@example.com,,\ndee@example.com,Dee,unknown-edition\n",
    )
    .expect("write csv");
    let out = env.run(&["subscribers", "import", "subs.csv"]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("line 3") && text.contains("broken-address"), "{text}");
    assert!(text.contains("line 5") && text.contains("unknown-edition"), "{text}");
    assert!(text.contains("2 added"), "{text}");
    // The same lines with CRLF line ends (spreadsheets, Python's csv), and
    // a name too long for a greeting.
    let crlf = format!(
        "email,name,editions\r\neve@example.com,Eve,weekly\r\nbroken-address,Nope,weekly\r\n\r\nfay@example.com,{},weekly\r\n",
        "F".repeat(101)
    );
    std::fs::write(env.path("subs-crlf.csv"), crlf).expect("write csv");
    let out = env.run(&["subscribers", "import", "subs-crlf.csv"]).await;
    assert_exit(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("line 3") && text.contains("broken-address"), "{text}");
    assert!(text.contains("line 5") && text.contains("longer than 100"), "{text}");
    assert_exit(&env.run(&["subscribers", "remove", "eve@example.com"]).await, 0);

    let list = stdout(&env.run(&["subscribers", "list"]).await);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert_eq!(lines[0], "ann@example.com\tAnn\tactive\tweekly");
    assert_eq!(lines[1], "bea@example.com\tBea, B.\tactive\tweekly");
    assert_eq!(lines[2], "cy@example.com\t-\tactive\tweekly");

    assert_exit(&env.run(&["subscribers", "remove", "bea@example.com"]).await, 0);
    assert_exit(&env.run(&["subscribers", "remove", "bea@example.com"]).await, 1);
    let list = stdout(&env.run(&["subscribers", "list"]).await);
    assert!(!list.contains("bea@"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_and_dry_run_record_nothing() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        "[[sources]]\nname = \"Beta\"\nurl = \"{}\"\n{MINIMAL}",
        feeds.url("feeds/beta.atom")
    ));
    assert_exit(
        &env.run(&["subscribers", "add", "ann@example.com", "--name", "Ann"])
            .await,
        0,
    );
    assert_exit(&env.run(&["collect"]).await, 0);

    for (format, needle) in [
        ("html", "<html"),
        ("text", "Kubernetes breach disclosed"),
        ("eml", "List-Unsubscribe-Post"),
    ] {
        let file = format!("preview.{format}");
        let out = env
            .run(&["preview", "weekly", "--format", format, "--out", &file])
            .await;
        assert_exit(&out, 0);
        let body = std::fs::read_to_string(env.path(&file)).expect("preview written");
        assert!(body.contains(needle), "{format}: {body}");
        assert!(body.contains("https://news.example.com/unsubscribe/"), "{format}");
    }
    let html = std::fs::read_to_string(env.path("preview.html")).expect("html");
    assert!(html.contains("Hello Ann"), "previewed as the subscriber");

    let out = env.run(&["send", "weekly", "--dry-run"]).await;
    assert_exit(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains("recipients: 1") && text.contains("stories:    1"),
        "{text}"
    );
    assert!(!env.path("outbox").exists(), "dry run sent nothing");

    // Nothing was recorded: the real send composes the issue now.
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("composed"), "{}", stdout(&out));
    assert_eq!(std::fs::read_dir(env.path("outbox")).expect("outbox").count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edition_with_no_matching_story_sends_nothing() {
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(MINIMAL);
    assert_exit(&env.run(&["subscribers", "add", "ann@example.com"]).await, 0);
    let out = env.run(&["send", "weekly"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("not sent"), "{}", stdout(&out));
    assert!(!env.path("outbox").exists());
    assert_exit(&env.run(&["send", "nosuch"]).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_error_names_the_file_and_line() {
    let env = TestEnv::new(Db::Sqlite);
    let templates = env.path("templates");
    std::fs::create_dir(&templates).expect("mkdir");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    std::fs::copy(root.join("weekly.txt.j2"), templates.join("weekly.txt.j2")).expect("copy");
    std::fs::write(
        templates.join("weekly.html.j2"),
        "<html>\n<body>\n{% for story in stories %}\n{{ story.title }\n</body></html>\n",
    )
    .expect("write");
    env.write_config(MINIMAL);
    let config = std::fs::read_to_string(env.config_path()).expect("read");
    let config = config.replace(root.to_str().expect("utf-8"), templates.to_str().expect("utf-8"));
    std::fs::write(env.config_path(), config).expect("write");
    let out = env.run(&["config", "check"]).await;
    assert_exit(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains("site.templates") && err.contains("weekly.html.j2 line 4"),
        "{err}"
    );

    // A runtime error (an unknown field) names file and line too.
    std::fs::write(
        templates.join("weekly.html.j2"),
        "<html>\n{{ unsubscribe_url }}\n{{ story.nosuch.field }}\n</html>\n",
    )
    .expect("write");
    assert_exit(&env.run(&["subscribers", "add", "ann@example.com"]).await, 0);
    let out = env.run(&["preview", "weekly"]).await;
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("weekly.html.j2 line 3"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tidings_secret_one_is_generated_once_and_kept_in_the_database() {
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&format!(
        "[[sources]]\nname = \"Beta\"\nurl = \"{}\"\n{MINIMAL}",
        feeds.url("feeds/beta.atom")
    ));
    assert_exit(&env.run(&["subscribers", "add", "ann@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);
    let out = env.run_without(&["send", "weekly"], &["TIDINGS_SECRET"]).await;
    assert_exit(&out, 0);
    assert!(stderr(&out).contains("generated a random secret"), "{}", stderr(&out));
    let out = env.run_without(&["send", "weekly"], &["TIDINGS_SECRET"]).await;
    assert!(!stderr(&out).contains("generated"), "said once: {}", stderr(&out));

    let store = tidings::store::Store::open(&tidings::config::DatabaseUrl::Sqlite(env.path("tidings.db")))
        .await
        .expect("open");
    let secret = store
        .setting("link_secret")
        .await
        .expect("query")
        .expect("secret stored");
    assert_eq!(secret.len(), 64, "256 bits, hex");
    let eml = std::fs::read_dir(env.path("outbox"))
        .expect("outbox")
        .flatten()
        .next()
        .expect("one message");
    let eml = std::fs::read_to_string(eml.path()).expect("read");
    let at = eml.find("/unsubscribe/").expect("link") + "/unsubscribe/".len();
    let token: String = eml[at..].chars().take_while(|c| *c != '>').collect();
    let signer = tidings::token::Signer::new(secret.as_bytes());
    assert!(
        signer.verify(tidings::token::Purpose::Unsubscribe, &token, 0).is_ok(),
        "{token}"
    );
}

/// build.rs links the binary with packed relocations where the glibc it
/// runs on reads them (2.36 and later): a 1.5 MiB table less read and kept
/// resident by every process. Checked on the binary the tests run, with
/// binutils' readelf.
#[test]
fn the_binary_packs_its_relocations_where_glibc_reads_them() {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    let glibc = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .expect("getconf runs");
    let version = String::from_utf8_lossy(&glibc.stdout);
    let mut parts = version.trim().trim_start_matches("glibc ").split('.');
    let (major, minor): (u32, u32) = (
        parts.next().and_then(|p| p.parse().ok()).expect("glibc major version"),
        parts.next().and_then(|p| p.parse().ok()).expect("glibc minor version"),
    );
    let dynamic = std::process::Command::new("readelf")
        .args(["--dynamic", env!("CARGO_BIN_EXE_tidings")])
        .output()
        .expect("readelf (binutils) runs");
    let dynamic = String::from_utf8_lossy(&dynamic.stdout);
    let packed = dynamic.contains("(RELR)");
    if std::env::var_os("TIDINGS_PLAIN_LINK").is_some() || (major, minor) < (2, 36) {
        assert!(!packed, "glibc {major}.{minor}: no DT_RELR expected\n{dynamic}");
    } else {
        assert!(packed, "glibc {major}.{minor}: DT_RELR expected\n{dynamic}");
    }
}

/// `tidings inspect FEED | head`: the reader closes the pipe early and
/// tidings ends quietly, without a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_output_pipe_ends_a_command_quietly() {
    use tokio::io::AsyncReadExt;
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    let mut child = env
        .command(&["inspect", &feeds.url("hostile/many")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn inspect");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 64];
    stdout.read_exact(&mut first).await.expect("some output");
    drop(stdout); // as `head` does once it has its lines
    let output = child.wait_with_output().await.expect("wait");
    let err = stderr(&output);
    assert!(!err.contains("panicked") && !err.contains("Broken pipe"), "{err}");
    assert_eq!(output.status.code(), Some(0), "{err}");
}

/// Addresses stored by an earlier version under looser rules (here
/// `root@localhost`, refused as input today) stay readable and mailable:
/// tightening the input rules loses nobody already subscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_stored_under_older_rules_still_list_and_send() {
    use sqlx::Connection;
    let feeds = FeedServer::start().await;
    let env = TestEnv::new(Db::Sqlite);
    env.write_config(&crate::support::alpha_weekly(&feeds, "0 0 8 * * Mon", ""));
    assert_exit(&env.run(&["subscribers", "add", "old@example.com"]).await, 0);
    let url = format!("sqlite://{}", env.path("tidings.db").display());
    let mut db = sqlx::SqliteConnection::connect(&url).await.expect("open sqlite");
    sqlx::query("UPDATE subscribers SET email = 'root@localhost' WHERE email = 'old@example.com'")
        .execute(&mut db)
        .await
        .expect("update");
    db.close().await.expect("close");
    let out = env.run(&["subscribers", "list"]).await;
    assert_exit(&out, 0);
    assert!(stdout(&out).contains("root@localhost"), "{}", stdout(&out));
    assert_exit(&env.run(&["run", "--once"]).await, 0);
    let mails = std::fs::read_dir(env.path("outbox")).expect("outbox").count();
    assert_eq!(mails, 1);
}
