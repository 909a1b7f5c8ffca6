//! Delivering an issue: claim due rows from the ledger, personalise, send,
//! record the outcome. Every (issue, subscriber) row ends as sent, or failed
//! with the server's reply; a crash leaves rows leased, and the lease
//! running out hands them to the next run.

pub mod dkim;
pub mod message;
pub mod transport;

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};
use tokio::task::JoinSet;

pub use message::{MessageContext, build_message};
pub use transport::{SendOutcome, Transport};

use crate::clock::Clock;
use crate::render::{EncodedIssue, Personal, Recipient, RenderedIssue, personalize};
use crate::store::{DeliveryCounts, DeliveryOutcome, DeliveryRow, IssueRow, Store};
use crate::token::{Purpose, Signer};

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("{0}")]
    Setup(String),
    #[error("cannot deliver: {0}")]
    Unavailable(String),
    #[error("invalid address {0}")]
    Address(String),
    #[error("cannot build message: {0}")]
    Build(String),
    #[error("stored issue is unreadable: {0}")]
    Content(String),
    // Operators meet this when the database fills up or restarts mid-send
    // (bench/drills/db-faults): say that nothing is lost and what to do.
    #[error(
        "cannot read or update the delivery ledger: {0} (nothing is lost: deliveries not recorded as sent go out with the next `tidings send` or the daemon's next pass)"
    )]
    Store(#[from] crate::store::StoreError),
}

#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    pub concurrency: usize,
    /// How long a claimed row stays ours before another run may take it.
    pub lease: Duration,
    pub max_attempts: i64,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// Messages per second at most; 0 = unlimited.
    pub rate_per_second: u32,
}

impl DeliveryPolicy {
    pub fn new(concurrency: usize) -> Self {
        DeliveryPolicy {
            concurrency,
            lease: Duration::seconds(60),
            max_attempts: 6,
            retry_initial: Duration::seconds(30),
            retry_max: Duration::hours(1),
            rate_per_second: 0,
        }
    }

    pub fn from_config(d: &crate::config::Delivery) -> Self {
        let chrono = |d: std::time::Duration| Duration::from_std(d).unwrap_or(Duration::MAX);
        DeliveryPolicy {
            concurrency: d.concurrency,
            lease: chrono(d.lease),
            max_attempts: d.max_attempts,
            retry_initial: chrono(d.retry_initial),
            retry_max: chrono(d.retry_max),
            rate_per_second: d.rate_per_second,
        }
    }

    /// Delay before attempt `attempts + 1`: doubling from `retry_initial`,
    /// capped at `retry_max`, then spread by `jitter` (0.8–1.2) so retries
    /// of a large issue do not all land on the server at the same second.
    pub fn backoff(&self, attempts: i64, jitter: f64) -> Duration {
        let exp = (attempts - 1).clamp(0, 30) as u32;
        let millis = self.retry_initial.num_milliseconds().saturating_mul(1i64 << exp);
        let capped = millis.min(self.retry_max.num_milliseconds()) as f64;
        Duration::milliseconds((capped * jitter.clamp(0.8, 1.2)) as i64)
    }

    /// Rows claimed at once, given the rate this run has been sending at
    /// (messages per second, once known): about a tenth of a second's
    /// worth, so a fast send claims a few times a second rather than a
    /// hundred (each claim costs PostgreSQL about as much CPU as planning
    /// and committing a batch of outcomes); never fewer than eight per
    /// connection, so that the next batch (claimed while this one is sent)
    /// is there in time even when the database answers slowly, nor more
    /// than sixty-four; and with a rate limit, no more than half the lease
    /// sends.
    fn batch(&self, rate: Option<f64>) -> i64 {
        let per_connection = |n: usize| (self.concurrency * n).max(n) as i64;
        let by_rate_seen = rate.map_or(0, |r| (r * CLAIM_AHEAD.as_secs_f64()) as i64);
        let by_concurrency = by_rate_seen.clamp(per_connection(8), per_connection(64));
        if self.rate_per_second == 0 {
            return by_concurrency;
        }
        let by_rate = (i64::from(self.rate_per_second) * self.lease.num_seconds() / 2).max(1);
        by_concurrency.min(by_rate)
    }
}

