//! The briefing's commands: cards for the stories that can reach an
//! upcoming issue, one story's card (`tidings briefing`), the editor's
//! edits of a card and the drafted intro.

use chrono::{DateTime, Utc};

use super::App;
use crate::brief::{self, BriefReport, Drafting};
use crate::domain::{Card, CardField, StoredStory, ThreadEvent};
use crate::store::CachedBrief;
use crate::{Error, Result};

/// One story's card as `tidings briefing STORY` prints it.
#[derive(Debug)]
pub struct StoryBriefing {
    pub story: StoredStory,
    pub card: Option<Card>,
    /// Why the model's answers were rejected, when they were.
    pub rejection: Option<String>,
    /// The editor's texts, by edition.
    pub edits: Vec<(String, CardField, String)>,
    pub timeline: Vec<ThreadEvent>,
    pub report: BriefReport,
}

impl App {
    /// Cards for the stories that can reach an upcoming issue — the ranked
    /// candidates of each edition's next issue — not for every story
    /// collected. Drafts what the cache lacks, within the budget.
    pub async fn brief_upcoming(&self, now: DateTime<Utc>) -> Result<BriefReport> {
        if self.config.briefing.is_none() {
            return Ok(BriefReport::default());
        }
        let weights = self.source_weights();
        let mut candidates: Vec<StoredStory> = Vec::new();
        let mut per_edition: Vec<(&crate::config::Edition, Vec<i64>)> = Vec::new();
        for edition in &self.config.editions {
            let ranked = self.ranked_edition(&edition.name, now).await?;
            let selection = ranked.select(now, &weights);
            per_edition.push((edition, selection.stories().map(|r| r.story.id).collect()));
            for r in selection.stories() {
                if !candidates.iter().any(|c| c.id == r.story.id) {
                    candidates.push(r.story.clone());
                }
            }
        }
        let refs: Vec<&StoredStory> = candidates.iter().collect();
        let (cards, mut report) = self.cards_for(&refs, now).await?;
        // Each edition's intro, drafted from its cards once they are known.
        for (edition, ids) in per_edition {
            let chosen: Vec<(&StoredStory, &Card)> = ids
                .iter()
                .filter_map(|id| Some((candidates.iter().find(|s| s.id == *id)?, cards.get(id)?)))
                .collect();
            if chosen.is_empty() || report.gave_up {
                continue;
            }
            let Some(settings) = &self.config.briefing else { break };
            let audience = self.config.audience(&edition.audience)?.title.clone();
            match brief::intro::draft_intro(settings, &self.store, &edition.name, &audience, &chosen, now).await {
                Ok(r) => report.add(&r),
                Err(brief::BriefError::Store(e)) => return Err(e.into()),
                Err(e) => {
                    report.failed += 1;
                    report.last_error.get_or_insert(e.to_string());
                }
            }
        }
        Ok(report)
    }

    /// Cards for `stories` (what `rank` shows), drafted where the cache lacks them.
    pub async fn cards_for(
        &self,
        stories: &[&StoredStory],
        now: DateTime<Utc>,
    ) -> Result<(std::collections::HashMap<i64, Card>, BriefReport)> {
        match brief::cards_for(&self.config, &self.store, stories, Drafting::Draft, now).await {
            Ok(found) => Ok(found),
            Err(brief::BriefError::Store(e)) => Err(e.into()),
            Err(e) => Ok((
                std::collections::HashMap::new(),
                BriefReport {
                    failed: stories.len(),
                    last_error: Some(e.to_string()),
                    ..BriefReport::default()
                },
            )),
        }
    }

    /// The card of `story` (an id or a link), drafted when the cache lacks
    /// it or when `regenerate` asks; the editor's edits are kept either way.
    pub async fn story_briefing(&self, story: &str, regenerate: bool, now: DateTime<Utc>) -> Result<StoryBriefing> {
        let settings = self.config.briefing.as_ref().ok_or_else(|| {
            Error::Usage("no [briefing] section in the configuration: cards need a model server".into())
        })?;
        let story = self.find_story(story).await?;
        let drafting = if regenerate {
            Drafting::Regenerate
        } else {
            Drafting::Draft
        };
        let (mut cards, report) = brief::cards_for(&self.config, &self.store, &[&story], drafting, now)
            .await
            .map_err(|e| Error::Other(e.to_string()))?;
        let card = cards.remove(&story.id);
        let rejection = match (&card, brief::cached_answer(&self.config, &self.store, &story).await) {
            (None, Ok(Some(CachedBrief::Rejected(reason)))) => Some(reason),
            _ => None,
        };
        let mut edits = Vec::new();
        for edition in &self.config.editions {
            for e in self.store.card_edits(&edition.name).await? {
                if e.story_id == story.id {
                    edits.push((edition.name.clone(), e.field, e.text));
                }
            }
        }
        let timeline = brief::timeline::timelines(&self.store, &[&story], settings.timeline_days)
            .await?
            .remove(&story.id)
            .unwrap_or_default();
        Ok(StoryBriefing {
            story,
            card,
            rejection,
            edits,
            timeline,
            report,
        })
    }

    /// The editor's text for one field of `story`'s card in `edition`: it
    /// wins over every draft, now and after a regeneration. An empty text
    /// gives the field back to the draft.
    pub async fn edit_card(
        &self,
        edition: &str,
        story: &str,
        field: &str,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<(StoredStory, CardField)> {
        let edition = self.config.edition(edition)?;
        let field = CardField::parse(field).ok_or_else(|| {
            let names: Vec<&str> = CardField::ALL.iter().map(|f| f.name()).collect();
            Error::Usage(format!("\"{field}\" is not a card field; one of: {}", names.join(", ")))
        })?;
        let story = self.find_story(story).await?;
        let text = clean_edit(field, text)?;
        self.store
            .set_card_edit(&edition.name, story.id, field, &text, now)
            .await?;
        Ok((story, field))
    }

    /// The intro the model drafted for `edition`'s next issue, and whether
    /// the editor accepted it.
    pub async fn intro_draft(&self, edition: &str) -> Result<Option<(String, bool)>> {
        let edition = self.config.edition(edition)?;
        Ok(self.store.intro_draft(&edition.name).await?)
    }

    /// Takes the drafted intro as the next issue's intro (used while the
    /// editor has written no note); the draft, if there is one.
    pub async fn accept_intro_draft(&self, edition: &str, now: DateTime<Utc>) -> Result<Option<String>> {
        let edition = self.config.edition(edition)?;
        if !self.store.accept_intro(&edition.name, now).await? {
            return Ok(None);
        }
        Ok(self.store.intro_draft(&edition.name).await?.map(|(d, _)| d))
    }
}

/// An editor's text as stored: plain, bounded; takeaways one per line.
fn clean_edit(field: CardField, text: &str) -> Result<String> {
    let max = match field {
        CardField::Tldr => brief::prompt::MAX_TLDR,
        CardField::Takeaways => brief::prompt::MAX_TAKEAWAY * crate::domain::MAX_TAKEAWAYS,
        _ => brief::prompt::MAX_FIELD,
    };
    let cleaned = if field == CardField::Takeaways {
        text.lines()
            .map(crate::text::clean_line)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        crate::text::clean_line(text)
    };
    let cleaned = crate::text::defuse_markers(cleaned);
    if cleaned.chars().count() > max {
        return Err(Error::Usage(format!(
            "{field} is {} characters long; at most {max}",
            cleaned.chars().count()
        )));
    }
    Ok(cleaned)
}
