//! Signing up: the form, the queue that handles sign-ups after the page
//! has answered (so neither its text nor its timing says whether an
//! address is known), the confirmation email (the `confirm_email.*`
//! templates) and the confirmation page and its POST.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use tokio::sync::mpsc;

use super::{
    EditionChoice, SiteView, WebState, bad_link, chosen_editions, edition_choices, field, form_fields, message, page,
    server_error, site, verify,
};
use crate::app::App;
use crate::domain::{EmailAddress, SubscriberName, SubscriberStatus};
use crate::render::Personal;
use crate::token::Purpose;

/// How often unconfirmed sign-ups are looked for and deleted.
const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// How long a confirmation link works.
const CONFIRM_FOR: Duration = Duration::hours(48);

/// A sign-up as the form gave it, checked.
pub(super) struct SignupRequest {
    email: EmailAddress,
    name: Option<String>,
    editions: Vec<String>,
    at: DateTime<Utc>,
}

/// How many sign-ups may wait to be handled; beyond it the form says "busy".
pub(super) const SIGNUP_QUEUE: usize = 1024;

#[derive(Serialize)]
struct SubscribeCtx {
    site: SiteView,
    editions: Vec<EditionChoice>,
    email: String,
    name: String,
    error: Option<String>,
}

pub(super) async fn subscribe_form(State(state): State<WebState>) -> Response {
    let app = state.app();
    let all: Vec<String> = app.config.editions.iter().map(|e| e.name.clone()).collect();
    let ctx = SubscribeCtx {
        site: site(&app),
        editions: edition_choices(&app, &all),
        email: String::new(),
        name: String::new(),
        error: None,
    };
    page(&app, StatusCode::OK, "web_subscribe.html.j2", ctx)
}

pub(super) async fn subscribe(
    State(state): State<WebState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let app = state.app();
    let fields = form_fields(&body);
    let raw_email = field(&fields, "email").unwrap_or_default().trim().to_string();
    let raw_name = field(&fields, "name").unwrap_or_default();
    let editions = chosen_editions(&app, &fields);
    let again = |error: String, status: StatusCode| {
        let ctx = SubscribeCtx {
            site: site(&app),
            editions: edition_choices(&app, &editions),
            email: raw_email.clone(),
            name: crate::text::shorten(&crate::text::clean_line(raw_name), 100),
            error: Some(error),
        };
        page(&app, status, "web_subscribe.html.j2", ctx)
    };
    let email = match EmailAddress::parse(&raw_email) {
        Ok(e) => e,
        Err(e) => return again(format!("That address cannot be used: {e}."), StatusCode::BAD_REQUEST),
    };
    let name = match SubscriberName::parse(raw_name) {
        Ok(n) => n.map(SubscriberName::into_string),
        Err(e) => return again(format!("That name cannot be used: {e}."), StatusCode::BAD_REQUEST),
    };
    if !state
        .limits
        .allow(&state.limits.signups_per_client, &state.client(&app, peer, &headers))
    {
        return again(
            "Too many sign-ups from your network; try again in a minute.".into(),
            StatusCode::TOO_MANY_REQUESTS,
        );
    }
    let to_subscribe = if editions.is_empty() {
        app.config.editions.iter().map(|e| e.name.clone()).collect()
    } else {
        editions.clone()
    };
    // The answer is the same, and as quick, whether the address is new,
    // pending, subscribed or bounced: the work happens after it.
    let request = SignupRequest {
        email: email.clone(),
        name,
        editions: to_subscribe,
        at: app.now(),
    };
    if state.signups.try_send(request).is_err() {
        return again(
            "Too many sign-ups right now; try again in a few minutes.".into(),
            StatusCode::SERVICE_UNAVAILABLE,
        );
    }
    message(
        &app,
        StatusCode::OK,
        "Check your inbox",
        &[
            &format!(
                "If {email} can receive {}, a confirmation link is on its way.",
                app.config.site.title
            ),
            "Nothing else is sent until you click it. The link works for 48 hours.",
        ],
    )
}

