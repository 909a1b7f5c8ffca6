//! The daemon's HTTP side (axum), server-rendered pages that work without
//! JavaScript:
//!
//! - `GET /healthz` (the process runs and the database answers), `GET /metrics`;
//! - subscribers: `GET/POST /subscribe` (double opt-in), `GET/POST /confirm/{token}`,
//!   `GET/POST /unsubscribe/{token}` (the POST is the RFC 8058 one-click
//!   target of `List-Unsubscribe`), `GET/POST /preferences/{token}`;
//! - readers: `GET /archive`, `GET /archive/{edition}/{issue}`, `GET /archive/feed.atom`.
//!
//! Links carry HMAC-signed tokens (`token.rs`): the token is the authority,
//! so these pages need no login. Pages are the `web_*.html.j2` templates.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tokio::sync::mpsc;

mod client;
mod editor;
mod hooks;
mod server;
mod signup;

use signup::{SIGNUP_QUEUE, SignupRequest};

pub use server::serve;

use crate::app::App;
use crate::domain::{SubscriberName, SubscriberStatus};
use crate::token::Purpose;

#[derive(Clone)]
pub struct WebState {
    /// The current configuration and store; replaced on reload.
    pub app: Arc<RwLock<Arc<App>>>,
    pub metrics: Option<Arc<PrometheusHandle>>,
    limits: Arc<Limits>,
    /// Sign-ups are handled after the answer, so its timing says nothing
    /// about the address.
    signups: mpsc::Sender<SignupRequest>,
    /// SNS signing certificates for `/hooks/ses`, kept across reloads.
    /// (None when no HTTPS client could be built: `/hooks/ses` answers 503.)
    sns: Option<Arc<crate::inbound::sns::SnsCertificates>>,
}

