//! The subscriber and reader pages over real HTTP: the router of `tidings
//! serve` on 127.0.0.1 in this process, the CLI for collecting and sending,
//! mail written to the mailbox folder.

use std::sync::{Arc, RwLock};

use tidings::app::App;
use tidings::config::Config;
use tidings::token::{Purpose, Signer};

use crate::support::http::FeedServer;
use crate::support::{Db, SECRET, TestEnv, alpha_weekly, assert_exit, databases, finish, stdout};

pub(crate) struct Site {
    pub(crate) env: TestEnv,
    pub(crate) base: String,
    client: reqwest::Client,
    /// What the server runs with; swapped like a reload.
    app: Arc<RwLock<Arc<App>>>,
    _feeds: FeedServer,
}

impl Site {
    /// A configured env (the Alpha feed, a `weekly` edition, no SMTP) and
    /// its web pages on a free port.
    async fn start(db: Db) -> Site {
        Site::start_with(db, "", None).await
    }

    /// With more keys for the `weekly` edition and an editor token.
    async fn start_with(db: Db, edition_extra: &str, editor_token: Option<&str>) -> Site {
        let tail = |feeds: &FeedServer| alpha_weekly(feeds, "0 0 8 * * Mon", edition_extra);
        Site::launch(db, tail, editor_token, false).await
    }

    /// As [`Site::start_with`], with `[site] base_url` this server (for a
    /// browser, which follows the pages' absolute links), and the cloud
    /// story of the Alpha feed ranking too.
    pub(crate) async fn start_local(db: Db, edition_extra: &str, editor_token: Option<&str>) -> Site {
        let tail = |feeds: &FeedServer| {
            alpha_weekly(feeds, "0 0 8 * * Mon", edition_extra)
                .replace(
                    "weights = { security = 1.0 }",
                    "weights = { security = 1.0, cloud = 0.5 }",
                )
                .replace(
                    "[audiences.security]",
                    "[tags.cloud]\nkeywords = [\"cloud\"]\n\n[audiences.security]",
                )
        };
        Site::launch(db, tail, editor_token, true).await
    }

    async fn launch(
        db: Db,
        tail: impl FnOnce(&FeedServer) -> String,
        editor_token: Option<&str>,
        local_base: bool,
    ) -> Site {
        tidings::install_crypto_provider();
        let feeds = FeedServer::start().await;
        let env = TestEnv::new(db);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        env.write_config(&tail(&feeds));
        if local_base {
            let text = std::fs::read_to_string(env.config_path()).expect("config");
            let text = text.replace("https://news.example.com", &format!("http://{address}"));
            std::fs::write(env.config_path(), text).expect("config");
        }
        let env_var = |k: &str| match k {
            "TIDINGS_SECRET" => Some(SECRET.to_string()),
            "TIDINGS_EDITOR_TOKEN" => editor_token.map(str::to_string),
            _ => None,
        };
        let config = Config::load(&env.config_path(), &env_var).expect("config");
        let app = Arc::new(App::open(config).await.expect("open"));
        let limits = app.config.web.clone();
        let app = Arc::new(RwLock::new(app));
        let state = tidings::web::WebState::new(Arc::clone(&app), None);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            tidings::web::serve(listener, tidings::web::router(state), limits, stopped).await;
            drop(stop);
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Site {
            env,
            base: format!("http://{address}"),
            client,
            app,
            _feeds: feeds,
        }
    }

    /// Reloads the configuration with another editor token, as `serve`
    /// does on SIGHUP after the environment changed.
    async fn reload_with_editor_token(&self, token: &str) {
        let env_var = |k: &str| match k {
            "TIDINGS_SECRET" => Some(SECRET.to_string()),
            "TIDINGS_EDITOR_TOKEN" => Some(token.to_string()),
            _ => None,
        };
        let config = Config::load(&self.env.config_path(), &env_var).expect("config");
        let app = Arc::new(App::open(config).await.expect("open"));
        *self.app.write().expect("lock") = app;
    }

    /// Waits until the mailbox folder holds `n` messages (sign-ups are
    /// handled after the page answers).
    async fn wait_for_mails(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("expected {n} mails, found {}", self.mails().len());
    }

