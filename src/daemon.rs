//! `tidings serve`: the schedules, the delivery workers and the web side in
//! one long-lived process; several can share one PostgreSQL.
//!
//! [`Daemon`] holds the next instant of every schedule and is stepped with
//! [`Daemon::tick`]: whatever is due at `now` is started, so tests make time
//! pass on a manual clock. In production [`serve`] ticks it when a
//! tokio-cron-scheduler one-shot job fires at the next slot (computed by
//! [`crate::schedule`] in each edition's own time zone, so daylight-saving
//! changes cannot shift it) and every few seconds for retries. Work for a
//! slot names the slot, and the slot is a database key claimed by the first
//! process to insert it, so neither a restart nor a second replica runs it
//! twice. Running work is tracked, so a stop waits for it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::app::{App, SendOptions, SendReport};
use crate::config::Config;
use crate::{Error, Result};

/// What the process is told from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM/SIGINT: stop taking work, finish what runs, exit.
    Stop,
    /// SIGHUP: read the configuration again; keep the old one if it is bad.
    Reload,
}

/// How often the delivery workers look for retries that came due.
const DELIVERY_TICK: StdDuration = StdDuration::from_secs(2);
/// How long a stop waits for running work before giving up on it (its
/// leases then hand the deliveries to the next run).
const STOP_GRACE: StdDuration = StdDuration::from_secs(30);

fn job_name_collect() -> String {
    "collect".to_string()
}

fn job_name_edition(name: &str) -> String {
    format!("edition:{name}")
}

/// The schedules and the work they started, stepped by [`Daemon::tick`].
pub struct Daemon {
    app: Arc<App>,
    /// What the web pages use; replaced on reload with `app`.
    shared_app: Arc<RwLock<Arc<App>>>,
    next_collect: Option<DateTime<Utc>>,
    /// Each edition's next slot.
    next_slots: Vec<(String, DateTime<Utc>)>,
    next_delivery_pass: DateTime<Utc>,
    delivering: Arc<AtomicBool>,
    running: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Daemon {
    /// Catches up the slots missed while no daemon ran (within each
    /// edition's grace window) and arms the next slot of every schedule.
    pub async fn start(app: App) -> Result<Daemon> {
        let app = Arc::new(app);
        let now = app.now();
        let mut daemon = Daemon {
            shared_app: Arc::new(RwLock::new(Arc::clone(&app))),
            app,
            next_collect: None,
            next_slots: Vec::new(),
            next_delivery_pass: now,
            delivering: Arc::new(AtomicBool::new(false)),
            running: JoinSet::new(),
            stop: watch::channel(false).0,
        };
        daemon.catch_up(now).await?;
        daemon.arm_all(now);
        Ok(daemon)
    }

    /// The app the web pages read (it follows reloads).
    pub fn shared_app(&self) -> Arc<RwLock<Arc<App>>> {
        Arc::clone(&self.shared_app)
    }

    /// When the next slot of any schedule comes.
    pub fn next_slot(&self) -> Option<DateTime<Utc>> {
        self.next_slots.iter().map(|(_, at)| *at).chain(self.next_collect).min()
    }

    /// Starts everything due at `now`: each schedule's slot once it has
    /// come (later slots that passed meanwhile are not run again), and a
    /// delivery pass for retries when none runs.
    pub fn tick(&mut self, now: DateTime<Utc>) {
        if *self.stop.borrow() {
            return;
        }
        if let Some(slot) = self.next_collect.filter(|at| *at <= now) {
            self.next_collect = self.app.config.collect.schedule.next_after(slot.max(now));
            let app = Arc::clone(&self.app);
            self.running.spawn(async move {
                if let Err(e) = run_collect(&app, slot).await {
                    tracing::error!("collect: {e}");
                }
            });
        }
        let due: Vec<(String, DateTime<Utc>)> = self.next_slots.iter().filter(|(_, at)| *at <= now).cloned().collect();
        for (name, slot) in due {
            let next = self
                .app
                .config
                .edition(&name)
                .ok()
                .and_then(|e| e.schedule.next_after(slot.max(now)));
            self.next_slots.retain(|(n, _)| *n != name);
            if let Some(next) = next {
                self.next_slots.push((name.clone(), next));
            }
            self.start_edition(name, slot);
        }
        if now >= self.next_delivery_pass && !self.delivering.swap(true, Ordering::SeqCst) {
            self.next_delivery_pass = now + chrono::Duration::from_std(DELIVERY_TICK).unwrap_or_default();
            let (app, stop, flag) = (
                Arc::clone(&self.app),
                self.stop.subscribe(),
                Arc::clone(&self.delivering),
            );
            self.running.spawn(async move {
                if let Err(e) = delivery_pass(&app, stop).await {
                    tracing::error!("delivery: {e}");
                }
                flag.store(false, Ordering::SeqCst);
            });
        }
    }

    /// Waits until every piece of work started so far has finished.
    pub async fn settle(&mut self) {
        while let Some(joined) = self.running.join_next().await {
            log_task_failure(joined);
        }
    }

    /// Takes a new configuration: its templates are read, and every
    /// schedule is armed again from `now`.
    pub fn reload(&mut self, config: Config) -> Result<()> {
        self.app = Arc::new(self.app.reconfigured(config)?);
        match self.shared_app.write() {
            Ok(mut shared) => *shared = Arc::clone(&self.app),
            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&self.app),
        }
        self.arm_all(self.app.now());
        Ok(())
    }

