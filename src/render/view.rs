//! What templates see: view structs made for templates, never raw rows.
//! Every field is documented in README.md ("Templates").

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::{Config, Edition};
use std::collections::HashMap;

use crate::domain::{Card, CardEdit, CardField, ThreadEvent};
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
    /// The story's card (`[briefing]`): fields a model drafted, or the
    /// editor wrote; `None` when it has none, and the TL;DR is `summary`.
    pub card: Option<CardView>,
    /// Earlier stories of the same thread, oldest first.
    pub timeline: Vec<TimelineView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardView {
    /// One sentence; when absent, `summary` is the TL;DR.
    pub tldr: Option<String>,
    pub what_changed: Option<String>,
    /// For this edition's audience.
    pub why_it_matters: Option<String>,
    pub what_to_do_next: Option<String>,
    pub takeaways: Vec<TakeawayView>,
    /// The sources the model read, numbered as the takeaways cite them.
    pub sources: Vec<CiteView>,
    /// The model that drafted the card ("" when the editor wrote it all).
    pub model: String,
    /// Some text shown was written by the model (label it as such).
    pub machine_drafted: bool,
    /// Some text shown was written or changed by the editor.
    pub edited: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TakeawayView {
    pub text: String,
    /// The sources that support it: `[1] [2]`.
    pub sources: Vec<CiteView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CiteView {
    pub number: usize,
    pub source: String,
    pub link: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineView {
    /// "28 Nov 2026", in the edition's time zone.
    pub date: String,
    pub date_iso: String,
    pub title: String,
    pub source: String,
    pub link: String,
}

/// What the briefing adds to an issue's stories: drafted cards, the
/// editor's edits, timelines.
#[derive(Debug, Clone, Default)]
pub struct Briefs {
    pub cards: HashMap<i64, Card>,
    pub edits: HashMap<i64, Vec<CardEdit>>,
    pub timelines: HashMap<i64, Vec<ThreadEvent>>,
    /// Show fields the grounding check could not verify (an editor
    /// approved the issue with them); otherwise they fall back.
    pub show_unverified: bool,
}

impl Briefs {
    /// The fields of `story_id`'s card that failed the grounding check
    /// and that no edit replaces.
    pub fn unverified_fields(&self, story_id: i64, audience: &str) -> Vec<CardField> {
        let Some(card) = self.cards.get(&story_id) else {
            return Vec::new();
        };
        let edited = |f: CardField| {
            self.edits
                .get(&story_id)
                .is_some_and(|e| e.iter().any(|e| e.field == f))
        };
        card.unverified_fields()
            .into_iter()
            .filter(|f| !edited(*f))
            .filter(|f| {
                // Only this edition's audience's "why it matters" is shown.
                *f != CardField::WhyItMatters
                    || card
                        .why_it_matters
                        .iter()
                        .any(|w| w.audience == audience && !w.text.verified())
            })
            .collect()
    }

    /// The card of `story_id` as the edition's readers see it: the editor's
    /// text wins; a field that failed the check is left out unless shown.
    pub fn card_view(&self, story_id: i64, audience: &str) -> Option<CardView> {
        let card = self.cards.get(&story_id);
        let edits: &[CardEdit] = self.edits.get(&story_id).map(Vec::as_slice).unwrap_or_default();
        if card.is_none() && edits.is_empty() {
            return None;
        }
        let mut machine = false;
        let mut edited = false;
        let edit = |f: CardField| edits.iter().find(|e| e.field == f).map(|e| e.text.clone());
        let mut field = |f: CardField, drafted: Option<&crate::domain::CardText>| -> Option<String> {
            if let Some(text) = edit(f) {
                edited = true;
                return Some(text);
            }
            let d = drafted.filter(|t| t.verified() || self.show_unverified)?;
            machine = true;
            Some(d.text.clone())
        };
        let tldr = field(CardField::Tldr, card.map(|c| &c.tldr));
        let what_changed = field(CardField::WhatChanged, card.map(|c| &c.what_changed));
        let why_it_matters = field(
            CardField::WhyItMatters,
            card.and_then(|c| c.why_it_matters.iter().find(|w| w.audience == audience))
                .map(|w| &w.text),
        );
        let what_to_do_next = field(CardField::WhatToDoNext, card.map(|c| &c.what_to_do_next));
        let sources: Vec<CiteView> = card
            .map(|c| {
                c.sources
                    .iter()
                    .enumerate()
                    .map(|(i, s)| CiteView {
                        number: i + 1,
                        source: s.source.clone(),
                        link: s.link.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let takeaways: Vec<TakeawayView> = match edit(CardField::Takeaways) {
            Some(text) => {
                edited = true;
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| TakeawayView {
                        text: l.to_string(),
                        sources: Vec::new(),
                    })
                    .collect()
            }
            None => card
                .map(|c| {
                    c.takeaways
                        .iter()
                        .filter(|t| t.text.verified() || self.show_unverified)
                        .map(|t| TakeawayView {
                            text: t.text.text.clone(),
                            sources: t.sources.iter().filter_map(|n| sources.get(n - 1).cloned()).collect(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        };
        if card.is_some_and(|c| !c.takeaways.is_empty())
            && !takeaways.is_empty()
            && edit(CardField::Takeaways).is_none()
        {
            machine = true;
        }
        if tldr.is_none()
            && what_changed.is_none()
            && why_it_matters.is_none()
            && what_to_do_next.is_none()
            && takeaways.is_empty()
        {
            return None;
        }
        Some(CardView {
            tldr,
            what_changed,
            why_it_matters,
            what_to_do_next,
            takeaways,
            sources,
            model: if machine {
                card.map(|c| c.model.clone()).unwrap_or_default()
            } else {
                String::new()
            },
            machine_drafted: machine,
            edited,
        })
    }
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
    briefs: &Briefs,
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
            card: briefs.card_view(s.id, &edition.audience),
            timeline: briefs
                .timelines
                .get(&s.id)
                .map(|events| {
                    events
                        .iter()
                        .map(|e| TimelineView {
                            date: e.published_at.with_timezone(&tz).format("%-d %b %Y").to_string(),
                            date_iso: e.published_at.to_rfc3339(),
                            title: e.title.clone(),
                            source: e.source.clone(),
                            link: e.link.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
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
