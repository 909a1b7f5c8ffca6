//! Delivering an issue: claim due rows from the ledger, personalise, send,
//! record the outcome. Every (issue, subscriber) row ends as sent, or failed
//! with the server's reply; a crash leaves rows leased, and the lease
//! running out hands them to the next run.

pub mod message;
pub mod transport;

use std::sync::Arc;
use std::time::SystemTime;

use chrono::{DateTime, Duration, Utc};
use tokio::task::JoinSet;

pub use message::{MessageContext, build_message};
pub use transport::{SendOutcome, Transport};

use crate::render::{Recipient, RenderedIssue, personalize};
use crate::store::{DeliveryCounts, DeliveryRow, IssueRow, Store};
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
    #[error("{0}")]
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
}

impl DeliveryPolicy {
    pub fn new(concurrency: usize) -> Self {
        DeliveryPolicy {
            concurrency,
            lease: Duration::minutes(5),
            max_attempts: 6,
            retry_initial: Duration::seconds(30),
            retry_max: Duration::hours(1),
        }
    }

    /// Backoff before attempt `attempts + 1`: doubling from `retry_initial`,
    /// capped at `retry_max`.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = (attempts - 1).clamp(0, 20) as u32;
        let secs = self.retry_initial.num_seconds().saturating_mul(1i64 << exp);
        Duration::seconds(secs.min(self.retry_max.num_seconds()))
    }
}

/// Everything one issue's delivery needs, shared by the sending tasks.
pub struct IssueDelivery {
    pub issue: IssueRow,
    pub rendered: RenderedIssue,
    pub context: MessageContext,
    pub signer: Signer,
    pub base_url: String,
}

#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Counts over the whole issue after this run.
    pub counts: DeliveryCounts,
    /// When the earliest delivery still waiting is due.
    pub next_due: Option<DateTime<Utc>>,
    /// (address, server reply) of every failed delivery of the issue.
    pub failures: Vec<(String, String)>,
}

impl IssueDelivery {
    pub fn unsubscribe_token(&self, subscriber_id: i64) -> String {
        self.signer.sign(Purpose::Unsubscribe, subscriber_id, None)
    }

    pub fn unsubscribe_url(&self, token: &str) -> String {
        format!("{}/unsubscribe/{token}", self.base_url)
    }

    /// The complete message for one row of the ledger.
    pub fn message_for(&self, row: &DeliveryRow, date: SystemTime) -> Result<lettre::Message, DeliverError> {
        let token = self.unsubscribe_token(row.subscriber_id);
        let url = self.unsubscribe_url(&token);
        let personal = personalize(
            &self.rendered,
            &Recipient {
                name: row.name.as_deref(),
                email: &row.email,
                unsubscribe_url: &url,
            },
        );
        build_message(
            &self.context,
            &message::Addressed {
                to_email: &row.email,
                to_name: row.name.as_deref(),
                message_id: &row.message_id,
                unsubscribe_url: &url,
                unsubscribe_token: &token,
            },
            &personal,
            date,
        )
    }
}

/// Sends every delivery of the issue that is due now, until none is left
/// due. Deliveries waiting for a later retry are left for the next run.
pub async fn run_issue(
    store: &Store,
    transport: &Transport,
    job: Arc<IssueDelivery>,
    policy: &DeliveryPolicy,
    clock: &(dyn Fn() -> DateTime<Utc> + Sync),
) -> Result<RunReport, DeliverError> {
    let mut report = RunReport::default();
    let issue_id = job.issue.id;
    let batch = (policy.concurrency * 4).max(16) as i64;
    loop {
        let now = clock();
        let rows = store.claim_deliveries(issue_id, now, now + policy.lease, batch).await?;
        if rows.is_empty() {
            break;
        }
        let mut tasks: JoinSet<(DeliveryRow, SendOutcome)> = JoinSet::new();
        let mut queue = rows.into_iter();
        let mut fatal: Option<String> = None;
        let mut unsent: Vec<DeliveryRow> = Vec::new();
        loop {
            while tasks.len() < policy.concurrency && fatal.is_none() {
                let Some(row) = queue.next() else { break };
                let job = Arc::clone(&job);
                let transport = transport.clone();
                tasks.spawn(async move {
                    let outcome = match job.message_for(&row, SystemTime::now()) {
                        Ok(msg) => transport.send(&msg, &row.message_id).await,
                        // An address that lettre cannot use will never work.
                        Err(e) => SendOutcome::Permanent(e.to_string()),
                    };
                    (row, outcome)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (row, outcome) = joined.map_err(|e| DeliverError::Setup(format!("send task failed: {e}")))?;
            let now = clock();
            match outcome {
                SendOutcome::Sent(reply) => {
                    store.mark_sent(row.id, &reply, now).await?;
                    report.sent += 1;
                }
                SendOutcome::Transient(reply) if row.attempts < policy.max_attempts => {
                    let at = now + policy.backoff(row.attempts);
                    tracing::warn!(to = %row.email, attempt = row.attempts, retry_at = %at, "temporary failure: {reply}");
                    store.mark_retry(row.id, &reply, at).await?;
                    report.retried += 1;
                }
                SendOutcome::Transient(reply) => {
                    tracing::warn!(to = %row.email, "giving up after {} attempts: {reply}", row.attempts);
                    store
                        .mark_failed(
                            &row,
                            &format!("gave up after {} attempts: {reply}", row.attempts),
                            false,
                            now,
                        )
                        .await?;
                    report.failed += 1;
                }
                SendOutcome::Permanent(reply) => {
                    tracing::warn!(to = %row.email, "refused permanently: {reply}");
                    store.mark_failed(&row, &reply, true, now).await?;
                    report.failed += 1;
                }
                SendOutcome::Fatal(reply) => {
                    // Not this subscriber's fault: put the row back as it was.
                    store.mark_retry(row.id, &reply, now).await?;
                    fatal.get_or_insert(reply);
                }
            }
        }
        unsent.extend(queue);
        if let Some(reason) = fatal {
            // Release what we claimed but never tried, then stop.
            let now = clock();
            for row in unsent {
                store.mark_retry(row.id, "not attempted: run stopped", now).await?;
            }
            report_counts(store, issue_id, &mut report).await?;
            return Err(DeliverError::Unavailable(reason));
        }
    }
    report_counts(store, issue_id, &mut report).await?;
    Ok(report)
}

async fn report_counts(store: &Store, issue_id: i64, report: &mut RunReport) -> Result<(), DeliverError> {
    report.counts = store.delivery_counts(issue_id).await?;
    report.next_due = store.next_delivery_due(issue_id).await?;
    report.failures = store.failed_deliveries(issue_id).await?;
    Ok(())
}
