//! The editor's pages under `/editor`, behind a login with the token in
//! `TIDINGS_EDITOR_TOKEN` (off without it):
//!
//! - `GET/POST /editor/login`, `POST /editor/logout`;
//! - `GET /editor`: each edition with its audience, schedule, next send time
//!   (in its zone), the last issue's delivery counts; failing sources;
//! - `GET /editor/{edition}`: the next issue as it will be sent (subject,
//!   HTML at desktop and phone widths, plain text), pre-send checks, the
//!   stories with pin/exclude buttons, the intro note, approval and "send a
//!   test to me";
//! - `POST /editor/{edition}/{pin|exclude|unpick|note|approve|test|links}`.
//!
//! A session is a row in the store; the cookie names it and carries a
//! random secret whose hash the row keeps (Secure when `base_url` is https,
//! HttpOnly, SameSite=Strict). Logout deletes the row, and a session made
//! with another editor token than the current one is refused. Every form,
//! logout's too, carries a CSRF token signed for that session. The operations are the CLI's (`tidings issue …`).

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Duration;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{SiteView, WebState, field, form_fields, message, page, server_error, site};
use crate::app::App;
use crate::token::Purpose;

const COOKIE: &str = "tidings_editor";
const SESSION_FOR: Duration = Duration::hours(12);
/// Gmail clips messages whose HTML is larger than this.
const GMAIL_CLIP_BYTES: usize = 102 * 1024;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/editor", get(dashboard))
        .route("/editor/login", get(login_form).post(login))
        .route("/editor/logout", post(logout))
        .route("/editor/{edition}", get(edition_page))
        .route("/editor/{edition}/{action}", post(edition_action))
}

/// The session's id when the request carries the cookie of a live session
/// made with the current editor token.
async fn session(app: &App, headers: &HeaderMap) -> Option<i64> {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_string))?;
    let (id, secret) = cookie.split_once('.')?;
    let id: i64 = id.parse().ok()?;
    let row = app.store.editor_session(id).await.ok()??;
    let token = app.config.editor_token.as_ref()?;
    let live = row.expires_at > app.now()
        && same(&hash_hex(secret), &row.secret_hash)
        && same(&hash_hex(token.expose()), &row.token_hash);
    live.then_some(id)
}

fn hash_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn csrf_token(app: &App, session: i64) -> crate::Result<String> {
    Ok(app.signer().await?.sign(Purpose::Csrf, session, None))
}

fn editor_off(app: &App) -> Response {
    message(
        app,
        StatusCode::NOT_FOUND,
        "The editor is off",
        &["Set TIDINGS_EDITOR_TOKEN (at least 16 characters) for tidings serve to turn it on."],
    )
}

fn to_login(app: &App) -> Response {
    Redirect::to(&format!("{}/editor/login", app.config.site.base_url)).into_response()
}

/// The editor's session, or the response to give instead.
async fn require_editor(app: &App, headers: &HeaderMap) -> Result<i64, Response> {
    if app.config.editor_token.is_none() {
        return Err(editor_off(app));
    }
    session(app, headers).await.ok_or_else(|| to_login(app))
}

/// Checks the form's CSRF token against the session.
async fn check_csrf(app: &App, session_expiry: i64, fields: &[(String, String)]) -> Result<(), Response> {
    let expected = csrf_token(app, session_expiry)
        .await
        .map_err(|e| server_error(app, "csrf", e))?;
    match field(fields, "csrf") {
        Some(token) if same(token, &expected) => Ok(()),
        _ => Err(message(
            app,
            StatusCode::FORBIDDEN,
            "This form has expired",
            &["Reload the page and try again."],
        )),
    }
}

/// Compares two secrets without leaking where they differ.
fn same(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes()) == Sha256::digest(b.as_bytes())
}

// -- login ----------------------------------------------------------------------

#[derive(Serialize)]
struct LoginCtx {
    site: SiteView,
    error: Option<String>,
}

async fn login_form(State(state): State<WebState>) -> Response {
    let app = state.app();
    if app.config.editor_token.is_none() {
        return editor_off(&app);
    }
    page(
        &app,
        StatusCode::OK,
        "web_login.html.j2",
        LoginCtx {
            site: site(&app),
            error: None,
        },
    )
}

