//! The briefing: each ranked story as a card — TL;DR, what changed, why it
//! matters per audience, what to do next, cited takeaways — drafted by an
//! OpenAI-compatible model server, read strictly ([`card`]), marked by the
//! grounding check ([`grounding`]) and cached by what the model was sent;
//! and each story's timeline from the store ([`timeline`]).
//!
//! A briefing never blocks anything: a server that is down, slow or
//! answering garbage costs the card, and the story keeps its extractive
//! TL;DR. Sending reads the cache only ([`Drafting::CacheOnly`]).

pub mod card;
pub mod client;
pub mod grounding;
pub mod intro;
pub mod prompt;
pub mod timeline;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;

use crate::config::{Briefing, Config};
use crate::domain::{Card, CardSource, StoredStory};
use crate::rank::audiences_for;
use crate::store::{CachedBrief, Store, StoreError};
use card::{CardInput, Rejection, read_card};
use client::ModelClient;
use prompt::{AudienceLine, CardPrompt, PROMPT_VERSION, SourceText, card_prompt};

/// Other sources of a story's cluster the model reads beside it.
const MAX_CITED_SIBLINGS: i64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum BriefError {
    #[error("the model client: {0}")]
    Setup(String),
    #[error("the model server at {0} cannot be reached")]
    Unreachable(String),
    #[error("the model server at {0} did not answer in time")]
    Timeout(String),
    #[error("the model server: {0}")]
    Transport(String),
    #[error("the model server answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("the model server's answer: {0}")]
    Garbage(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether a run may ask the model or only read the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drafting {
    /// What a send does: nothing but the database.
    CacheOnly,
    /// Ask the model for stories the cache lacks (within the budget).
    Draft,
    /// Ask the model again even where the cache has an answer.
    Regenerate,
}

/// What a run of the briefing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BriefReport {
    /// Cards the model drafted in this run.
    pub drafted: usize,
    /// Cards (or rejections) taken from the cache.
    pub reused: usize,
    /// Stories whose answers were rejected twice: they keep the extractive TL;DR.
    pub rejected: usize,
    /// Requests that failed (server down, slow, erroring).
    pub failed: usize,
    /// Stories left for a later run by `max_stories_per_run`.
    pub over_budget: usize,
    /// Stories without a card because the run reads the cache only.
    pub uncached: usize,
    /// Intros drafted (one per edition whose cards changed).
    pub intros: usize,
    /// The model server was unreachable or too slow, and was not asked
    /// again in this run.
    pub gave_up: bool,
    pub requests: usize,
    pub tokens_in: u64,
    pub tokens_out: u64,
    /// The first problem met, for the operator.
    pub last_error: Option<String>,
}

impl BriefReport {
    pub fn add(&mut self, other: &BriefReport) {
        self.drafted += other.drafted;
        self.reused += other.reused;
        self.rejected += other.rejected;
        self.failed += other.failed;
        self.over_budget += other.over_budget;
        self.uncached += other.uncached;
        self.intros += other.intros;
        self.gave_up |= other.gave_up;
        self.requests += other.requests;
        self.tokens_in += other.tokens_in;
        self.tokens_out += other.tokens_out;
        if self.last_error.is_none() {
            self.last_error.clone_from(&other.last_error);
        }
    }
}

/// One story to brief and what the model reads for it.
struct Request {
    story_id: i64,
    prompt: CardPrompt,
    sources: Vec<(CardSource, String)>,
}

/// Cards for `stories`, by story id. Cached answers are reused unless
/// `drafting` says regenerate; the model is asked for at most
/// `max_stories_per_run` of the others.
pub async fn cards_for(
    config: &Config,
    store: &Store,
    stories: &[&StoredStory],
    drafting: Drafting,
    now: DateTime<Utc>,
) -> Result<(HashMap<i64, Card>, BriefReport), BriefError> {
    let mut report = BriefReport::default();
    let mut cards = HashMap::new();
    let Some(settings) = &config.briefing else {
        return Ok((cards, report));
    };
    let mut requests = Vec::with_capacity(stories.len());
    let mut seen = std::collections::HashSet::new();
    for story in stories {
        if seen.insert(story.id) {
            requests.push(request_for(config, settings, store, story).await?);
        }
    }
    let mut to_ask = Vec::new();
    for r in requests {
        if drafting != Drafting::Regenerate {
            match store
                .cached_brief(&r.prompt.input_hash, &settings.model, PROMPT_VERSION)
                .await?
            {
                Some(CachedBrief::Card(card)) => {
                    report.reused += 1;
                    metrics::counter!("tidings_briefing_cache_hits_total").increment(1);
                    cards.insert(r.story_id, *card);
                    continue;
                }
                Some(CachedBrief::Rejected(_)) => {
                    report.reused += 1;
                    metrics::counter!("tidings_briefing_cache_hits_total").increment(1);
                    continue;
                }
                None => {}
            }
        }
        if drafting == Drafting::CacheOnly {
            report.uncached += 1;
            continue;
        }
        to_ask.push(r);
    }
    if to_ask.len() > settings.max_stories_per_run {
        report.over_budget = to_ask.len() - settings.max_stories_per_run;
        to_ask.truncate(settings.max_stories_per_run);
    }
    if to_ask.is_empty() {
        return Ok((cards, report));
    }
    let client = ModelClient::new(settings)?;
    let down = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicUsize::new(0));
    let results: Vec<(i64, Drafted)> = futures_util::stream::iter(to_ask)
        .map(|r| {
            let client = client.clone();
            let down = Arc::clone(&down);
            let asked = Arc::clone(&asked);
            async move {
                let drafted = draft(&client, settings, &r, &down, &asked, now).await;
                if let Drafted::Answered { brief, tokens } = &drafted
                    && let Err(e) = store
                        .put_brief(
                            &r.prompt.input_hash,
                            &settings.model,
                            PROMPT_VERSION,
                            r.story_id,
                            brief,
                            *tokens,
                            now,
                        )
                        .await
                {
                    tracing::warn!(story = r.story_id, error = %e, "could not cache a briefing");
                }
                (r.story_id, drafted)
            }
        })
        .buffer_unordered(settings.concurrency)
        .collect()
        .await;
    report.requests = asked.load(Ordering::SeqCst);
    report.gave_up = down.load(Ordering::SeqCst);
    // The first real failure says what happened; stories skipped after it only that.
    let mut skipped_error = None;
    for (story_id, drafted) in results {
        match drafted {
            Drafted::Answered { brief, tokens } => {
                report.tokens_in += tokens.0;
                report.tokens_out += tokens.1;
                match brief {
                    CachedBrief::Card(card) => {
                        report.drafted += 1;
                        cards.insert(story_id, *card);
                    }
                    CachedBrief::Rejected(reason) => {
                        report.rejected += 1;
                        tracing::warn!(story = story_id, %reason, "the model's card was rejected twice; the story keeps its extractive TL;DR");
                        report.last_error.get_or_insert(format!("story #{story_id}: {reason}"));
                    }
                }
            }
            Drafted::Failed { error, tokens, skipped } => {
                report.tokens_in += tokens.0;
                report.tokens_out += tokens.1;
                report.failed += 1;
                if skipped {
                    skipped_error.get_or_insert(error);
                } else {
                    report.last_error.get_or_insert(error);
                }
            }
        }
    }
    if report.last_error.is_none() {
        report.last_error = skipped_error;
    }
    Ok((cards, report))
}