    /// The To address of every message in the mailbox folder, once the
    /// mail to `last` is there (sign-ups are handled in order, so every
    /// earlier one's turn has passed by then).
    async fn recipients_through(&self, last: &str) -> Vec<String> {
        for _ in 0..200 {
            let mut to: Vec<String> = self
                .env
                .outbox()
                .iter()
                .filter_map(|raw| {
                    let parsed = mail_parser::MessageParser::default().parse(raw)?;
                    Some(parsed.to()?.first()?.address()?.to_string())
                })
                .collect();
            if to.iter().any(|a| a == last) {
                to.sort();
                return to;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("no mail to {last}");
    }

    /// A subscriber's name as `subscribers list` shows it.
    async fn name_of(&self, email: &str) -> String {
        let list = stdout(&self.env.run(&["subscribers", "list"]).await);
        list.lines()
            .find(|l| l.starts_with(email))
            .and_then(|l| l.split('\t').nth(1))
            .unwrap_or("(none)")
            .to_string()
    }

    /// GET a path (or a link from an email, whose `https://news.example.com`
    /// is this server): status and body.
    async fn get(&self, path: &str) -> (u16, String) {
        let response = self.client.get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, unescape(&response.text().await.expect("body")))
    }

    async fn post(&self, path: &str, form: &str) -> (u16, String) {
        let response = self
            .client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        (status, unescape(&response.text().await.expect("body")))
    }

    /// A request with the editor's session cookie (when given): status,
    /// the headers, the body.
    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        cookie: Option<&str>,
        form: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(form) = form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.to_string());
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, headers, unescape(&response.text().await.expect("body")))
    }

    fn url(&self, path_or_link: &str) -> String {
        let path = path_or_link
            .strip_prefix("https://news.example.com")
            .unwrap_or(path_or_link);
        format!("{}{path}", self.base)
    }

    async fn status_of(&self, email: &str) -> String {
        let list = stdout(&self.env.run(&["subscribers", "list"]).await);
        list.lines()
            .find(|l| l.starts_with(email))
            .and_then(|l| l.split('\t').nth(2))
            .unwrap_or("(none)")
            .to_string()
    }

    fn mails(&self) -> Vec<String> {
        self.env
            .outbox()
            .iter()
            .map(|raw| {
                let parsed = mail_parser::MessageParser::default().parse(raw).expect("parse mail");
                parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default()
            })
            .collect()
    }
}

/// The value of the first `marker"…"` attribute in `page` (a form field).
fn value_after(page: &str, marker: &str) -> String {
    page.split(marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no {marker} in page"))
        .to_string()
}

/// The editor's session cookie (`name=value`) and its Set-Cookie header.
async fn log_in(site: &Site) -> (String, String) {
    let login = format!("token={EDITOR_TOKEN}");
    let (status, headers, _) = site
        .request(reqwest::Method::POST, "/editor/login", None, Some(&login))
        .await;
    assert_eq!(status, 303);
    let set_cookie = headers["set-cookie"].to_str().expect("cookie").to_string();
    let cookie = set_cookie.split(';').next().expect("cookie").to_string();
    (cookie, set_cookie)
}

/// minijinja escapes `/` in HTML as `&#x2f;` (browsers read it as `/`).
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
}

/// The first `https://news.example.com/…` link in `text` that contains `part`.
fn link(text: &str, part: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("https://news.example.com/") && w.contains(part))
        .unwrap_or_else(|| panic!("no {part} link in:\n{text}"))
        .to_string()
}

#[tokio::test]
async fn unsubscribe_preferences_and_archive_links_from_an_email_work() {
    for db in databases().await {
        emailed_links(db.clone()).await;
        finish(db).await;
    }
}