async fn login(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = state.app();
    let Some(expected) = app.config.editor_token.as_ref() else {
        return editor_off(&app);
    };
    let refuse = |status: StatusCode, error: &str| {
        page(
            &app,
            status,
            "web_login.html.j2",
            LoginCtx {
                site: site(&app),
                error: Some(error.to_string()),
            },
        )
    };
    let client = state.client(&app, peer, &headers);
    if !state.limits.allow(&state.limits.logins_per_client, &client) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, "Too many attempts; wait a minute.");
    }
    let fields = form_fields(&body);
    if !same(field(&fields, "token").unwrap_or_default(), expected.expose()) {
        tracing::warn!(%client, "editor login refused");
        return refuse(StatusCode::UNAUTHORIZED, "That is not the editor token.");
    }
    let now = app.now();
    let secret = match crate::app::random_hex(32) {
        Ok(s) => s,
        Err(e) => return server_error(&app, "login", e),
    };
    let id = match app
        .store
        .create_editor_session(&hash_hex(&secret), &hash_hex(expected.expose()), now, now + SESSION_FOR)
        .await
    {
        Ok(id) => id,
        Err(e) => return server_error(&app, "login", e),
    };
    let cookie = format!("{id}.{secret}");
    let secure = if app.config.site.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    tracing::info!(%client, "editor logged in");
    (
        [(
            header::SET_COOKIE,
            format!(
                "{COOKIE}={cookie}; Path=/editor; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
                SESSION_FOR.num_seconds()
            ),
        )],
        Redirect::to(&format!("{}/editor", app.config.site.base_url)),
    )
        .into_response()
}

async fn logout(State(state): State<WebState>, headers: HeaderMap, body: Bytes) -> Response {
    let app = state.app();
    let session = match require_editor(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Err(r) = check_csrf(&app, session, &form_fields(&body)).await {
        return r;
    }
    if let Err(e) = app.store.end_editor_session(session).await {
        return server_error(&app, "logout", e);
    }
    tracing::info!("editor logged out");
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/editor; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
        Redirect::to(&format!("{}/editor/login", app.config.site.base_url)),
    )
        .into_response()
}

// -- dashboard --------------------------------------------------------------------

