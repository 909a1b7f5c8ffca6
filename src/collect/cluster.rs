//! Clustering the same story told by several sources: stories with the same
//! canonical link, or with near-identical titles (the same words after
//! normalisation, Jaccard similarity of their word sets ≥ 0.75), share a
//! cluster. The digest shows the best-ranked story of a cluster once, with
//! "also covered by" links to the others.
//!
//! Word sets over titles are cheap and explainable; SimHash/MinHash would
//! only pay off at millions of stories per window.

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;

/// Words too common to tell two titles apart.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "in", "is", "it", "its", "of", "on",
    "or", "the", "to", "was", "were", "will", "with", "after", "new", "says", "say",
];

/// The threshold above which two titles name the same story.
const SIMILARITY: f64 = 0.75;
/// Titles with fewer distinct words only match when identical.
const MIN_WORDS: usize = 4;
/// Most stories looked at per indexed word when probing.
const MAX_POSTINGS: usize = 256;

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

/// A title as clustering compares it: its [`title_words`] as sorted keys.
/// Computed where the story is made (in parallel), not where it is stored.
pub fn title_keys(title: &str) -> Vec<u64> {
    keys(&title_words(title))
}

pub fn similar_titles(a: &HashSet<String>, b: &HashSet<String>) -> bool {
    similar_keys(&keys(a), &keys(b))
}

/// A story as clustering sees it.
#[derive(Debug, Clone)]
pub struct ClusterCandidate {
    pub id: i64,
    pub source: String,
    pub link: String,
    /// The title's [`title_keys`].
    pub keys: Vec<u64>,
    /// The cluster it already belongs to, if any.
    pub cluster_id: Option<i64>,
}

/// The clustering index of the stories published since `since`, built as
/// the store hands over its rows rather than from a list of them all. Read
/// before the transaction writes, it holds committed stories only.
pub async fn load_index(
    tx: &mut crate::store::StoreTx<'_>,
    since: chrono::DateTime<chrono::Utc>,
) -> crate::store::StoreResult<ClusterIndex> {
    let mut index = ClusterIndex::default();
    tx.cluster_rows(since, |row| {
        index.insert(ClusterCandidate {
            keys: title_keys(&row.title),
            id: row.id,
            source: row.source,
            link: row.link,
            cluster_id: row.cluster_id,
        })
    })
    .await?;
    index.shrink_to_fit();
    Ok(index)
}

/// An index over recent stories that finds a new story's match without
/// comparing it to every story: by link through a map, by title through
/// prefix filtering — with the words of each title in one fixed order, two
/// sets whose Jaccard similarity reaches the threshold always share one of
/// their first `n − ⌈0.75·n⌉ + 1` words, so only those are indexed and
/// probed — and a length filter. Words are hashed once and compared as
/// sorted lists.
///
/// It holds every story of the clustering window (tens of thousands), so
/// it is laid out flat — a few contiguous arrays of numbers, no allocation
/// per story, link or word — at under 200 bytes a story: maps of strings
/// and a list per word took over 400.
#[derive(Debug, Default)]
pub struct ClusterIndex {
    entries: Vec<Entry>,
    /// Every indexed title's keys end to end; an entry names its slice.
    keys: Vec<u64>,
    /// Source names as small numbers: compared once per candidate.
    sources: HashMap<String, u32>,
    /// A link's [`link_key`] → the first and last entry with that link;
    /// the ones between are chained through [`Entry::same_link`].
    by_link: FxHashMap<u64, Chain>,
    /// A title key → its most recent posting; a word's postings are
    /// chained back in time through [`Posting::earlier`].
    by_word: FxHashMap<u64, u32>,
    postings: Vec<Posting>,
}

/// Marks the end of a chain.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Chain {
    first: u32,
    last: u32,
}

/// A link as a number. Two different links share one with a chance of
/// about 10⁻¹¹ in a window of 25,000 stories.
fn link_key(link: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    link.hash(&mut h);
    h.finish()
}