/// One bucket per purpose, so sign-ups never lock the editor out.
struct Limits {
    signups_per_client: DefaultKeyedRateLimiter<String>,
    logins_per_client: DefaultKeyedRateLimiter<String>,
    /// Confirmation emails per mailbox (`+tags` folded).
    confirmations_per_mailbox: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl Limits {
    /// Whether `key` may go on; now and then forgets keys whose buckets
    /// are full again, so the tables do not grow without end.
    fn allow(&self, limiter: &DefaultKeyedRateLimiter<String>, key: &str) -> bool {
        if self.checks.fetch_add(1, Ordering::Relaxed) % 1024 == 1023 {
            self.prune();
        }
        limiter.check_key(&key.to_string()).is_ok()
    }

    fn prune(&self) {
        for limiter in [
            &self.signups_per_client,
            &self.logins_per_client,
            &self.confirmations_per_mailbox,
        ] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

impl WebState {
    /// Starts the sign-up worker too, on the current tokio runtime.
    pub fn new(app: Arc<RwLock<Arc<App>>>, metrics: Option<Arc<PrometheusHandle>>) -> Self {
        let per_minute = |n| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let per_hour = |n| Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        let limits = Arc::new(Limits {
            signups_per_client: RateLimiter::keyed(per_minute(5)),
            logins_per_client: RateLimiter::keyed(per_minute(5)),
            confirmations_per_mailbox: RateLimiter::keyed(per_hour(3)),
            checks: AtomicU64::new(0),
        });
        let (signups, queue) = mpsc::channel(SIGNUP_QUEUE);
        let sns = match crate::inbound::sns::SnsCertificates::standard() {
            Ok(sns) => Some(Arc::new(sns)),
            Err(e) => {
                tracing::error!("no HTTPS client for SNS certificates, /hooks/ses will answer 503: {e}");
                None
            }
        };
        let state = WebState {
            app,
            metrics,
            limits,
            signups,
            sns,
        };
        tokio::spawn(signup::worker(state.clone(), queue));
        state
    }

    /// Fetches SNS certificates with this client instead (whose TLS roots
    /// and name resolution the caller chose).
    pub fn with_sns_client(mut self, client: reqwest::Client) -> Self {
        self.sns = Some(Arc::new(crate::inbound::sns::SnsCertificates::new(client)));
        self
    }

    /// The client's address for limits and logs (see `client.rs`).
    fn client(&self, app: &App, peer: SocketAddr, headers: &HeaderMap) -> String {
        client::limiter_key(client::client_ip(peer, headers, &app.config.web.trusted_proxies))
    }

    fn app(&self) -> Arc<App> {
        match self.app.read() {
            Ok(app) => Arc::clone(&app),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }
}

/// Every page; `/metrics` too unless `[web] metrics_listen` serves it apart.
pub fn router(state: WebState) -> Router {
    let metrics_apart = state.app().config.web.metrics_listen.is_some();
    let router = Router::new().route("/healthz", get(healthz));
    let router = if metrics_apart {
        router
    } else {
        router.route("/metrics", get(metrics))
    };
    router
        .route("/subscribe", get(signup::subscribe_form).post(signup::subscribe))
        .route("/confirm/{token}", get(signup::confirm_page).post(signup::confirm))
        .route("/unsubscribe/{token}", get(unsubscribe_page).post(unsubscribe))
        .route("/preferences/{token}", get(preferences_page).post(save_preferences))
        .route("/archive", get(archive))
        .route("/archive/feed.atom", get(archive_feed))
        .route("/archive/{edition}/{issue}", get(archive_issue))
        .route("/hooks/{provider}", axum::routing::post(hooks::hook))
        .merge(editor::routes())
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// On every page: no framing, no sniffing, no referrer (links carry tokens),
/// and a policy that allows the pages' own inline styles and nothing that
/// runs.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, axum::http::HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "no-referrer");
    response
}

/// `/metrics` alone, for `[web] metrics_listen`.
pub fn metrics_router(state: WebState) -> Router {
    Router::new().route("/metrics", get(metrics)).with_state(state)
}

async fn healthz(State(state): State<WebState>) -> Response {
    match state.app().store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            // The reason goes to the log, not to whoever asks.
            tracing::error!("healthz: database unavailable: {e}");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

async fn metrics(State(state): State<WebState>) -> Response {
    match &state.metrics {
        Some(handle) => {
            handle.run_upkeep();
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

/// Installs the process-wide Prometheus recorder (once).
pub fn install_metrics() -> Option<Arc<PrometheusHandle>> {
    static HANDLE: std::sync::OnceLock<Option<Arc<PrometheusHandle>>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| tracing::warn!("metrics disabled: {e}"))
                .ok()
                .map(Arc::new)
        })
        .clone()
}

// -- pages -------------------------------------------------------------------

#[derive(Serialize)]
struct SiteView {
    title: String,
    base_url: String,
}

fn site(app: &App) -> SiteView {
    SiteView {
        title: app.config.site.title.clone(),
        base_url: app.config.site.base_url.clone(),
    }
}

/// Renders a `web_*.html.j2` page; a template error is logged and shown as a 500.
fn page(app: &App, status: StatusCode, template: &str, ctx: impl Serialize) -> Response {
    let rendered = app.renderer().render_page(template, &ctx);
    match rendered {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!("web page {template}: {e}");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered\n").into_response()
        }
    }
}

fn message(app: &App, status: StatusCode, heading: &str, paragraphs: &[&str]) -> Response {
    #[derive(Serialize)]
    struct Ctx<'a> {
        site: SiteView,
        heading: &'a str,
        paragraphs: &'a [&'a str],
    }
    page(
        app,
        status,
        "web_message.html.j2",
        Ctx {
            site: site(app),
            heading,
            paragraphs,
        },
    )
}

fn server_error(app: &App, what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!("{what}: {e}");
    message(
        app,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        &["Nothing was changed. Please try again in a few minutes."],
    )
}

fn bad_link(app: &App, e: impl std::fmt::Display) -> Response {
    message(
        app,
        StatusCode::BAD_REQUEST,
        "This link does not work",
        &[&format!(
            "{e}. Use the link from the most recent email, or subscribe again."
        )],
    )
}

fn bad_form(app: &App, problem: &str) -> Response {
    message(
        app,
        StatusCode::BAD_REQUEST,
        "Nothing was changed",
        &[problem, "Go back, correct it and try again."],
    )
}

/// Form fields of an `application/x-www-form-urlencoded` body; repeated
/// names (checkboxes) keep every value.
fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[derive(Serialize)]
struct EditionChoice {
    name: String,
    title: String,
    audience: String,
    checked: bool,
}

fn edition_choices(app: &App, checked: &[String]) -> Vec<EditionChoice> {
    app.config
        .editions
        .iter()
        .map(|e| EditionChoice {
            name: e.name.clone(),
            title: e.title.clone(),
            audience: app.config.audience_title(e),
            checked: checked.contains(&e.name),
        })
        .collect()
}

/// The editions named in the form that exist; all of them when none is named.
fn chosen_editions(app: &App, fields: &[(String, String)]) -> Vec<String> {
    let chosen: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "editions")
        .filter(|(_, v)| app.config.editions.iter().any(|e| &e.name == v))
        .map(|(_, v)| v.clone())
        .collect();
    chosen
}

/// The subscriber id a token names, or the page to answer with.
async fn verify(app: &App, purpose: Purpose, token: &str, now: DateTime<Utc>) -> Result<i64, Response> {
    let signer = app.signer().await.map_err(|e| server_error(app, "signer", e))?;
    signer.verify(purpose, token, now.timestamp()).map_err(|e| {
        tracing::info!(?purpose, "refused a link: {e}");
        bad_link(app, capitalise(&e.to_string()))
    })
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

// -- unsubscribe and preferences ----------------------------------------------

async fn unsubscribe_page(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let app = state.app();
    let id = match verify(&app, Purpose::Unsubscribe, &token, app.now()).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    let subscriber = match app.store.subscriber(id).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return message(
                &app,
                StatusCode::OK,
                "You are not subscribed",
                &["Nothing is sent to you."],
            );
        }
        Err(e) => return server_error(&app, "unsubscribe", e),
    };
    if matches!(
        subscriber.status,
        SubscriberStatus::Unsubscribed | SubscriberStatus::Bounced | SubscriberStatus::Complained
    ) {
        return message(
            &app,
            StatusCode::OK,
            "You are unsubscribed",
            &["Nothing more is sent to you."],
        );
    }
    #[derive(Serialize)]
    struct Ctx {
        site: SiteView,
        email: String,
        action: String,
        preferences_url: String,
    }
    let preferences = match app.signer().await {
        Ok(signer) => signer.sign(Purpose::Preferences, id, None),
        Err(e) => return server_error(&app, "signer", e),
    };
    let ctx = Ctx {
        site: site(&app),
        email: subscriber.email.to_string(),
        action: format!("{}/unsubscribe/{token}", app.config.site.base_url),
        preferences_url: format!("{}/preferences/{preferences}", app.config.site.base_url),
    };
    page(&app, StatusCode::OK, "web_unsubscribe.html.j2", ctx)
}

