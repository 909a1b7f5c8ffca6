//! The commands, as library functions: each takes the validated config, the
//! store and `now`, and returns a report for the CLI to print. No printing
//! and no exit codes here.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use crate::clock::SharedClock;
use crate::collect;
use crate::config::{Config, Edition};
use crate::deliver::{self, DeliveryPolicy, IssueDelivery, MessageContext, RunReport, Transport};
use crate::domain::{EmailAddress, StoredStory};
use crate::rank::{self, RankPolicy};
use crate::render::{self, IssueView, RenderedIssue, Renderer};
use crate::store::{DeliveryCounts, IssueRow, NewIssue, Store};
use crate::token::Signer;
use crate::{Error, Result};

mod import;
mod inspect;

pub use crate::collect::{CollectProgress, CollectReport, SourceReport, SourceStatus};
pub use import::{ImportLine, ImportRow, parse_subscriber_csv};
pub use inspect::{InspectFeed, InspectItem, InspectReport, inspect};

const SECRET_SETTING: &str = "link_secret";
/// The stories, policy and overrides `rank AUDIENCE` selects with.
pub struct RankedAudience {
    pub audience: crate::config::Audience,
    /// The edition whose caps apply, if one serves the audience.
    pub edition: Option<String>,
    pub policy: RankPolicy,
    pub overrides: rank::Overrides,
    pub stories: Vec<StoredStory>,
}

impl RankedAudience {
    pub fn select(&self, now: DateTime<Utc>, source_weights: &HashMap<String, f64>) -> rank::Selection<'_> {
        rank::select(
            &self.stories,
            &self.audience,
            source_weights,
            &self.policy,
            &self.overrides,
            now,
        )
    }
}

pub struct App {
    pub config: Config,
    pub store: Store,
    /// The templates, loaded once per configuration (again on reload).
    renderer: Arc<Renderer>,
    /// Where the time comes from: the system clock, or a test's.
    clock: SharedClock,
}

/// The outcome of `send` for one edition.
#[derive(Debug)]
pub enum SendReport {
    /// The edition needs an editor's approval and this slot has none yet.
    AwaitingApproval { slot: DateTime<Utc> },
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

/// How `send` runs.
pub struct SendOptions<'a> {
    /// Show what would be sent; send and record nothing.
    pub dry_run: bool,
    /// Keep going while retries are due within this long.
    pub wait: std::time::Duration,
    /// Turns true to stop: no new claims, in-flight messages finish, the
    /// rest is released for the next run.
    pub stop: tokio::sync::watch::Receiver<bool>,
    pub progress: deliver::DeliveryProgress<'a>,
}

