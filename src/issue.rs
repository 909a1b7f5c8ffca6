//! The life of an issue: its slot, the draft (rank the edition's stories
//! with the editor's choices, render them), the editor's curation (pin,
//! exclude, note), approval, the freeze into a stored issue with its ledger
//! (compose), and previews exactly as a subscriber receives it. The CLI, the
//! daemon and the web editor all go through here; sending what was frozen
//! is `deliver`'s (through `App::send`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::app::{App, SendReport, random_hex};
use crate::brief::{self, BriefReport, Drafting};
use crate::collect;
use crate::config::Edition;
use crate::config::UnverifiedPolicy;
use crate::deliver::{IssueDelivery, RunReport};
use crate::domain::CardField;
use crate::domain::{EmailAddress, StoredStory};
use crate::rank::{self, RankPolicy};
use crate::render::{self, IssueView, RenderedIssue};
use crate::store::{IssueRow, NewIssue};
use crate::{Error, Result};

/// The stories, policy and overrides `rank AUDIENCE` selects with.
pub struct RankedAudience {
    pub audience: crate::config::Audience,
    /// The edition whose caps apply, if one serves the audience.
    pub edition: Option<String>,
    pub policy: RankPolicy,
    pub overrides: rank::Overrides,
    pub stories: Vec<StoredStory>,
}