/// Handles queued sign-ups one at a time, and deletes unconfirmed ones
/// past `[web] pending_days` every hour.
pub(super) async fn worker(state: WebState, mut queue: mpsc::Receiver<SignupRequest>) {
    let mut expiry = tokio::time::interval(EXPIRY_EVERY);
    loop {
        tokio::select! {
            request = queue.recv() => match request {
                Some(request) => {
                    let app = state.app();
                    if let Err(e) = handle_signup(&state, &app, request).await {
                        tracing::error!("sign-up: {e}");
                    }
                }
                None => return,
            },
            _ = expiry.tick() => {
                let app = state.app();
                let cutoff = app.now() - Duration::days(i64::from(app.config.web.pending_days));
                match app.store.expire_signups(cutoff).await {
                    Ok((0, 0)) => {}
                    Ok((subscribers, signups)) => tracing::info!(
                        subscribers, signups, "deleted sign-ups not confirmed within {} days", app.config.web.pending_days
                    ),
                    Err(e) => tracing::error!("deleting unconfirmed sign-ups: {e}"),
                }
                state.limits.prune();
            }
        }
    }
}

/// One mailbox, whatever `+tag` is added to its local part.
fn mailbox_key(email: &EmailAddress) -> String {
    let (user, domain) = email.as_str().rsplit_once('@').unwrap_or((email.as_str(), ""));
    let user = user.split('+').next().unwrap_or(user);
    format!("{user}@{domain}")
}

async fn handle_signup(state: &WebState, app: &App, request: SignupRequest) -> crate::Result<()> {
    let SignupRequest {
        email,
        name,
        editions,
        at,
    } = request;
    if !state
        .limits
        .allow(&state.limits.confirmations_per_mailbox, &mailbox_key(&email))
    {
        tracing::info!(%email, "sign-up limit reached for this mailbox; no confirmation sent");
        return Ok(());
    }
    let subscriber_id = match app.store.subscriber_by_email(&email).await? {
        Some(s) if matches!(s.status, SubscriberStatus::Active | SubscriberStatus::Paused) => {
            tracing::info!(%email, "sign-up for a subscribed address: nothing to confirm (the preferences page changes editions)");
            return Ok(());
        }
        Some(s) if matches!(s.status, SubscriberStatus::Bounced | SubscriberStatus::Complained) => {
            tracing::info!(%email, status = s.status.as_str(), "sign-up for a suppressed address: no confirmation sent");
            return Ok(());
        }
        // Pending or unsubscribed: the name and editions wait in the sign-up.
        Some(s) => s.id,
        None => match app
            .store
            .add_subscriber(&email, None, SubscriberStatus::Pending, &[], at)
            .await?
        {
            crate::store::AddOutcome::Added(id) | crate::store::AddOutcome::Updated(id, _) => id,
        },
    };
    let signup = app
        .store
        .create_signup(subscriber_id, name.as_deref(), &editions, at)
        .await?;
    send_confirmation(app, signup, &email, &editions, at).await
}

