//! One edition's page: the next issue as it will be sent, pre-send checks,
//! the stories with the curation buttons, and the link check.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde::Serialize;

use super::super::{SiteView, WebState, field, form_fields, message, page, server_error, site};
use super::{check_csrf, csrf_token, require_editor};
use crate::app::App;
use crate::brief::Drafting;

/// Gmail clips messages whose HTML is larger than this.
const GMAIL_CLIP_BYTES: usize = 102 * 1024;

/// How long the edition page waits for cards the cache lacks (well inside
/// `[web] idle_timeout`'s default).
const CARD_DRAFTING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

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

/// One story's card on the editor's page: every field with its grounding
/// mark and the editor's text where there is one.
#[derive(Serialize)]
struct CardRow {
    id: i64,
    title: String,
    /// The model that drafted it; empty when there is no draft.
    model: String,
    fields: Vec<FieldRow>,
}

#[derive(Serialize)]
struct FieldRow {
    name: &'static str,
    /// The text shown: the editor's, else the draft's.
    text: String,
    edited: bool,
    /// The text around and of the sentence that failed the check, for a highlight.
    before: String,
    flagged: String,
    after: String,
    /// The figures not found in the sources.
    unsupported: String,
}

impl FieldRow {
    fn new(name: &'static str, drafted: Option<&crate::domain::CardText>, edit: Option<&str>) -> FieldRow {
        let mut row = FieldRow {
            name,
            text: String::new(),
            edited: edit.is_some(),
            before: String::new(),
            flagged: String::new(),
            after: String::new(),
            unsupported: String::new(),
        };
        if let Some(edit) = edit {
            row.text = edit.to_string();
        } else if let Some(d) = drafted {
            row.text = d.text.clone();
            if !d.verified() {
                row.unsupported = d.grounding.unsupported.join(", ");
                let sentence = d.grounding.sentences.first().cloned().unwrap_or_default();
                match d.text.find(&sentence).filter(|_| !sentence.is_empty()) {
                    Some(at) => {
                        row.before = d.text[..at].to_string();
                        row.flagged = sentence.clone();
                        row.after = d.text[at + sentence.len()..].to_string();
                    }
                    None => row.flagged = d.text.clone(),
                }
            }
        }
        row
    }
}

/// The cards of the issue's stories as the editor reviews them.
async fn card_rows(
    app: &App,
    edition: &crate::config::Edition,
    stories: &[&crate::domain::StoredStory],
) -> crate::Result<Vec<CardRow>> {
    use crate::domain::CardField;
    // The preview above drafted what it could; this reads the cache.
    let (cards, _) = crate::brief::cards_for(&app.config, &app.store, stories, Drafting::CacheOnly, app.now())
        .await
        .map_err(|e| crate::Error::Other(e.to_string()))?;
    let edits = app.store.card_edits(&edition.name).await?;
    let mut rows = Vec::new();
    for story in stories {
        let card = cards.get(&story.id);
        let edit = |f: CardField| {
            edits
                .iter()
                .find(|e| e.story_id == story.id && e.field == f)
                .map(|e| e.text.as_str())
        };
        let why = card.and_then(|c| c.why_it_matters.iter().find(|w| w.audience == edition.audience));
        // The takeaways as one text, a line each, checked as a whole.
        let takeaways = card.map(|c| {
            let text = c
                .takeaways
                .iter()
                .map(|t| t.text.text.clone())
                .collect::<Vec<_>>()
                .join("\n");
            let mut grounding = crate::domain::Grounding::default();
            for t in &c.takeaways {
                grounding
                    .unsupported
                    .extend(t.text.grounding.unsupported.iter().cloned());
                grounding.sentences.extend(t.text.grounding.sentences.iter().cloned());
            }
            crate::domain::CardText { text, grounding }
        });
        rows.push(CardRow {
            id: story.id,
            title: story.title.clone(),
            model: card.map(|c| c.model.clone()).unwrap_or_default(),
            fields: vec![
                FieldRow::new("tldr", card.map(|c| &c.tldr), edit(CardField::Tldr)),
                FieldRow::new(
                    "what_changed",
                    card.map(|c| &c.what_changed),
                    edit(CardField::WhatChanged),
                ),
                FieldRow::new("why_it_matters", why.map(|w| &w.text), edit(CardField::WhyItMatters)),
                FieldRow::new(
                    "what_to_do_next",
                    card.map(|c| &c.what_to_do_next),
                    edit(CardField::WhatToDoNext),
                ),
                FieldRow::new("takeaways", takeaways.as_ref(), edit(CardField::Takeaways)),
            ],
        });
    }
    Ok(rows)
}

#[derive(Serialize)]
struct Check {
    ok: bool,
    text: String,
}

pub(super) async fn edition_page(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(edition): Path<String>,
) -> Response {
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
    // Cards the cache lacks are drafted for the editor, but a slow model
    // server must not keep the page from answering: past the deadline it
    // shows what the cache holds, and says so.
    let mut notice = notice;
    let drafted = tokio::time::timeout(
        CARD_DRAFTING_DEADLINE,
        app.preview_message_drafting(&edition.name, None, now, Drafting::Draft),
    )
    .await;
    let preview = match drafted {
        Ok(result) => result,
        Err(_) => {
            notice.get_or_insert_with(|| {
                format!(
                    "The model server did not draft every card within {} s: the page shows the cards drafted so far; reload later.",
                    CARD_DRAFTING_DEADLINE.as_secs()
                )
            });
            app.preview_message_drafting(&edition.name, None, now, Drafting::CacheOnly)
                .await
        }
    };
    let preview = match preview {
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
    let kept: Vec<&crate::domain::StoredStory> = selection.stories().map(|r| r.story).collect();
    let cards = if app.config.briefing.is_some() {
        match card_rows(app, edition, &kept).await {
            Ok(c) => c,
            Err(e) => return server_error(app, "editor cards", e),
        }
    } else {
        Vec::new()
    };
    let intro_draft = match app.intro_draft(&edition.name).await {
        Ok(d) => d,
        Err(e) => return server_error(app, "editor intro", e),
    };
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
        briefing: bool,
        cards: Vec<CardRow>,
        intro_draft: Option<String>,
        intro_accepted: bool,
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
            briefing: app.config.briefing.is_some(),
            cards,
            intro_accepted: intro_draft.as_ref().is_some_and(|(_, a)| *a),
            intro_draft: intro_draft.map(|(d, _)| d),
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

pub(super) async fn edition_action(
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
            "edit" => {
                let field_name = field(&fields, "field").unwrap_or_default();
                let text = field(&fields, "text").unwrap_or_default();
                let (s, f) = app.edit_card(&edition, &story(), field_name, text, now).await?;
                Ok(if text.trim().is_empty() {
                    format!("#{} {f}: back to the draft.", s.id)
                } else {
                    format!("#{} {f}: saved; it wins over every draft.", s.id)
                })
            }
            "accept-intro" => match app.accept_intro_draft(&edition, now).await? {
                Some(_) => Ok("Drafted intro accepted: it is used while there is no note.".to_string()),
                None => Ok("No intro drafted yet.".to_string()),
            },
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
