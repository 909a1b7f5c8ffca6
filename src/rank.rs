//! Ranking: pure functions of (stories, audience, policy, now).
//!
//! score = (Σ audience weight of each of the story's tags) × source weight ×
//! recency decay, where decay = 0.5^(age / half-life) and the half-life is a
//! third of the edition's window. Stories outside the window, and stories
//! that score zero for the audience, are never ranked. Ties are broken by
//! newer first, then by id, so the same input always gives the same order.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};

use crate::config::Audience;
use crate::domain::{StoredStory, TagOrigin};

#[derive(Debug, Clone)]
pub struct RankPolicy {
    pub window: Duration,
    pub half_life: Duration,
    pub limit: usize,
}

impl RankPolicy {
    pub fn for_window_days(window_days: i64, limit: usize) -> Self {
        let window = Duration::days(window_days);
        RankPolicy {
            window,
            half_life: window / 3,
            limit,
        }
    }
}

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
}

#[derive(Debug, Clone)]
pub struct Ranked<'a> {
    pub story: &'a StoredStory,
    pub score: f64,
    pub parts: ScoreParts,
    /// The same news from other sources (its cluster), shown as "also
    /// covered by"; they take no place of their own in the digest.
    pub also: Vec<&'a StoredStory>,
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

pub fn score(
    story: &StoredStory,
    audience: &Audience,
    source_weights: &HashMap<String, f64>,
    policy: &RankPolicy,
    now: DateTime<Utc>,
) -> Option<(f64, ScoreParts)> {
    let age = now - story.published_at;
    if age > policy.window || age < Duration::zero() - Duration::hours(1) {
        return None;
    }
    let (sum, tags) = tag_sum(story, &audience.weights);
    let source_weight = source_weights.get(&story.source).copied().unwrap_or(1.0);
    let age_hours = age.num_seconds().max(0) as f64 / 3600.0;
    let half_life_hours = (policy.half_life.num_seconds().max(1) as f64) / 3600.0;
    let decay = 0.5f64.powf(age_hours / half_life_hours);
    let score = sum * source_weight * decay;
    (score > 0.0).then_some((
        score,
        ScoreParts {
            tags,
            tag_sum: sum,
            source_weight,
            age_hours,
            decay,
        },
    ))
}

/// Ranks `stories` for `audience`: best first, at most `policy.limit`.
pub fn rank<'a>(
    stories: &'a [StoredStory],
    audience: &Audience,
    source_weights: &HashMap<String, f64>,
    policy: &RankPolicy,
    now: DateTime<Utc>,
) -> Vec<Ranked<'a>> {
    let mut ranked: Vec<Ranked<'a>> = stories
        .iter()
        .filter_map(|s| {
            score(s, audience, source_weights, policy, now).map(|(score, parts)| Ranked {
                story: s,
                score,
                parts,
                also: Vec::new(),
            })
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .partial_cmp(&a.score)
            .unwrap_or(Ordering::Equal)
            .then(b.story.published_at.cmp(&a.story.published_at))
            .then(a.story.id.cmp(&b.story.id))
    });
    // One entry per cluster: the best-ranked story stands for it.
    let mut seen_clusters = std::collections::HashSet::new();
    ranked.retain(|r| r.story.cluster_id.is_none_or(|c| seen_clusters.insert(c)));
    ranked.truncate(policy.limit);
    for r in &mut ranked {
        if let Some(cluster) = r.story.cluster_id {
            r.also = stories
                .iter()
                .filter(|s| s.cluster_id == Some(cluster) && s.id != r.story.id)
                .collect();
            r.also.sort_by_key(|s| s.id);
        }
    }
    ranked
}

/// "Who should care": the audiences for which the story's tags carry weight.
pub fn audiences_for<'a>(story: &StoredStory, audiences: impl IntoIterator<Item = &'a Audience>) -> Vec<&'a Audience> {
    audiences
        .into_iter()
        .filter(|a| tag_sum(story, &a.weights).0 > 0.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TaggedTag;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).single().expect("time")
    }

    fn story(id: i64, source: &str, hours_old: i64, tags: &[&str]) -> StoredStory {
        StoredStory {
            id,
            source: source.into(),
            title: format!("story {id}"),
            link: format!("https://example.com/{id}"),
            summary_html: String::new(),
            summary_text: String::new(),
            published_at: now() - Duration::hours(hours_old),
            collected_at: now(),
            cluster_id: None,
            tags: tags
                .iter()
                .map(|t| TaggedTag {
                    tag: t.to_string(),
                    origin: TagOrigin::Source,
                })
                .collect(),
        }
    }

    fn audience() -> Audience {
        Audience {
            name: "security".into(),
            title: "Security".into(),
            weights: BTreeMap::from([("security".into(), 3.0), ("cloud".into(), 2.0)]),
        }
    }

    #[test]
    fn score_is_tags_times_source_times_decay() {
        let policy = RankPolicy::for_window_days(6, 10); // half-life 2 days
        let weights = HashMap::from([("A".to_string(), 2.0)]);
        let s = story(1, "A", 48, &["security", "cloud", "other"]);
        let (score, parts) = super::score(&s, &audience(), &weights, &policy, now()).expect("scores");
        assert_eq!(parts.tag_sum, 5.0);
        assert!((parts.decay - 0.5).abs() < 1e-9);
        assert!((score - 5.0).abs() < 1e-9, "{score}");
    }

    #[test]
    fn zero_scores_and_old_stories_are_left_out_and_order_is_stable() {
        let policy = RankPolicy::for_window_days(7, 10);
        let stories = vec![
            story(1, "A", 10, &["cloud"]),
            story(2, "A", 10, &["security"]),
            story(3, "A", 5, &["unrelated"]),
            story(4, "A", 24 * 8, &["security"]),
            story(5, "B", 10, &["security"]),
            story(6, "A", 1, &["cloud"]),
        ];
        let ranked = rank(&stories, &audience(), &HashMap::new(), &policy, now());
        let ids: Vec<i64> = ranked.iter().map(|r| r.story.id).collect();
        // 2 and 5 tie exactly: lower id first.
        assert_eq!(ids, [2, 5, 6, 1]);
        let limited = rank(
            &stories,
            &audience(),
            &HashMap::new(),
            &RankPolicy::for_window_days(7, 2),
            now(),
        );
        assert_eq!(limited.len(), 2);
    }

    #[test]
    fn a_cluster_takes_one_place_and_lists_the_others() {
        let policy = RankPolicy::for_window_days(7, 10);
        let mut stories = vec![
            story(1, "A", 10, &["security"]),
            story(2, "B", 5, &["security"]),
            story(3, "C", 5, &[]),
            story(4, "D", 20, &["cloud"]),
        ];
        for s in &mut stories[..3] {
            s.cluster_id = Some(1);
        }
        let ranked = rank(&stories, &audience(), &HashMap::new(), &policy, now());
        let ids: Vec<i64> = ranked.iter().map(|r| r.story.id).collect();
        assert_eq!(ids, [2, 4], "the fresher story of the cluster stands for it");
        let also: Vec<i64> = ranked[0].also.iter().map(|s| s.id).collect();
        assert_eq!(also, [1, 3], "even a zero-score member is listed");
    }

    #[test]
    fn who_should_care() {
        let other = Audience {
            name: "policy".into(),
            title: "Policy".into(),
            weights: BTreeMap::from([("policy".into(), 1.0)]),
        };
        let a = audience();
        let s = story(1, "A", 1, &["cloud"]);
        let names: Vec<&str> = audiences_for(&s, [&a, &other])
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(names, ["security"]);
    }
}