    /// Stops taking work and waits (at most [`STOP_GRACE`]) for what runs;
    /// the store stays open for whoever else holds the app.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        let drained = tokio::time::timeout(STOP_GRACE, self.settle()).await;
        if drained.is_err() {
            tracing::warn!("work still running after {STOP_GRACE:?}; its leases hand it to the next run");
            self.running.shutdown().await;
        }
    }

    /// The next collect and the next slot of every edition after `now`.
    fn arm_all(&mut self, now: DateTime<Utc>) {
        self.next_collect = self.app.config.collect.schedule.next_after(now);
        self.next_slots = self
            .app
            .config
            .editions
            .iter()
            .filter_map(|e| Some((e.name.clone(), e.schedule.next_after(now)?)))
            .collect();
    }

    /// A slot missed while no daemon ran: the most recent one is caught up
    /// when it is within the edition's grace window, older ones are skipped.
    async fn catch_up(&mut self, now: DateTime<Utc>) -> Result<()> {
        let mut missed = Vec::new();
        for edition in &self.app.config.editions {
            let Some(slot) = edition.schedule.slot_at_or_before(now) else {
                continue;
            };
            let job = job_name_edition(&edition.name);
            if self.app.store.slot_taken(&job, slot).await?
                || self.app.store.find_issue(&edition.name, slot).await?.is_some()
            {
                continue;
            }
            if now - slot <= edition.grace {
                tracing::info!(edition = %edition.name, %slot, "catching up the slot missed while stopped");
                missed.push((edition.name.clone(), slot));
            } else {
                tracing::info!(
                    edition = %edition.name, %slot, grace = %edition.grace,
                    "skipping a missed slot older than the grace window"
                );
            }
        }
        for (name, slot) in missed {
            self.start_edition(name, slot);
        }
        Ok(())
    }

    fn start_edition(&mut self, name: String, slot: DateTime<Utc>) {
        let (app, stop) = (Arc::clone(&self.app), self.stop.subscribe());
        self.running.spawn(async move {
            if let Err(e) = run_edition(&app, &name, slot, stop).await {
                tracing::error!(edition = %name, "send: {e}");
            }
        });
    }
}

fn log_task_failure(joined: std::result::Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined {
        tracing::error!("a task failed: {e}");
    }
}