async fn emailed_links(db: Db) {
    let site = Site::start(db).await;
    let env = &site.env;
    assert_exit(
        &env.run(&["subscribers", "add", "ada@example.com", "--name", "Ada"])
            .await,
        0,
    );
    assert_exit(&env.run(&["subscribers", "add", "bob@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    let mails = site.mails();
    assert_eq!(mails.len(), 2);
    let ada_mail = mails
        .iter()
        .find(|m| m.contains("ada@example.com"))
        .expect("Ada's mail");
    let unsubscribe = link(ada_mail, "/unsubscribe/");
    let preferences = link(ada_mail, "/preferences/");
    let archive = link(ada_mail, "/archive/weekly/");

    // A GET shows one button and changes nothing (link scanners follow GETs).
    let (status, page) = site.get(&unsubscribe).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("<form method=\"post\"") && page.contains("ada@example.com"),
        "{page}"
    );
    assert_eq!(site.status_of("ada@example.com").await, "active");

    // Forged and misused tokens are refused, and change nothing.
    let token = unsubscribe.rsplit('/').next().expect("token").to_string();
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let bob_id = if parts[0] == "1" { "2" } else { "1" };
    let other_subscriber = format!("{bob_id}.{}.{}", parts[1], parts[2]);
    let last = parts[2].pop().expect("mac");
    parts[2].push(if last == 'A' { 'B' } else { 'A' });
    let altered_mac = parts.join(".");
    let preferences_token = preferences.rsplit('/').next().expect("token");
    for forged in [
        other_subscriber.as_str(),
        altered_mac.as_str(),
        preferences_token,
        "garbage",
    ] {
        let path = format!("/unsubscribe/{forged}");
        assert_eq!(site.get(&path).await.0, 400, "GET {forged}");
        assert_eq!(
            site.post(&path, "List-Unsubscribe=One-Click").await.0,
            400,
            "POST {forged}"
        );
    }
    assert_eq!(site.status_of("ada@example.com").await, "active");
    assert_eq!(site.status_of("bob@example.com").await, "active");

    // RFC 8058 one-click: a POST with List-Unsubscribe=One-Click, no cookie.
    let (status, page) = site.post(&unsubscribe, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are unsubscribed"), "{page}");
    assert_eq!(site.status_of("ada@example.com").await, "unsubscribed");
    assert_eq!(site.status_of("bob@example.com").await, "active");
    // Again: still fine, still unsubscribed.
    assert_eq!(site.post(&unsubscribe, "List-Unsubscribe=One-Click").await.0, 200);

    // Preferences from the same email: name, editions, pause.
    let (status, page) = site.get(&preferences).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("name=\"editions\" value=\"weekly\" checked"), "{page}");
    let (status, page) = site.post(&preferences, "name=Ada+L.&editions=weekly&paused=yes").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Saved.") && page.contains("value=\"Ada L.\""), "{page}");
    assert_eq!(site.status_of("ada@example.com").await, "paused");
    site.post(&preferences, "name=Ada&editions=weekly").await;
    assert_eq!(site.status_of("ada@example.com").await, "active");
    site.post(&preferences, "name=Ada").await;
    assert_eq!(
        site.status_of("ada@example.com").await,
        "unsubscribed",
        "no edition left means unsubscribed"
    );

    // The email's "read on the web" link is the issue's archive page.
    let (status, page) = site.get(&archive).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ransomware hits port operator"), "{page}");
    assert!(page.contains("/subscribe") && !page.contains("/unsubscribe/"), "{page}");
    assert!(!page.contains("TIDINGSx"), "a placeholder leaked: {page}");
    let (status, index) = site.get("/archive").await;
    assert_eq!(status, 200);
    assert!(index.contains(archive.as_str()), "{index}");
    let (status, feed) = site.get("/archive/feed.atom").await;
    assert_eq!(status, 200);
    assert!(feed.contains("<feed xmlns=\"http://www.w3.org/2005/Atom\">"), "{feed}");
    assert!(feed.contains(&format!("<link href=\"{archive}\"/>")), "{feed}");
    assert_eq!(site.get("/archive/weekly/999999").await.0, 404);
    assert_eq!(site.get("/archive/other/1").await.0, 404);
}

#[tokio::test]
async fn subscribing_takes_a_confirmed_address_and_says_the_same_to_everyone() {
    for db in databases().await {
        double_opt_in(db.clone()).await;
        finish(db).await;
    }
}