/// How much sending a claim takes at once, at the rate seen so far.
const CLAIM_AHEAD: std::time::Duration = std::time::Duration::from_millis(100);

/// A jitter factor in 0.8–1.2 from the OS's randomness (1.0 if it has none).
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => 0.8 + 0.4 * f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX),
        Err(_) => 1.0,
    }
}

/// Everything one issue's delivery needs, shared by the sending tasks.
pub struct IssueDelivery {
    pub issue: IssueRow,
    pub rendered: RenderedIssue,
    /// `rendered`, quoted-printable encoded once for all messages.
    pub encoded: EncodedIssue,
    pub context: MessageContext,
    pub signer: Signer,
    pub base_url: String,
    pub dkim: Option<dkim::DkimSigner>,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// The run stopped early on a signal; unsent rows were released.
    pub stopped: bool,
    /// Counts over the whole issue: as they were when the run started
    /// while it goes on (progress), as they are after it in the result.
    pub counts: DeliveryCounts,
    /// When the earliest delivery still waiting is due.
    pub next_due: Option<DateTime<Utc>>,
    /// (address, server reply) of every failed delivery of the issue.
    pub failures: Vec<(String, String)>,
}

impl RunReport {
    /// "sent 1200, retrying 3, failed 1 — 2400/s, about 4m 10s left": what
    /// is left is what was pending when the run started, less what it has
    /// done since.
    pub fn progress_line(&self, elapsed: std::time::Duration) -> String {
        let secs = elapsed.as_secs_f64().max(0.001);
        let done = self.sent + self.retried + self.failed;
        let to_do = usize::try_from(self.counts.pending + self.counts.sending).unwrap_or(0);
        let left = to_do.saturating_sub(done);
        let rate = done as f64 / secs;
        let eta = if done > 0 && rate > 0.0 {
            let eta = std::time::Duration::from_secs((left as f64 / rate).round() as u64);
            format!(", about {} left", humantime::format_duration(eta))
        } else {
            String::new()
        };
        format!(
            "sent {}, retrying {}, failed {} — {:.0}/s{eta}",
            self.sent,
            self.retried,
            self.failed,
            self.sent as f64 / secs
        )
    }
}

impl IssueDelivery {
    pub fn unsubscribe_token(&self, subscriber_id: i64) -> String {
        self.signer.sign(Purpose::Unsubscribe, subscriber_id, None)
    }

    pub fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/unsubscribe/{token}", self.base_url)
    }

    /// The subscriber's signed preferences page.
    pub fn preferences_url(&self, subscriber_id: i64) -> String {
        format!(
            "{}/preferences/{}",
            self.base_url,
            self.signer.sign(Purpose::Preferences, subscriber_id, None)
        )
    }

    /// The issue's page in the public archive.
    pub fn archive_url(&self) -> String {
        format!("{}/archive/{}/{}", self.base_url, self.issue.edition, self.issue.id)
    }

    /// One subscriber's copy, and their unsubscribe token and URL.
    pub fn personal(&self, subscriber_id: i64, name: Option<&str>, email: &str) -> (Personal, String, String) {
        let token = self.unsubscribe_token(subscriber_id);
        let url = self.unsubscribe_url(&token);
        let preferences = self.preferences_url(subscriber_id);
        let personal = personalize(
            &self.rendered,
            &Recipient {
                name,
                email,
                unsubscribe_url: &url,
                preferences_url: &preferences,
                archive_url: &self.archive_url(),
            },
        );
        (personal, token, url)
    }

    /// The complete message for one row of the ledger, signed when DKIM is
    /// configured.
    pub fn message_for(&self, row: &DeliveryRow, date: SystemTime) -> Result<lettre::Message, DeliverError> {
        let token = self.unsubscribe_token(row.subscriber_id);
        let url = self.unsubscribe_url(&token);
        let preferences = self.preferences_url(row.subscriber_id);
        let archive = self.archive_url();
        let values = Recipient {
            name: row.name.as_deref(),
            email: row.email.as_str(),
            unsubscribe_url: &url,
            preferences_url: &preferences,
            archive_url: &archive,
        };
        let variant = if values.name.is_some() {
            &self.encoded.named
        } else {
            &self.encoded.anonymous
        };
        let subject = variant.subject.fill(&values, crate::render::Escape::None);
        let mut message = message::build_encoded_message(
            &self.context,
            &message::Addressed {
                to_email: row.email.as_str(),
                to_name: row.name.as_deref(),
                message_id: &row.message_id,
                unsubscribe_url: &url,
                mail_token: &self.signer.sign_delivery(row.id),
            },
            &subject,
            variant.text.fill(&values),
            variant.html.fill(&values),
            date,
        )?;
        if let Some(dkim) = &self.dkim {
            message.sign(&dkim.config);
        }
        Ok(message)
    }
}