/// An indexed title word: which story, where the word stands in its sorted
/// keys and how many keys it has — enough to rule most candidates out
/// without comparing titles.
#[derive(Debug, Clone, Copy)]
struct Posting {
    at: u32,
    /// The same word's previous posting, or [`NONE`].
    earlier: u32,
    position: u16,
    len: u16,
}

/// One bit per key (by its low bits): a key of one title that the other
/// lacks sets a bit the other's signature may lack, so the bits one
/// signature has and the other lacks never outnumber the keys one title has
/// and the other lacks — a bound checked without touching the story.
fn signature(keys: &[u64]) -> u64 {
    keys.iter().fold(0, |m, k| m | 1 << (k % 64))
}

/// Whether titles with these signatures and key counts can be similar.
fn signatures_allow(a: u64, a_len: usize, b: u64, b_len: usize) -> bool {
    if a_len < MIN_WORDS || b_len < MIN_WORDS {
        return true;
    }
    let need = (SIMILARITY / (1.0 + SIMILARITY) * (a_len + b_len) as f64 - 1e-9).ceil() as usize;
    let only_a = (a & !b).count_ones() as usize;
    let only_b = (b & !a).count_ones() as usize;
    only_a + need <= a_len && only_b + need <= b_len
}

#[derive(Debug)]
struct Entry {
    id: i64,
    cluster_id: Option<i64>,
    /// The title's [`signature`].
    signature: u64,
    /// Where the title's keys start in [`ClusterIndex::keys`].
    keys_at: u32,
    keys_len: u16,
    source: u32,
    /// The next entry with the same link, or [`NONE`].
    same_link: u32,
}

/// A word as a number whose order is the order prefix filtering uses. Any
/// fixed order is correct; putting long words first (they are the rare
/// ones: names, products, places) keeps the probed lists short, where short
/// words and numbers ("ai", "2026") would match half the index.
fn word_key(w: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    w.hash(&mut h);
    let rarity = 255 - w.chars().count().min(255) as u64;
    (rarity << 56) | (h.finish() >> 8)
}

