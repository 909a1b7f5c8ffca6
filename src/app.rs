//! The commands, as library functions: each takes the validated config, the
//! store and `now`, and returns a report for the CLI to print. No printing
//! and no exit codes here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::collect::{self, FetchLimits, Fetcher, SourceResult};
use crate::config::{Config, Edition, Source};
use crate::deliver::{self, DeliveryPolicy, IssueDelivery, MessageContext, RunReport, Transport};
use crate::domain::{EmailAddress, StoredStory, SubscriberStatus};
use crate::rank::{self, RankPolicy, Ranked};
use crate::render::{self, IssueView, Recipient, RenderedIssue, Renderer};
use crate::store::{DeliveryCounts, FetchRecord, IssueRow, NewIssue, Store};
use crate::token::Signer;
use crate::{Error, Result};

const SECRET_SETTING: &str = "link_secret";
/// Sources fetched at once.
const COLLECT_CONCURRENCY: usize = 16;

pub struct App {
    pub config: Config,
    pub store: Store,
}

#[derive(Debug)]
pub enum SourceStatus {
    Collected {
        new: usize,
        unchanged: usize,
        skipped: usize,
    },
    NotModified,
    Failed(String),
}

#[derive(Debug)]
pub struct SourceReport {
    pub name: String,
    pub location: String,
    pub status: SourceStatus,
}

#[derive(Debug)]
pub struct CollectReport {
    pub sources: Vec<SourceReport>,
    pub elapsed: std::time::Duration,
}

impl CollectReport {
    pub fn failed(&self) -> usize {
        self.sources
            .iter()
            .filter(|s| matches!(s.status, SourceStatus::Failed(_)))
            .count()
    }
    pub fn new_stories(&self) -> usize {
        self.sources
            .iter()
            .map(|s| match s.status {
                SourceStatus::Collected { new, .. } => new,
                _ => 0,
            })
            .sum()
    }
}

