//! Ranking and selection: pure functions of (stories, audience, policy,
//! editor's overrides, now) — the same input gives the same digest.
//!
//! score = (Σ audience weight of the story's tags) × source weight ×
//! recency decay × cluster bonus, where
//! - the source weight is the audience's `source_weights` entry for the
//!   source, else the source's own `weight`;
//! - decay = 0.5^(age / half-life), the half-life being the audience's
//!   `half_life` or a third of the window;
//! - cluster bonus = 1 + min(cluster_bonus × other sources covering the
//!   same story, cluster_bonus_max).
//!
//! Stories outside the window, with a tag the audience excludes, or scoring
//! zero never rank. Selection then walks the stories best first and keeps a
//! story unless its cluster already has an entry, its source already has
//! `max_per_source`, no section takes it, its section is full or the issue
//! is (`max_stories`). Pinned stories are always in; excluded ones never.
//! Ties are broken newer first, then by id.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, Utc};

use crate::config::{Audience, Edition, Section};
use crate::domain::{StoredStory, TagOrigin};

/// Title of the one section of an edition that defines none.
pub const DEFAULT_SECTION: &str = "Top stories";

#[derive(Debug, Clone)]
pub struct RankPolicy {
    pub window: Duration,
    pub half_life: Duration,
    /// `max_stories`.
    pub limit: usize,
    pub max_per_source: usize,
    /// Empty: one section of all stories.
    pub sections: Vec<Section>,
}

impl RankPolicy {
    /// The policy of an issue of `edition`.
    pub fn for_edition(edition: &Edition, audience: &Audience) -> Self {
        RankPolicy {
            max_per_source: edition.max_per_source,
            sections: edition.sections.clone(),
            ..Self::for_window_days(edition.window_days, edition.max_stories, audience)
        }
    }

    /// A window, a limit and the audience's half-life; no sections, the
    /// default `max_per_source`.
    pub fn for_window_days(window_days: i64, limit: usize, audience: &Audience) -> Self {
        let window = Duration::days(window_days);
        RankPolicy {
            window,
            half_life: audience.half_life.unwrap_or(window / 3),
            limit,
            max_per_source: crate::config::DEFAULT_MAX_PER_SOURCE,
            sections: Vec::new(),
        }
    }
}

pub use crate::domain::{Overrides, Pin};

/// One matched tag and what it contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct TagContribution {
    pub tag: String,
    pub weight: f64,
    pub origin: TagOrigin,
}

/// The parts of a score, for `rank --explain`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreParts {
    pub tags: Vec<TagContribution>,
    pub tag_sum: f64,
    pub source_weight: f64,
    pub age_hours: f64,
    pub decay: f64,
    /// Other sources that covered the same story.
    pub other_sources: usize,
    /// 1 + the capped cluster bonus.
    pub cluster_factor: f64,
}

#[derive(Debug, Clone)]
pub struct Ranked<'a> {
    pub story: &'a StoredStory,
    /// 0 for a pinned story that would not rank on its own.
    pub score: f64,
    pub parts: Option<ScoreParts>,
    pub pinned: bool,
    /// The same news from other sources (its cluster), shown as "also
    /// covered by"; they take no place of their own in the digest.
    pub also: Vec<&'a StoredStory>,
}

/// What became of one story.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// In the issue: its section and 1-based place in the whole issue.
    Kept { section: String, position: usize },
    /// Not in the issue, and why.
    LeftOut(String),
}

/// A story as selection saw it, for `rank --explain`.
#[derive(Debug, Clone)]
pub struct Considered<'a> {
    pub story: &'a StoredStory,
    pub score: f64,
    pub parts: Option<ScoreParts>,
    pub pinned: bool,
    pub verdict: Verdict,
}

#[derive(Debug, Clone)]
pub struct SelectedSection<'a> {
    pub title: String,
    pub stories: Vec<Ranked<'a>>,
}

/// The stories of an issue, by section, and what happened to every other.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// Sections in the edition's order; empty ones left out.
    pub sections: Vec<SelectedSection<'a>>,
    /// Every story that ranked, was pinned or was left out for a reason
    /// other than scoring zero: kept ones first (in issue order), then the
    /// rest best first.
    pub considered: Vec<Considered<'a>>,
}