async fn double_opt_in(db: Db) {
    let site = Site::start(db).await;
    let env = &site.env;
    assert_exit(&env.run(&["subscribers", "add", "known@example.com"]).await, 0);

    let (status, form) = site.get("/subscribe").await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"editions\" value=\"weekly\" checked"), "{form}");

    let (status, new_page) = site
        .post("/subscribe", "email=New%40Example.com&name=Nina&editions=weekly")
        .await;
    assert_eq!(status, 200, "{new_page}");
    assert!(new_page.contains("Check your inbox"), "{new_page}");
    let mails = site.wait_for_mails(1).await;
    assert_eq!(site.status_of("new@example.com").await, "pending");
    // A known address gets the same page (its address aside), and no mail.
    let (status, known_page) = site.post("/subscribe", "email=known%40example.com").await;
    assert_eq!(status, 200);
    assert_eq!(
        known_page.replace("known@example.com", "X"),
        new_page.replace("new@example.com", "X")
    );
    // Sign-ups are handled in order: once a later one's mail is out, the
    // known address's turn has passed.
    site.post("/subscribe", "email=sentinel%40example.org").await;
    assert_eq!(
        site.recipients_through("sentinel@example.org").await,
        ["new@example.com", "sentinel@example.org"],
        "one confirmation, to the new address only (and the sentinel)"
    );
    let confirm = link(&mails[0], "/confirm/");
    // The confirmation comes from the `confirm_email.*` templates.
    assert!(mails[0].contains("open this link within 48 hours"), "{}", mails[0]);

    // Nothing is sent to an unconfirmed address.
    assert_exit(&env.run(&["collect"]).await, 0);
    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    let issue_mails: Vec<String> = site.mails().into_iter().filter(|m| m.contains("Unsubscribe")).collect();
    assert_eq!(issue_mails.len(), 1);
    assert!(issue_mails[0].contains("known@example.com"));

    // An altered or expired link does not work.
    let mut altered = confirm.clone();
    altered.pop();
    altered.push('x');
    assert_eq!(site.get(&altered).await.0, 400);
    let signer = Signer::new(SECRET.as_bytes());
    let id: i64 = confirm
        .rsplit('/')
        .next()
        .and_then(|t| t.split('.').next())
        .and_then(|i| i.parse().ok())
        .expect("id");
    let expired = signer.sign(Purpose::Signup, id, Some(chrono::Utc::now().timestamp() - 60));
    let (status, page) = site.get(&format!("/confirm/{expired}")).await;
    assert_eq!(status, 400);
    assert!(page.contains("expired"), "{page}");
    // Following the link (as a mail scanner does, GET or HEAD) confirms nothing.
    let (status, page) = site.get(&confirm).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Yes, subscribe me") && page.contains("new@example.com"),
        "{page}"
    );
    let head = site.client.head(site.url(&confirm)).send().await.expect("HEAD");
    assert_eq!(head.status().as_u16(), 200);
    assert_eq!(site.status_of("new@example.com").await, "pending");
    // The button confirms, with the name given at sign-up.
    let (status, page) = site.post(&confirm, "").await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You are subscribed"), "{page}");
    assert_eq!(site.status_of("new@example.com").await, "active");
    assert_eq!(site.name_of("new@example.com").await, "Nina");
    // Once: after unsubscribing, the used link does not subscribe again.
    let subscriber: i64 = id_of(&site, "new@example.com").await;
    let unsubscribe = signer.sign(Purpose::Unsubscribe, subscriber, None);
    assert_eq!(site.post(&format!("/unsubscribe/{unsubscribe}"), "").await.0, 200);
    let (status, page) = site.post(&confirm, "").await;
    assert_eq!(status, 200);
    assert!(page.contains("This link was used"), "{page}");
    assert_eq!(site.status_of("new@example.com").await, "unsubscribed");

    // Bad input gets the form again with the problem named: addresses that
    // cannot be mailed on the internet, names too long or with bidi controls.
    for bad in [
        "email=not-an-address",
        "email=x%40%5B127.0.0.1%5D",
        "email=%22a%5C%22b%22%40example.com",
        "email=root%40localhost",
        "email=ok%40example.com&name=%E2%80%AEnimda",
    ] {
        let (status, page) = site.post("/subscribe", bad).await;
        assert_eq!(status, 400, "{bad}: {page}");
        assert!(page.contains("cannot be used"), "{page}");
    }
    let long_name = format!("email=ok%40example.com&name={}", "a".repeat(5000));
    assert_eq!(site.post("/subscribe", &long_name).await.0, 400);

    // Five sign-ups a minute from one client; the sixth is refused (bad
    // input does not count).
    for n in 0..2 {
        let (status, _) = site.post("/subscribe", &format!("email=more{n}%40example.com")).await;
        assert_eq!(status, 200);
    }
    let (status, _) = site.post("/subscribe", "email=more%40example.com").await;
    assert_eq!(status, 429);

    // At most 3 confirmations an hour to one mailbox, `+tags` folded; the
    // page stays the same.
    let other = Site::start(Db::Sqlite).await;
    let mut pages = Vec::new();
    for i in 0..4 {
        let (status, page) = other
            .post("/subscribe", &format!("email=bomb%2B{i}%40example.com"))
            .await;
        pages.push((status, page.replace(&format!("bomb+{i}@"), "X@")));
    }
    assert!(pages.iter().all(|p| p == &pages[0]), "{pages:#?}");
    other.post("/subscribe", "email=sentinel%40example.org").await;
    let to = other.recipients_through("sentinel@example.org").await;
    assert_eq!(
        to.len(),
        4,
        "the fourth sign-up sends nothing (three, and the sentinel's): {to:?}"
    );
}

