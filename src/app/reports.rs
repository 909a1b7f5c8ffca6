//! What `deliveries`, `sources` and `subscribers list` show, read from the
//! store for the CLI (and anything else that reports).

use chrono::{DateTime, Utc};

use super::App;
use crate::config::Source;
use crate::domain::{EmailAddress, Subscriber, SubscriberName, SubscriberStatus};
use crate::store::{AddOutcome, DeliveryCounts, IssueRow, SourceRow};
use crate::{Error, Result};

/// One issue's deliveries: counts, and with detail the send window, the
/// next retry and every failure with the server's reply.
#[derive(Debug)]
pub struct IssueDeliveries {
    pub issue: IssueRow,
    pub counts: DeliveryCounts,
    pub detail: Option<DeliveryDetail>,
}

#[derive(Debug)]
pub struct DeliveryDetail {
    /// The first and the last message sent.
    pub sent_between: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub next_retry: Option<DateTime<Utc>>,
    /// (address, the server's reply) of each failed delivery.
    pub failures: Vec<(String, String)>,
    /// What came back for the issue: bounces, complaints, unsubscribes.
    pub events: Vec<crate::store::InboundEventRow>,
}

impl App {
    /// The latest issues with their counts, or (with `issue`) that one
    /// issue in detail.
    pub async fn deliveries(&self, issue: Option<i64>) -> Result<Vec<IssueDeliveries>> {
        let rows = match issue {
            Some(id) => {
                let found = self
                    .store
                    .issue(id)
                    .await?
                    .ok_or_else(|| Error::Usage(format!("no issue #{id}")))?;
                vec![found]
            }
            None => self.store.list_issues(20).await?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id = row.id;
            let counts = self.store.delivery_counts(id).await?;
            let detail = match issue {
                Some(_) => Some(DeliveryDetail {
                    sent_between: self.store.send_window(id).await?,
                    next_retry: self.store.next_delivery_due(id).await?,
                    failures: self.store.failed_deliveries(id).await?,
                    events: self.store.inbound_events_for_issue(id).await?,
                }),
                None => None,
            };
            out.push(IssueDeliveries {
                issue: row,
                counts,
                detail,
            });
        }
        Ok(out)
    }

    /// Every configured source with what the store knows of its fetches.
    pub async fn source_states(&self) -> Result<Vec<(Source, Option<SourceRow>)>> {
        let mut rows = self.store.list_sources().await?;
        Ok(self
            .config
            .sources
            .iter()
            .map(|s| {
                let row = rows.iter().position(|r| r.name == s.name).map(|i| rows.swap_remove(i));
                (s.clone(), row)
            })
            .collect())
    }

    pub async fn subscribers(&self) -> Result<Vec<Subscriber>> {
        Ok(self.store.list_subscribers().await?)
    }

    /// Adds an active subscriber to `editions`; a known address gets the
    /// editions added and keeps its status.
    pub async fn add_subscriber(
        &self,
        email: &EmailAddress,
        name: Option<&SubscriberName>,
        editions: &[String],
        now: DateTime<Utc>,
    ) -> Result<AddOutcome> {
        self.check_editions(editions)?;
        Ok(self
            .store
            .add_subscriber(
                email,
                name.map(SubscriberName::as_str),
                SubscriberStatus::Active,
                editions,
                now,
            )
            .await?)
    }

    /// Whether the address was a subscriber (it is forgotten).
    pub async fn remove_subscriber(&self, email: &EmailAddress) -> Result<bool> {
        Ok(self.store.remove_subscriber(email).await?)
    }

    /// Stories frozen into a composed issue.
    pub async fn issue_story_count(&self, issue_id: i64) -> Result<i64> {
        Ok(self.store.issue_story_count(issue_id).await?)
    }
}