/// Sends the double opt-in email with a signed link that expires.
async fn send_confirmation(
    app: &App,
    signup_id: i64,
    email: &EmailAddress,
    editions: &[String],
    now: DateTime<Utc>,
) -> crate::Result<()> {
    let signer = app.signer().await?;
    let token = signer.sign(Purpose::Signup, signup_id, Some((now + CONFIRM_FOR).timestamp()));
    let url = format!("{}/confirm/{token}", app.config.site.base_url);
    let titles: Vec<String> = app
        .config
        .editions
        .iter()
        .filter(|e| editions.contains(&e.name))
        .map(|e| e.title.clone())
        .collect();
    #[derive(Serialize)]
    struct Ctx<'a> {
        site: SiteView,
        editions: &'a [String],
        confirm_url: &'a str,
        valid_hours: i64,
    }
    let (html, text) = app.renderer().render_confirmation(&Ctx {
        site: site(app),
        editions: &titles,
        confirm_url: &url,
        valid_hours: CONFIRM_FOR.num_hours(),
    })?;
    let site_title = &app.config.site.title;
    let from = &app.config.site.from;
    let message_id = format!(
        "<tidings.confirm.{signup_id}.{}@{}>",
        crate::app::random_hex(8)?,
        from.email.domain()
    );
    let content = Personal {
        subject: format!("Confirm your subscription to {site_title}"),
        html,
        text,
    };
    let message =
        crate::deliver::message::build_transactional(from, email.as_str(), &message_id, &content, now.into())?;
    let message = match app.dkim()? {
        Some(dkim) => {
            let mut m = message;
            m.sign(&dkim.config);
            m
        }
        None => message,
    };
    app.transactional_transport()?
        .send_one(&message, &message_id)
        .await
        .map_err(|e| crate::Error::Other(format!("the confirmation email to {email}: {e}")))?;
    Ok(())
}

/// The sign-up a confirmation link names, or the page to answer with.
async fn signup_of(app: &App, token: &str) -> Result<(crate::store::Signup, crate::domain::Subscriber), Response> {
    let id = verify(app, Purpose::Signup, token, app.now()).await?;
    let gone = || bad_link(app, "This sign-up no longer exists");
    let signup = match app.store.signup(id).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(gone()),
        Err(e) => return Err(server_error(app, "confirm", e)),
    };
    match app.store.subscriber(signup.subscriber_id).await {
        Ok(Some(s)) => Ok((signup, s)),
        Ok(None) => Err(gone()),
        Err(e) => Err(server_error(app, "confirm", e)),
    }
}

/// A page with one button: a GET never confirms, because mail scanners
/// follow links.
pub(super) async fn confirm_page(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    let app = state.app();
    let (signup, subscriber) = match signup_of(&app, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    if signup.confirmed {
        return message(&app, StatusCode::OK, "This link was used", &["Nothing more to do."]);
    }
    #[derive(Serialize)]
    struct Ctx {
        site: SiteView,
        email: String,
        name: String,
        editions: Vec<String>,
        action: String,
    }
    let ctx = Ctx {
        site: site(&app),
        email: subscriber.email.to_string(),
        name: signup.name.unwrap_or_default(),
        editions: signup.editions.iter().map(|e| app.config.edition_title(e)).collect(),
        action: format!("{}/confirm/{token}", app.config.site.base_url),
    };
    page(&app, StatusCode::OK, "web_confirm.html.j2", ctx)
}

pub(super) async fn confirm(State(state): State<WebState>, Path(token): Path<String>) -> Response {
    use crate::store::Confirmation;
    let app = state.app();
    let (signup, subscriber) = match signup_of(&app, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    match app.store.confirm_signup(signup.id, app.now()).await {
        Ok(Confirmation::Activated) => {
            tracing::info!(email = %subscriber.email, "subscription confirmed");
            message(
                &app,
                StatusCode::OK,
                "You are subscribed",
                &[&format!(
                    "{} will arrive at {}. Every email has a one-click unsubscribe link.",
                    app.config.site.title, subscriber.email
                )],
            )
        }
        Ok(Confirmation::AlreadyActive | Confirmation::AlreadyUsed) => {
            message(&app, StatusCode::OK, "This link was used", &["Nothing more to do."])
        }
        Ok(Confirmation::UnsubscribedSince) => message(
            &app,
            StatusCode::OK,
            "This address unsubscribed since",
            &["Nothing was changed. To receive email again, subscribe again."],
        ),
        Ok(Confirmation::Bounced) => message(
            &app,
            StatusCode::OK,
            "We cannot deliver to this address",
            &["A mail server refused it permanently. Subscribe with another address."],
        ),
        Ok(Confirmation::Gone) => bad_link(&app, "This sign-up no longer exists"),
        Err(e) => server_error(&app, "confirm", e),
    }
}