/// The button's POST and RFC 8058's one-click POST (`List-Unsubscribe=One-Click`):
/// no cookie, no login, the signed token decides.
async fn unsubscribe(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let app = state.app();
    let now = app.now();
    let id = match verify(&app, Purpose::Unsubscribe, &token, now).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    match app.store.subscriber(id).await {
        Ok(Some(s))
            if matches!(
                s.status,
                SubscriberStatus::Active | SubscriberStatus::Paused | SubscriberStatus::Pending
            ) =>
        {
            if let Err(e) = app
                .store
                .set_subscriber_status(id, SubscriberStatus::Unsubscribed, "unsubscribed on the web page", now)
                .await
            {
                return server_error(&app, "unsubscribe", e);
            }
            tracing::info!(email = %s.email, "unsubscribed");
            metrics::counter!("tidings_unsubscribes_total").increment(1);
        }
        Ok(_) => {}
        Err(e) => return server_error(&app, "unsubscribe", e),
    }
    message(
        &app,
        StatusCode::OK,
        "You are unsubscribed",
        &["Nothing more is sent to you. Changed your mind? Subscribe again at any time."],
    )
}

#[derive(Serialize)]
struct PreferencesCtx {
    site: SiteView,
    email: String,
    name: String,
    editions: Vec<EditionChoice>,
    paused: bool,
    saved: bool,
    action: String,
}

async fn preferences_page(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    show_preferences(&state, &token, None).await
}

async fn show_preferences(state: &WebState, token: &str, saved_fields: Option<Vec<(String, String)>>) -> Response {
    let app = state.app();
    let now = app.now();
    let id = match verify(&app, Purpose::Preferences, token, now).await {
        Ok(id) => id,
        Err(response) => return response,
    };
    let mut subscriber = match app.store.subscriber(id).await {
        Ok(Some(s)) => s,
        Ok(None) => return bad_link(&app, "This subscription no longer exists"),
        Err(e) => return server_error(&app, "preferences", e),
    };
    let saved = saved_fields.is_some();
    if let Some(fields) = saved_fields {
        let name = match SubscriberName::parse(field(&fields, "name").unwrap_or_default()) {
            Ok(n) => n.map(SubscriberName::into_string),
            Err(e) => return bad_form(&app, &format!("That name cannot be used: {e}.")),
        };
        let editions = chosen_editions(&app, &fields);
        let paused = field(&fields, "paused").is_some();
        // Suppressed stays suppressed; pending needs the confirmation link.
        let status = match (subscriber.status, paused) {
            (SubscriberStatus::Bounced | SubscriberStatus::Complained | SubscriberStatus::Pending, _) => {
                subscriber.status
            }
            (_, true) => SubscriberStatus::Paused,
            (_, false) if editions.is_empty() => SubscriberStatus::Unsubscribed,
            (_, false) => SubscriberStatus::Active,
        };
        if let Err(e) = app
            .store
            .update_preferences(id, name.as_deref(), &editions, status, now)
            .await
        {
            return server_error(&app, "preferences", e);
        }
        tracing::info!(email = %subscriber.email, status = status.as_str(), "preferences changed");
        subscriber.name = name;
        subscriber.editions = editions;
        subscriber.status = status;
    }
    let ctx = PreferencesCtx {
        site: site(&app),
        email: subscriber.email.to_string(),
        name: subscriber.name.clone().unwrap_or_default(),
        editions: edition_choices(&app, &subscriber.editions),
        paused: subscriber.status == SubscriberStatus::Paused,
        saved,
        action: format!("{}/preferences/{token}", app.config.site.base_url),
    };
    page(&app, StatusCode::OK, "web_preferences.html.j2", ctx)
}