/// What the model is sent for `story`: its text, the texts of up to three
/// other sources of its cluster, and the audiences it ranks for.
async fn request_for(
    config: &Config,
    settings: &Briefing,
    store: &Store,
    story: &StoredStory,
) -> Result<Request, BriefError> {
    let siblings = match story.cluster_id {
        Some(cluster) => store.cluster_members(cluster, story.id, MAX_CITED_SIBLINGS).await?,
        None => Vec::new(),
    };
    let weights: HashMap<String, f64> = config.sources.iter().map(|s| (s.name.clone(), s.weight)).collect();
    let audiences = audiences_for(story, config.audiences.values(), &weights);
    // The configuration's keys: `audiences_for` gives the audiences themselves.
    let lines: Vec<AudienceLine<'_>> = audiences
        .iter()
        .filter_map(|a| {
            config
                .audiences
                .iter()
                .find(|(_, c)| std::ptr::eq(*c, *a))
                .map(|(name, c)| AudienceLine {
                    name: name.as_str(),
                    title: c.title.as_str(),
                })
        })
        .collect();
    let mut sources: Vec<(CardSource, String)> = Vec::new();
    for s in std::iter::once(story).chain(siblings.iter()) {
        let text = s.content.as_deref().unwrap_or(&s.summary_text);
        // The title leads: a feed's summary may not repeat it.
        let text = format!("{}. {}", s.title.trim_end_matches('.'), text);
        sources.push((
            CardSource {
                story_id: s.id,
                source: s.source.clone(),
                link: s.link.clone(),
            },
            crate::text::shorten(&crate::text::clean_line(&text), settings.max_input_chars),
        ));
    }
    let texts: Vec<SourceText<'_>> = std::iter::once(story)
        .chain(siblings.iter())
        .map(|s| SourceText {
            source: &s.source,
            title: &s.title,
            text: s.content.as_deref().unwrap_or(&s.summary_text),
        })
        .collect();
    let prompt = card_prompt(&texts, &lines, settings.max_input_chars);
    Ok(Request {
        story_id: story.id,
        prompt,
        sources,
    })
}