impl<'a> Selection<'a> {
    /// The kept stories in issue order.
    pub fn stories(&self) -> impl Iterator<Item = &Ranked<'a>> {
        self.sections.iter().flat_map(|s| s.stories.iter())
    }

    pub fn len(&self) -> usize {
        self.sections.iter().map(|s| s.stories.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The audience's weight for each of the story's tags.
pub fn tag_sum(story: &StoredStory, weights: &BTreeMap<String, f64>) -> (f64, Vec<TagContribution>) {
    let mut sum = 0.0;
    let mut parts = Vec::new();
    for t in &story.tags {
        if let Some(w) = weights.get(&t.tag).filter(|w| **w > 0.0) {
            sum += w;
            parts.push(TagContribution {
                tag: t.tag.clone(),
                weight: *w,
                origin: t.origin.clone(),
            });
        }
    }
    (sum, parts)
}

/// The weight of `source` for `audience`.
pub fn source_weight(source: &str, audience: &Audience, source_weights: &HashMap<String, f64>) -> f64 {
    audience
        .source_weights
        .get(source)
        .or_else(|| source_weights.get(source))
        .copied()
        .unwrap_or(1.0)
}

/// The first tag of the story that the audience excludes.
fn excluded_tag<'s>(story: &'s StoredStory, audience: &Audience) -> Option<&'s str> {
    story
        .tags
        .iter()
        .map(|t| t.tag.as_str())
        .find(|t| audience.exclude_tags.contains(*t))
}

/// How much the story matters to the audience regardless of its age: tags ×
/// source weight; `None` when one of its tags is excluded.
pub fn relevance(story: &StoredStory, audience: &Audience, source_weights: &HashMap<String, f64>) -> Option<f64> {
    if excluded_tag(story, audience).is_some() {
        return None;
    }
    Some(tag_sum(story, &audience.weights).0 * source_weight(&story.source, audience, source_weights))
}

/// The story's score for the audience, or why it has none. `other_sources`
/// is how many other sources covered the same story.
pub fn score(
    story: &StoredStory,
    audience: &Audience,
    source_weights: &HashMap<String, f64>,
    policy: &RankPolicy,
    other_sources: usize,
    now: DateTime<Utc>,
) -> Result<(f64, ScoreParts), String> {
    let age = now - story.published_at;
    if age > policy.window || age < Duration::zero() - Duration::hours(1) {
        return Err("published outside the window".to_string());
    }
    if let Some(tag) = excluded_tag(story, audience) {
        return Err(format!("tag \"{tag}\" is excluded for this audience"));
    }
    let (sum, tags) = tag_sum(story, &audience.weights);
    if sum <= 0.0 {
        return Err("none of its tags has a weight for this audience".to_string());
    }
    let source_weight = source_weight(&story.source, audience, source_weights);
    let age_hours = age.num_seconds().max(0) as f64 / 3600.0;
    let half_life_hours = (policy.half_life.num_seconds().max(1) as f64) / 3600.0;
    let decay = 0.5f64.powf(age_hours / half_life_hours);
    let cluster_factor = 1.0 + (audience.cluster_bonus * other_sources as f64).min(audience.cluster_bonus_max);
    let score = sum * source_weight * decay * cluster_factor;
    if score <= 0.0 {
        return Err(format!("source weight of {} is 0", story.source));
    }
    Ok((
        score,
        ScoreParts {
            tags,
            tag_sum: sum,
            source_weight,
            age_hours,
            decay,
            other_sources,
            cluster_factor,
        },
    ))
}

fn by_rank(a: &Considered<'_>, b: &Considered<'_>) -> Ordering {
    b.score
        .partial_cmp(&a.score)
        .unwrap_or(Ordering::Equal)
        .then(b.story.published_at.cmp(&a.story.published_at))
        .then(a.story.id.cmp(&b.story.id))
}

