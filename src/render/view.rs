//! What templates see: view structs made for templates, never raw rows.
//! Every field is documented in README.md ("Templates").

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::{Config, Edition};
use std::collections::HashMap;

use crate::rank::{Ranked, Selection, audiences_for};

/// Longest summary shown in an email; the rest is behind the link.
const SUMMARY_CHARS: usize = 320;

#[derive(Debug, Clone, Serialize)]
pub struct IssueView {
    pub site: SiteView,
    pub edition: EditionView,
    pub issue: IssueMeta,
    pub intro: Option<String>,
    pub sections: Vec<SectionView>,
    /// All stories in order, for templates that ignore sections.
    pub stories: Vec<StoryView>,
    pub subscriber: SubscriberView,
    pub unsubscribe_url: String,
    /// The recipient's preferences page (empty on the web).
    pub preferences_url: String,
    /// This issue's page in the public archive.
    pub archive_url: String,
    /// `[site] base_url` + `/subscribe`.
    pub subscribe_url: String,
    /// Rendering the archive's web page rather than an email.
    pub web: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    pub title: String,
    pub base_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EditionView {
    pub name: String,
    pub title: String,
    pub audience: String,
    pub audience_title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueMeta {
    /// "30 November 2026", in the edition's time zone.
    pub date: String,
    /// RFC 3339, UTC.
    pub slot: String,
    pub timezone: String,
    pub story_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SectionView {
    pub title: String,
    pub stories: Vec<StoryView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StoryView {
    pub id: i64,
    pub position: usize,
    pub title: String,
    pub link: String,
    pub source: String,
    /// "28 Nov 2026", in the edition's time zone.
    pub published: String,
    pub published_iso: String,
    pub collected: String,
    pub collected_iso: String,
    /// Collected long after it was published (`[site] stale_after_hours`).
    pub stale: bool,
    /// The TL;DR: plain text, at most 320 characters.
    pub summary: String,
    pub tags: Vec<String>,
    /// "Who should care": titles of the audiences this story ranks for.
    pub audiences: Vec<String>,
    pub score: f64,
    /// Put in this issue by an editor.
    pub pinned: bool,
    /// "Also covered by": the same news from other sources.
    pub also: Vec<AlsoView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlsoView {
    pub source: String,
    pub title: String,
    pub link: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriberView {
    pub name: Option<String>,
    pub email: String,
}

/// Builds the view of an issue of `edition` for the slot `slot`: the
/// selected stories by section, and the editor's intro note.
pub fn build_issue_view(
    config: &Config,
    edition: &Edition,
    selection: &Selection<'_>,
    note: Option<&str>,
    slot: DateTime<Utc>,
) -> IssueView {
    let tz: Tz = edition.schedule.timezone();
    let audience = config.audiences.get(&edition.audience);
    let source_weights: HashMap<String, f64> = config.sources.iter().map(|s| (s.name.clone(), s.weight)).collect();
    let story_view = |position: usize, r: &Ranked<'_>| {
        let s = r.story;
        let stale = s.collected_at - s.published_at > chrono::Duration::hours(config.site.stale_after_hours);
        StoryView {
            id: s.id,
            position,
            title: s.title.clone(),
            link: s.link.clone(),
            source: s.source.clone(),
            published: s.published_at.with_timezone(&tz).format("%-d %b %Y").to_string(),
            published_iso: s.published_at.to_rfc3339(),
            collected: s.collected_at.with_timezone(&tz).format("%-d %b %Y").to_string(),
            collected_iso: s.collected_at.to_rfc3339(),
            stale,
            // The article's own text when it was read, else the feed's.
            summary: super::tldr::tldr(&s.title, s.content.as_deref().unwrap_or(&s.summary_text), SUMMARY_CHARS),
            tags: s.tags.iter().map(|t| t.tag.clone()).collect(),
            audiences: audiences_for(s, config.audiences.values(), &source_weights)
                .into_iter()
                .map(|a| a.title.clone())
                .collect(),
            score: (r.score * 1000.0).round() / 1000.0,
            pinned: r.pinned,
            also: r
                .also
                .iter()
                .map(|a| AlsoView {
                    source: a.source.clone(),
                    title: a.title.clone(),
                    link: a.link.clone(),
                })
                .collect(),
        }
    };
    let mut position = 0;
    let sections: Vec<SectionView> = selection
        .sections
        .iter()
        .map(|section| SectionView {
            title: section.title.clone(),
            stories: section
                .stories
                .iter()
                .map(|r| {
                    position += 1;
                    story_view(position, r)
                })
                .collect(),
        })
        .collect();
    let stories: Vec<StoryView> = sections.iter().flat_map(|s| s.stories.iter().cloned()).collect();
    IssueView {
        site: SiteView {
            title: config.site.title.clone(),
            base_url: config.site.base_url.clone(),
        },
        edition: EditionView {
            name: edition.name.clone(),
            title: edition.title.clone(),
            audience: edition.audience.clone(),
            audience_title: audience.map(|a| a.title.clone()).unwrap_or_default(),
        },
        issue: IssueMeta {
            date: slot.with_timezone(&tz).format("%-d %B %Y").to_string(),
            slot: slot.to_rfc3339(),
            timezone: tz.name().to_string(),
            story_count: stories.len(),
        },
        intro: note.map(str::to_string),
        sections,
        stories,
        subscriber: SubscriberView {
            name: None,
            email: String::new(),
        },
        unsubscribe_url: String::new(),
        preferences_url: String::new(),
        archive_url: String::new(),
        subscribe_url: format!("{}/subscribe", config.site.base_url),
        web: false,
    }
}