/// The subscriber id of an address (from the store).
async fn id_of(site: &Site, email: &str) -> i64 {
    let app = site.app.read().expect("lock").clone();
    let email = tidings::domain::EmailAddress::parse(email).expect("address");
    app.store
        .subscriber_by_email(&email)
        .await
        .expect("store")
        .expect("known")
        .id
}

#[tokio::test]
async fn a_strangers_sign_up_cannot_name_a_reader() {
    let site = Site::start(Db::Sqlite).await;
    site.post(
        "/subscribe",
        "email=vic%40example.com&name=Account+suspended+-+call+%2B1+555+0100",
    )
    .await;
    let mails = site.wait_for_mails(1).await;
    let strangers = link(&mails[0], "/confirm/");
    site.post("/subscribe", "email=vic%40example.com&name=Vic").await;
    let mails = site.wait_for_mails(2).await;
    let own = link(&mails[1], "/confirm/");
    assert_eq!(site.status_of("vic@example.com").await, "pending");
    assert_eq!(
        site.name_of("vic@example.com").await,
        "-",
        "no name before a confirmation"
    );
    let (_, page) = site.post(&own, "").await;
    assert!(page.contains("You are subscribed"), "{page}");
    let (_, page) = site.post(&strangers, "").await;
    assert!(page.contains("This link was used"), "{page}");
    assert_eq!(site.name_of("vic@example.com").await, "Vic");
}

