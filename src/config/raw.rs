//! The configuration file as written: serde reads it into these structs,
//! and unknown keys are errors, so a typo never silently does nothing.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::StartTls;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) site: RawSite,
    #[serde(default)]
    pub(super) database: RawDatabase,
    pub(super) smtp: Option<RawSmtp>,
    #[serde(default)]
    pub(super) mailbox: RawMailbox,
    #[serde(default)]
    pub(super) delivery: RawDelivery,
    pub(super) dkim: Option<RawDkim>,
    #[serde(default)]
    pub(super) inbound: RawInbound,
    #[serde(default)]
    pub(super) collect: RawCollect,
    #[serde(default)]
    pub(super) web: RawWeb,
    pub(super) briefing: Option<RawBriefing>,
    #[serde(default)]
    pub(super) doctor: RawDoctor,
    #[serde(default)]
    pub(super) sources: Vec<RawSource>,
    #[serde(default)]
    pub(super) tags: BTreeMap<String, RawTagRule>,
    #[serde(default)]
    pub(super) audiences: BTreeMap<String, RawAudience>,
    #[serde(default)]
    pub(super) editions: Vec<RawEdition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSite {
    pub(super) title: String,
    pub(super) base_url: String,
    pub(super) from: String,
    pub(super) templates: Option<String>,
    pub(super) unsubscribe_mailto: Option<String>,
    pub(super) stale_after_hours: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDatabase {
    pub(super) url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) url: Option<String>,
    #[serde(default)]
    pub(super) starttls: StartTls,
    pub(super) ca_file: Option<String>,
    pub(super) timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailbox {
    pub(super) dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    pub(super) concurrency: Option<usize>,
    pub(super) rate_per_second: Option<u32>,
    pub(super) max_attempts: Option<i64>,
    pub(super) retry_initial: Option<String>,
    pub(super) retry_max: Option<String>,
    pub(super) lease: Option<String>,
    pub(super) feedback_id: Option<String>,
    pub(super) return_path: Option<String>,
}

/// `[inbound]`: what comes back (bounces, complaints, unsubscribe mails).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInbound {
    pub(super) listen: Option<String>,
    pub(super) max_message_bytes: Option<usize>,
    pub(super) max_connections: Option<usize>,
    pub(super) messages_per_minute: Option<u32>,
    pub(super) timeout: Option<String>,
    pub(super) soft_bounce_limit: Option<u32>,
    pub(super) soft_bounce_window: Option<String>,
    pub(super) mailbox: Option<String>,
    pub(super) mailbox_processed_folder: Option<String>,
    pub(super) mailbox_poll: Option<String>,
    #[serde(default)]
    pub(super) webhooks: RawWebhooks,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDoctor {
    pub(super) nameservers: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhooks {
    pub(super) mailgun_signing_key_env: Option<String>,
    pub(super) sendgrid_public_key_env: Option<String>,
    pub(super) postmark_credentials_env: Option<String>,
    pub(super) ses_topic_arns: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDkim {
    pub(super) domain: String,
    pub(super) selector: String,
    pub(super) private_key_file: String,
    pub(super) canonicalization: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWeb {
    pub(super) listen: Option<String>,
    pub(super) metrics_listen: Option<String>,
    pub(super) header_timeout: Option<String>,
    pub(super) idle_timeout: Option<String>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_header_bytes: Option<usize>,
    pub(super) trusted_proxies: Option<Vec<String>>,
    pub(super) pending_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCollect {
    pub(super) schedule: Option<String>,
    pub(super) concurrency: Option<usize>,
    pub(super) per_host: Option<usize>,
    pub(super) timeout: Option<String>,
    pub(super) connect_timeout: Option<String>,
    pub(super) max_body_bytes: Option<usize>,
    pub(super) max_items: Option<usize>,
    pub(super) max_backoff: Option<String>,
    #[serde(default)]
    pub(super) allow_private: bool,
    /// The default for every source's `full_text`.
    #[serde(default)]
    pub(super) full_text: bool,
    /// An OPML file of more sources, relative to the configuration file.
    pub(super) opml: Option<String>,
}

/// `[briefing]`: cards drafted by a model server.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBriefing {
    pub(super) endpoint: String,
    pub(super) model: String,
    pub(super) api_key_env: Option<String>,
    pub(super) concurrency: Option<usize>,
    pub(super) timeout: Option<String>,
    pub(super) max_input_chars: Option<usize>,
    pub(super) max_output_tokens: Option<u32>,
    pub(super) max_stories_per_run: Option<usize>,
    pub(super) unverified: Option<String>,
    pub(super) timeline_days: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSource {
    pub(super) name: String,
    pub(super) url: String,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) weight: Option<f64>,
    pub(super) full_text: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTagRule {
    #[serde(default)]
    pub(super) keywords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudience {
    pub(super) title: String,
    #[serde(default)]
    pub(super) weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) source_weights: BTreeMap<String, f64>,
    #[serde(default)]
    pub(super) exclude_tags: Vec<String>,
    pub(super) half_life: Option<String>,
    pub(super) threshold: Option<f64>,
    pub(super) cluster_bonus: Option<f64>,
    pub(super) cluster_bonus_max: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSection {
    pub(super) title: String,
    #[serde(default)]
    pub(super) tags: Vec<String>,
    pub(super) max: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEdition {
    pub(super) name: String,
    pub(super) title: String,
    pub(super) audience: String,
    pub(super) schedule: String,
    #[serde(default = "default_timezone")]
    pub(super) timezone: String,
    pub(super) window_days: Option<i64>,
    pub(super) max_stories: Option<usize>,
    pub(super) min_stories: Option<usize>,
    pub(super) template: Option<String>,
    pub(super) subject: Option<String>,
    pub(super) grace: Option<String>,
    pub(super) max_per_source: Option<usize>,
    #[serde(default)]
    pub(super) sections: Vec<RawSection>,
    #[serde(default)]
    pub(super) approval: bool,
}

pub(super) fn default_timezone() -> String {
    "UTC".to_string()
}

// ---------------------------------------------------------------------------
// The validated settings.
