//! Rendering an issue through the editor-owned templates in `templates/`.
//!
//! An issue is rendered once per variant (subscribers with a name, and
//! without, so `{% if subscriber.name %}` works), with the places of the
//! per-subscriber values recorded ([`slots`]); [`personalize`] then writes
//! each subscriber's values into those places, HTML-escaped in the HTML
//! part. That keeps the cost per subscriber to a few string copies, and
//! every subscriber gets exactly the same issue.

mod encoded;
pub mod slots;
pub mod tldr;
mod view;

pub use encoded::{EncodedIssue, EncodedPart, EncodedVariant};
pub use slots::{Escape, Recipient, Slot, SlottedText};

use std::path::{Path, PathBuf};

use minijinja::{Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};

pub use view::{
    Briefs, CardView, CiteView, IssueView, SectionView, StoryView, SubscriberView, TakeawayView, TimelineView,
    build_issue_view,
};

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{file}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Template {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("cannot read templates in {dir}: {reason}")]
    Load { dir: PathBuf, reason: String },
    #[error("inlining CSS of {file}: {reason}")]
    Css { file: String, reason: String },
    #[error("no randomness from the OS: {0}")]
    Random(String),
}

/// Templates every folder needs, bundled for folders copied before they existed.
const BUNDLED: [(&str, &str); 2] = [
    (
        "confirm_email.html.j2",
        include_str!("../../templates/confirm_email.html.j2"),
    ),
    (
        "confirm_email.txt.j2",
        include_str!("../../templates/confirm_email.txt.j2"),
    ),
];

/// The templates of one folder, loaded at start-up (and again on reload):
/// an editor changes a file, no rebuild needed.
pub struct Renderer {
    env: Environment<'static>,
    dir: PathBuf,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("dir", &self.dir).finish()
    }
}

/// The three parts of an issue for one kind of subscriber, with the places
/// of the per-subscriber values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RenderedVariant {
    pub subject: SlottedText,
    pub html: SlottedText,
    pub text: SlottedText,
}

/// An issue rendered once, stored with the issue, personalised per subscriber.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RenderedIssue {
    pub named: RenderedVariant,
    pub anonymous: RenderedVariant,
    /// The archive's page (no plain-text part). Issues composed before the
    /// archive existed have none and are shown from `anonymous`.
    #[serde(default)]
    pub web: Option<RenderedVariant>,
}

impl RenderedIssue {
    /// The HTML of the issue's public archive page.
    pub fn web_html(&self, archive_url: &str, subscribe_url: &str) -> String {
        match &self.web {
            Some(web) => web.html.fill(
                &Recipient {
                    archive_url,
                    ..Recipient::default()
                },
                Escape::Html,
            ),
            None => {
                personalize(
                    self,
                    &Recipient {
                        name: None,
                        email: "",
                        unsubscribe_url: subscribe_url,
                        preferences_url: subscribe_url,
                        archive_url,
                    },
                )
                .html
            }
        }
    }

    /// The subject as the archive and the CLI show it: no subscriber's values.
    pub fn public_subject(&self) -> String {
        self.web
            .as_ref()
            .unwrap_or(&self.anonymous)
            .subject
            .fill(&Recipient::default(), Escape::None)
    }
}

/// One subscriber's copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Personal {
    pub subject: String,
    pub html: String,
    pub text: String,
}

