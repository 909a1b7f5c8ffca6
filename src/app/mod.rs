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
use crate::render::{RenderedIssue, Renderer};
use crate::store::{DeliveryCounts, IssueRow, Store};
use crate::token::Signer;
use crate::{Error, Result};

mod briefing;
mod discover;
mod import;
mod inspect;
mod reports;

pub use crate::collect::{CollectProgress, CollectReport, SourceReport, SourceStatus};
pub use briefing::StoryBriefing;
pub use discover::{DiscoveredFeed, discover};
pub use import::{ImportLine, ImportRow, parse_subscriber_csv};
pub use inspect::{InspectArticle, InspectFeed, InspectItem, InspectReport, inspect};
pub use reports::{DeliveryDetail, IssueDeliveries, IssueFeedbackView};

const SECRET_SETTING: &str = "link_secret";
pub struct App {
    pub config: Config,
    pub store: Store,
    /// The templates, loaded once per configuration (again on reload).
    renderer: Arc<Renderer>,
    /// Where the time comes from: the system clock, or a test's.
    clock: SharedClock,
    /// Made on first use (see [`App::transactional_transport`]).
    transactional: std::sync::OnceLock<Transport>,
    /// Issues this process is delivering now. The daemon's slot job and
    /// its delivery pass both find an issue with rows due; two runs of one
    /// issue would open twice `concurrency` connections to the relay.
    /// Shared with the app a reload makes.
    delivering: Arc<std::sync::Mutex<std::collections::HashSet<i64>>>,
}

/// An issue marked as being delivered, unmarked when dropped.
struct Delivering<'a> {
    set: &'a std::sync::Mutex<std::collections::HashSet<i64>>,
    issue: i64,
}

impl<'a> Delivering<'a> {
    fn enter(set: &'a std::sync::Mutex<std::collections::HashSet<i64>>, issue: i64) -> Option<Self> {
        let inserted = set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(issue);
        // (Built only when inserted: a guard dropped here would unmark the
        // issue that the other run holds.)
        inserted.then(|| Delivering { set, issue })
    }
}

impl Drop for Delivering<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.issue);
    }
}

/// Connections kept for single messages (confirmations, tests).
const TRANSACTIONAL_CONNECTIONS: usize = 2;
/// How often a run whose work is done looks whether the deliveries other
/// processes hold have finished.
const OTHERS_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The outcome of `send` for one edition.
#[derive(Debug)]
pub enum SendReport {
    /// The edition needs an editor's approval and this slot has none yet,
    /// or (`unverified` > 0) its cards hold that many fields the grounding
    /// check could not verify, under `[briefing] unverified = "hold"`.
    AwaitingApproval { slot: DateTime<Utc>, unverified: usize },
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
        /// The cards of the issue this run composed (from the cache).
        briefing: Option<Box<crate::brief::BriefReport>>,
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
            transactional: std::sync::OnceLock::new(),
            delivering: Default::default(),
        })
    }

    /// The current time, from the app's clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Closes the store's connections (what a command does last).
    pub async fn close(&self) {
        self.store.close().await;
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
            transactional: std::sync::OnceLock::new(),
            delivering: Arc::clone(&self.delivering),
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
    pub(crate) async fn signer_read_only(&self) -> Result<Signer> {
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

    pub(crate) fn message_context(&self, edition: &Edition) -> MessageContext {
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
            return_path: self.config.delivery.return_path.clone(),
            webhooks: self.config.inbound.webhooks.clone(),
            from,
        }
    }

    /// The transport for single messages — sign-up confirmations, tests —
    /// made once per configuration, so its connections are reused.
    pub fn transactional_transport(&self) -> Result<Transport> {
        if let Some(transport) = self.transactional.get() {
            return Ok(transport.clone());
        }
        let transport = match &self.config.smtp {
            Some(smtp) => Transport::smtp(smtp, TRANSACTIONAL_CONNECTIONS)?,
            None => Transport::Mailbox(self.config.mailbox_dir.clone()),
        };
        Ok(self.transactional.get_or_init(|| transport).clone())
    }

    /// A transport for one issue's deliveries, with `[delivery] concurrency`
    /// connections; shut it down when the run ends.
    pub fn transport(&self) -> Result<Transport> {
        Ok(match &self.config.smtp {
            Some(smtp) => Transport::smtp(smtp, self.config.delivery.concurrency)?,
            None => Transport::Mailbox(self.config.mailbox_dir.clone()),
        })
    }

    /// The DKIM signer of `[dkim]`, its key read from the file.
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
        let (issue, composed, briefing) = match self.store.find_issue(&edition.name, slot).await? {
            Some(issue) => (issue, false, None),
            None if edition.approval => return Ok(SendReport::AwaitingApproval { slot, unverified: 0 }),
            None => match self.compose(edition, slot, now, false).await? {
                Ok((issue, composed, briefing)) => (issue, composed, Some(Box::new(briefing))),
                Err(not_composed) => return Ok(not_composed),
            },
        };
        let counts = self.store.delivery_counts(issue.id, self.now()).await?;
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
        Ok(SendReport::Delivered {
            issue,
            composed,
            run,
            briefing,
        })
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
                briefing: None,
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
        let Some(_delivering) = Delivering::enter(&self.delivering, issue.id) else {
            // Another task of this process is at it, with its connections.
            return Ok(RunReport::default());
        };
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
            let mut pause = (next - now).to_std().unwrap_or_default() + std::time::Duration::from_millis(50);
            if total.counts.sending > 0 {
                // Rows another process is sending finish without us; their
                // lease's end only matters if that process died. Look
                // again soon, so this run ends when the issue does.
                pause = pause.min(OTHERS_POLL);
                tracing::debug!(lease_ends = %next, "waiting for deliveries another process is sending");
            } else {
                tracing::info!(retry_at = %next, "waiting for deliveries to retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Sends the next issue of the edition to `to` only, as a test: the
    /// ledger is not touched and nobody else receives anything.
    pub async fn send_test(&self, edition_name: &str, to: &EmailAddress, now: DateTime<Utc>) -> Result<String> {
        let preview = self.preview_message(edition_name, Some(to), now).await?;
        self.transactional_transport()?
            .send_one(&preview.message, &preview.message_id)
            .await
            .map_err(|e| Error::Other(format!("the test message to {to}: {e}")))
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
pub fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| Error::Other(format!("no randomness from the OS: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
