//! A story's timeline: the earlier stories of its thread — the same
//! cluster, or a near-identical subject — over `[briefing] timeline_days`,
//! from any source, oldest first. Computed from the store, never written
//! by the model.
//!
//! A thread's headlines change as it moves on ("attack encrypts clinic
//! systems", then "gang leaks clinic records"), so the subject test is
//! looser than clustering's: at least [`MIN_SHARED`] title words in
//! common, half or more of the shorter title's.

use std::collections::HashMap;

use chrono::Duration;

use crate::collect::cluster::{shared_keys, title_keys};
use crate::domain::{StoredStory, ThreadEvent};
use crate::store::{Store, StoreResult};

/// Most events a timeline shows (the latest ones).
pub const MAX_EVENTS: usize = 8;
/// Title words two stories of one thread share at least.
const MIN_SHARED: usize = 3;

/// Whether two titles (as sorted [`title_keys`]) name the same subject.
fn same_subject(a: &[u64], b: &[u64]) -> bool {
    let shared = shared_keys(a, b);
    shared >= MIN_SHARED && shared * 2 >= a.len().min(b.len())
}

/// The timelines of `stories`, by story id (stories without earlier events
/// have none).
pub async fn timelines(
    store: &Store,
    stories: &[&StoredStory],
    days: i64,
) -> StoreResult<HashMap<i64, Vec<ThreadEvent>>> {
    let mut out = HashMap::new();
    let (Some(first), Some(last)) = (
        stories.iter().map(|s| s.published_at).min(),
        stories.iter().map(|s| s.published_at).max(),
    ) else {
        return Ok(out);
    };
    if days <= 0 {
        return Ok(out);
    }
    let window = Duration::days(days);
    let rows = store.thread_rows(first - window, last).await?;
    let row_keys: Vec<Vec<u64>> = rows.iter().map(|r| title_keys(&r.title)).collect();
    for story in stories {
        let keys = title_keys(&story.title);
        let since = story.published_at - window;
        let mut events: Vec<ThreadEvent> = rows
            .iter()
            .zip(&row_keys)
            .filter(|(r, _)| r.id != story.id && r.published_at >= since && r.published_at < story.published_at)
            .filter(|(r, k)| (story.cluster_id.is_some() && r.cluster_id == story.cluster_id) || same_subject(&keys, k))
            .map(|(r, _)| ThreadEvent {
                story_id: r.id,
                title: r.title.clone(),
                source: r.source.clone(),
                link: r.link.clone(),
                published_at: r.published_at,
            })
            .collect();
        if events.len() > MAX_EVENTS {
            events.drain(..events.len() - MAX_EVENTS);
        }
        if !events.is_empty() {
            out.insert(story.id, events);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_is_told_by_its_subject_not_its_headline() {
        let later = title_keys("Ransomware gang leaks 1,400 patient records from Northbay Clinic");
        let earlier = title_keys("Ransomware attack encrypts Northbay Clinic systems");
        let other = title_keys("Ransomware negotiators see payments fall");
        let unrelated = title_keys("Northbay Clinic opens a new wing");
        assert!(same_subject(&later, &earlier));
        assert!(!same_subject(&later, &other));
        assert!(!same_subject(&earlier, &unrelated), "two shared words are not a thread");
    }
}