async fn save_preferences(State(state): State<WebState>, Path(token): Path<String>, body: Bytes) -> Response {
    show_preferences(&state, &token, Some(form_fields(&body))).await
}

// -- archive -------------------------------------------------------------------

fn archive_url(app: &App, edition: &str, id: i64) -> String {
    format!("{}/archive/{edition}/{id}", app.config.site.base_url)
}

async fn archive(State(state): State<WebState>) -> Response {
    let app = state.app();
    let issues = match app.store.list_issues(500).await {
        Ok(i) => i,
        Err(e) => return server_error(&app, "archive", e),
    };
    #[derive(Serialize)]
    struct IssueLink {
        url: String,
        subject: String,
        edition_title: String,
        date: String,
    }
    #[derive(Serialize)]
    struct Ctx {
        site: SiteView,
        issues: Vec<IssueLink>,
    }
    let issues = issues
        .into_iter()
        .map(|i| {
            let edition = app.config.editions.iter().find(|e| e.name == i.edition);
            let date = match edition {
                Some(e) => i
                    .slot_at
                    .with_timezone(&e.schedule.timezone())
                    .format("%-d %B %Y")
                    .to_string(),
                None => i.slot_at.format("%-d %B %Y").to_string(),
            };
            IssueLink {
                url: archive_url(&app, &i.edition, i.id),
                subject: i.subject,
                edition_title: app.config.edition_title(&i.edition),
                date,
            }
        })
        .collect();
    page(
        &app,
        StatusCode::OK,
        "web_archive.html.j2",
        Ctx {
            site: site(&app),
            issues,
        },
    )
}

async fn archive_issue(State(state): State<WebState>, Path((edition, issue)): Path<(String, String)>) -> Response {
    let app = state.app();
    let not_found = || {
        message(
            &app,
            StatusCode::NOT_FOUND,
            "No such issue",
            &["See the archive for every issue."],
        )
    };
    let Ok(id) = issue.parse::<i64>() else {
        return not_found();
    };
    let row = match app.store.issue(id).await {
        Ok(Some(row)) if row.edition == edition => row,
        Ok(_) => return not_found(),
        Err(e) => return server_error(&app, "archive", e),
    };
    let rendered: crate::render::RenderedIssue = match serde_json::from_str(&row.content) {
        Ok(r) => r,
        Err(e) => return server_error(&app, "archive: stored issue", e),
    };
    let subscribe = format!("{}/subscribe", app.config.site.base_url);
    Html(rendered.web_html(&archive_url(&app, &edition, id), &subscribe)).into_response()
}

async fn archive_feed(State(state): State<WebState>) -> Response {
    let app = state.app();
    let issues = match app.store.list_issues(50).await {
        Ok(i) => i,
        Err(e) => return server_error(&app, "archive feed", e),
    };
    let esc = crate::text::escape_html;
    let base = &app.config.site.base_url;
    let updated = issues
        .iter()
        .map(|i| i.composed_at)
        .max()
        .unwrap_or_else(|| DateTime::<Utc>::from_timestamp(0, 0).unwrap_or_default());
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n\
         <title>{}</title>\n<id>{}</id>\n<link rel=\"self\" href=\"{}\"/>\n<link href=\"{}\"/>\n<updated>{}</updated>\n",
        esc(&app.config.site.title),
        esc(&format!("{base}/archive")),
        esc(&format!("{base}/archive/feed.atom")),
        esc(&format!("{base}/archive")),
        updated.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    for i in &issues {
        let url = archive_url(&app, &i.edition, i.id);
        let edition_title = app.config.edition_title(&i.edition);
        xml.push_str(&format!(
            "<entry>\n<title>{}</title>\n<id>{}</id>\n<link href=\"{}\"/>\n<updated>{}</updated>\n\
             <author><name>{}</name></author>\n<summary>{}</summary>\n</entry>\n",
            esc(&i.subject),
            esc(&url),
            esc(&url),
            i.composed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            esc(&app.config.site.title),
            esc(&format!("{edition_title}: {}", i.subject)),
        ));
    }
    xml.push_str("</feed>\n");
    ([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], xml).into_response()
}