impl Renderer {
    pub fn load(dir: &Path) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| RenderError::Load {
                dir: dir.to_path_buf(),
                reason: e.to_string(),
            })?;
        env.set_syntax(syntax);
        env.add_filter("wrap", wrap);
        let entries = std::fs::read_dir(dir).map_err(|e| RenderError::Load {
            dir: dir.to_path_buf(),
            reason: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "j2"))
            .collect();
        files.sort();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let source = std::fs::read_to_string(&path).map_err(|e| RenderError::Load {
                dir: dir.to_path_buf(),
                reason: format!("{name}: {e}"),
            })?;
            env.add_template_owned(name, source)
                .map_err(|e| template_error(dir, &e))?;
        }
        // Templates added after an operator copied the folder: the bundled
        // ones serve until the folder has its own.
        for (name, source) in BUNDLED {
            if env.get_template(name).is_err() {
                env.add_template(name, source).map_err(|e| template_error(dir, &e))?;
            }
        }
        Ok(Renderer {
            env,
            dir: dir.to_path_buf(),
        })
    }

    /// The double opt-in email: subject, HTML (CSS inlined) and text.
    pub fn render_confirmation(&self, ctx: &impl Serialize) -> Result<(String, String), RenderError> {
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        let html = self.render_file("confirm_email.html.j2", &ctx)?;
        let html = self.inline_css("confirm_email.html.j2", &html)?;
        let text = self.render_file("confirm_email.txt.j2", &ctx)?;
        Ok((html, text))
    }

    /// Renders both variants of an issue.
    pub fn render_issue(
        &self,
        template: &str,
        subject_template: Option<&str>,
        view: &IssueView,
    ) -> Result<RenderedIssue, RenderError> {
        let mut markers = slots::Markers::new()?;
        // A fresh random marker cannot already be in the view; checked all
        // the same, since a value in the wrong place is a leak.
        let given = serde_json::to_string(view).unwrap_or_default();
        while markers.found_in(&given) {
            markers = slots::Markers::new()?;
        }
        let mut named = view.clone();
        named.subscriber = SubscriberView {
            name: Some(markers.marker(Slot::Name)),
            email: markers.marker(Slot::Email),
        };
        named.unsubscribe_url = markers.marker(Slot::Unsubscribe);
        named.preferences_url = markers.marker(Slot::Preferences);
        named.archive_url = markers.marker(Slot::Archive);
        let mut anonymous = named.clone();
        anonymous.subscriber.name = None;
        // The archive's page of the issue: no subscriber, a subscribe link.
        let mut web = anonymous.clone();
        web.web = true;
        web.subscriber.email = String::new();
        web.unsubscribe_url = view.subscribe_url.clone();
        web.preferences_url = String::new();
        let mut web = self.render_variant(template, subject_template, &web, &markers, false)?;
        web.text = SlottedText::plain("");
        Ok(RenderedIssue {
            named: self.render_variant(template, subject_template, &named, &markers, true)?,
            anonymous: self.render_variant(template, subject_template, &anonymous, &markers, true)?,
            web: Some(web),
        })
    }

    fn render_variant(
        &self,
        template: &str,
        subject_template: Option<&str>,
        view: &IssueView,
        markers: &slots::Markers,
        is_email: bool,
    ) -> Result<RenderedVariant, RenderError> {
        let html_name = format!("{template}.html.j2");
        let text_name = format!("{template}.txt.j2");
        let ctx = minijinja::Value::from(minijinja::value::Serde(view));
        let html = self.render_file(&html_name, &ctx)?;
        let text = markers.split(&self.render_file(&text_name, &ctx)?);
        for (name, has_link) in [
            (&html_name, html.contains(&markers.marker(Slot::Unsubscribe))),
            (&text_name, text.has(Slot::Unsubscribe)),
        ] {
            if is_email && !has_link {
                return Err(RenderError::Template {
                    file: self.dir.join(name).display().to_string(),
                    line: None,
                    message: "must show the unsubscribe link: add {{ unsubscribe_url }}".into(),
                });
            }
        }
        if html.to_ascii_lowercase().contains("<script") {
            return Err(RenderError::Template {
                file: self.dir.join(&html_name).display().to_string(),
                line: None,
                message: "contains <script>: email clients strip it and spam filters punish it".into(),
            });
        }
        let html = self.inline_css(&html_name, &html)?;
        let subject = markers.split(&render_subject(subject_template, view)?);
        Ok(RenderedVariant {
            subject,
            html: markers.split(&html),
            text,
        })
    }

    /// Moves a mail's `<style>` into its elements (mail clients drop `<style>`).
    fn inline_css(&self, name: &str, html: &str) -> Result<String, RenderError> {
        css_inline::CSSInliner::options()
            .load_remote_stylesheets(false)
            .build()
            .inline(html)
            .map_err(|e| RenderError::Css {
                file: self.dir.join(name).display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Renders a web page template (`web_*.html.j2`) with `ctx`.
    pub fn render_page(&self, name: &str, ctx: &impl Serialize) -> Result<String, RenderError> {
        self.render_file(name, &minijinja::Value::from(minijinja::value::Serde(ctx)))
    }

    fn render_file(&self, name: &str, ctx: &minijinja::Value) -> Result<String, RenderError> {
        let tmpl = self.env.get_template(name).map_err(|e| template_error(&self.dir, &e))?;
        tmpl.render(ctx).map_err(|e| template_error(&self.dir, &e))
    }
}

fn template_error(dir: &Path, e: &minijinja::Error) -> RenderError {
    let mut message = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = format!("{message}: {s}");
        source = s.source();
    }
    RenderError::Template {
        file: e
            .name()
            .map(|n| dir.join(n).display().to_string())
            .unwrap_or_else(|| dir.display().to_string()),
        line: e.line(),
        message,
    }
}

fn subject_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Subjects are header text, not HTML: no escaping.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

/// Checks an edition's `subject` template at configuration time.
pub fn check_subject_template(source: &str) -> Result<(), String> {
    subject_env()
        .template_from_str(source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// `{{ edition.title }} — {{ issue.date }}` unless the edition sets `subject`.
fn render_subject(subject_template: Option<&str>, view: &IssueView) -> Result<String, RenderError> {
    let Some(source) = subject_template else {
        return Ok(format!("{} — {}", view.edition.title, view.issue.date));
    };
    let env = subject_env();
    let rendered = env
        .render_str(source, minijinja::Value::from(minijinja::value::Serde(view)))
        .map_err(|e| RenderError::Template {
            file: "subject".into(),
            line: None,
            message: e.to_string(),
        })?;
    // A header is one line.
    Ok(crate::text::clean_line(&rendered))
}

/// Fills in one subscriber's values.
pub fn personalize(issue: &RenderedIssue, who: &Recipient<'_>) -> Personal {
    let variant = if who.name.is_some() {
        &issue.named
    } else {
        &issue.anonymous
    };
    Personal {
        subject: variant.subject.fill(who, Escape::None),
        html: variant.html.fill(who, Escape::Html),
        text: variant.text.fill(who, Escape::None),
    }
}

/// The `wrap(width)` filter: greedy word wrap for text mail (lines stay
/// readable and far below SMTP's 998-byte limit).
pub fn wrap(text: &str, width: Option<usize>) -> String {
    let width = width.unwrap_or(72).max(10);
    let mut out = String::with_capacity(text.len() + text.len() / width);
    for (i, paragraph) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line_len = 0;
        for word in paragraph.split_whitespace() {
            let len = word.chars().count();
            if line_len > 0 && line_len + 1 + len > width {
                out.push('\n');
                line_len = 0;
            } else if line_len > 0 {
                out.push(' ');
                line_len += 1;
            }
            out.push_str(word);
            line_len += len;
        }
    }
    out
}
