//! `tidings serve`: the schedules, the delivery workers and the web side in
//! one long-lived process; several can share one PostgreSQL.
//!
//! tokio-cron-scheduler fires one-shot jobs at instants computed by
//! [`crate::schedule`] in each edition's own time zone (its own time-zone
//! jobs keep the offset they were created with and drift by an hour at a
//! daylight-saving change); each job re-arms the next one. A job only
//! *enqueues* work naming its slot, and the slot is a database key claimed by
//! the first process to insert it, so neither a restart nor a second replica
//! runs a slot twice. The work itself runs on tasks the main loop tracks, so
//! a stop waits for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Work a schedule fired.
#[derive(Debug, Clone)]
enum Work {
    Collect {
        slot: DateTime<Utc>,
        generation: u64,
    },
    Edition {
        name: String,
        slot: DateTime<Utc>,
        generation: u64,
    },
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

pub struct Daemon {
    app: Arc<App>,
    /// What the web pages use; replaced on reload with `app`.
    shared_app: Arc<std::sync::RwLock<Arc<App>>>,
    scheduler: JobScheduler,
    work_tx: mpsc::Sender<Work>,
    /// Bumped on reload: work armed for an older configuration is dropped.
    generation: u64,
    stop: watch::Sender<bool>,
}

/// Runs until `control` says stop (or closes). `reload` reads the
/// configuration again on `Control::Reload`.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    mut control: mpsc::Receiver<Control>,
    reload: impl Fn() -> Result<Config>,
) -> Result<()> {
    let metrics = crate::web::install_metrics();
    let (stop, stop_rx) = watch::channel(false);
    let app = Arc::new(app);
    let shared_app = Arc::new(std::sync::RwLock::new(Arc::clone(&app)));
    let web_state = crate::web::WebState::new(Arc::clone(&shared_app), metrics);
    let address = listener.local_addr().map_err(|e| Error::Other(e.to_string()))?;
    tracing::info!(%address, "listening");
    let limits = app.config.web.clone();
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

    let scheduler = JobScheduler::new()
        .await
        .map_err(|e| Error::Other(format!("scheduler: {e}")))?;
    scheduler
        .start()
        .await
        .map_err(|e| Error::Other(format!("scheduler: {e}")))?;
    let (work_tx, mut work_rx) = mpsc::channel::<Work>(256);
    let mut daemon = Daemon {
        app,
        shared_app,
        scheduler,
        work_tx,
        generation: 0,
        stop,
    };
    daemon.catch_up(Utc::now()).await?;
    daemon.arm_all(Utc::now()).await?;

    let mut running: JoinSet<()> = JoinSet::new();
    let delivering = Arc::new(AtomicBool::new(false));
    let mut tick = tokio::time::interval(DELIVERY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            Some(work) = work_rx.recv() => daemon.handle(work, &mut running, &stop_rx).await,
            _ = tick.tick() => {
                if !delivering.swap(true, Ordering::SeqCst) {
                    let (app, stop, flag) = (Arc::clone(&daemon.app), stop_rx.clone(), Arc::clone(&delivering));
                    running.spawn(async move {
                        if let Err(e) = delivery_pass(&app, stop).await {
                            tracing::error!("delivery: {e}");
                        }
                        flag.store(false, Ordering::SeqCst);
                    });
                }
            }
            Some(joined) = running.join_next(), if !running.is_empty() => {
                if let Err(e) = joined {
                    tracing::error!("a task failed: {e}");
                }
            }
            ctl = control.recv() => match ctl {
                Some(Control::Reload) => match reload().and_then(|config| daemon.app.reconfigured(config)) {
                    Ok(app) => {
                        daemon.app = Arc::new(app);
                        match daemon.shared_app.write() {
                            Ok(mut shared) => *shared = Arc::clone(&daemon.app),
                            Err(poisoned) => *poisoned.into_inner() = Arc::clone(&daemon.app),
                        }
                        daemon.generation += 1;
                        daemon.arm_all(Utc::now()).await?;
                        tracing::info!("configuration reloaded");
                    }
                    Err(e) => tracing::error!("configuration not reloaded, keeping the old one: {e}"),
                },
                Some(Control::Stop) | None => break,
            },
        }
    }

    tracing::info!("stopping: no new work; waiting for running work to finish");
    let _ = daemon.stop.send(true);
    let drained = tokio::time::timeout(STOP_GRACE, async { while running.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("work still running after {STOP_GRACE:?}; its leases hand it to the next run");
        running.shutdown().await;
    }
    let _ = daemon.scheduler.shutdown().await;
    let _ = web.await;
    if let Some(metrics_web) = metrics_web {
        let _ = metrics_web.await;
    }
    daemon.app.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

impl Daemon {
    /// Arms the next collect and the next slot of every edition.
    async fn arm_all(&mut self, now: DateTime<Utc>) -> Result<()> {
        let generation = self.generation;
        if let Some(at) = self.app.config.collect.schedule.next_after(now) {
            self.arm(at, Work::Collect { slot: at, generation }).await?;
        }
        for edition in &self.app.config.editions {
            if let Some(at) = edition.schedule.next_after(now) {
                let work = Work::Edition {
                    name: edition.name.clone(),
                    slot: at,
                    generation,
                };
                self.arm(at, work).await?;
            }
        }
        Ok(())
    }

    /// A one-shot job that enqueues `work` at `at`.
    async fn arm(&self, at: DateTime<Utc>, work: Work) -> Result<()> {
        let delay = (at - Utc::now()).to_std().unwrap_or_default();
        let tx = self.work_tx.clone();
        let job = Job::new_one_shot_async(delay, move |_, _| {
            let (tx, work) = (tx.clone(), work.clone());
            Box::pin(async move {
                let _ = tx.send(work).await;
            })
        })
        .map_err(|e| Error::Other(format!("scheduler: {e}")))?;
        self.scheduler
            .add(job)
            .await
            .map_err(|e| Error::Other(format!("scheduler: {e}")))?;
        Ok(())
    }

    /// A slot missed while no daemon ran: the most recent one is caught up
    /// when it is within the edition's grace window, older ones are skipped.
    async fn catch_up(&self, now: DateTime<Utc>) -> Result<()> {
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
                let work = Work::Edition {
                    name: edition.name.clone(),
                    slot,
                    generation: self.generation,
                };
                let _ = self.work_tx.send(work).await;
            } else {
                tracing::info!(
                    edition = %edition.name, %slot, grace = %edition.grace,
                    "skipping a missed slot older than the grace window"
                );
            }
        }
        Ok(())
    }

    async fn handle(&mut self, work: Work, running: &mut JoinSet<()>, stop: &watch::Receiver<bool>) {
        if *stop.borrow() {
            return;
        }
        match work {
            Work::Collect { slot, generation } => {
                if generation != self.generation {
                    return;
                }
                if let Some(next) = self.app.config.collect.schedule.next_after(slot.max(Utc::now()))
                    && let Err(e) = self.arm(next, Work::Collect { slot: next, generation }).await
                {
                    tracing::error!("cannot arm the next collect: {e}");
                }
                let app = Arc::clone(&self.app);
                running.spawn(async move {
                    if let Err(e) = run_collect(&app, slot).await {
                        tracing::error!("collect: {e}");
                    }
                });
            }
            Work::Edition { name, slot, generation } => {
                if generation != self.generation {
                    return;
                }
                let Ok(edition) = self.app.config.edition(&name) else {
                    return;
                };
                if let Some(next) = edition.schedule.next_after(slot.max(Utc::now())) {
                    let work = Work::Edition {
                        name: name.clone(),
                        slot: next,
                        generation,
                    };
                    if let Err(e) = self.arm(next, work).await {
                        tracing::error!("cannot arm the next slot of {name}: {e}");
                    }
                }
                let (app, stop) = (Arc::clone(&self.app), stop.clone());
                running.spawn(async move {
                    if let Err(e) = run_edition(&app, &name, slot, stop).await {
                        tracing::error!(edition = %name, "send: {e}");
                    }
                });
            }
        }
    }
}

/// The collect job for one slot: once across all replicas.
async fn run_collect(app: &App, slot: DateTime<Utc>) -> Result<()> {
    let job = job_name_collect();
    let now = Utc::now();
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
    app.store
        .finish_slot(
            &job,
            slot,
            &format!("{} new stories, {} failed", report.new_stories(), report.failed()),
        )
        .await?;
    Ok(())
}

/// One edition's slot: compose (once across replicas) and deliver.
async fn run_edition(app: &App, name: &str, slot: DateTime<Utc>, stop: watch::Receiver<bool>) -> Result<()> {
    let job = job_name_edition(name);
    let now = Utc::now();
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
        Ok(SendReport::AwaitingApproval { slot }) => {
            let until = app.config.edition(name).map(|e| slot + e.grace).unwrap_or(slot);
            tracing::warn!(
                edition = %name, %slot, %until,
                "waiting for an editor's approval (tidings issue approve {name}); the slot lapses at {until}"
            );
            "waiting for approval".to_string()
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
    for issue_id in app.store.issues_with_due_deliveries(Utc::now()).await? {
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