async fn dashboard(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let app = state.app();
    let session = match require_editor(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    #[derive(Serialize)]
    struct EditionRow {
        name: String,
        title: String,
        audience: String,
        schedule: String,
        next_send: String,
        approval: bool,
        last_issue: Option<String>,
    }
    #[derive(Serialize)]
    struct FailingSource {
        name: String,
        error: String,
        errors: i64,
    }
    #[derive(Serialize)]
    struct Ctx {
        site: SiteView,
        csrf: String,
        editions: Vec<EditionRow>,
        failing: Vec<FailingSource>,
    }
    let now = app.now();
    let issues = match app.store.list_issues(200).await {
        Ok(i) => i,
        Err(e) => return server_error(&app, "dashboard", e),
    };
    let mut editions = Vec::new();
    for e in &app.config.editions {
        let tz = e.schedule.timezone();
        let last_issue = match issues.iter().find(|i| i.edition == e.name) {
            Some(i) => match app.store.delivery_counts(i.id).await {
                Ok(c) => Some(format!(
                    "#{} {}: {} sent, {} pending, {} failed of {}",
                    i.id,
                    i.slot_at.with_timezone(&tz).format("%-d %b %Y %H:%M"),
                    c.sent,
                    c.pending + c.sending,
                    c.failed,
                    c.total()
                )),
                Err(e) => return server_error(&app, "dashboard", e),
            },
            None => None,
        };
        editions.push(EditionRow {
            name: e.name.clone(),
            title: e.title.clone(),
            audience: app.config.audience_title(e),
            schedule: format!("{} ({})", e.schedule.expr(), tz.name()),
            next_send: e.schedule.next_after(now).map_or_else(
                || "never".to_string(),
                |t| t.with_timezone(&tz).format("%a %-d %b %Y %H:%M %Z").to_string(),
            ),
            approval: e.approval,
            last_issue,
        });
    }
    let failing = match app.store.list_sources().await {
        Ok(sources) => sources
            .into_iter()
            .filter(|s| s.error_count > 0 || s.disabled_reason.is_some())
            .map(|s| FailingSource {
                name: s.name,
                error: s.disabled_reason.or(s.last_error).unwrap_or_default(),
                errors: s.error_count,
            })
            .collect(),
        Err(e) => return server_error(&app, "dashboard", e),
    };
    let csrf = match csrf_token(&app, session).await {
        Ok(t) => t,
        Err(e) => return server_error(&app, "csrf", e),
    };
    page(
        &app,
        StatusCode::OK,
        "web_editor.html.j2",
        Ctx {
            site: site(&app),
            csrf,
            editions,
            failing,
        },
    )
}

// -- one edition: preview and curate ---------------------------------------------------

#[derive(Serialize)]
struct StoryRow {
    id: i64,
    title: String,
    source: String,
    link: String,
    score: String,
    pinned: bool,
    status: String,
}

#[derive(Serialize)]
struct Check {
    ok: bool,
    text: String,
}

async fn edition_page(State(state): State<WebState>, headers: HeaderMap, Path(edition): Path<String>) -> Response {
    let app = state.app();
    let session = match require_editor(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    render_edition(&app, session, &edition, None, None).await
}

async fn render_edition(
    app: &App,
    session: i64,
    edition_name: &str,
    notice: Option<String>,
    links: Option<Vec<LinkResult>>,
) -> Response {
    let Ok(edition) = app.config.edition(edition_name) else {
        return message(app, StatusCode::NOT_FOUND, "No such edition", &[]);
    };
    let now = app.now();
    let preview = match app.preview_message(&edition.name, None, now).await {
        Ok(p) => p,
        Err(e) => return server_error(app, "editor preview", e),
    };
    let ranked = match app.ranked_edition(&edition.name, now).await {
        Ok(r) => r,
        Err(e) => return server_error(app, "editor ranking", e),
    };
    let weights = app.source_weights();
    let selection = ranked.select(now, &weights);
    let stories: Vec<StoryRow> = selection
        .considered
        .iter()
        .take(40)
        .map(|c| StoryRow {
            id: c.story.id,
            title: c.story.title.clone(),
            source: c.story.source.clone(),
            link: c.story.link.clone(),
            score: format!("{:.2}", c.score),
            pinned: c.pinned,
            status: match &c.verdict {
                crate::rank::Verdict::Kept { section, position } => format!("#{position} in {section}"),
                crate::rank::Verdict::LeftOut(why) => format!("left out: {why}"),
            },
        })
        .collect();
    let html_bytes = preview.html.len();
    let headers_text = String::from_utf8_lossy(&preview.message.headers().to_string().into_bytes()).into_owned();
    let images_without_alt = count_images_without_alt(&preview.html);
    let checks = vec![
        Check {
            ok: html_bytes < GMAIL_CLIP_BYTES,
            text: format!(
                "HTML is {:.1} KB (Gmail clips above 102 KB)",
                html_bytes as f64 / 1024.0
            ),
        },
        Check {
            ok: headers_text.contains("List-Unsubscribe:") && headers_text.contains("List-Unsubscribe-Post:"),
            text: "List-Unsubscribe and List-Unsubscribe-Post headers".to_string(),
        },
        Check {
            ok: app.config.delivery.dkim.is_some(),
            text: match &app.config.delivery.dkim {
                Some(d) => format!("DKIM signing as {} (selector {})", d.domain, d.selector),
                None => "DKIM is not configured".to_string(),
            },
        },
        Check {
            ok: images_without_alt == 0,
            text: format!("{images_without_alt} image(s) without alt text"),
        },
        Check {
            ok: preview.stories >= edition.min_stories,
            text: format!("{} stories (at least {} needed)", preview.stories, edition.min_stories),
        },
    ];
    #[derive(Serialize)]
    struct Ctx {
        site: SiteView,
        csrf: String,
        notice: Option<String>,
        edition: String,
        title: String,
        approval: bool,
        slot: String,
        subject: String,
        html: String,
        text: String,
        checks: Vec<Check>,
        stories: Vec<StoryRow>,
        note: String,
        links: Option<Vec<LinkResult>>,
    }
    let csrf = match csrf_token(app, session).await {
        Ok(t) => t,
        Err(e) => return server_error(app, "csrf", e),
    };
    let tz = edition.schedule.timezone();
    page(
        app,
        StatusCode::OK,
        "web_editor_edition.html.j2",
        Ctx {
            site: site(app),
            csrf,
            notice,
            edition: edition.name.clone(),
            title: edition.title.clone(),
            approval: edition.approval,
            slot: preview
                .slot
                .with_timezone(&tz)
                .format("%a %-d %b %Y %H:%M %Z")
                .to_string(),
            subject: preview.subject,
            html: preview.html,
            text: preview.text,
            checks,
            stories,
            note: ranked.overrides.note.unwrap_or_default(),
            links,
        },
    )
}

#[derive(Serialize)]
struct LinkResult {
    url: String,
    ok: bool,
    result: String,
}

/// Follows every link of the issue's stories (and their "also covered by"
/// links), a few at a time, and says which fail to resolve. A link on its
/// source's configured host is followed wherever it points; any other, and
/// any redirect off that host, never reaches an internal address.
async fn check_links(app: &App, edition: &str) -> crate::Result<Vec<LinkResult>> {
    let now = app.now();
    let ranked = app.ranked_edition(edition, now).await?;
    let weights = app.source_weights();
    let selection = ranked.select(now, &weights);
    let source_host = |name: &str| {
        app.config
            .sources
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| match &s.location {
                crate::config::SourceLocation::Http(u) => u.host_str().map(str::to_string),
                crate::config::SourceLocation::File(_) => None,
            })
    };
    let mut links: Vec<(String, Option<String>)> = Vec::new();
    for r in selection.stories() {
        let all = std::iter::once((&r.story.link, &r.story.source)).chain(r.also.iter().map(|a| (&a.link, &a.source)));
        for (url, source) in all {
            if !links.iter().any(|(u, _)| u == url) {
                links.push((url.clone(), source_host(source)));
            }
        }
    }
    let clients = crate::collect::guard::Clients::new(app.config.collect.limits.allow_private, |builder| {
        builder
            .user_agent(crate::collect::fetch::USER_AGENT)
            .timeout(LINK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
    })
    .map_err(|e| crate::Error::Other(format!("link checker: {e}")))?;
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = tokio::task::JoinSet::new();
    let mut results: Vec<(usize, LinkResult)> = links
        .iter()
        .enumerate()
        .map(|(index, (url, _))| {
            let result = format!("not checked within {} s", LINKS_DEADLINE.as_secs());
            (
                index,
                LinkResult {
                    url: url.clone(),
                    ok: false,
                    result,
                },
            )
        })
        .collect();
    for (index, (url, trusted_host)) in links.into_iter().enumerate() {
        let (clients, semaphore) = (clients.clone(), std::sync::Arc::clone(&semaphore));
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            let (ok, result) =
                match tokio::time::timeout(LINK_TIMEOUT, follow(&clients, &url, trusted_host.as_deref())).await {
                    Ok(outcome) => outcome,
                    Err(_) => (false, "no answer within 10 s".to_string()),
                };
            (index, LinkResult { url, ok, result })
        });
    }
    // The page must answer well within `[web] idle_timeout`'s default:
    // links still unchecked by then are listed as such.
    let _ = tokio::time::timeout(LINKS_DEADLINE, async {
        while let Some(done) = tasks.join_next().await {
            if let Ok((index, checked)) = done
                && let Some(slot) = results.get_mut(index)
            {
                slot.1 = checked;
            }
        }
    })
    .await;
    tasks.abort_all();
    Ok(results.into_iter().map(|(_, r)| r).collect())
}