impl SendOptions<'_> {
    /// Wait 10 minutes for retries; never stopped; no progress display.
    pub fn standard() -> SendOptions<'static> {
        static NO_STOP: std::sync::LazyLock<tokio::sync::watch::Sender<bool>> =
            std::sync::LazyLock::new(|| tokio::sync::watch::channel(false).0);
        SendOptions {
            dry_run: false,
            wait: std::time::Duration::from_secs(600),
            stop: NO_STOP.subscribe(),
            progress: &|_| {},
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewFormat {
    Html,
    Text,
    Eml,
}

impl App {
    /// Opens the store and loads the templates; time from the system clock.
    pub async fn open(config: Config) -> Result<App> {
        App::open_with_clock(config, crate::clock::system()).await
    }

    /// As [`App::open`], with time from `clock`.
    pub async fn open_with_clock(config: Config, clock: SharedClock) -> Result<App> {
        let renderer = Arc::new(Renderer::load(&config.site.templates_dir)?);
        let store = Store::open(&config.database).await?;
        Ok(App {
            config,
            store,
            renderer,
            clock,
        })
    }

    /// The current time, from the app's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// The same store with a new configuration (a reload): its templates
    /// are read again.
    pub fn reconfigured(&self, config: Config) -> Result<App> {
        Ok(App {
            renderer: Arc::new(Renderer::load(&config.site.templates_dir)?),
            config,
            store: self.store.clone(),
            clock: Arc::clone(&self.clock),
        })
    }

    // -- collect ----------------------------------------------------------

    /// Fetches every source that is due (all of them with `force`); one
    /// failing source never stops the others. See [`collect::run`].
    pub async fn collect(
        &self,
        now: DateTime<Utc>,
        force: bool,
        progress: CollectProgress<'_>,
    ) -> Result<CollectReport> {
        collect::run(&self.config, &self.store, now, force, progress).await
    }

    // -- rank -------------------------------------------------------------

    pub fn source_weights(&self) -> HashMap<String, f64> {
        self.config.sources.iter().map(|s| (s.name.clone(), s.weight)).collect()
    }

    /// Stories that could be ranked with a `window_days` window ending at `now`.
    pub async fn candidate_stories(&self, window_days: i64, now: DateTime<Utc>) -> Result<Vec<StoredStory>> {
        Ok(self
            .store
            .stories_published_between(now - Duration::days(window_days), now + Duration::hours(1))
            .await?)
    }

    // -- secret -----------------------------------------------------------

    /// The key that signs links: `TIDINGS_SECRET`, else one generated once
    /// and kept in the database so every replica shares it.
    pub async fn signer(&self) -> Result<Signer> {
        if let Some(secret) = &self.config.secret {
            return Ok(Signer::new(secret.expose().as_bytes()));
        }
        let (value, created) = self.store.setting_or_init(SECRET_SETTING, &random_hex(32)?).await?;
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

    /// The configuration's templates, loaded when the `App` was made.
    pub fn renderer(&self) -> &Renderer {
        &self.renderer
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

    /// Composes the issue of `edition` for `slot` (once: another process
    /// may have done it first), its deliveries due from the slot or now.
    /// `Err` carries the report when too few stories rank.
    async fn compose(
        &self,
        edition: &Edition,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<std::result::Result<(IssueRow, bool), SendReport>> {
        let draft = self.draft(edition, slot, now).await?;
        if draft.story_ids.len() < edition.min_stories {
            return Ok(Err(SendReport::TooFew {
                slot,
                found: draft.story_ids.len(),
                min: edition.min_stories,
            }));
        }
        let content = serde_json::to_string(&draft.rendered).map_err(|e| Error::Other(e.to_string()))?;
        let nonce = random_hex(6)?;
        let created = self
            .store
            .create_issue(&NewIssue {
                edition: &edition.name,
                slot_at: slot,
                composed_at: now,
                deliver_from: slot.max(now),
                subject: &draft.rendered.public_subject(),
                content: &content,
                stories: &draft.story_ids,
                message_id_nonce: &nonce,
                message_id_domain: self.config.site.from.email.domain(),
            })
            .await?;
        Ok(Ok(created))
    }

    /// The slot an editor's approval is for: the edition's latest slot
    /// when it has no issue yet and is within `grace`, else the next one.
    pub async fn approval_slot(&self, edition: &Edition, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        if let Some(current) = edition.schedule.slot_at_or_before(now)
            && now - current <= edition.grace
            && self.store.find_issue(&edition.name, current).await?.is_none()
        {
            return Ok(current);
        }
        edition.schedule.next_after(now).ok_or_else(|| {
            Error::Other(format!(
                "edition {}: schedule \"{}\" has no slot after now",
                edition.name,
                edition.schedule.expr()
            ))
        })
    }

    /// An editor approves the next issue of `edition` as `preview` shows it
    /// now: it is composed (frozen) at once, and its deliveries start at its
    /// slot (at once when the slot has passed).
    pub async fn approve(&self, edition_name: &str, now: DateTime<Utc>) -> Result<SendReport> {
        let edition = self.config.edition(edition_name)?;
        self.signer().await?;
        let slot = self.approval_slot(edition, now).await?;
        if let Some(issue) = self.store.find_issue(&edition.name, slot).await? {
            let counts = self.store.delivery_counts(issue.id).await?;
            return Ok(SendReport::Delivered {
                issue,
                composed: false,
                run: RunReport {
                    counts,
                    ..RunReport::default()
                },
            });
        }
        Ok(match self.compose(edition, slot, now).await? {
            Ok((issue, composed)) => {
                tracing::info!(edition = %edition.name, slot = %slot, issue = issue.id, "issue approved and composed");
                let counts = self.store.delivery_counts(issue.id).await?;
                SendReport::Delivered {
                    issue,
                    composed,
                    run: RunReport {
                        counts,
                        ..RunReport::default()
                    },
                }
            }
            Err(too_few) => too_few,
        })
    }

    /// Ranks and renders what an issue of `edition` would hold at `now`,
    /// with the editor's choices for it.
    async fn draft(&self, edition: &Edition, slot: DateTime<Utc>, now: DateTime<Utc>) -> Result<Draft> {
        let audience = self.config.audience(&edition.audience)?;
        let overrides = self.store.overrides(&edition.name).await?;
        let stories = self.edition_stories(edition, &overrides, now).await?;
        let policy = RankPolicy::for_edition(edition, audience);
        let selection = rank::select(&stories, audience, &self.source_weights(), &policy, &overrides, now);
        let view: IssueView =
            render::build_issue_view(&self.config, edition, &selection, overrides.note.as_deref(), slot);
        let rendered = self
            .renderer
            .render_issue(&edition.template, edition.subject.as_deref(), &view)?;
        Ok(Draft {
            story_ids: selection.stories().map(|r| (r.story.id, r.score)).collect(),
            rendered,
        })
    }

    /// The stories an issue of `edition` chooses from: its window's, plus
    /// pinned ones from outside it, less those an earlier issue of the
    /// edition already carried.
    async fn edition_stories(
        &self,
        edition: &Edition,
        overrides: &rank::Overrides,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredStory>> {
        let mut stories = self.candidate_stories(edition.window_days, now).await?;
        for pin in &overrides.pins {
            if !stories.iter().any(|s| s.id == pin.story_id)
                && let Some(story) = self.store.story(pin.story_id).await?
            {
                stories.push(story);
            }
        }
        let sent: std::collections::HashSet<i64> =
            self.store.stories_sent_in(&edition.name).await?.into_iter().collect();
        stories.retain(|s| !sent.contains(&s.id));
        Ok(stories)
    }

    /// What `rank AUDIENCE` shows: the selection for the audience's first
    /// edition (its caps, sections and the editor's choices), or with the
    /// defaults when no edition serves the audience.
    pub async fn rank_audience(&self, audience_name: &str, now: DateTime<Utc>) -> Result<RankedAudience> {
        let audience = self.config.audience(audience_name)?.clone();
        let edition = self.config.editions.iter().find(|e| e.audience == audience_name);
        let (policy, overrides, stories) = match edition {
            Some(e) => {
                let overrides = self.store.overrides(&e.name).await?;
                let stories = self.edition_stories(e, &overrides, now).await?;
                (RankPolicy::for_edition(e, &audience), overrides, stories)
            }
            None => (
                RankPolicy::for_window_days(7, 10, &audience),
                rank::Overrides::default(),
                self.candidate_stories(7, now).await?,
            ),
        };
        Ok(RankedAudience {
            audience,
            edition: edition.map(|e| e.name.clone()),
            policy,
            overrides,
            stories,
        })
    }

    /// Resolves STORY of `tidings issue …`: the id `rank` prints, or a
    /// story's link (canonicalised as the collector does).
    pub async fn find_story(&self, story: &str) -> Result<StoredStory> {
        let id = match story.trim().trim_start_matches('#').parse::<i64>() {
            Ok(id) => id,
            Err(_) => {
                let link = collect::sanitize::canonical_link(story.trim(), None)
                    .ok_or_else(|| Error::Usage(format!("\"{story}\" is neither a story id nor a link")))?;
                *self
                    .store
                    .story_ids_by_link(&link)
                    .await?
                    .first()
                    .ok_or_else(|| Error::Usage(format!("no story has the link {link}")))?
            }
        };
        self.store
            .story(id)
            .await?
            .ok_or_else(|| Error::Usage(format!("no story #{id}")))
    }

    fn message_context(&self, edition: &Edition) -> MessageContext {
        let from = self.config.site.from.clone();
        MessageContext {
            list_id: format!(
                "{} <{}.{}>",
                deliver::message::phrase(&edition.title),
                edition.name,
                from.email.domain()
            ),
            unsubscribe_mailto: self.config.site.unsubscribe_mailto.as_ref().map(ToString::to_string),
            feedback_id: self.config.delivery.feedback_id.clone(),
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
    pub fn dkim(&self) -> Result<Option<deliver::dkim::DkimSigner>> {
        self.config
            .delivery
            .dkim
            .as_ref()
            .map(|d| deliver::dkim::load(d).map_err(|e| Error::Deliver(deliver::DeliverError::Setup(e.to_string()))))
            .transpose()
    }

    /// Composes the issue for the edition's current slot (once) and delivers
    /// it: everything due now, then, while deliveries wait for a retry due
    /// within `options.wait`, those too.
    pub async fn send(&self, edition_name: &str, options: &SendOptions<'_>, now: DateTime<Utc>) -> Result<SendReport> {
        let edition = self.config.edition(edition_name)?;
        let slot = self.slot(edition, now)?;
        self.send_slot(edition_name, slot, options, now).await
    }

    /// As [`App::send`], for a given slot of the edition's schedule (the
    /// daemon names the slot it fired for).
    pub async fn send_slot(
        &self,
        edition_name: &str,
        slot: DateTime<Utc>,
        options: &SendOptions<'_>,
        now: DateTime<Utc>,
    ) -> Result<SendReport> {
        let edition = self.config.edition(edition_name)?;
        if options.dry_run {
            return self.dry_run(edition, slot, now).await;
        }
        // The secret first: a bad or missing key stops us before anything is sent.
        let signer = self.signer().await?;
        let (issue, composed) = match self.store.find_issue(&edition.name, slot).await? {
            Some(issue) => (issue, false),
            None if edition.approval => return Ok(SendReport::AwaitingApproval { slot }),
            None => match self.compose(edition, slot, now).await? {
                Ok(composed) => composed,
                Err(too_few) => return Ok(too_few),
            },
        };
        let counts = self.store.delivery_counts(issue.id).await?;
        let run = if counts.pending + counts.sending == 0 {
            RunReport {
                counts,
                failures: self.store.failed_deliveries(issue.id).await?,
                ..RunReport::default()
            }
        } else {
            drop(signer);
            self.deliver_issue(&issue, options).await?
        };
        Ok(SendReport::Delivered { issue, composed, run })
    }

    /// `send --resume`: delivers what is due of the edition's issues that
    /// are already composed, and composes nothing. Empty when none waits.
    pub async fn resume(
        &self,
        edition_name: &str,
        options: &SendOptions<'_>,
        now: DateTime<Utc>,
    ) -> Result<Vec<SendReport>> {
        let edition = self.config.edition(edition_name)?;
        let mut reports = Vec::new();
        for issue_id in self.store.issues_with_due_deliveries(now).await? {
            let Some(issue) = self.store.issue(issue_id).await? else {
                continue;
            };
            if issue.edition != edition.name {
                continue;
            }
            let run = self.deliver_issue(&issue, options).await?;
            reports.push(SendReport::Delivered {
                issue,
                composed: false,
                run,
            });
        }
        Ok(reports)
    }

    /// What sending one stored issue needs: its rendered parts, headers,
    /// link signer and DKIM key.
    pub async fn issue_delivery(&self, issue: &IssueRow) -> Result<Arc<IssueDelivery>> {
        let edition = self.config.edition(&issue.edition)?;
        let rendered: RenderedIssue = serde_json::from_str(&issue.content)
            .map_err(|e| deliver::DeliverError::Content(format!("issue {}: {e}", issue.id)))?;
        Ok(Arc::new(IssueDelivery {
            issue: issue.clone(),
            encoded: rendered.encode(),
            rendered,
            context: self.message_context(edition),
            signer: self.signer().await?,
            base_url: self.config.site.base_url.clone(),
            dkim: self.dkim()?,
        }))
    }

    /// Delivers what is due of a stored issue (see [`App::send`] for `options`).
    pub async fn deliver_issue(&self, issue: &IssueRow, options: &SendOptions<'_>) -> Result<RunReport> {
        let job = self.issue_delivery(issue).await?;
        let transport = self.transport()?;
        transport.check().await?;
        let result = self.deliver_until_done(&transport, job, options).await;
        transport.shutdown().await;
        result
    }

    /// Runs the issue's deliveries, sleeping for retries due within
    /// `options.wait`, until nothing is left that soon or a stop is asked.
    async fn deliver_until_done(
        &self,
        transport: &Transport,
        job: Arc<IssueDelivery>,
        options: &SendOptions<'_>,
    ) -> Result<RunReport> {
        let policy = DeliveryPolicy::from_config(&self.config.delivery);
        let wait = Duration::from_std(options.wait).unwrap_or(Duration::MAX);
        let mut stop = options.stop.clone();
        let mut total = RunReport::default();
        loop {
            let run = deliver::run_issue(
                &self.store,
                transport,
                Arc::clone(&job),
                &policy,
                self.clock.as_ref(),
                &stop,
                options.progress,
            )
            .await?;
            total.sent += run.sent;
            total.retried += run.retried;
            total.failed += run.failed;
            total.stopped = run.stopped;
            total.counts = run.counts;
            total.next_due = run.next_due;
            total.failures = run.failures;
            if total.stopped || total.counts.pending + total.counts.sending == 0 {
                return Ok(total);
            }
            let now = self.now();
            let Some(next) = total.next_due.filter(|n| *n <= now + wait) else {
                return Ok(total);
            };
            let pause = (next - now).to_std().unwrap_or_default() + std::time::Duration::from_millis(50);
            tracing::info!(retry_at = %next, "waiting for deliveries to retry");
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn dry_run(&self, edition: &Edition, slot: DateTime<Utc>, now: DateTime<Utc>) -> Result<SendReport> {
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
            subject: draft.rendered.public_subject(),
            stories: draft.story_ids.len(),
            recipients: if draft.story_ids.len() < edition.min_stories {
                0
            } else {
                self.store.active_subscriber_count(&edition.name).await?
            },
            existing: None,
        })
    }

    /// The edition's next issue rendered for one subscriber as `send`
    /// would mail it: `to`, else the edition's first active subscriber,
    /// else an example reader. Records nothing.
    pub async fn preview_message(
        &self,
        edition_name: &str,
        to: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<PreviewMessage> {
        let edition = self.config.edition(edition_name)?;
        let slot = if edition.approval {
            // What an editor approves is what this shows.
            self.approval_slot(edition, now).await?
        } else {
            let current = self.slot(edition, now)?;
            // If the current slot's issue exists, the next issue is the next slot's.
            match self.store.find_issue(&edition.name, current).await? {
                Some(_) => edition.schedule.next_after(now).unwrap_or(current),
                None => current,
            }
        };
        let draft = self.draft(edition, slot, now).await?;
        let subscriber = match to {
            Some(email) => self.store.subscriber_by_email(email).await?,
            None => self.store.first_active_subscriber(&edition.name).await?,
        };
        let (id, email, name) = match (&subscriber, to) {
            (Some(s), _) => (s.id, s.email.clone(), s.name.clone()),
            (None, Some(email)) => (0, email.clone(), None),
            (None, None) => (
                0,
                EmailAddress::from_store("reader@example.com".to_string()),
                Some("Example Reader".to_string()),
            ),
        };
        let job = IssueDelivery {
            issue: IssueRow {
                id: 0,
                edition: edition.name.clone(),
                slot_at: slot,
                composed_at: now,
                subject: draft.rendered.public_subject(),
                content: String::new(),
            },
            encoded: draft.rendered.encode(),
            rendered: draft.rendered,
            context: self.message_context(edition),
            signer: self.signer_read_only().await?,
            base_url: self.config.site.base_url.clone(),
            dkim: self.dkim()?,
        };
        let row = crate::store::DeliveryRow {
            id: 0,
            subscriber_id: id,
            email: email.clone(),
            name: name.clone(),
            message_id: format!(
                "<tidings.preview.{}@{}>",
                random_hex(6)?,
                self.config.site.from.email.domain()
            ),
            attempts: 0,
        };
        let message = job.message_for(&row, now.into())?;
        let (personal, _, _) = job.personal(id, name.as_deref(), email.as_str());
        Ok(PreviewMessage {
            slot,
            stories: draft.story_ids.len(),
            subject: personal.subject,
            html: personal.html,
            text: personal.text,
            message,
            message_id: row.message_id,
        })
    }

    /// Renders the edition's next issue as a subscriber would receive it.
    pub async fn preview(
        &self,
        edition_name: &str,
        format: PreviewFormat,
        to: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let preview = self.preview_message(edition_name, to, now).await?;
        Ok(match format {
            PreviewFormat::Eml => preview.message.formatted(),
            PreviewFormat::Html => preview.html.into_bytes(),
            PreviewFormat::Text => preview.text.into_bytes(),
        })
    }

    /// Sends the next issue of the edition to `to` only, as a test: the
    /// ledger is not touched and nobody else receives anything.
    pub async fn send_test(&self, edition_name: &str, to: &EmailAddress, now: DateTime<Utc>) -> Result<String> {
        let preview = self.preview_message(edition_name, Some(to), now).await?;
        self.transport()?
            .send_one(&preview.message, &preview.message_id)
            .await
            .map_err(|e| Error::Other(format!("the test message to {to}: {e}")))
    }

    /// What the next issue of `edition_name` selects, with the editor's
    /// choices (as `rank` shows for an audience).
    pub async fn ranked_edition(&self, edition_name: &str, now: DateTime<Utc>) -> Result<RankedAudience> {
        let edition = self.config.edition(edition_name)?;
        let audience = self.config.audience(&edition.audience)?.clone();
        let overrides = self.store.overrides(&edition.name).await?;
        let stories = self.edition_stories(edition, &overrides, now).await?;
        Ok(RankedAudience {
            policy: RankPolicy::for_edition(edition, &audience),
            audience,
            edition: Some(edition.name.clone()),
            overrides,
            stories,
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

/// The next issue of an edition as one subscriber would receive it.
pub struct PreviewMessage {
    pub slot: DateTime<Utc>,
    pub stories: usize,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The complete message (headers, both parts, DKIM when configured).
    pub message: lettre::Message,
    pub message_id: String,
}

struct Draft {
    story_ids: Vec<(i64, f64)>,
    rendered: RenderedIssue,
}

/// `bytes` random bytes from the OS, hex-encoded.
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::Other(format!("no randomness from the OS: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