#[tokio::test]
async fn sign_up_limits_key_on_the_client_a_trusted_proxy_names() {
    // Behind a trusted proxy, each forwarded client has its own bucket.
    let proxied = |feeds: &FeedServer| {
        format!(
            "[web]\ntrusted_proxies = [\"127.0.0.1\"]\n{}",
            alpha_weekly(feeds, "0 0 8 * * Mon", "")
        )
    };
    let site = Site::launch(Db::Sqlite, proxied, None, false).await;
    let client_post = |site: &Site, client: String, n: usize| {
        let request = site
            .client
            .post(site.url("/subscribe"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", client)
            .body(format!("email=reader{n}%40example.com"));
        async move { request.send().await.expect("POST").status().as_u16() }
    };
    for n in 0..6 {
        assert_eq!(client_post(&site, format!("198.51.100.{n}"), n).await, 200);
    }
    let mut statuses = Vec::new();
    for n in 0..6 {
        // One IPv6 client rotating addresses within its /64.
        statuses.push(client_post(&site, format!("2001:db8:1:2::{n:x}"), 10 + n).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    // Without trusting the proxy, the header is ignored: one client.
    let site = Site::start(Db::Sqlite).await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        statuses.push(client_post(&site, format!("198.51.100.{n}"), n).await);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let site = Site::start(Db::Sqlite).await;
    for path in ["/subscribe", "/archive", "/healthz", "/editor", "/confirm/1.2.3"] {
        let response = site.client.get(site.url(path)).send().await.expect("GET");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("csp");
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
    }
}

#[tokio::test]
async fn editors_log_in_preview_curate_approve_and_send_a_test() {
    for db in databases().await {
        editor(db.clone()).await;
        finish(db).await;
    }
}

pub(crate) const EDITOR_TOKEN: &str = "editor-token-0123456789";

async fn editor(db: Db) {
    use reqwest::Method;
    // Off without a token.
    let off = Site::start(Db::Sqlite).await;
    assert_eq!(off.get("/editor").await.0, 404);

    let site = Site::start_with(db, "approval = true\ngrace = \"30d\"", Some(EDITOR_TOKEN)).await;
    let env = &site.env;
    assert_exit(&env.run(&["subscribers", "add", "ada@example.com"]).await, 0);
    assert_exit(&env.run(&["collect"]).await, 0);

    // Every editor page needs the login.
    let (status, headers, _) = site.request(Method::GET, "/editor", None, None).await;
    assert_eq!(status, 303);
    assert!(
        headers["location"]
            .to_str()
            .unwrap_or_default()
            .ends_with("/editor/login")
    );
    let forged = Some("tidings_editor=0.9999999999.forged");
    let (status, _, _) = site.request(Method::GET, "/editor/weekly", forged, None).await;
    assert_eq!(status, 303, "a forged session is no session");
    let (status, _, page) = site
        .request(Method::POST, "/editor/login", None, Some("token=wrong"))
        .await;
    assert_eq!(status, 401, "{page}");
    let (cookie, set_cookie) = log_in(&site).await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/editor"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let session = Some(cookie.as_str());

    // The dashboard and the edition's page.
    let (status, _, dashboard) = site.request(Method::GET, "/editor", session, None).await;
    assert_eq!(status, 200, "{dashboard}");
    assert!(
        dashboard.contains("Weekly") && dashboard.contains("(needs approval)"),
        "{dashboard}"
    );
    let (status, _, page) = site.request(Method::GET, "/editor/weekly", session, None).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Subject: <strong id=\"subject\">Weekly"), "{page}");
    assert!(
        page.contains("List-Unsubscribe and List-Unsubscribe-Post headers"),
        "{page}"
    );
    assert!(page.contains("DKIM is not configured"), "{page}");
    assert!(page.contains("Ransomware hits port operator"), "{page}");
    assert_eq!(
        page.matches("<iframe").count(),
        page.matches("sandbox=\"\" srcdoc=").count(),
        "previews are sandboxed"
    );
    let csrf = value_after(&page, "name=\"csrf\" value=\"");
    let id = value_after(&page, "name=\"story\" value=\"");

    // A form without the session's CSRF token does nothing.
    for form in [format!("story={id}"), format!("story={id}&csrf=0.1.forged")] {
        let (status, _, _) = site
            .request(Method::POST, "/editor/weekly/exclude", session, Some(&form))
            .await;
        assert_eq!(status, 403);
    }
    let shown = stdout(&env.run(&["issue", "show", "weekly"]).await);
    assert!(!shown.contains("excluded"), "{shown}");

    // Curate: the same operations as `tidings issue …`.
    let form = format!("csrf={csrf}&story={id}");
    let (status, _, page) = site
        .request(Method::POST, "/editor/weekly/exclude", session, Some(&form))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Excluded #"), "{page}");
    let shown = stdout(&env.run(&["issue", "show", "weekly"]).await);
    assert!(shown.contains(&format!("excluded: #{id}")), "{shown}");
    site.request(Method::POST, "/editor/weekly/unpick", session, Some(&form))
        .await;
    let form = format!("csrf={csrf}&note=Hello+readers");
    let (_, _, page) = site
        .request(Method::POST, "/editor/weekly/note", session, Some(&form))
        .await;
    assert!(
        page.contains("Intro note saved.") && page.contains("Hello readers"),
        "{page}"
    );

    // A test goes to one address and leaves the ledger alone.
    let form = format!("csrf={csrf}&to=editor%40example.com");
    let (_, _, page) = site
        .request(Method::POST, "/editor/weekly/test", session, Some(&form))
        .await;
    assert!(page.contains("Test sent to editor@example.com"), "{page}");
    let mails = site.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("Hello readers"), "{}", mails[0]);
    let deliveries = stdout(&env.run(&["deliveries"]).await);
    assert!(deliveries.contains("no issue has been composed yet"), "{deliveries}");

    // Approve: the issue is composed, and the next send delivers it.
    let form = format!("csrf={csrf}");
    let (_, _, page) = site
        .request(Method::POST, "/editor/weekly/approve", session, Some(&form))
        .await;
    assert!(page.contains("Approved: issue #"), "{page}");
    assert_exit(&env.run(&["send", "weekly"]).await, 0);
    let mails = site.mails();
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .any(|m| m.contains("ada@example.com") && m.contains("Hello readers"))
    );

    // Sign-ups do not share the login's bucket: after six sign-ups from
    // this client, the editor still logs in.
    for n in 0..6 {
        site.post("/subscribe", &format!("email=crowd{n}%40example.com")).await;
    }
    let (second, _) = log_in(&site).await;
    // Logout needs the session's CSRF token, and ends that session for good.
    let (status, _, _) = site
        .request(Method::POST, "/editor/logout", Some(&second), Some(""))
        .await;
    assert_eq!(status, 403);
    let (_, _, dashboard) = site.request(Method::GET, "/editor", Some(&second), None).await;
    let second_csrf = value_after(&dashboard, "name=\"csrf\" value=\"");
    let (status, _, _) = site
        .request(
            Method::POST,
            "/editor/logout",
            Some(&second),
            Some(&format!("csrf={second_csrf}")),
        )
        .await;
    assert_eq!(status, 303);
    let (status, _, _) = site.request(Method::GET, "/editor", Some(&second), None).await;
    assert_eq!(status, 303, "a logged-out cookie is no session");
    let (status, _, _) = site.request(Method::GET, "/editor", session, None).await;
    assert_eq!(status, 200, "other sessions live on");
    // A new editor token ends every session made with the old one.
    site.reload_with_editor_token("another-editor-token-9876543210").await;
    let (status, _, _) = site.request(Method::GET, "/editor", session, None).await;
    assert_eq!(status, 303, "a session of the old token is no session");
}

