//! The editor's flow in a real browser: Debian's headless Chromium driven
//! through ChromeDriver's W3C WebDriver API (plain JSON over HTTP on
//! loopback). It logs in, opens the preview, excludes a story, approves,
//! and reads the archive page; screenshots go to
//! `target/test-artifacts/browser/`.
//!
//! Needs `TIDINGS_TEST_CHROMEDRIVER` (and `TIDINGS_TEST_CHROMIUM`, the
//! browser binary); `scripts/test` sets both when /usr/bin/chromedriver
//! exists, and `.ci/run` installs the packages and sets
//! `TIDINGS_REQUIRE_BROWSER=1`, which makes a missing driver a failure.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Db, assert_exit};
use crate::web::{EDITOR_TOKEN, Site};

/// The W3C name of an element reference in WebDriver responses.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    http: reqwest::Client,
    session: String,
    driver: String,
    _process: tokio::process::Child,
}

impl Browser {
    async fn start(chromedriver: &str, chromium: &str) -> Browser {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().expect("address").port()
        };
        let process = tokio::process::Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let driver = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().build().expect("client");
        for _ in 0..100 {
            if http.get(format!("{driver}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Headless, and nothing but loopback: every other host name fails
        // to resolve and the browser's own background traffic is off.
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1280,1000",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let created: Value = http
            .post(format!("{driver}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            http,
            session,
            driver,
            _process: process,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.expect("webdriver").json().await.expect("json");
        if answer["value"].get("error").is_some() {
            panic!("webdriver {path}: {answer}");
        }
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found[ELEMENT].as_str().expect("element id").to_string()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The page's source once it contains `text` (a click's navigation
    /// may still be under way when the click returns); panics after 15 s.
    async fn wait_for(&self, text: &str) -> String {
        let mut source = String::new();
        for _ in 0..150 {
            source = self.source().await;
            if source.contains(text) {
                return source;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("\"{text}\" never appeared in:\n{source}");
    }

    /// The URL once it ends with `suffix`; panics after 15 s.
    async fn wait_for_url(&self, suffix: &str) {
        let mut url = String::new();
        for _ in 0..150 {
            url = self.current_url().await;
            if url.ends_with(suffix) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the browser is at {url}, not …{suffix}");
    }

    async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .expect("png");
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/browser");
        std::fs::create_dir_all(&dir).expect("artifacts dir");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("write screenshot");
    }

    async fn quit(&self) {
        let url = format!("{}/session/{}", self.driver, self.session);
        let _ = self.http.delete(url).send().await;
    }
}

#[tokio::test]
async fn an_editor_logs_in_excludes_a_story_approves_and_reads_the_archive() {
    let (Ok(chromedriver), Ok(chromium)) = (
        std::env::var("TIDINGS_TEST_CHROMEDRIVER"),
        std::env::var("TIDINGS_TEST_CHROMIUM"),
    ) else {
        assert!(
            std::env::var_os("TIDINGS_REQUIRE_BROWSER").is_none(),
            "TIDINGS_REQUIRE_BROWSER is set but TIDINGS_TEST_CHROMEDRIVER / TIDINGS_TEST_CHROMIUM are not"
        );
        eprintln!("browser test not run: set TIDINGS_TEST_CHROMEDRIVER and TIDINGS_TEST_CHROMIUM");
        return;
    };
    let site = Site::start_local(Db::Sqlite, "approval = true\ngrace = \"30d\"", Some(EDITOR_TOKEN)).await;
    let env = &site.env;
    assert_exit(&env.run(&["subscribers", "add", "ada@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);

    let browser = Browser::start(&chromedriver, &chromium).await;
    browser.go(&format!("{}/editor/weekly", site.base)).await;
    browser.wait_for_url("/editor/login").await;
    browser.type_into("input[name=token]", EDITOR_TOKEN).await;
    browser.click("button[type=submit]").await;
    browser.wait_for_url("/editor").await;
    browser.wait_for("Sources failing").await;
    browser.screenshot("1-dashboard").await;

    browser.go(&format!("{}/editor/weekly", site.base)).await;
    let preview = browser.wait_for("Ransomware hits port operator").await;
    assert!(preview.contains("Quarterly cloud pricing update"), "{preview}");
    browser.screenshot("2-preview").await;

    // Exclude the cloud story (the second one the alpha feed ranks).
    let excluded = "Quarterly cloud pricing update";
    let row = preview
        .split("<tr>")
        .find(|r| r.contains(excluded))
        .expect("the story's row");
    let id = row
        .split("data-story=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("story id");
    browser.click(&format!("button.exclude[data-story=\"{id}\"]")).await;
    browser.wait_for("Excluded #").await;
    browser.screenshot("3-excluded").await;

    browser.click("#approve").await;
    browser.wait_for("Approved: issue #").await;
    browser.screenshot("4-approved").await;

    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    browser.go(&format!("{}/archive", site.base)).await;
    browser.wait_for("ul class=\"issues\"").await;
    browser.click("ul.issues a").await;
    let issue = browser.wait_for("Ransomware hits port operator").await;
    assert!(!issue.contains(excluded), "the excluded story is in the issue: {issue}");
    browser.screenshot("5-archive-issue").await;
    browser.quit().await;
}
