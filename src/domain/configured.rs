//! The configured things: sources, tag rules, audiences, sections and
//! editions, as `config` validates them. Pure types; no I/O.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use url::Url;

use crate::schedule::Schedule;

/// Where a source's feed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    Http(Url),
    File(PathBuf),
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceLocation::Http(url) => write!(f, "{url}"),
            SourceLocation::File(path) => write!(f, "{}", path.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub location: SourceLocation,
    pub tags: Vec<String>,
    pub weight: f64,
    /// Fetch each new story's page and keep its article text.
    pub full_text: bool,
}

#[derive(Debug, Clone)]
pub struct TagRule {
    pub tag: String,
    /// Lower-cased.
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Audience {
    pub name: String,
    pub title: String,
    pub weights: BTreeMap<String, f64>,
    /// Per-source weights for this audience; a source not named here has
    /// its `[[sources]] weight`.
    pub source_weights: BTreeMap<String, f64>,
    /// A story with any of these tags never ranks for this audience.
    pub exclude_tags: BTreeSet<String>,
    /// Recency half-life; `None`: a third of the edition's window.
    pub half_life: Option<chrono::Duration>,
    /// "Who should care" lists the audience when a story's relevance (tags
    /// × source weight) is above this.
    pub threshold: f64,
    /// Score bonus per other source covering the same story…
    pub cluster_bonus: f64,
    /// …capped at this, so one viral story does not swamp the rest.
    pub cluster_bonus_max: f64,
}

impl Audience {
    /// An audience with these weights and every other key at its default.
    pub fn with_weights(name: &str, title: &str, weights: BTreeMap<String, f64>) -> Self {
        Audience {
            name: name.to_string(),
            title: title.to_string(),
            weights,
            source_weights: BTreeMap::new(),
            exclude_tags: BTreeSet::new(),
            half_life: None,
            threshold: DEFAULT_THRESHOLD,
            cluster_bonus: DEFAULT_CLUSTER_BONUS,
            cluster_bonus_max: DEFAULT_CLUSTER_BONUS_MAX,
        }
    }
}

pub const DEFAULT_THRESHOLD: f64 = 0.0;
pub const DEFAULT_CLUSTER_BONUS: f64 = 0.25;
pub const DEFAULT_CLUSTER_BONUS_MAX: f64 = 0.5;
pub const DEFAULT_MAX_PER_SOURCE: usize = 3;

/// A part of an edition holding stories with some tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    /// Normalised tags; empty: every story no other section takes.
    pub tags: Vec<String>,
    /// Most stories in the section (the edition's `max_stories` still holds).
    pub max: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Edition {
    pub name: String,
    pub title: String,
    pub audience: String,
    pub schedule: Schedule,
    pub window_days: i64,
    pub max_stories: usize,
    pub min_stories: usize,
    pub template: String,
    pub subject: Option<String>,
    /// A slot missed while the daemon was down is caught up when it is at
    /// most this old; older ones are skipped.
    pub grace: chrono::Duration,
    /// Most stories from one source in an issue.
    pub max_per_source: usize,
    /// Empty: one section of all stories.
    pub sections: Vec<Section>,
    /// An issue is composed and sent only once an editor approved it
    /// (`tidings issue approve`); the slot waits until its grace ends.
    pub approval: bool,
}