#[tokio::test]
async fn editors_check_the_issues_links_on_demand() {
    use reqwest::Method;
    // A feed whose links point back at the feed server: nothing leaves 127.0.0.1.
    let tail = |feeds: &FeedServer| {
        alpha_weekly(feeds, "0 0 8 * * Mon", "").replace("feeds/alpha.xml", "feeds/local-links.xml")
    };
    let site = Site::launch(Db::Sqlite, tail, Some(EDITOR_TOKEN), false).await;
    assert_exit(&site.env.run(&["collect"]).await, 0);
    let (cookie, _) = log_in(&site).await;
    let (_, _, page) = site.request(Method::GET, "/editor/weekly", Some(&cookie), None).await;
    assert!(!page.contains("id=\"links\""), "links are checked on demand only");
    let csrf = value_after(&page, "name=\"csrf\" value=\"");
    let form = format!("csrf={csrf}");
    let (status, _, page) = site
        .request(Method::POST, "/editor/weekly/links", Some(&cookie), Some(&form))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Links checked: 1 failing."), "{page}");
    assert!(page.contains("/feeds/alpha.xml</a>: 200 OK"), "{page}");
    assert!(page.contains("/feeds/gone-page</a>: 404 Not Found"), "{page}");
}

#[tokio::test]
async fn the_link_check_never_reaches_internal_addresses_from_outside() {
    use reqwest::Method;
    // The source is configured as localhost: links there are trusted, every
    // other spelling of this machine is not.
    let tail = |feeds: &FeedServer| {
        let source = feeds.url("feeds/internal-links.xml").replace("127.0.0.1", "localhost");
        alpha_weekly(feeds, "0 0 8 * * Mon", "max_per_source = 10").replace(&feeds.url("feeds/alpha.xml"), &source)
    };
    let site = Site::launch(Db::Sqlite, tail, Some(EDITOR_TOKEN), false).await;
    assert_exit(&site.env.run(&["collect"]).await, 0);
    let (cookie, _) = log_in(&site).await;
    let (_, _, page) = site.request(Method::GET, "/editor/weekly", Some(&cookie), None).await;
    let form = format!("csrf={}", value_after(&page, "name=\"csrf\" value=\""));
    let (status, _, page) = site
        .request(Method::POST, "/editor/weekly/links", Some(&cookie), Some(&form))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Links checked: 5 failing."), "{page}");
    assert!(page.contains("/feeds/alpha.xml</a>: 200 OK"), "{page}");
    for refused in [
        "via=loopback",
        "via=mapped",
        "via=decimal",
        "meta-data/",
        "via%3Dredirect",
    ] {
        let line = page
            .lines()
            .find(|l| l.contains(refused))
            .unwrap_or_else(|| panic!("no {refused} in {page}"));
        assert!(line.contains("refused:") && line.contains("internal address"), "{line}");
    }
}