const LINK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const LINKS_DEADLINE: std::time::Duration = std::time::Duration::from_secs(40);
const LINK_REDIRECTS: usize = 5;

/// One link, its redirects followed here so each hop is checked: whether
/// it works, and what happened.
async fn follow(clients: &crate::collect::guard::Clients, start: &str, trusted_host: Option<&str>) -> (bool, String) {
    let Ok(mut url) = url::Url::parse(start) else {
        return (false, "not a URL".to_string());
    };
    for _ in 0..=LINK_REDIRECTS {
        let client = match clients.for_url(&url, trusted_host) {
            Ok(c) => c,
            Err(refused) => return (false, format!("refused: {refused}")),
        };
        // Some servers refuse HEAD; a GET then decides.
        let mut answer = client.head(url.clone()).send().await;
        if matches!(&answer, Ok(r) if r.status() == reqwest::StatusCode::METHOD_NOT_ALLOWED) {
            answer = client.get(url.clone()).send().await;
        }
        let response = match answer {
            Ok(r) => r,
            Err(e) => {
                if let Some(refused) = crate::collect::guard::refusal_in(&e) {
                    return (false, format!("refused: {refused}"));
                }
                let what = if e.is_timeout() {
                    "no answer within 10 s".to_string()
                } else if e.is_connect() {
                    "cannot connect".to_string()
                } else {
                    e.to_string()
                };
                return (false, what);
            }
        };
        let status = response.status();
        if !status.is_redirection() {
            return (status.is_success(), status.to_string());
        }
        let next = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| url.join(l).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"));
        match next {
            Some(next) => url = next,
            None => return (false, format!("{status} without a usable Location")),
        }
    }
    (false, format!("more than {LINK_REDIRECTS} redirects"))
}