/// Runs until `control` says stop (or closes): the web pages on `listener`
/// (and `/metrics` apart when `[web] metrics_listen` says so) and the
/// daemon, ticked at each slot and every few seconds. `reload` reads the
/// configuration again on `Control::Reload`.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    mut control: mpsc::Receiver<Control>,
    reload: impl Fn() -> Result<Config>,
) -> Result<()> {
    let metrics = crate::web::install_metrics();
    let (stop_web, stop_rx) = watch::channel(false);
    let mut daemon = Daemon::start(app).await?;
    let web_state = crate::web::WebState::new(daemon.shared_app(), metrics);
    let address = listener.local_addr().map_err(|e| Error::Other(e.to_string()))?;
    tracing::info!(%address, "listening");
    let limits = daemon.app.config.web.clone();
    let metrics_web = match limits.metrics_listen {
        Some(at) => {
            let metrics_listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| Error::Other(format!("web.metrics_listen {at}: {e}")))?;
            let address = metrics_listener.local_addr().map_err(|e| Error::Other(e.to_string()))?;
            tracing::info!(%address, "metrics listening");
            let router = crate::web::metrics_router(web_state.clone());
            Some(tokio::spawn(crate::web::serve(
                metrics_listener,
                router,
                limits.clone(),
                stop_rx.clone(),
            )))
        }
        None => None,
    };
    let web = tokio::spawn(crate::web::serve(
        listener,
        crate::web::router(web_state),
        limits,
        stop_rx.clone(),
    ));
    let inbound = match daemon.app.config.inbound.listen {
        Some(at) => {
            let inbound_listener = tokio::net::TcpListener::bind(at)
                .await
                .map_err(|e| Error::Other(format!("inbound.listen {at}: {e}")))?;
            let address = inbound_listener.local_addr().map_err(|e| Error::Other(e.to_string()))?;
            tracing::info!(%address, "inbound mail listening (SMTP and LMTP)");
            let app = &daemon.app;
            let processor = inbound_processor(app).await?;
            Some(tokio::spawn(crate::inbound::listener::serve(
                inbound_listener,
                processor,
                app.config.inbound.clone(),
                app.config.inbound_hostname(),
                stop_rx.clone(),
            )))
        }
        None => None,
    };
    let mailbox = match daemon.app.config.inbound.mailbox.clone() {
        Some(mailbox) => {
            let app = &daemon.app;
            let processor = inbound_processor(app).await?;
            tracing::info!(%mailbox, "reading bounces from the inbound mailbox");
            Some(tokio::spawn(crate::inbound::mailbox::run(
                mailbox,
                processor,
                stop_rx.clone(),
            )))
        }
        None => None,
    };

    let mut waker = Waker::start().await?;
    waker.arm(daemon.next_slot(), daemon.app.now()).await;
    let mut tick = tokio::time::interval(DELIVERY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some(()) = waker.fired.recv() => {
                waker.armed = None;
                daemon.tick(daemon.app.now());
            }
            _ = tick.tick() => daemon.tick(daemon.app.now()),
            Some(joined) = daemon.running.join_next(), if !daemon.running.is_empty() => log_task_failure(joined),
            ctl = control.recv() => match ctl {
                Some(Control::Reload) => match reload().and_then(|config| daemon.reload(config)) {
                    Ok(()) => tracing::info!("configuration reloaded"),
                    Err(e) => tracing::error!("configuration not reloaded, keeping the old one: {e}"),
                },
                Some(Control::Stop) | None => break,
            },
        }
        waker.arm(daemon.next_slot(), daemon.app.now()).await;
    }

    tracing::info!("stopping: no new work; waiting for running work to finish");
    let _ = waker.scheduler.shutdown().await;
    let _ = stop_web.send(true);
    let app = Arc::clone(&daemon.app);
    daemon.shutdown().await;
    let _ = web.await;
    if let Some(metrics_web) = metrics_web {
        let _ = metrics_web.await;
    }
    if let Some(inbound) = inbound {
        let _ = inbound.await;
    }
    if let Some(mailbox) = mailbox {
        let _ = mailbox.await;
    }
    app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The processor the inbound listener and the mailbox reader share.
async fn inbound_processor(app: &App) -> Result<crate::inbound::Processor> {
    Ok(crate::inbound::Processor::new(
        app.store.clone(),
        app.signer().await?,
        &app.config,
        Arc::clone(app.clock()),
    ))
}

/// Wakes the serve loop at the next slot: a tokio-cron-scheduler one-shot
/// job armed for that instant.
struct Waker {
    scheduler: JobScheduler,
    armed: Option<DateTime<Utc>>,
    fire: mpsc::Sender<()>,
    fired: mpsc::Receiver<()>,
}

impl Waker {
    async fn start() -> Result<Waker> {
        let scheduler = JobScheduler::new()
            .await
            .map_err(|e| Error::Other(format!("scheduler: {e}")))?;
        scheduler
            .start()
            .await
            .map_err(|e| Error::Other(format!("scheduler: {e}")))?;
        let (fire, fired) = mpsc::channel(16);
        Ok(Waker {
            scheduler,
            armed: None,
            fire,
            fired,
        })
    }

