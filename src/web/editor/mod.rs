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
//!
//! Here: sessions, login and the dashboard; `edition.rs`: one edition's
//! preview, curation and link check.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::Duration;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{SiteView, WebState, field, form_fields, message, page, server_error, site};
use crate::app::App;
use crate::token::Purpose;

mod edition;
use edition::{edition_action, edition_page};

const COOKIE: &str = "tidings_editor";
const SESSION_FOR: Duration = Duration::hours(12);

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
        feedback: Vec<crate::app::IssueFeedbackView>,
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
            Some(i) => match app.store.delivery_counts(i.id, app.now()).await {
                Ok(c) => Some(format!(
                    "#{} {}: {} sent, {} pending, {} failed{} of {}",
                    i.id,
                    i.slot_at.with_timezone(&tz).format("%-d %b %Y %H:%M"),
                    c.sent,
                    c.pending + c.sending,
                    c.failed,
                    if c.withdrawn > 0 {
                        format!(", {} withdrawn (left before their turn)", c.withdrawn)
                    } else {
                        String::new()
                    },
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
    let feedback = match app.issue_feedback(10).await {
        Ok(f) => f,
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
            feedback,
        },
    )
}