/// `<img>` tags without an `alt` attribute (an empty `alt=""` is fine: decorative).
fn count_images_without_alt(html: &str) -> usize {
    let lower = html.to_ascii_lowercase();
    lower
        .match_indices("<img")
        .filter(|(at, _)| {
            let tag = &lower[*at..];
            let end = tag.find('>').unwrap_or(tag.len());
            !tag[..end].contains(" alt=")
        })
        .count()
}

async fn edition_action(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((edition, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let app = state.app();
    let session = match require_editor(&app, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let fields = form_fields(&body);
    if let Err(r) = check_csrf(&app, session, &fields).await {
        return r;
    }
    let Ok(edition) = app.config.edition(&edition).map(|e| e.name.clone()) else {
        return message(&app, StatusCode::NOT_FOUND, "No such edition", &[]);
    };
    let now = app.now();
    let story = || field(&fields, "story").unwrap_or_default().to_string();
    let mut links = None;
    let result: crate::Result<String> = async {
        match action.as_str() {
            "pin" => {
                let position = field(&fields, "position")
                    .and_then(|p| p.trim().parse::<usize>().ok())
                    .filter(|p| *p > 0);
                let s = app.pin(&edition, &story(), position, now).await?;
                Ok(format!("Pinned #{} \"{}\".", s.id, s.title))
            }
            "exclude" => {
                let s = app.exclude(&edition, &story(), now).await?;
                Ok(format!("Excluded #{} \"{}\".", s.id, s.title))
            }
            "unpick" => {
                let (s, _) = app.unpick(&edition, &story()).await?;
                Ok(format!("#{} is ranked as usual again.", s.id))
            }
            "note" => {
                app.set_note(&edition, field(&fields, "note").unwrap_or_default(), now)
                    .await?;
                Ok("Intro note saved.".to_string())
            }
            "approve" => match app.approve(&edition, now).await? {
                crate::app::SendReport::Delivered { issue, .. } => Ok(format!(
                    "Approved: issue #{} \"{}\" is composed and goes out from {}.",
                    issue.id,
                    issue.subject,
                    issue.slot_at.max(now).format("%Y-%m-%d %H:%M UTC")
                )),
                crate::app::SendReport::TooFew { found, min, .. } => Ok(format!(
                    "Not approved: {found} stories rank, the edition needs at least {min}."
                )),
                _ => Ok("Nothing to approve.".to_string()),
            },
            "links" => {
                let results = check_links(&app, &edition).await?;
                let failing = results.iter().filter(|r| !r.ok).count();
                links = Some(results);
                Ok(format!("Links checked: {failing} failing."))
            }
            "test" => {
                let to = crate::domain::EmailAddress::parse(field(&fields, "to").unwrap_or_default())
                    .map_err(|e| crate::Error::Usage(format!("test address: {e}")))?;
                let reply = app.send_test(&edition, &to, now).await?;
                Ok(format!("Test sent to {to} ({reply})."))
            }
            other => Err(crate::Error::Usage(format!("unknown action \"{other}\""))),
        }
    }
    .await;
    let notice = match result {
        Ok(n) => n,
        Err(e) => format!("Not done: {e}"),
    };
    tracing::info!(edition = %edition, action = %action, "editor: {notice}");
    render_edition(&app, session, &edition, Some(notice), links).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_without_alt_are_counted() {
        let html = r#"<p><img src="a.png" alt="A chart"><IMG SRC="b.png"><img src="c.png" alt=""></p>"#;
        assert_eq!(count_images_without_alt(html), 1);
    }
}