/// The section a story belongs in: the one holding its highest-weighted tag
/// (earlier sections win ties), else the section without tags, else none.
fn section_of(story: &StoredStory, audience: &Audience, sections: &[Section]) -> Option<usize> {
    if sections.is_empty() {
        return Some(0);
    }
    let mut best: Option<(f64, usize)> = None;
    for t in &story.tags {
        let Some(index) = sections.iter().position(|s| s.tags.contains(&t.tag)) else {
            continue;
        };
        let weight = audience.weights.get(&t.tag).copied().unwrap_or(0.0);
        let better = match best {
            None => true,
            Some((w, i)) => weight > w || (weight == w && index < i),
        };
        if better {
            best = Some((weight, index));
        }
    }
    best.map(|(_, i)| i)
        .or_else(|| sections.iter().position(|s| s.tags.is_empty()))
}

/// Chooses the stories of an issue for `audience` from `stories`.
pub fn select<'a>(
    stories: &'a [StoredStory],
    audience: &Audience,
    source_weights: &HashMap<String, f64>,
    policy: &RankPolicy,
    overrides: &Overrides,
    now: DateTime<Utc>,
) -> Selection<'a> {
    // Distinct sources per cluster, for the bonus.
    let mut cluster_sources: HashMap<i64, BTreeSet<&str>> = HashMap::new();
    for s in stories {
        if let Some(c) = s.cluster_id {
            cluster_sources.entry(c).or_default().insert(s.source.as_str());
        }
    }
    let pins: HashMap<i64, Option<usize>> = overrides.pins.iter().map(|p| (p.story_id, p.position)).collect();
    // Every story worth a line in `--explain`, with the reason it is out
    // (`None`: still in the running).
    let mut candidates: Vec<(Considered<'a>, Option<String>)> = Vec::new();
    for s in stories {
        let other_sources = s
            .cluster_id
            .and_then(|c| cluster_sources.get(&c))
            .map_or(0, |set| set.iter().filter(|src| **src != s.source).count());
        let pinned = pins.contains_key(&s.id) && !overrides.excluded.contains(&s.id);
        let (score, parts, out) = match score(s, audience, source_weights, policy, other_sources, now) {
            _ if overrides.excluded.contains(&s.id) => (0.0, None, Some("excluded by the editor".to_string())),
            Ok((score, parts)) => (score, Some(parts), None),
            Err(_) if pinned => (0.0, None, None),
            // Scoring zero for this audience is the common case, not news.
            Err(reason) if reason.starts_with("none of its tags") => continue,
            Err(reason) => (0.0, None, Some(reason)),
        };
        let considered = Considered {
            story: s,
            score,
            parts,
            pinned,
            verdict: Verdict::LeftOut(String::new()),
        };
        candidates.push((considered, out));
    }
    candidates.sort_by(|a, b| by_rank(&a.0, &b.0));

    let sections: Vec<Section> = if policy.sections.is_empty() {
        vec![Section {
            title: DEFAULT_SECTION.to_string(),
            tags: Vec::new(),
            max: None,
        }]
    } else {
        policy.sections.clone()
    };
    let mut tally = Tally {
        per_source: HashMap::new(),
        per_section: vec![0; sections.len()],
        clusters: HashMap::new(),
        kept: Vec::new(),
    };
    // Pins first, in the order they were made: always in, counted by the caps.
    for pin in &overrides.pins {
        let found = candidates
            .iter()
            .position(|(c, out)| c.story.id == pin.story_id && c.pinned && out.is_none());
        if let Some(at) = found {
            let story = candidates[at].0.story;
            let section = section_of(story, audience, &policy.sections).unwrap_or(0);
            tally.keep(at, section, story);
        }
    }
    for (at, (c, out)) in candidates.iter_mut().enumerate() {
        if c.pinned || out.is_some() {
            continue;
        }
        let story: &'a StoredStory = c.story;
        let source_count = tally.per_source.get(story.source.as_str()).copied().unwrap_or(0);
        let section = section_of(story, audience, &policy.sections);
        let why = if let Some(first) = story.cluster_id.and_then(|cl| tally.clusters.get(&cl)) {
            Some(format!("the same story as #{first} (one entry per cluster)"))
        } else if source_count >= policy.max_per_source {
            Some(format!(
                "already {source_count} stories from {} (max_per_source = {})",
                story.source, policy.max_per_source
            ))
        } else if let Some(index) = section {
            match sections[index].max {
                Some(max) if tally.per_section[index] >= max => {
                    Some(format!("section \"{}\" is full (max = {max})", sections[index].title))
                }
                _ if tally.kept.len() >= policy.limit => {
                    Some(format!("the issue is full (max_stories = {})", policy.limit))
                }
                _ => None,
            }
        } else {
            Some("no section takes any of its tags".to_string())
        };
        match (why, section) {
            (None, Some(index)) => tally.keep(at, index, story),
            (why, _) => *out = why,
        }
    }

    // Each section: kept stories best first, then pins with a position put there.
    let pinned_at = |at: usize| pins.get(&candidates[at].0.story.id).copied().flatten();
    let kept = tally.kept;
    let mut out: Vec<SelectedSection<'a>> = Vec::new();
    let mut positions: HashMap<usize, (usize, String)> = HashMap::new();
    for (index, section) in sections.iter().enumerate() {
        let mut in_section: Vec<usize> = kept
            .iter()
            .filter(|(at, s)| *s == index && pinned_at(*at).is_none())
            .map(|(at, _)| *at)
            .collect();
        in_section.sort_unstable(); // `candidates` is in rank order
        let mut placed: Vec<(usize, usize)> = kept
            .iter()
            .filter(|(_, s)| *s == index)
            .filter_map(|(at, _)| pinned_at(*at).map(|p| (p, *at)))
            .collect();
        placed.sort_unstable();
        for (position, at) in placed {
            in_section.insert(position.saturating_sub(1).min(in_section.len()), at);
        }
        if in_section.is_empty() {
            continue;
        }
        let mut ranked = Vec::with_capacity(in_section.len());
        for at in in_section {
            let c = &candidates[at].0;
            positions.insert(at, (positions.len() + 1, section.title.clone()));
            ranked.push(Ranked {
                story: c.story,
                score: c.score,
                parts: c.parts.clone(),
                pinned: c.pinned,
                also: also_covered(c.story, stories),
            });
        }
        out.push(SelectedSection {
            title: section.title.clone(),
            stories: ranked,
        });
    }
    let mut considered: Vec<Considered<'a>> = candidates
        .into_iter()
        .enumerate()
        .map(|(at, (mut c, out))| {
            c.verdict = match positions.remove(&at) {
                Some((position, section)) => Verdict::Kept { section, position },
                None => Verdict::LeftOut(out.unwrap_or_else(|| "no room".to_string())),
            };
            c
        })
        .collect();
    // Kept ones first, in issue order; the rest stay best first.
    considered.sort_by_key(|c| match c.verdict {
        Verdict::Kept { position, .. } => position,
        Verdict::LeftOut(_) => usize::MAX,
    });
    Selection {
        sections: out,
        considered,
    }
}

