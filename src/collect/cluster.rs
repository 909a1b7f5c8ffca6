//! Clustering the same story told by several sources: stories with the same
//! canonical link, or with near-identical titles (the same words after
//! normalisation, Jaccard similarity of their word sets ≥ 0.75), share a
//! cluster. The digest shows the best-ranked story of a cluster once, with
//! "also covered by" links to the others.
//!
//! Word sets over titles are cheap and explainable; SimHash/MinHash would
//! only pay off at millions of stories per window.

use std::collections::HashSet;

/// Words too common to tell two titles apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of", "on",
    "or", "the", "to", "was", "were", "will", "with", "after", "new", "says", "say",
];

/// The threshold above which two titles name the same story.
const SIMILARITY: f64 = 0.75;
/// Titles with fewer distinct words only match when identical.
const MIN_WORDS: usize = 4;

/// Lower-cased words of a title, without punctuation and stop words, with
/// common English endings cut ("discloses", "disclosed" → "disclos") so a
/// rewording of the same headline still matches.
pub fn title_words(title: &str) -> HashSet<String> {
    title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .map(|w| stem(&w).to_string())
        .collect()
}

fn stem(word: &str) -> &str {
    for suffix in ["ing", "es", "ed", "s"] {
        if let Some(stripped) = word.strip_suffix(suffix)
            && stripped.chars().count() >= 3
        {
            return stripped;
        }
    }
    word
}

pub fn similar_titles(a: &HashSet<String>, b: &HashSet<String>) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a == b {
        return true;
    }
    if a.len() < MIN_WORDS || b.len() < MIN_WORDS {
        return false;
    }
    let common = a.intersection(b).count() as f64;
    let union = a.union(b).count() as f64;
    common / union >= SIMILARITY
}

/// A story as clustering sees it.
#[derive(Debug, Clone)]
pub struct ClusterCandidate {
    pub id: i64,
    pub source: String,
    pub link: String,
    pub words: HashSet<String>,
    /// The cluster it already belongs to, if any.
    pub cluster_id: Option<i64>,
}

/// For each story in `new` (ascending id), the cluster it joins: that of
/// the first earlier story from another source with the same link or a
/// similar title. Returns (story id, cluster id) pairs; a story that matches
/// nothing is not listed. A cluster is named by its first story's id.
pub fn assign_clusters(existing: &[ClusterCandidate], new: &[ClusterCandidate]) -> Vec<(i64, i64)> {
    let mut known: Vec<ClusterCandidate> = existing.to_vec();
    let mut out = Vec::new();
    for story in new {
        let matched = known.iter().position(|k| {
            k.id < story.id
                && k.source != story.source
                && (k.link == story.link || similar_titles(&k.words, &story.words))
        });
        let mut story = story.clone();
        if let Some(at) = matched {
            let m = &mut known[at];
            let cluster = m.cluster_id.unwrap_or(m.id);
            out.push((story.id, cluster));
            if m.cluster_id.is_none() {
                out.push((m.id, cluster));
                m.cluster_id = Some(cluster);
            }
            story.cluster_id = Some(cluster);
        }
        known.push(story);
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, source: &str, link: &str, title: &str) -> ClusterCandidate {
        ClusterCandidate {
            id,
            source: source.into(),
            link: link.into(),
            words: title_words(title),
            cluster_id: None,
        }
    }

    #[test]
    fn near_identical_titles_match() {
        let a = title_words("Ransomware gang hits major port operator in Rotterdam");
        let b = title_words("Ransomware Gang Hits Major Port Operator in Rotterdam!");
        let c = title_words("Ransomware gang hits major port operator, Rotterdam");
        let d = title_words("Port operator in Rotterdam reports record quarter");
        assert!(similar_titles(&a, &b));
        assert!(similar_titles(&a, &c));
        assert!(!similar_titles(&a, &d));
        assert!(!similar_titles(&title_words("AI news"), &title_words("AI news today")));
    }

    #[test]
    fn clusters_by_link_or_title_across_sources_only() {
        let existing = vec![c(1, "A", "https://x/1", "Kubernetes breach disclosed by cloud vendor")];
        let new = vec![
            c(2, "B", "https://y/2", "Cloud vendor discloses Kubernetes breach"),
            c(3, "C", "https://x/1", "Something else entirely"),
            c(5, "D", "https://z/5", "Unrelated gardening tips for the office"),
        ];
        let pairs = assign_clusters(&existing, &new);
        assert_eq!(pairs, [(1, 1), (2, 1), (3, 1)], "reworded headline and same link");
        // A source repeating itself is de-duplication's job, not clustering's.
        let same_source = vec![c(4, "A", "https://x/4", "Kubernetes breach disclosed by cloud vendor")];
        assert!(assign_clusters(&existing, &same_source).is_empty());
    }
}