#[tokio::test]
async fn editors_review_each_card_with_its_marks_and_rewrite_a_field() {
    use crate::support::model::{Answer, ScriptedModel};
    use reqwest::Method;
    let model = ScriptedModel::start(vec![Answer::card(
        "The port stood still for 3 days.",
        "Cranes stood still.",
    )])
    .await;
    let briefing = format!(
        "[briefing]\nendpoint = \"{}/v1\"\nmodel = \"tiny-model\"\n\n",
        model.base
    );
    let tail = move |feeds: &FeedServer| format!("{briefing}{}", alpha_weekly(feeds, "0 0 8 * * Mon", ""));
    let site = Site::launch(Db::Sqlite, tail, Some(EDITOR_TOKEN), false).await;
    assert_exit(&site.env.run(&["collect"]).await, 0);
    let (cookie, _) = log_in(&site).await;
    let (_, _, page) = site.request(Method::GET, "/editor/weekly", Some(&cookie), None).await;
    // The card, the model that drafted it, and the sentence whose figure is not in the story.
    assert!(page.contains("drafted by tiny-model"), "{page}");
    assert!(
        page.contains("Unverified: 3 not in the sources — <mark>The port stood still for 3 days.</mark>"),
        "{page}"
    );
    let csrf = value_after(&page, "name=\"csrf\" value=\"");
    let id = value_after(&page, "class=\"card\" data-story=\"");
    let form = format!("csrf={csrf}&story={id}&field=tldr&text=Cranes+stood+still+for+a+day.");
    let (status, _, page) = site
        .request(Method::POST, "/editor/weekly/edit", Some(&cookie), Some(&form))
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("tldr: saved; it wins over every draft."), "{page}");
    assert!(page.contains("tldr (edited)"), "{page}");
    assert!(
        !page.contains("<mark>The port"),
        "the editor's text replaced the flagged one: {page}"
    );
    // A forged form changes nothing.
    let forged = format!("csrf=0.1.forged&story={id}&field=tldr&text=Forged");
    let (status, _, _) = site
        .request(Method::POST, "/editor/weekly/edit", Some(&cookie), Some(&forged))
        .await;
    assert_eq!(status, 403);
    let text = stdout(&site.env.run(&["preview", "weekly", "--format", "text"]).await);
    assert!(text.contains("TL;DR: Cranes stood still for a day."), "{text}");
    assert!(!text.contains("Forged"));
}

#[tokio::test]
async fn a_slow_model_server_never_keeps_the_editors_page_from_answering() {
    use crate::support::model::{Answer, ScriptedModel};
    use reqwest::Method;
    let model = ScriptedModel::start(vec![Answer::Hang]).await;
    let briefing = format!("[briefing]\nendpoint = \"{}/v1\"\nmodel = \"m\"\n\n", model.base);
    let tail = move |feeds: &FeedServer| format!("{briefing}{}", alpha_weekly(feeds, "0 0 8 * * Mon", ""));
    let site = Site::launch(Db::Sqlite, tail, Some(EDITOR_TOKEN), false).await;
    // Stories, but no card: the collect's request hangs until its timeout.
    let config = std::fs::read_to_string(site.env.config_path()).expect("config");
    std::fs::write(
        site.env.config_path(),
        config.replace("model = \"m\"", "model = \"m\"\ntimeout = \"1s\""),
    )
    .expect("config");
    assert_exit(&site.env.run(&["collect"]).await, 0);
    let (cookie, _) = log_in(&site).await;
    let started = std::time::Instant::now();
    let (status, _, page) = site.request(Method::GET, "/editor/weekly", Some(&cookie), None).await;
    assert_eq!(status, 200, "{page}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(page.contains("did not draft every card within 15 s"), "{page}");
    assert!(page.contains("Ransomware hits port operator"), "{page}");
}