/// The outcome of `send` for one edition.
#[derive(Debug)]
pub enum SendReport {
    /// Fewer ranked stories than the edition's `min_stories`: nothing composed.
    TooFew {
        slot: DateTime<Utc>,
        found: usize,
        min: usize,
    },
    Delivered {
        issue: IssueRow,
        /// Whether this run composed the issue (false: it existed already).
        composed: bool,
        run: RunReport,
    },
    DryRun {
        slot: DateTime<Utc>,
        subject: String,
        stories: usize,
        /// Recipients a real send would mail now.
        recipients: i64,
        existing: Option<DeliveryCounts>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewFormat {
    Html,
    Text,
    Eml,
}

impl App {
    pub async fn open(config: Config) -> Result<App> {
        let store = Store::open(&config.database).await?;
        Ok(App { config, store })
    }

    // -- collect ----------------------------------------------------------

    /// Fetches every source once; one failing source never stops the others.
    pub async fn collect(&self, now: DateTime<Utc>) -> Result<CollectReport> {
        let started = Instant::now();
        let fetcher =
            Fetcher::new(FetchLimits::default()).map_err(|e| Error::Other(e.to_string()))?;
        let permits = Arc::new(Semaphore::new(COLLECT_CONCURRENCY));
        let rules = Arc::new(self.config.tag_rules.clone());
        let mut tasks = JoinSet::new();
        for (index, source) in self.config.sources.iter().enumerate() {
            let validators = self
                .store
                .source_validators(&source.name, &source.location.to_string())
                .await?;
            let (fetcher, source, rules, permits) = (
                fetcher.clone(),
                source.clone(),
                Arc::clone(&rules),
                Arc::clone(&permits),
            );
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result =
                    collect::collect_source(&fetcher, &source, &validators, &rules, now).await;
                (index, result)
            });
        }
        let mut results: Vec<Option<SourceReport>> =
            (0..self.config.sources.len()).map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            let (index, result) =
                joined.map_err(|e| Error::Other(format!("collect task failed: {e}")))?;
            let source = &self.config.sources[index];
            let status = self.record_source(source, result, now).await?;
            match &status {
                SourceStatus::Failed(reason) => {
                    tracing::warn!(source = %source.name, "failed: {reason}")
                }
                s => tracing::debug!(source = %source.name, "{s:?}"),
            }
            results[index] = Some(SourceReport {
                name: source.name.clone(),
                location: source.location.to_string(),
                status,
            });
        }
        Ok(CollectReport {
            sources: results.into_iter().flatten().collect(),
            elapsed: started.elapsed(),
        })
    }

    async fn record_source(
        &self,
        source: &Source,
        result: std::result::Result<SourceResult, collect::CollectError>,
        now: DateTime<Utc>,
    ) -> Result<SourceStatus> {
        let url = source.location.to_string();
        Ok(match result {
            Ok(SourceResult::NotModified) => {
                self.store
                    .record_fetch(&source.name, &url, FetchRecord::NotModified, now)
                    .await?;
                SourceStatus::NotModified
            }
            Ok(SourceResult::Stories {
                stories,
                validators,
                skipped,
            }) => {
                let new = self.store.insert_stories(&stories).await?;
                self.store
                    .record_fetch(&source.name, &url, FetchRecord::Ok(&validators), now)
                    .await?;
                SourceStatus::Collected {
                    new,
                    unchanged: stories.len() - new,
                    skipped,
                }
            }
            Err(e) => {
                let reason = e.to_string();
                self.store
                    .record_fetch(&source.name, &url, FetchRecord::Error(&reason), now)
                    .await?;
                SourceStatus::Failed(reason)
            }
        })
    }

    // -- rank -------------------------------------------------------------

    pub fn source_weights(&self) -> HashMap<String, f64> {
        self.config
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.weight))
            .collect()
    }

    /// Stories that could be ranked with a `window_days` window ending at `now`.
    pub async fn candidate_stories(
        &self,
        window_days: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredStory>> {
        Ok(self
            .store
            .stories_published_between(now - Duration::days(window_days), now + Duration::hours(1))
            .await?)
    }

    /// The window used by `rank AUDIENCE`: that of the first edition for the
    /// audience, else 7 days.
    pub fn audience_window_days(&self, audience: &str) -> i64 {
        self.config
            .editions
            .iter()
            .find(|e| e.audience == audience)
            .map(|e| e.window_days)
            .unwrap_or(7)
    }

    // -- secret -----------------------------------------------------------

    /// The key that signs links: `TIDINGS_SECRET`, else one generated once
    /// and kept in the database so every replica shares it.
    pub async fn signer(&self) -> Result<Signer> {
        if let Some(secret) = &self.config.secret {
            return Ok(Signer::new(secret.expose().as_bytes()));
        }
        let (value, created) = self
            .store
            .setting_or_init(SECRET_SETTING, &random_hex(32)?)
            .await?;
        if created {
            tracing::info!(
                "TIDINGS_SECRET is not set: generated a random secret for signing links and stored it in the database"
            );
        }
        Ok(Signer::new(value.as_bytes()))
    }

    /// As [`App::signer`], but never writes: for previews.
    async fn signer_read_only(&self) -> Result<Signer> {
        if let Some(secret) = &self.config.secret {
            return Ok(Signer::new(secret.expose().as_bytes()));
        }
        Ok(match self.store.setting(SECRET_SETTING).await? {
            Some(v) => Signer::new(v.as_bytes()),
            None => Signer::new(random_hex(32)?.as_bytes()),
        })
    }

    // -- compose and send -------------------------------------------------

    fn renderer(&self) -> Result<Renderer> {
        Ok(Renderer::load(&self.config.site.templates_dir)?)
    }

    fn slot(&self, edition: &Edition, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        edition.schedule.slot_at_or_before(now).ok_or_else(|| {
            Error::Other(format!(
                "edition {}: schedule \"{}\" has no slot before now",
                edition.name,
                edition.schedule.expr()
            ))
        })
    }

    /// Ranks and renders what an issue of `edition` would hold at `now`.
    async fn draft(
        &self,
        edition: &Edition,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Draft> {
        let audience = self.config.audience(&edition.audience)?;
        let stories = self.candidate_stories(edition.window_days, now).await?;
        let policy = RankPolicy::for_window_days(edition.window_days, edition.max_stories);
        let weights = self.source_weights();
        let ranked: Vec<Ranked<'_>> = rank::rank(&stories, audience, &weights, &policy, now);
        let view: IssueView = render::build_issue_view(&self.config, edition, &ranked, slot);
        let rendered =
            self.renderer()?
                .render_issue(&edition.template, edition.subject.as_deref(), &view)?;
        Ok(Draft {
            story_ids: ranked.iter().map(|r| (r.story.id, r.score)).collect(),
            rendered,
        })
    }

    fn message_context(&self, edition: &Edition) -> MessageContext {
        let from = self.config.site.from.clone();
        let title = edition.title.replace('"', "'");
        MessageContext {
            list_id: format!("\"{title}\" <{}.{}>", edition.name, from.email.domain()),
            unsubscribe_mailto: self.config.site.unsubscribe_mailto.clone(),
            from,
        }
    }

    pub fn transport(&self) -> Result<Transport> {
        Ok(match &self.config.smtp {
            Some(smtp) => Transport::smtp(smtp, self.config.delivery.concurrency)?,
            None => Transport::Mailbox(self.config.mailbox_dir.clone()),
        })
    }

    /// Composes the issue for the edition's current slot (once) and delivers
    /// whatever of it is due.
    pub async fn send(
        &self,
        edition_name: &str,
        dry_run: bool,
        now: DateTime<Utc>,
    ) -> Result<SendReport> {
        let edition = self.config.edition(edition_name)?;
        let slot = self.slot(edition, now)?;
        if dry_run {
            return self.dry_run(edition, slot, now).await;
        }
        // The secret first: a bad or missing key stops us before anything is sent.
        let signer = self.signer().await?;
        let (issue, composed) = match self.store.find_issue(&edition.name, slot).await? {
            Some(issue) => (issue, false),
            None => {
                let draft = self.draft(edition, slot, now).await?;
                if draft.story_ids.len() < edition.min_stories {
                    return Ok(SendReport::TooFew {
                        slot,
                        found: draft.story_ids.len(),
                        min: edition.min_stories,
                    });
                }
                let content = serde_json::to_string(&draft.rendered)
                    .map_err(|e| Error::Other(e.to_string()))?;
                let nonce = random_hex(6)?;
                let (issue, created) = self
                    .store
                    .create_issue(&NewIssue {
                        edition: &edition.name,
                        slot_at: slot,
                        composed_at: now,
                        subject: &draft.rendered.anonymous.subject,
                        content: &content,
                        stories: &draft.story_ids,
                        message_id_nonce: &nonce,
                        message_id_domain: self.config.site.from.email.domain(),
                    })
                    .await?;
                (issue, created)
            }
        };
        let counts = self.store.delivery_counts(issue.id).await?;
        let run = if counts.pending + counts.sending == 0 {
            RunReport {
                counts,
                failures: self.store.failed_deliveries(issue.id).await?,
                ..RunReport::default()
            }
        } else {
            let rendered: RenderedIssue = serde_json::from_str(&issue.content)
                .map_err(|e| deliver::DeliverError::Content(format!("issue {}: {e}", issue.id)))?;
            let transport = self.transport()?;
            transport.check().await?;
            let job = Arc::new(IssueDelivery {
                issue: issue.clone(),
                rendered,
                context: self.message_context(edition),
                signer,
                base_url: self.config.site.base_url.clone(),
            });
            let policy = DeliveryPolicy::new(self.config.delivery.concurrency);
            let result = deliver::run_issue(&self.store, &transport, job, &policy, &Utc::now).await;
            transport.shutdown().await;
            result?
        };
        Ok(SendReport::Delivered {
            issue,
            composed,
            run,
        })
    }

    async fn dry_run(
        &self,
        edition: &Edition,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SendReport> {
        if let Some(issue) = self.store.find_issue(&edition.name, slot).await? {
            let counts = self.store.delivery_counts(issue.id).await?;
            let stories = self.store.issue_story_count(issue.id).await? as usize;
            return Ok(SendReport::DryRun {
                slot,
                subject: issue.subject,
                stories,
                recipients: counts.pending + counts.sending,
                existing: Some(counts),
            });
        }
        let draft = self.draft(edition, slot, now).await?;
        Ok(SendReport::DryRun {
            slot,
            subject: draft.rendered.anonymous.subject.clone(),
            stories: draft.story_ids.len(),
            recipients: if draft.story_ids.len() < edition.min_stories {
                0
            } else {
                self.store.active_subscriber_count(&edition.name).await?
            },
            existing: None,
        })
    }

    /// Renders the edition's next issue for one recipient, recording nothing.
    pub async fn preview(
        &self,
        edition_name: &str,
        format: PreviewFormat,
        to: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let edition = self.config.edition(edition_name)?;
        let current = self.slot(edition, now)?;
        // If the current slot's issue exists, the next issue is the next slot's.
        let slot = match self.store.find_issue(&edition.name, current).await? {
            Some(_) => edition.schedule.next_after(now).unwrap_or(current),
            None => current,
        };
        let draft = self.draft(edition, slot, now).await?;
        let subscriber = match to {
            Some(email) => self.store.subscriber_by_email(email).await?,
            None => self.store.list_subscribers().await?.into_iter().find(|s| {
                s.status == SubscriberStatus::Active && s.editions.contains(&edition.name)
            }),
        };
        let (id, email, name) = match (&subscriber, to) {
            (Some(s), _) => (s.id, s.email.to_string(), s.name.clone()),
            (None, Some(email)) => (0, email.to_string(), None),
            (None, None) => (
                0,
                "reader@example.com".to_string(),
                Some("Example Reader".to_string()),
            ),
        };
        let job = IssueDelivery {
            issue: IssueRow {
                id: 0,
                edition: edition.name.clone(),
                slot_at: slot,
                composed_at: now,
                subject: draft.rendered.anonymous.subject.clone(),
                content: String::new(),
            },
            rendered: draft.rendered,
            context: self.message_context(edition),
            signer: self.signer_read_only().await?,
            base_url: self.config.site.base_url.clone(),
        };
        let token = job.unsubscribe_token(id);
        let url = job.unsubscribe_url(&token);
        Ok(match format {
            PreviewFormat::Eml => {
                let row = crate::store::DeliveryRow {
                    id: 0,
                    subscriber_id: id,
                    email,
                    name,
                    message_id: format!(
                        "<tidings.preview.{}@{}>",
                        random_hex(6)?,
                        self.config.site.from.email.domain()
                    ),
                    attempts: 0,
                };
                job.message_for(&row, std::time::SystemTime::now())?
                    .formatted()
            }
            f => {
                let personal = render::personalize(
                    &job.rendered,
                    &Recipient {
                        name: name.as_deref(),
                        email: &email,
                        unsubscribe_url: &url,
                    },
                );
                if f == PreviewFormat::Html {
                    personal.html
                } else {
                    personal.text
                }
                .into_bytes()
            }
        })
    }

    // -- subscribers --------------------------------------------------------

    /// Checks that every named edition exists.
    pub fn check_editions(&self, editions: &[String]) -> Result<()> {
        for e in editions {
            self.config.edition(e)?;
        }
        Ok(())
    }
}

struct Draft {
    story_ids: Vec<(i64, f64)>,
    rendered: RenderedIssue,
}

/// `bytes` random bytes from the OS, hex-encoded.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::Other(format!("no randomness from the OS: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// One valid row of a subscriber CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRow {
    pub email: EmailAddress,
    pub name: Option<String>,
    pub editions: Vec<String>,
}

/// Reads a CSV with the header `email,name,editions` (`name` and `editions`
/// optional; editions separated by `;`, `|` or spaces; none means every
/// edition). Each row is valid or an error with its line number; a missing
/// `email` column fails the whole file.
#[allow(clippy::type_complexity)]
pub fn parse_subscriber_csv(
    data: &[u8],
    config: &Config,
) -> std::result::Result<Vec<std::result::Result<ImportRow, (u64, String)>>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(data);
    let headers = reader
        .headers()
        .map_err(|e| format!("cannot read the header: {e}"))?
        .clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}').eq_ignore_ascii_case(name))
    };
    let email_col = column("email")
        .ok_or("the header has no \"email\" column (expected email,name,editions)")?;
    let name_col = column("name");
    let editions_col = column("editions");
    let all: Vec<String> = config.editions.iter().map(|e| e.name.clone()).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                rows.push(Err((line, format!("unreadable row: {e}"))));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let raw_email = record.get(email_col).unwrap_or("");
        let email = match EmailAddress::parse(raw_email) {
            Ok(e) => e,
            Err(e) => {
                rows.push(Err((line, format!("\"{raw_email}\": {e}"))));
                continue;
            }
        };
        let name = name_col
            .and_then(|c| record.get(c))
            .map(crate::collect::sanitize::clean_line)
            .filter(|n| !n.is_empty());
        let editions: Vec<String> = editions_col
            .and_then(|c| record.get(c))
            .map(|s| {
                s.split([';', '|', ' '])
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(unknown) = editions.iter().find(|e| !all.contains(e)) {
            rows.push(Err((
                line,
                format!(
                    "unknown edition \"{unknown}\" (editions: {})",
                    all.join(", ")
                ),
            )));
            continue;
        }
        rows.push(Ok(ImportRow {
            email,
            name,
            editions: if editions.is_empty() {
                all.clone()
            } else {
                editions
            },
        }));
    }
    Ok(rows)
}