    /// Arms a job for `at` unless one is armed for it already. A job armed
    /// earlier that is no longer needed only wakes the loop once for nothing.
    async fn arm(&mut self, at: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let Some(at) = at else { return };
        if self.armed.is_some_and(|armed| armed <= at) {
            return;
        }
        let delay = (at - now).to_std().unwrap_or_default();
        let fire = self.fire.clone();
        let job = Job::new_one_shot_async(delay, move |_, _| {
            let fire = fire.clone();
            Box::pin(async move {
                let _ = fire.send(()).await;
            })
        });
        let added = match job {
            Ok(job) => self.scheduler.add(job).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match added {
            Ok(()) => self.armed = Some(at),
            // The delivery tick still runs the slot, a few seconds late.
            Err(e) => tracing::error!("scheduler: cannot arm the next slot: {e}"),
        }
    }
}

/// The collect job for one slot: once across all replicas.
async fn run_collect(app: &App, slot: DateTime<Utc>) -> Result<()> {
    let job = job_name_collect();
    let now = app.now();
    metrics::gauge!("tidings_schedule_lag_seconds", "job" => job.clone())
        .set((now - slot).num_milliseconds() as f64 / 1000.0);
    if !app.store.claim_slot(&job, slot, now).await? {
        tracing::debug!(%slot, "collect slot taken by another process");
        return Ok(());
    }
    let report = app.collect(now, false, &|_| {}).await?;
    tracing::info!(
        fetched = report.fetched(),
        not_modified = report.not_modified(),
        failed = report.failed(),
        not_due = report.not_due(),
        new_stories = report.new_stories(),
        seconds = report.elapsed.as_secs_f64(),
        "collect finished"
    );
    // Cards are drafted ahead of the slots, so a send never waits for a model.
    let mut outcome = format!("{} new stories, {} failed", report.new_stories(), report.failed());
    if app.config.briefing.is_some() {
        let b = app.brief_upcoming(app.now()).await?;
        tracing::info!(
            drafted = b.drafted,
            reused = b.reused,
            rejected = b.rejected,
            failed = b.failed,
            over_budget = b.over_budget,
            "briefing finished"
        );
        outcome.push_str(&format!(
            "; cards: {} drafted, {} reused, {} rejected",
            b.drafted, b.reused, b.rejected
        ));
    }
    app.store.finish_slot(&job, slot, &outcome).await?;
    Ok(())
}

/// One edition's slot: compose (once across replicas) and deliver.
async fn run_edition(app: &App, name: &str, slot: DateTime<Utc>, stop: watch::Receiver<bool>) -> Result<()> {
    let job = job_name_edition(name);
    let now = app.now();
    metrics::gauge!("tidings_schedule_lag_seconds", "job" => job.clone())
        .set((now - slot).num_milliseconds() as f64 / 1000.0);
    if !app.store.claim_slot(&job, slot, now).await? {
        tracing::debug!(edition = %name, %slot, "slot taken by another process");
        return Ok(());
    }
    let started = std::time::Instant::now();
    let options = SendOptions {
        dry_run: false,
        // Retries are the delivery workers' job; do not hold the slot.
        wait: StdDuration::ZERO,
        stop,
        progress: &|_| {},
    };
    let outcome = match app.send_slot(name, slot, &options, now).await {
        Ok(SendReport::AwaitingApproval { slot, unverified }) => {
            let until = app.config.edition(name).map(|e| slot + e.grace).unwrap_or(slot);
            tracing::warn!(
                edition = %name, %slot, %until, unverified,
                "waiting for an editor's approval (tidings issue approve {name}); the slot lapses at {until}"
            );
            if unverified > 0 {
                format!("waiting for approval: {unverified} unverified card fields")
            } else {
                "waiting for approval".to_string()
            }
        }
        Ok(SendReport::TooFew { found, min, .. }) => {
            tracing::info!(edition = %name, %slot, found, min, "slot skipped: too few stories");
            format!("skipped: {found} stories, {min} needed")
        }
        Ok(SendReport::Delivered { issue, run, .. }) => {
            tracing::info!(
                edition = %name, issue = issue.id, %slot,
                sent = run.sent, retrying = run.retried, failed = run.failed,
                pending = run.counts.pending, seconds = started.elapsed().as_secs_f64(),
                "send finished"
            );
            format!("issue {}: {} sent", issue.id, run.sent)
        }
        Ok(SendReport::DryRun { .. }) => "dry run".to_string(),
        Err(e) => {
            app.store.finish_slot(&job, slot, &format!("error: {e}")).await?;
            return Err(e);
        }
    };
    app.store.finish_slot(&job, slot, &outcome).await?;
    Ok(())
}

/// Sends what came due: retries, and rows whose lease ran out (a crashed
/// process's).
async fn delivery_pass(app: &App, stop: watch::Receiver<bool>) -> Result<()> {
    for issue_id in app.store.issues_with_due_deliveries(app.now()).await? {
        if *stop.borrow() {
            break;
        }
        let Some(issue) = app.store.issue(issue_id).await? else {
            continue;
        };
        if app.config.edition(&issue.edition).is_err() {
            continue; // an edition removed from the configuration
        }
        let options = SendOptions {
            dry_run: false,
            wait: StdDuration::ZERO,
            stop: stop.clone(),
            progress: &|_| {},
        };
        let run = app.deliver_issue(&issue, &options).await?;
        if run.sent + run.retried + run.failed > 0 {
            tracing::info!(
                issue = issue.id,
                sent = run.sent,
                retrying = run.retried,
                failed = run.failed,
                "deliveries retried"
            );
        }
    }
    Ok(())
}
