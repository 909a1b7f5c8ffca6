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
    /// (address, why) of each delivery withdrawn because its reader left.
    pub withdrawn: Vec<(String, String)>,
    /// What came back for the issue: bounces, complaints, unsubscribes.
    pub events: Vec<crate::store::InboundEventRow>,
}

/// Gmail's and Yahoo's bulk-sender rules: a spam-complaint rate above
/// 0.3 % gets mail refused; Gmail asks senders to stay below 0.1 %.
pub const COMPLAINT_RATE_LIMIT: f64 = 0.003;
pub const COMPLAINT_RATE_TARGET: f64 = 0.001;
/// Hard bounces above 2 % of a send mark a list that needs cleaning (the
/// usual guidance of mailbox providers and sending services; no provider
/// publishes one number).
pub const HARD_BOUNCE_RATE_LIMIT: f64 = 0.02;

/// What came back for one issue, as rates of what it sent, with a warning
/// when a rate is above the thresholds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IssueFeedbackView {
    pub issue_id: i64,
    pub edition: String,
    pub sent: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    pub unsubscribes: i64,
    /// Percentages, two decimals.
    pub hard_bounce_rate: String,
    pub complaint_rate: String,
    pub warnings: Vec<String>,
}

impl IssueFeedbackView {
    pub fn from_counts(f: &crate::store::IssueFeedback) -> Self {
        let rate = |n: i64| if f.sent > 0 { n as f64 / f.sent as f64 } else { 0.0 };
        let (bounce_rate, complaint_rate) = (rate(f.hard_bounces), rate(f.complaints));
        let mut warnings = Vec::new();
        if complaint_rate > COMPLAINT_RATE_LIMIT {
            warnings.push(format!(
                "complaints at {:.2} %: above the 0.3 % at which Gmail and Yahoo refuse bulk mail",
                100.0 * complaint_rate
            ));
        } else if complaint_rate > COMPLAINT_RATE_TARGET {
            warnings.push(format!(
                "complaints at {:.2} %: above the 0.1 % Gmail asks bulk senders to stay under",
                100.0 * complaint_rate
            ));
        }
        if bounce_rate > HARD_BOUNCE_RATE_LIMIT {
            warnings.push(format!(
                "hard bounces at {:.2} %: above 2 %, the list holds dead addresses (imported from an old list?)",
                100.0 * bounce_rate
            ));
        }
        IssueFeedbackView {
            issue_id: f.issue_id,
            edition: f.edition.clone(),
            sent: f.sent,
            hard_bounces: f.hard_bounces,
            soft_bounces: f.soft_bounces,
            complaints: f.complaints,
            unsubscribes: f.unsubscribes,
            hard_bounce_rate: format!("{:.2} %", 100.0 * bounce_rate),
            complaint_rate: format!("{:.2} %", 100.0 * complaint_rate),
            warnings,
        }
    }
}

impl App {
    /// Bounces and complaints of the latest `limit` issues that sent
    /// anything, newest first.
    pub async fn issue_feedback(&self, limit: i64) -> Result<Vec<IssueFeedbackView>> {
        Ok(self
            .store
            .issue_feedback(limit)
            .await?
            .iter()
            .map(IssueFeedbackView::from_counts)
            .collect())
    }

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
            let counts = self.store.delivery_counts(id, self.now()).await?;
            let detail = match issue {
                Some(_) => Some(DeliveryDetail {
                    sent_between: self.store.send_window(id).await?,
                    next_retry: self.store.next_delivery_due(id).await?,
                    failures: self.store.failed_deliveries(id).await?,
                    withdrawn: self.store.withdrawn_deliveries(id).await?,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(sent: i64, hard: i64, complaints: i64) -> crate::store::IssueFeedback {
        crate::store::IssueFeedback {
            issue_id: 1,
            edition: "weekly".into(),
            slot_at: None,
            sent,
            hard_bounces: hard,
            soft_bounces: 0,
            complaints,
            unsubscribes: 0,
        }
    }

    #[test]
    fn rates_warn_above_the_providers_thresholds() {
        assert!(
            IssueFeedbackView::from_counts(&counts(10_000, 100, 10))
                .warnings
                .is_empty()
        );
        let view = IssueFeedbackView::from_counts(&counts(10_000, 201, 31));
        assert_eq!(view.complaint_rate, "0.31 %");
        assert_eq!(view.warnings.len(), 2, "{:?}", view.warnings);
        assert!(view.warnings[0].contains("0.3 %") && view.warnings[1].contains("2 %"));
        let caution = IssueFeedbackView::from_counts(&counts(10_000, 0, 11));
        assert!(caution.warnings[0].contains("0.1 %"), "{:?}", caution.warnings);
        assert!(IssueFeedbackView::from_counts(&counts(0, 0, 0)).warnings.is_empty());
    }
}