/// What selection has kept so far, for the caps.
struct Tally<'a> {
    per_source: HashMap<&'a str, usize>,
    per_section: Vec<usize>,
    /// Cluster → the story standing for it.
    clusters: HashMap<i64, i64>,
    /// (index in the candidates, section).
    kept: Vec<(usize, usize)>,
}

impl<'a> Tally<'a> {
    fn keep(&mut self, at: usize, section: usize, story: &'a StoredStory) {
        *self.per_source.entry(story.source.as_str()).or_default() += 1;
        self.per_section[section] += 1;
        if let Some(c) = story.cluster_id {
            self.clusters.entry(c).or_insert(story.id);
        }
        self.kept.push((at, section));
    }
}

/// The other stories of `story`'s cluster, by id.
fn also_covered<'a>(story: &StoredStory, stories: &'a [StoredStory]) -> Vec<&'a StoredStory> {
    let Some(cluster) = story.cluster_id else {
        return Vec::new();
    };
    let mut also: Vec<&StoredStory> = stories
        .iter()
        .filter(|s| s.cluster_id == Some(cluster) && s.id != story.id)
        .collect();
    also.sort_by_key(|s| s.id);
    also
}

/// "Who should care": the audiences for which the story's relevance (tags ×
/// source weight) is above their `threshold`.
pub fn audiences_for<'a>(
    story: &StoredStory,
    audiences: impl IntoIterator<Item = &'a Audience>,
    source_weights: &HashMap<String, f64>,
) -> Vec<&'a Audience> {
    audiences
        .into_iter()
        .filter(|a| relevance(story, a, source_weights).is_some_and(|r| r > 0.0 && r > a.threshold))
        .collect()
}

#[cfg(test)]
mod tests;