/// Progress of a run, for a progress display.
pub type DeliveryProgress<'a> = &'a (dyn Fn(&RunReport) + Sync);

/// Sends every delivery of the issue that is due now, until none is left
/// due or `stop` turns true. Deliveries waiting for a later retry are left
/// for the next run.
///
/// Three things overlap so the SMTP connections never wait for the
/// database: the next batch is claimed while the current one is being
/// sent, and outcomes are committed by a recorder that takes whatever has
/// queued up since its last commit (one statement for many messages) while
/// sending goes on. Outcomes accepted but not yet committed — queued, or
/// in the batch being committed — are at most 2 × `concurrency`, because
/// such a message is sent again after a crash; see [`UncommittedSplit`]
/// for how they divide.
pub async fn run_issue(
    store: &Store,
    transport: &Transport,
    job: Arc<IssueDelivery>,
    policy: &DeliveryPolicy,
    clock: &dyn Clock,
    stop: &tokio::sync::watch::Receiver<bool>,
    progress: DeliveryProgress<'_>,
) -> Result<RunReport, DeliverError> {
    let issue_id = job.issue.id;
    // Counts at the start give the progress display its "to do".
    let report = std::sync::Mutex::new(RunReport {
        counts: store.delivery_counts(issue_id, clock.now()).await?,
        ..RunReport::default()
    });
    let started = std::time::Instant::now();
    let split = UncommittedSplit::new(policy.concurrency);
    let (outcome_tx, outcome_rx) = tokio::sync::mpsc::channel(split.queued);
    // Both run in this task (join!, not spawn), so they may borrow; the
    // lock on `report` is never held across an await.
    let (sending, recording) = tokio::join!(
        send_due(store, transport, &job, policy, clock, stop, outcome_tx),
        record_outcomes(store, outcome_rx, split.batch, &report, progress),
    );
    // A failed recorder is the cause when both stop: the sender only saw
    // its queue close.
    recording?;
    let fatal = sending?;
    let mut report = report.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    report_counts(store, issue_id, clock.now(), &mut report).await?;
    if let Some(reason) = fatal {
        return Err(DeliverError::Unavailable(reason));
    }
    report.stopped = *stop.borrow();
    if report.sent > 0 {
        metrics::gauge!("tidings_send_rate").set(report.sent as f64 / started.elapsed().as_secs_f64().max(0.001));
    }
    Ok(report)
}

/// Where a claim starts.
#[derive(Clone, Copy)]
enum ClaimFrom {
    /// Ahead of the last id this sender claimed (0: the start).
    After(i64),
    /// Back at the start, for rows whose lease ran out half a lease ago (a
    /// killed replica's); one sent a moment ago, here or elsewhere, may
    /// still wait for its outcome to be committed.
    LookBack,
}

/// Claims up to a batch of due rows from `from`, or from the start
/// (retries that came due, expired leases) when nothing is found there.
async fn claim_batch(
    store: &Store,
    issue_id: i64,
    now: DateTime<Utc>,
    policy: &DeliveryPolicy,
    limit: i64,
    from: ClaimFrom,
) -> Result<Vec<DeliveryRow>, DeliverError> {
    let lease_until = now + policy.lease;
    let (due_at, cursor) = match from {
        ClaimFrom::After(cursor) => (now, cursor),
        ClaimFrom::LookBack => (now - policy.lease / 2, 0),
    };
    let mut rows = store
        .claim_deliveries_after(issue_id, due_at, lease_until, limit, cursor)
        .await?;
    if rows.is_empty() && (cursor > 0 || due_at < now) {
        rows = store
            .claim_deliveries_after(issue_id, now, lease_until, limit, 0)
            .await?;
    }
    Ok(rows)
}