enum Drafted {
    /// The model answered: a card, or a rejection after the retry.
    Answered { brief: CachedBrief, tokens: (u64, u64) },
    /// No usable answer this run; nothing is cached. `skipped`: not asked,
    /// the server had failed earlier in the run.
    Failed {
        error: String,
        tokens: (u64, u64),
        skipped: bool,
    },
}

/// Asks for one card, and once more when the answer is rejected.
async fn draft(
    client: &ModelClient,
    settings: &Briefing,
    r: &Request,
    down: &AtomicBool,
    asked: &AtomicUsize,
    now: DateTime<Utc>,
) -> Drafted {
    let mut tokens = (0, 0);
    let mut last_rejection = Rejection(String::new());
    // An answer that is not even a chat completion is the server's fault,
    // not the model's: nothing is cached, a later run asks again.
    let mut envelope_garbage = false;
    for _attempt in 0..2 {
        if down.load(Ordering::SeqCst) {
            return Drafted::Failed {
                error: "the model server failed earlier in this run; not asked again".into(),
                tokens,
                skipped: true,
            };
        }
        asked.fetch_add(1, Ordering::SeqCst);
        metrics::counter!("tidings_briefing_requests_total").increment(1);
        let answer = client
            .complete(r.prompt.system, &r.prompt.user, "story_card", &r.prompt.schema)
            .await;
        let completion = match answer {
            Ok(c) => c,
            Err(BriefError::Garbage(reason)) => {
                metrics::counter!("tidings_briefing_failures_total").increment(1);
                last_rejection = Rejection(reason);
                envelope_garbage = true;
                continue;
            }
            Err(e) => {
                // A server that is down or too slow is not asked again this run.
                if matches!(e, BriefError::Unreachable(_) | BriefError::Timeout(_)) {
                    down.store(true, Ordering::SeqCst);
                }
                metrics::counter!("tidings_briefing_failures_total").increment(1);
                tracing::warn!(story = r.story_id, error = %e, "no card drafted");
                return Drafted::Failed {
                    error: e.to_string(),
                    tokens,
                    skipped: false,
                };
            }
        };
        envelope_garbage = false;
        tokens.0 += completion.tokens_in;
        tokens.1 += completion.tokens_out;
        metrics::counter!("tidings_briefing_tokens_total", "direction" => "in").increment(completion.tokens_in);
        metrics::counter!("tidings_briefing_tokens_total", "direction" => "out").increment(completion.tokens_out);
        let read = if completion.finish_reason.as_deref() == Some("length") {
            Err(Rejection(format!(
                "the answer was cut at max_output_tokens ({})",
                settings.max_output_tokens
            )))
        } else {
            read_card(
                &completion.content,
                &CardInput {
                    sources: r.sources.iter().map(|(s, t)| (s.clone(), t.as_str())).collect(),
                    audiences: &r.prompt.audiences,
                    model: &settings.model,
                    now,
                },
            )
        };
        match read {
            Ok(card) => {
                return Drafted::Answered {
                    brief: CachedBrief::Card(Box::new(card)),
                    tokens,
                };
            }
            Err(rejection) => {
                metrics::counter!("tidings_briefing_rejections_total").increment(1);
                tracing::info!(story = r.story_id, reason = %rejection, "the model's card was rejected");
                last_rejection = rejection;
            }
        }
    }
    if envelope_garbage {
        return Drafted::Failed {
            error: format!("the model server's answer: {}", last_rejection.0),
            tokens,
            skipped: false,
        };
    }
    Drafted::Answered {
        brief: CachedBrief::Rejected(last_rejection.0),
        tokens,
    }
}

/// What the cache holds for `story` as it would be asked for now.
pub async fn cached_answer(
    config: &Config,
    store: &Store,
    story: &StoredStory,
) -> Result<Option<CachedBrief>, BriefError> {
    let Some(settings) = &config.briefing else {
        return Ok(None);
    };
    let r = request_for(config, settings, store, story).await?;
    Ok(store
        .cached_brief(&r.prompt.input_hash, &settings.model, PROMPT_VERSION)
        .await?)
}