fn keys(words: &HashSet<String>) -> Vec<u64> {
    let mut keys: Vec<u64> = words.iter().map(|w| word_key(w)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The leading keys that must be indexed and probed.
fn prefix(keys: &[u64]) -> &[u64] {
    let n = keys.len();
    let p = if n < MIN_WORDS {
        1
    } else {
        n - (SIMILARITY * n as f64).ceil() as usize + 1
    };
    &keys[..p.min(n)]
}

/// Whether two key lists of lengths `a_len` and `b_len` whose first common
/// key stands at `a_pos` and `b_pos` can still share enough keys to be
/// similar (the positional filter): every later common key comes after
/// those positions in both. A candidate met through a key that is not the
/// first common one is also met through the first, where the bound holds.
fn could_reach(a_len: usize, a_pos: usize, b_len: usize, b_pos: usize) -> bool {
    if a_len < MIN_WORDS || b_len < MIN_WORDS {
        return true;
    }
    let most_common = 1 + (a_len - a_pos - 1).min(b_len - b_pos - 1);
    // Jaccard ≥ t  ⇔  |A∩B| ≥ t/(1+t)·(|A|+|B|).
    most_common as f64 >= SIMILARITY / (1.0 + SIMILARITY) * (a_len + b_len) as f64 - 1e-9
}

/// How many keys two sorted key lists share.
pub fn shared_keys(a: &[u64], b: &[u64]) -> usize {
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common
}

/// [`similar_titles`] on sorted key lists.
fn similar_keys(a: &[u64], b: &[u64]) -> bool {
    if a.is_empty() || b.is_empty() {
        return false;
    }
    if a.len() < MIN_WORDS || b.len() < MIN_WORDS {
        return a == b;
    }
    let (small, large) = if a.len() <= b.len() {
        (a.len(), b.len())
    } else {
        (b.len(), a.len())
    };
    // Length filter: |A∩B| ≤ |small| and |A∪B| ≥ |large|.
    if (small as f64) < SIMILARITY * large as f64 {
        return false;
    }
    let common = shared_keys(a, b);
    let union = a.len() + b.len() - common;
    common as f64 / union as f64 >= SIMILARITY
}

impl ClusterIndex {
    pub fn new(existing: Vec<ClusterCandidate>) -> Self {
        let mut index = ClusterIndex::default();
        index.reserve_for(&existing);
        for c in existing {
            index.insert(c);
        }
        index
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Gives back what growing one story at a time left unused.
    pub fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        self.keys.shrink_to_fit();
        self.postings.shrink_to_fit();
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Room for these stories, grown once per batch.
    fn reserve_for(&mut self, stories: &[ClusterCandidate]) {
        self.entries.reserve(stories.len());
        self.keys.reserve(stories.iter().map(|c| c.keys.len()).sum());
        self.postings
            .reserve(stories.iter().map(|c| prefix(&c.keys).len()).sum());
    }

    fn words(&self, at: usize) -> &[u64] {
        let e = &self.entries[at];
        &self.keys[e.keys_at as usize..][..usize::from(e.keys_len)]
    }

    /// Adds a story; `c.keys` must be sorted ([`title_keys`]).
    pub fn insert(&mut self, c: ClusterCandidate) {
        let at = self.entries.len() as u32;
        let next = self.sources.len() as u32;
        let source = *self.sources.entry(c.source).or_insert(next);
        let chain = self
            .by_link
            .entry(link_key(&c.link))
            .or_insert(Chain { first: at, last: at });
        if chain.last != at {
            self.entries[chain.last as usize].same_link = at;
            chain.last = at;
        }
        // A title is at most 300 characters, so far fewer keys than this.
        let words = &c.keys[..c.keys.len().min(usize::from(u16::MAX))];
        let len = words.len() as u16;
        for (position, key) in prefix(words).iter().enumerate() {
            let head = self.by_word.entry(*key).or_insert(NONE);
            self.postings.push(Posting {
                at,
                earlier: *head,
                position: position as u16,
                len,
            });
            *head = (self.postings.len() - 1) as u32;
        }
        self.entries.push(Entry {
            id: c.id,
            cluster_id: c.cluster_id,
            signature: signature(words),
            keys_at: self.keys.len() as u32,
            keys_len: len,
            source,
            same_link: NONE,
        });
        self.keys.extend_from_slice(words);
    }

    /// The earliest indexed story from another source with the same link
    /// or a similar title. `recent` is scratch space.
    fn find(&self, id: i64, source: &str, link: &str, words: &[u64], recent: &mut Vec<Posting>) -> Option<usize> {
        let source = self.sources.get(source).copied();
        let eligible = |at: usize| {
            let e = &self.entries[at];
            e.id < id && Some(e.source) != source
        };
        let mut best: Option<usize> = self.by_link.get(&link_key(link)).and_then(|chain| {
            let mut at = chain.first;
            while at != NONE {
                if eligible(at as usize) {
                    return Some(at as usize);
                }
                at = self.entries[at as usize].same_link;
            }
            None
        });
        let sig = signature(words);
        for (position, key) in prefix(words).iter().enumerate() {
            let Some(&head) = self.by_word.get(key) else { continue };
            // A word in thousands of titles is noise, not news: look at its
            // most recent stories only, so one probe stays cheap.
            recent.clear();
            let mut p = head;
            while p != NONE && recent.len() < MAX_POSTINGS {
                let posting = self.postings[p as usize];
                recent.push(posting);
                p = posting.earlier;
            }
            // Oldest first, so the first hit is the earliest; the answer is
            // the smallest of each word's first hits.
            let hit = recent
                .iter()
                .rev()
                .take_while(|p| best.is_none_or(|b| (p.at as usize) < b))
                .filter(|p| {
                    let len = usize::from(p.len);
                    could_reach(words.len(), position, len, usize::from(p.position))
                        && signatures_allow(sig, words.len(), self.entries[p.at as usize].signature, len)
                })
                .map(|p| p.at as usize)
                .find(|&at| eligible(at) && similar_keys(self.words(at), words));
            if hit.is_some() {
                best = hit;
            }
        }
        best
    }

    /// Adds new stories (ascending id) and returns the (story id, cluster
    /// id) pairs to store: each new story that matches joins the match's
    /// cluster, named by its first story's id (which joins it too).
    pub fn add(&mut self, new: Vec<ClusterCandidate>) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        let mut recent = Vec::with_capacity(MAX_POSTINGS);
        self.reserve_for(&new);
        for mut story in new {
            if let Some(at) = self.find(story.id, &story.source, &story.link, &story.keys, &mut recent) {
                let m = &mut self.entries[at];
                let cluster = m.cluster_id.unwrap_or(m.id);
                if m.cluster_id.is_none() {
                    m.cluster_id = Some(cluster);
                    out.push((m.id, cluster));
                }
                story.cluster_id = Some(cluster);
                out.push((story.id, cluster));
            }
            self.insert(story);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// For each story in `new` (ascending id), the cluster it joins; see
/// [`ClusterIndex::add`].
pub fn assign_clusters(existing: &[ClusterCandidate], new: &[ClusterCandidate]) -> Vec<(i64, i64)> {
    ClusterIndex::new(existing.to_vec()).add(new.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: i64, source: &str, link: &str, title: &str) -> ClusterCandidate {
        ClusterCandidate {
            id,
            source: source.into(),
            link: link.into(),
            keys: title_keys(title),
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
    fn prefix_filtering_finds_every_similar_pair() {
        // Brute force and the index agree on a few hundred titles with a
        // small vocabulary (many near-duplicates).
        let vocab = [
            "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
        ];
        let mut rng = 7u64;
        let mut next = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (rng >> 33) as usize
        };
        let stories: Vec<ClusterCandidate> = (0..300)
            .map(|i| {
                let n = 4 + next() % 9;
                let title: Vec<&str> = (0..n).map(|_| vocab[next() % vocab.len()]).collect();
                c(i, &format!("S{}", i % 7), &format!("https://x/{i}"), &title.join(" "))
            })
            .collect();
        for (i, s) in stories.iter().enumerate() {
            let brute = stories[..i]
                .iter()
                .position(|e| e.source != s.source && similar_keys(&e.keys, &s.keys));
            let index = ClusterIndex::new(stories[..i].to_vec());
            let found = index.find(s.id, &s.source, &s.link, &s.keys, &mut Vec::new());
            assert_eq!(found.is_some(), brute.is_some(), "story {i}");
        }
    }

    #[test]
    fn a_link_shared_by_several_stories_finds_the_earliest_from_another_source() {
        let existing = vec![
            c(1, "A", "https://x/1", "First telling of the story here"),
            c(2, "B", "https://x/1", "Second telling, other words entirely"),
            c(3, "C", "https://x/1", "Third telling with more new words"),
        ];
        let new = vec![c(4, "A", "https://x/1", "Fourth telling from the first source")];
        assert_eq!(assign_clusters(&existing, &new), [(2, 2), (4, 2)]);
    }

    #[test]
    fn a_common_word_is_probed_in_its_most_recent_stories_only() {
        let title = "Identical wording across many outlets today";
        let existing: Vec<ClusterCandidate> = (1..=300)
            .map(|id| c(id, &format!("S{id}"), &format!("https://x/{id}"), title))
            .collect();
        let new = vec![c(301, "T", "https://t/1", title)];
        // The earliest of the last MAX_POSTINGS (256) stories with its words.
        let earliest = 300 - MAX_POSTINGS as i64 + 1;
        assert_eq!(
            assign_clusters(&existing, &new),
            [(earliest, earliest), (301, earliest)]
        );
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
