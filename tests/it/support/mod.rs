//! Shared helpers: a temp dir with a config file, the real `tidings` binary,
//! local HTTP and SMTP servers, PostgreSQL databases when
//! `TIDINGS_TEST_POSTGRES_URL` is set, and a MIME parser for what arrives.

pub mod dns;
pub mod dovecot;
pub mod http;
pub mod model;
pub mod postfix;
pub mod smtp;

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

pub const SECRET: &str = "test-secret-0123456789abcdef0123456789";

/// The database a test runs against.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite,
    Postgres(String),
}

/// SQLite always; PostgreSQL too when `TIDINGS_TEST_POSTGRES_URL` is set.
pub async fn databases() -> Vec<Db> {
    let mut dbs = vec![Db::Sqlite];
    if let Some(url) = fresh_postgres_database().await {
        dbs.push(Db::Postgres(url));
    }
    dbs
}

/// Creates an empty database on the server named by
/// `TIDINGS_TEST_POSTGRES_URL` and returns its URL.
pub async fn fresh_postgres_database() -> Option<String> {
    let base = std::env::var("TIDINGS_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .unwrap_or_else(|e| panic!("TIDINGS_TEST_POSTGRES_URL is set but unreachable: {e}"));
    let name = format!("tidings_test_{}", tidings::app::random_hex(6).expect("random"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create database");
    let mut url = url::Url::parse(&base).expect("postgres url");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// Drops a database made by [`fresh_postgres_database`]; SQLite files go
/// with their temp dir.
pub async fn finish(db: Db) {
    let Db::Postgres(url) = db else { return };
    let Ok(base) = std::env::var("TIDINGS_TEST_POSTGRES_URL") else {
        return;
    };
    let Some(name) = url.rsplit('/').next().filter(|n| n.starts_with("tidings_test_")) else {
        return;
    };
    use sqlx::Connection;
    if let Ok(mut conn) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await;
    }
}

/// The configuration at `path` as `serve` reads it (with the test secret).
pub fn load_config(path: &Path) -> tidings::Result<tidings::config::Config> {
    let secret = |k: &str| (k == "TIDINGS_SECRET").then(|| SECRET.to_string());
    Ok(tidings::config::Config::load(path, &secret)?)
}

pub struct TestEnv {
    pub dir: TempDir,
    pub db: Db,
    /// Variables every run of the binary gets (see [`TestEnv::set_var`]).
    vars: std::sync::Mutex<Vec<(String, String)>>,
}

impl TestEnv {
    pub fn new(db: Db) -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("tempdir"),
            db,
            vars: std::sync::Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("tidings.toml")
    }

    /// This env's configuration as `serve` reads it (with the test secret).
    pub fn load_config(&self) -> tidings::Result<tidings::config::Config> {
        load_config(&self.config_path())
    }

    /// The library's app over this env, in this process, on `clock`.
    pub async fn open_app(&self, clock: tidings::clock::SharedClock) -> tidings::app::App {
        let config = self.load_config().expect("config");
        tidings::app::App::open_with_clock(config, clock).await.expect("open")
    }

    /// The finished messages in the mailbox folder, oldest name first: a
    /// message being written is a hidden `.tmp` file until it is renamed.
    pub fn outbox(&self) -> Vec<Vec<u8>> {
        let Ok(dir) = std::fs::read_dir(self.path("outbox")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
            .collect();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// Writes `tidings.toml`: `[site]` + `[database]` + the given body.
    pub fn write_config(&self, body: &str) {
        self.write_config_with_site("", body);
    }

    /// As [`TestEnv::write_config`], with more keys in `[site]`.
    pub fn write_config_with_site(&self, site_extra: &str, body: &str) {
        let templates = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let database = match &self.db {
            Db::Sqlite => "sqlite://tidings.db".to_string(),
            Db::Postgres(url) => url.clone(),
        };
        let text = format!(
            r#"[site]
title = "Weekly AI Recap"
base_url = "https://news.example.com"
from = "Weekly AI Recap <recap@example.com>"
templates = "{}"
{site_extra}

[database]
url = "{database}"

{body}"#,
            templates.display()
        );
        std::fs::write(self.config_path(), text).expect("write config");
    }

    /// Runs the real binary with this env's config.
    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_with_env(args, &[]).await
    }

    pub async fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.run_full(args, env, &[]).await
    }

    /// Runs with `remove` taken out of the environment.
    pub async fn run_without(&self, args: &[&str], remove: &[&str]) -> Output {
        self.run_full(args, &[], remove).await
    }

    /// Sets a variable for every later run of the binary (a secret the
    /// configuration names, say).
    pub fn set_var(&self, name: &str, value: &str) {
        self.vars
            .lock()
            .expect("lock")
            .push((name.to_string(), value.to_string()));
    }

    /// The binary with this env's config and secret, and no stray overrides.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("TIDINGS_CONFIG", self.config_path())
            .env("TIDINGS_SECRET", SECRET)
            .env_remove("DATABASE_URL")
            .env_remove("TIDINGS_SMTP_URL")
            .env_remove("RUST_LOG")
            .envs(
                self.vars
                    .lock()
                    .expect("lock")
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .kill_on_drop(true);
        cmd
    }

    async fn run_full(&self, args: &[&str], env: &[(&str, &str)], remove: &[&str]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        for k in remove {
            cmd.env_remove(k);
        }
        cmd.output().await.expect("run tidings")
    }
}

impl TestEnv {
    /// Runs the binary and samples its peak resident memory (VmHWM, KiB)
    /// from /proc while it runs.
    pub async fn run_measured(&self, args: &[&str]) -> (Output, u64) {
        let mut cmd = self.command(args);
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let child = cmd.spawn().expect("spawn tidings");
        let pid = child.id().expect("pid");
        let sampler = tokio::spawn(async move {
            let mut peak = 0u64;
            loop {
                let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
                    return peak;
                };
                let hwm = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                match hwm {
                    Some(kib) => peak = peak.max(kib),
                    None => return peak, // a zombie has no memory lines
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        });
        let output = child.wait_with_output().await.expect("wait");
        let peak = sampler.await.unwrap_or(0);
        (output, peak)
    }
}

/// The config tail most delivery and daemon tests share: the Alpha fixture
/// feed, a `security` audience matching "ransomware", and a `weekly`
/// edition on `schedule` (more edition keys in `edition_extra`).
pub fn alpha_weekly(feeds: &http::FeedServer, schedule: &str, edition_extra: &str) -> String {
    format!(
        r#"
[[sources]]
name = "Alpha"
url = "{feed}"

[tags.security]
keywords = ["ransomware"]

[audiences.security]
title = "Security"
weights = {{ security = 1.0 }}

[[editions]]
name = "weekly"
title = "Weekly"
audience = "security"
schedule = "{schedule}"
{edition_extra}
"#,
        feed = feeds.url("feeds/alpha.xml"),
    )
}

/// Imports subscribers of `weekly` through the CLI: (address, name) pairs.
pub async fn import_subscribers(env: &TestEnv, subscribers: &[(String, String)]) {
    let mut csv = String::from("email,name,editions\n");
    for (email, name) in subscribers {
        csv.push_str(&format!("{email},{name},weekly\n"));
    }
    std::fs::write(env.path("subs.csv"), csv).expect("csv");
    assert_exit(&env.run(&["subscribers", "import", "subs.csv"]).await, 0);
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with the command's output when it did not exit with `code`.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout\n{}\n--- stderr\n{}",
        stdout(o),
        stderr(o)
    );
}