type ClaimHandle = tokio::task::JoinHandle<Result<Vec<DeliveryRow>, DeliverError>>;

async fn claimed(handle: ClaimHandle) -> Result<Vec<DeliveryRow>, DeliverError> {
    handle
        .await
        .map_err(|e| DeliverError::Setup(format!("claim task failed: {e}")))?
}

/// The sending side of [`run_issue`]: claims, sends with up to
/// `concurrency` messages in flight, and queues each outcome for the
/// recorder. Returns the reason when the server refused us as a whole (an
/// authentication failure): every row not tried is released.
async fn send_due(
    store: &Store,
    transport: &Transport,
    job: &Arc<IssueDelivery>,
    policy: &DeliveryPolicy,
    clock: &dyn Clock,
    stop: &tokio::sync::watch::Receiver<bool>,
    outcomes: tokio::sync::mpsc::Sender<DeliveryOutcome>,
) -> Result<Option<String>, DeliverError> {
    let issue_id = job.issue.id;
    let limiter = std::num::NonZeroU32::new(policy.rate_per_second)
        .map(|rate| governor::RateLimiter::direct(governor::Quota::per_second(rate)));
    let claim = |from: ClaimFrom, rate: Option<f64>| -> ClaimHandle {
        let (store, policy, now) = (store.clone(), policy.clone(), clock.now());
        let limit = policy.batch(rate);
        tokio::spawn(async move { claim_batch(&store, issue_id, now, &policy, limit, from).await })
    };
    let mut next_claim = Some(claim(ClaimFrom::After(0), None));
    // The last batch taken and when: how fast it went out sizes the next.
    let mut last_batch: Option<(usize, std::time::Instant)> = None;
    // Now and then a claim starts from the beginning again: rows whose lease
    // ran out (a killed replica's) are taken over soon after, not when this
    // sender reaches the end of the issue.
    let look_back_every = policy.lease / 2;
    let mut looked_back = clock.now();
    let mut queue = std::collections::VecDeque::new();
    // Rows queued or in flight here. A look back can return some of them
    // (their lease ran out while they waited, with a short lease on a busy
    // machine): they are sent once, by the copy already held.
    let mut held: std::collections::HashSet<i64> = std::collections::HashSet::new();
    let mut tasks: JoinSet<(DeliveryRow, SendOutcome)> = JoinSet::new();
    let mut fatal: Option<String> = None;
    // Rows not tried, or refused for a reason that is not the subscriber's:
    // released together when the loop ends.
    let mut unsent: Vec<i64> = Vec::new();
    let mut recorder_gone = false;
    loop {
        let halted = *stop.borrow() || fatal.is_some() || recorder_gone;
        if queue.is_empty()
            && !halted
            && let Some(handle) = next_claim.take()
        {
            let rows = claimed(handle).await?;
            let taken = std::time::Instant::now();
            let rate = last_batch.map(|(n, at)| n as f64 / taken.duration_since(at).as_secs_f64().max(0.001));
            last_batch = Some((rows.len(), taken));
            // Claims go forward from the last id claimed; the next batch is
            // claimed while this one is sent.
            if let Some(last) = rows.iter().map(|r| r.id).max() {
                queue.extend(rows.into_iter().filter(|r| held.insert(r.id)));
                let now = clock.now();
                let from = if now - looked_back >= look_back_every {
                    looked_back = now;
                    ClaimFrom::LookBack
                } else {
                    ClaimFrom::After(last)
                };
                next_claim = Some(claim(from, rate));
            }
        }
        while tasks.len() < policy.concurrency && !halted {
            let Some(row) = queue.pop_front() else { break };
            if let Some(limiter) = &limiter {
                limiter.until_ready().await;
            }
            let job = Arc::clone(job);
            let transport = transport.clone();
            let date: SystemTime = clock.now().into();
            tasks.spawn(async move {
                let outcome = match job.message_for(&row, date) {
                    Ok(msg) => transport.send(&msg, &row.message_id).await,
                    // An address that lettre cannot use will never work.
                    Err(e) => SendOutcome::Permanent(e.to_string()),
                };
                (row, outcome)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            if halted || (queue.is_empty() && next_claim.is_none()) {
                break;
            }
            continue;
        };
        let (row, outcome) = joined.map_err(|e| DeliverError::Setup(format!("send task failed: {e}")))?;
        let id = row.id;
        held.remove(&id);
        let recorded = match outcome_of(row, outcome, policy, clock.now()) {
            Ok(recorded) => recorded,
            // The server refuses us, not this subscriber (authentication):
            // give the row back untouched and stop.
            Err(reason) => {
                unsent.push(id);
                fatal.get_or_insert(reason);
                continue;
            }
        };
        if outcomes.send(recorded).await.is_err() {
            // The recorder failed; its error ends the run. What is in
            // flight finishes, and its rows stay leased until the lease runs out.
            recorder_gone = true;
        }
    }
    // Claimed but never tried (stop, refusal, ledger failure): give them back.
    unsent.extend(queue.iter().map(|r: &DeliveryRow| r.id));
    if let Some(handle) = next_claim.take() {
        unsent.extend(claimed(handle).await?.iter().map(|r| r.id));
    }
    store.release_deliveries(&unsent).await?;
    Ok(fatal)
}

/// What to record for one send, or — when the server refused us as a
/// whole rather than this subscriber — the reason, and nothing to record.
fn outcome_of(
    row: DeliveryRow,
    outcome: SendOutcome,
    policy: &DeliveryPolicy,
    now: DateTime<Utc>,
) -> Result<DeliveryOutcome, String> {
    Ok(match outcome {
        SendOutcome::Sent(reply) => {
            metrics::counter!("tidings_deliveries_total", "status" => "sent").increment(1);
            DeliveryOutcome::Sent {
                id: row.id,
                reply,
                at: now,
            }
        }
        SendOutcome::Transient(reply) if row.attempts < policy.max_attempts => {
            let at = now + policy.backoff(row.attempts, jitter());
            tracing::warn!(to = %row.email, attempt = row.attempts, retry_at = %at, "temporary failure: {reply}");
            metrics::counter!("tidings_deliveries_total", "status" => "retry").increment(1);
            DeliveryOutcome::Retry { id: row.id, reply, at }
        }
        SendOutcome::Transient(reply) => {
            tracing::warn!(to = %row.email, "giving up after {} attempts: {reply}", row.attempts);
            metrics::counter!("tidings_deliveries_total", "status" => "failed").increment(1);
            DeliveryOutcome::Failed {
                id: row.id,
                subscriber_id: row.subscriber_id,
                reply: format!("gave up after {} attempts: {reply}", row.attempts),
                bounce: false,
                at: now,
            }
        }
        SendOutcome::Permanent(reply) => {
            tracing::warn!(to = %row.email, "refused permanently: {reply}");
            metrics::counter!("tidings_deliveries_total", "status" => "bounced").increment(1);
            DeliveryOutcome::Failed {
                id: row.id,
                subscriber_id: row.subscriber_id,
                reply,
                bounce: true,
                at: now,
            }
        }
        SendOutcome::Fatal(reply) => return Err(reply),
    })
}

/// How the 2 × `concurrency` outcomes that may wait for their commit (the
/// README's crash bound) divide between the queue and the recorder's batch.
/// Most go to the batch: on PostgreSQL each commit costs about as much CPU
/// as its rows (a WAL flush, a round trip), and batches of 14 instead of 8
/// at `concurrency = 8` cut PostgreSQL's CPU for a loopback send by a fifth
/// and raised its rate 4–10 %. A quarter of `concurrency` stays for the
/// queue, which takes what is sent while a batch commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UncommittedSplit {
    queued: usize,
    batch: usize,
}

impl UncommittedSplit {
    fn new(concurrency: usize) -> Self {
        let uncommitted = 2 * concurrency.max(1);
        let queued = (uncommitted / 8).max(1);
        UncommittedSplit {
            queued,
            batch: uncommitted - queued,
        }
    }
}

/// How long the recorder waits for a batch to fill before committing what
/// it has: a statement per outcome or two costs the database more CPU than
/// the rows themselves (on PostgreSQL, four times as many statements for
/// the same 10,000 rows), and a few milliseconds of delay cost nothing.
const RECORD_LINGER: std::time::Duration = std::time::Duration::from_millis(5);

/// The recording side of [`run_issue`]: commits outcomes in batches of up
/// to `batch_max` (what queued up during the previous commit, topped up for
/// at most [`RECORD_LINGER`]), and counts them into `report` once
/// committed. `batch_max` and the queue's capacity add up to 2 ×
/// `concurrency` ([`UncommittedSplit`]), so the outcomes not yet committed
/// stay within the crash bound the README gives.
async fn record_outcomes(
    store: &Store,
    mut queue: tokio::sync::mpsc::Receiver<DeliveryOutcome>,
    batch_max: usize,
    report: &std::sync::Mutex<RunReport>,
    progress: DeliveryProgress<'_>,
) -> Result<(), DeliverError> {
    let mut batch = Vec::new();
    while queue.recv_many(&mut batch, batch_max).await > 0 {
        let deadline = tokio::time::Instant::now() + RECORD_LINGER;
        while batch.len() < batch_max {
            let room = batch_max - batch.len();
            match tokio::time::timeout_at(deadline, queue.recv_many(&mut batch, room)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        store.record_outcomes(&batch).await?;
        let mut report = report.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for outcome in &batch {
            match outcome {
                DeliveryOutcome::Sent { .. } => report.sent += 1,
                DeliveryOutcome::Retry { .. } => report.retried += 1,
                DeliveryOutcome::Failed { .. } => report.failed += 1,
            }
        }
        progress(&report);
        drop(report);
        batch.clear();
    }
    Ok(())
}

async fn report_counts(
    store: &Store,
    issue_id: i64,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<(), DeliverError> {
    report.counts = store.delivery_counts(issue_id, now).await?;
    report.next_due = store.next_delivery_due(issue_id).await?;
    report.failures = store.failed_deliveries(issue_id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_line_estimates_what_is_left() {
        let report = RunReport {
            sent: 900,
            retried: 90,
            failed: 10,
            counts: DeliveryCounts {
                pending: 10_000,
                ..DeliveryCounts::default()
            },
            ..RunReport::default()
        };
        // 1,000 done in 2 s → 500/s; 9,000 left → 18 s.
        assert_eq!(
            report.progress_line(std::time::Duration::from_secs(2)),
            "sent 900, retrying 90, failed 10 — 450/s, about 18s left"
        );
        let idle = RunReport::default().progress_line(std::time::Duration::from_secs(1));
        assert_eq!(idle, "sent 0, retrying 0, failed 0 — 0/s");
    }

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = DeliveryPolicy::new(8);
        assert_eq!(p.backoff(1, 1.0), Duration::seconds(30));
        assert_eq!(p.backoff(3, 1.0), Duration::seconds(120));
        assert_eq!(p.backoff(30, 1.0), Duration::hours(1));
        assert_eq!(p.backoff(1, 0.8), Duration::seconds(24));
        assert_eq!(p.backoff(1, 5.0), Duration::seconds(36), "jitter is bounded");
        for _ in 0..100 {
            let j = jitter();
            assert!((0.8..=1.2).contains(&j), "{j}");
        }
    }

    #[test]
    fn uncommitted_outcomes_stay_within_twice_the_concurrency() {
        for concurrency in [0, 1, 2, 3, 8, 128] {
            let split = UncommittedSplit::new(concurrency);
            assert!(split.queued >= 1 && split.batch >= 1, "{split:?}");
            assert_eq!(split.queued + split.batch, 2 * concurrency.max(1), "{split:?}");
        }
        assert_eq!(UncommittedSplit::new(8), UncommittedSplit { queued: 2, batch: 14 });
        assert_eq!(UncommittedSplit::new(128), UncommittedSplit { queued: 32, batch: 224 });
    }

    #[test]
    fn batches_follow_the_rate_within_their_bounds_and_the_lease() {
        let mut p = DeliveryPolicy::new(8);
        assert_eq!(p.batch(None), 64, "eight per connection before any rate is known");
        assert_eq!(
            p.batch(Some(40.0)),
            64,
            "a slow relay: never fewer than eight per connection"
        );
        assert_eq!(p.batch(Some(3_700.0)), 370, "a tenth of a second's sending");
        assert_eq!(p.batch(Some(1e9)), 512, "never more than 64 per connection");
        p.rate_per_second = 1;
        assert_eq!(p.batch(Some(3_700.0)), 30, "a minute's lease at 1/s: half of it");
    }
}