impl RankedAudience {
    pub fn select(&self, now: DateTime<Utc>, source_weights: &HashMap<String, f64>) -> rank::Selection<'_> {
        rank::select(
            &self.stories,
            &self.audience,
            source_weights,
            &self.policy,
            &self.overrides,
            now,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreviewFormat {
    Html,
    Text,
    Eml,
}

pub struct PreviewMessage {
    pub slot: DateTime<Utc>,
    pub stories: usize,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// The complete message (headers, both parts, DKIM when configured).
    pub message: lettre::Message,
    pub message_id: String,
}

pub(crate) struct Draft {
    pub(crate) story_ids: Vec<(i64, f64)>,
    pub(crate) rendered: RenderedIssue,
    /// Card fields shown in this draft that failed the grounding check.
    pub(crate) unverified: Vec<(i64, CardField)>,
    pub(crate) briefing: BriefReport,
}

impl App {
    pub(crate) fn slot(&self, edition: &Edition, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        edition.schedule.slot_at_or_before(now).ok_or_else(|| {
            Error::Other(format!(
                "edition {}: schedule \"{}\" has no slot before now",
                edition.name,
                edition.schedule.expr()
            ))
        })
    }

    /// Composes the issue of `edition` for `slot` (once: another process
    /// may have done it first), its deliveries due from the slot or now.
    /// Cards come from the cache only: a send waits for nothing but the
    /// database and SMTP. `Err` carries the report when too few stories
    /// rank, or when cards hold unverified fields under `[briefing]
    /// unverified = "hold"` and no editor `approved` the issue.
    pub(crate) async fn compose(
        &self,
        edition: &Edition,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        approved: bool,
    ) -> Result<std::result::Result<(IssueRow, bool, BriefReport), SendReport>> {
        let draft = self.draft(edition, slot, now, Drafting::CacheOnly).await?;
        if draft.story_ids.len() < edition.min_stories {
            return Ok(Err(SendReport::TooFew {
                slot,
                found: draft.story_ids.len(),
                min: edition.min_stories,
            }));
        }
        if !approved && !draft.unverified.is_empty() {
            return Ok(Err(SendReport::AwaitingApproval {
                slot,
                unverified: draft.unverified.len(),
            }));
        }
        let content = serde_json::to_string(&draft.rendered).map_err(|e| Error::Other(e.to_string()))?;
        let nonce = random_hex(6)?;
        let created = self
            .store
            .create_issue(&NewIssue {
                edition: &edition.name,
                slot_at: slot,
                composed_at: now,
                deliver_from: slot.max(now),
                subject: &draft.rendered.public_subject(),
                content: &content,
                stories: &draft.story_ids,
                message_id_nonce: &nonce,
                message_id_domain: self.config.site.from.email.domain(),
            })
            .await?;
        Ok(Ok((created.0, created.1, draft.briefing)))
    }

    /// The slot an editor's approval is for: the edition's latest slot
    /// when it has no issue yet and is within `grace`, else the next one.
    pub async fn approval_slot(&self, edition: &Edition, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
        if let Some(current) = edition.schedule.slot_at_or_before(now)
            && now - current <= edition.grace
            && self.store.find_issue(&edition.name, current).await?.is_none()
        {
            return Ok(current);
        }
        edition.schedule.next_after(now).ok_or_else(|| {
            Error::Other(format!(
                "edition {}: schedule \"{}\" has no slot after now",
                edition.name,
                edition.schedule.expr()
            ))
        })
    }

    /// An editor approves the next issue of `edition` as `preview` shows it
    /// now: it is composed (frozen) at once, and its deliveries start at its
    /// slot (at once when the slot has passed).
    pub async fn approve(&self, edition_name: &str, now: DateTime<Utc>) -> Result<SendReport> {
        let edition = self.config.edition(edition_name)?;
        self.signer().await?;
        let slot = self.approval_slot(edition, now).await?;
        if let Some(issue) = self.store.find_issue(&edition.name, slot).await? {
            let counts = self.store.delivery_counts(issue.id, self.now()).await?;
            return Ok(SendReport::Delivered {
                issue,
                composed: false,
                run: RunReport {
                    counts,
                    ..RunReport::default()
                },
                briefing: None,
            });
        }
        Ok(match self.compose(edition, slot, now, true).await? {
            Ok((issue, composed, briefing)) => {
                tracing::info!(edition = %edition.name, slot = %slot, issue = issue.id, "issue approved and composed");
                let counts = self.store.delivery_counts(issue.id, self.now()).await?;
                SendReport::Delivered {
                    issue,
                    composed,
                    run: RunReport {
                        counts,
                        ..RunReport::default()
                    },
                    briefing: Some(Box::new(briefing)),
                }
            }
            Err(too_few) => too_few,
        })
    }

    /// Ranks and renders what an issue of `edition` would hold at `now`,
    /// with the editor's choices for it and its stories' cards.
    pub(crate) async fn draft(
        &self,
        edition: &Edition,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
        drafting: Drafting,
    ) -> Result<Draft> {
        let audience = self.config.audience(&edition.audience)?;
        let overrides = self.store.overrides(&edition.name).await?;
        let stories = self.edition_stories(edition, &overrides, now).await?;
        let policy = RankPolicy::for_edition(edition, audience);
        let selection = rank::select(&stories, audience, &self.source_weights(), &policy, &overrides, now);
        let selected: Vec<&StoredStory> = selection.stories().map(|r| r.story).collect();
        let (briefs, briefing) = self.briefs(&edition.name, &selected, drafting, now).await?;
        let intro = match &overrides.note {
            Some(note) => Some(note.clone()),
            None => self.accepted_intro(&edition.name).await?,
        };
        let view: IssueView =
            render::build_issue_view(&self.config, edition, &selection, intro.as_deref(), slot, &briefs);
        let rendered = self
            .renderer()
            .render_issue(&edition.template, edition.subject.as_deref(), &view)?;
        let unverified = match self.config.briefing.as_ref().map(|b| b.unverified) {
            Some(UnverifiedPolicy::Hold) => selected
                .iter()
                .flat_map(|s| {
                    briefs
                        .unverified_fields(s.id, &edition.audience)
                        .into_iter()
                        .map(|f| (s.id, f))
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(Draft {
            story_ids: selection.stories().map(|r| (r.story.id, r.score)).collect(),
            rendered,
            unverified,
            briefing,
        })
    }

    /// The cards, the editor's edits and the timelines of `stories` in
    /// `edition`. Under `unverified = "hold"` unverified fields are shown
    /// (an issue with them waits for approval); else they fall back.
    pub(crate) async fn briefs(
        &self,
        edition: &str,
        stories: &[&StoredStory],
        drafting: Drafting,
        now: DateTime<Utc>,
    ) -> Result<(render::Briefs, BriefReport)> {
        let mut briefs = render::Briefs::default();
        for edit in self.store.card_edits(edition).await? {
            briefs.edits.entry(edit.story_id).or_default().push(edit);
        }
        let Some(settings) = &self.config.briefing else {
            return Ok((briefs, BriefReport::default()));
        };
        briefs.show_unverified = settings.unverified == UnverifiedPolicy::Hold;
        let report = match brief::cards_for(&self.config, &self.store, stories, drafting, now).await {
            Ok((cards, report)) => {
                briefs.cards = cards;
                report
            }
            Err(brief::BriefError::Store(e)) => return Err(e.into()),
            // The briefing never stops an issue: the stories keep their TL;DR.
            Err(e) => {
                tracing::warn!(error = %e, "no cards drafted");
                BriefReport {
                    failed: stories.len(),
                    last_error: Some(e.to_string()),
                    ..BriefReport::default()
                }
            }
        };
        briefs.timelines = brief::timeline::timelines(&self.store, stories, settings.timeline_days).await?;
        Ok((briefs, report))
    }

    /// The drafted intro of `edition`'s next issue, if the editor accepted it.
    async fn accepted_intro(&self, edition: &str) -> Result<Option<String>> {
        Ok(self
            .store
            .intro_draft(edition)
            .await?
            .and_then(|(draft, accepted)| accepted.then_some(draft)))
    }

    /// The stories an issue of `edition` chooses from: its window's, plus
    /// pinned ones from outside it, less those an earlier issue of the
    /// edition already carried.
    async fn edition_stories(
        &self,
        edition: &Edition,
        overrides: &rank::Overrides,
        now: DateTime<Utc>,
    ) -> Result<Vec<StoredStory>> {
        let mut stories = self.candidate_stories(edition.window_days, now).await?;
        for pin in &overrides.pins {
            if !stories.iter().any(|s| s.id == pin.story_id)
                && let Some(story) = self.store.story(pin.story_id).await?
            {
                stories.push(story);
            }
        }
        let sent: std::collections::HashSet<i64> =
            self.store.stories_sent_in(&edition.name).await?.into_iter().collect();
        stories.retain(|s| !sent.contains(&s.id));
        Ok(stories)
    }

    /// What `rank AUDIENCE` shows: the selection for the audience's first
    /// edition (its caps, sections and the editor's choices), or with the
    /// defaults when no edition serves the audience.
    pub async fn rank_audience(&self, audience_name: &str, now: DateTime<Utc>) -> Result<RankedAudience> {
        let audience = self.config.audience(audience_name)?.clone();
        let edition = self.config.editions.iter().find(|e| e.audience == audience_name);
        let (policy, overrides, stories) = match edition {
            Some(e) => {
                let overrides = self.store.overrides(&e.name).await?;
                let stories = self.edition_stories(e, &overrides, now).await?;
                (RankPolicy::for_edition(e, &audience), overrides, stories)
            }
            None => (
                RankPolicy::for_window_days(7, 10, &audience),
                rank::Overrides::default(),
                self.candidate_stories(7, now).await?,
            ),
        };
        Ok(RankedAudience {
            audience,
            edition: edition.map(|e| e.name.clone()),
            policy,
            overrides,
            stories,
        })
    }

    /// Resolves STORY of `tidings issue …`: the id `rank` prints, or a
    /// story's link (canonicalised as the collector does).
    pub async fn find_story(&self, story: &str) -> Result<StoredStory> {
        let id = match story.trim().trim_start_matches('#').parse::<i64>() {
            Ok(id) => id,
            Err(_) => {
                let link = collect::sanitize::canonical_link(story.trim(), None)
                    .ok_or_else(|| Error::Usage(format!("\"{story}\" is neither a story id nor a link")))?;
                *self
                    .store
                    .story_ids_by_link(&link)
                    .await?
                    .first()
                    .ok_or_else(|| Error::Usage(format!("no story has the link {link}")))?
            }
        };
        self.store
            .story(id)
            .await?
            .ok_or_else(|| Error::Usage(format!("no story #{id}")))
    }

    pub(crate) async fn dry_run(
        &self,
        edition: &Edition,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<SendReport> {
        if let Some(issue) = self.store.find_issue(&edition.name, slot).await? {
            let counts = self.store.delivery_counts(issue.id, self.now()).await?;
            let stories = self.store.issue_story_count(issue.id).await? as usize;
            return Ok(SendReport::DryRun {
                slot,
                subject: issue.subject,
                stories,
                recipients: counts.pending + counts.sending,
                existing: Some(counts),
            });
        }
        let draft = self.draft(edition, slot, now, Drafting::CacheOnly).await?;
        Ok(SendReport::DryRun {
            slot,
            subject: draft.rendered.public_subject(),
            stories: draft.story_ids.len(),
            recipients: if draft.story_ids.len() < edition.min_stories {
                0
            } else {
                self.store.active_subscriber_count(&edition.name).await?
            },
            existing: None,
        })
    }

    /// The edition's next issue rendered for one subscriber as `send`
    /// would mail it: `to`, else the edition's first active subscriber,
    /// else an example reader. Records nothing.
    pub async fn preview_message(
        &self,
        edition_name: &str,
        to: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<PreviewMessage> {
        self.preview_message_drafting(edition_name, to, now, Drafting::Draft)
            .await
    }

    /// As [`App::preview_message`], drafting missing cards or not (`drafting`).
    pub async fn preview_message_drafting(
        &self,
        edition_name: &str,
        to: Option<&EmailAddress>,
        now: DateTime<Utc>,
        drafting: Drafting,
    ) -> Result<PreviewMessage> {
        let edition = self.config.edition(edition_name)?;
        let slot = if edition.approval {
            // What an editor approves is what this shows.
            self.approval_slot(edition, now).await?
        } else {
            let current = self.slot(edition, now)?;
            // If the current slot's issue exists, the next issue is the next slot's.
            match self.store.find_issue(&edition.name, current).await? {
                Some(_) => edition.schedule.next_after(now).unwrap_or(current),
                None => current,
            }
        };
        // An editor previews what goes out: cards the cache lacks are drafted now.
        let draft = self.draft(edition, slot, now, drafting).await?;
        let subscriber = match to {
            Some(email) => self.store.subscriber_by_email(email).await?,
            None => self.store.first_active_subscriber(&edition.name).await?,
        };
        let (id, email, name) = match (&subscriber, to) {
            (Some(s), _) => (s.id, s.email.clone(), s.name.clone()),
            (None, Some(email)) => (0, email.clone(), None),
            (None, None) => (
                0,
                EmailAddress::from_store("reader@example.com".to_string()),
                Some("Example Reader".to_string()),
            ),
        };
        let job = IssueDelivery {
            issue: IssueRow {
                id: 0,
                edition: edition.name.clone(),
                slot_at: slot,
                composed_at: now,
                subject: draft.rendered.public_subject(),
                content: String::new(),
            },
            encoded: draft.rendered.encode(),
            rendered: draft.rendered,
            context: self.message_context(edition),
            signer: self.signer_read_only().await?,
            base_url: self.config.site.base_url.clone(),
            dkim: self.dkim()?,
        };
        let row = crate::store::DeliveryRow {
            id: 0,
            subscriber_id: id,
            email: email.clone(),
            name: name.clone(),
            message_id: format!(
                "<tidings.preview.{}@{}>",
                random_hex(6)?,
                self.config.site.from.email.domain()
            ),
            attempts: 0,
        };
        let message = job.message_for(&row, now.into())?;
        let (personal, _, _) = job.personal(id, name.as_deref(), email.as_str());
        Ok(PreviewMessage {
            slot,
            stories: draft.story_ids.len(),
            subject: personal.subject,
            html: personal.html,
            text: personal.text,
            message,
            message_id: row.message_id,
        })
    }

    /// Renders the edition's next issue as a subscriber would receive it.
    pub async fn preview(
        &self,
        edition_name: &str,
        format: PreviewFormat,
        to: Option<&EmailAddress>,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>> {
        let preview = self.preview_message(edition_name, to, now).await?;
        Ok(match format {
            PreviewFormat::Eml => preview.message.formatted(),
            PreviewFormat::Html => preview.html.into_bytes(),
            PreviewFormat::Text => preview.text.into_bytes(),
        })
    }

    /// What the next issue of `edition_name` selects, with the editor's
    /// choices (as `rank` shows for an audience).
    pub async fn ranked_edition(&self, edition_name: &str, now: DateTime<Utc>) -> Result<RankedAudience> {
        let edition = self.config.edition(edition_name)?;
        let audience = self.config.audience(&edition.audience)?.clone();
        let overrides = self.store.overrides(&edition.name).await?;
        let stories = self.edition_stories(edition, &overrides, now).await?;
        Ok(RankedAudience {
            policy: RankPolicy::for_edition(edition, &audience),
            audience,
            edition: Some(edition.name.clone()),
            overrides,
            stories,
        })
    }

    // -- the editor's choices for the next issue ----------------------------

    /// Puts `story` (an id or a link) into the next issue of `edition`, at
    /// `position` of its section or where its score puts it.
    pub async fn pin(
        &self,
        edition: &str,
        story: &str,
        position: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<StoredStory> {
        let edition = self.config.edition(edition)?;
        let story = self.find_story(story).await?;
        self.store.pin_story(&edition.name, story.id, position, now).await?;
        Ok(story)
    }

    /// Keeps `story` out of the next issue of `edition`.
    pub async fn exclude(&self, edition: &str, story: &str, now: DateTime<Utc>) -> Result<StoredStory> {
        let edition = self.config.edition(edition)?;
        let story = self.find_story(story).await?;
        self.store.exclude_story(&edition.name, story.id, now).await?;
        Ok(story)
    }

    /// Undoes a pin or an exclusion; whether there was one.
    pub async fn unpick(&self, edition: &str, story: &str) -> Result<(StoredStory, bool)> {
        let edition = self.config.edition(edition)?;
        let story = self.find_story(story).await?;
        let had = self.store.clear_pick(&edition.name, story.id).await?;
        Ok((story, had))
    }

    /// Sets the intro note of the next issue; an empty one removes it.
    pub async fn set_note(&self, edition: &str, note: &str, now: DateTime<Utc>) -> Result<()> {
        let edition = self.config.edition(edition)?;
        Ok(self.store.set_note(&edition.name, note, now).await?)
    }

    /// The editor's choices for the next issue of `edition`.
    pub async fn choices(&self, edition: &str) -> Result<rank::Overrides> {
        let edition = self.config.edition(edition)?;
        Ok(self.store.overrides(&edition.name).await?)
    }
}
