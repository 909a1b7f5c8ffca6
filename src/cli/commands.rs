//! One function per subcommand: call the library, print what it reports.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use tidings::clock::{Clock, SystemClock};

use super::print::*;
use super::*;
use tidings::app::{App, CollectReport, IssueDeliveries, SendOptions, SendReport};
use tidings::config::Config;
use tidings::domain::{EmailAddress, SubscriberName, SubscriberStatus};
use tidings::issue::PreviewFormat;
use tidings::rank;
use tidings::store::AddOutcome;

/// Collects with a progress bar on a terminal, log lines otherwise.
pub(super) async fn collect_with_progress(app: &App, force: bool) -> anyhow::Result<CollectReport> {
    use std::io::IsTerminal;
    let total = app.config.sources.len() as u64;
    let report = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} collecting [{bar:30}] {pos}/{len} sources {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let progress = |r: &tidings::app::SourceReport| {
            bar.set_message(r.name.clone());
            bar.inc(1);
        };
        let report = app.collect(app.now(), force, &progress).await;
        bar.finish_and_clear();
        report?
    } else {
        let progress = |r: &tidings::app::SourceReport| tracing::info!(source = %r.name, "{:?}", r.status);
        app.collect(app.now(), force, &progress).await?
    };
    tracing::info!(
        fetched = report.fetched(),
        not_modified = report.not_modified(),
        failed = report.failed(),
        new_stories = report.new_stories(),
        seconds = report.elapsed.as_secs_f64(),
        "collect finished"
    );
    Ok(report)
}

pub(super) async fn collect(app: &App, force: bool) -> anyhow::Result<Outcome> {
    let report = collect_with_progress(app, force).await?;
    print_collect(&report);
    brief_upcoming(app).await?;
    Ok(if report.failed() > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

pub(super) fn export_sources(config: &Config) -> Outcome {
    print!("{}", tidings::config::opml::export(&config.sources, SystemClock.now()));
    Outcome::Success
}

pub(super) async fn discover(config: Option<&Config>, url: &str) -> anyhow::Result<Outcome> {
    let limits = config.map(|c| c.collect.limits.clone()).unwrap_or_default();
    let feeds = tidings::app::discover(url, limits, SystemClock.now()).await?;
    if feeds.is_empty() {
        eprintln!("{url}: no feed found (no <link rel=\"alternate\"> of a feed type, none at the usual paths)");
        return Ok(Outcome::Failure);
    }
    for (i, feed) in feeds.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("# {} items", feed.items);
        println!("[[sources]]");
        println!("name = {}", toml_string(&feed.title));
        println!("url = {}", toml_string(&feed.url));
    }
    Ok(Outcome::Success)
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) async fn inspect(
    config: Option<&Config>,
    target: &str,
    json: bool,
    full_text: bool,
) -> anyhow::Result<Outcome> {
    let rules = config.map(|c| c.tag_rules.clone()).unwrap_or_default();
    let limits = config.map(|c| c.collect.limits.clone()).unwrap_or_default();
    let base = std::env::current_dir().context("current directory")?;
    let report = tidings::app::inspect(target, &base, &rules, limits, full_text, SystemClock.now())
        .await
        .map_err(|e| anyhow::anyhow!("{target}: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Success);
    }
    println!("feed:  {}", report.feed.title.as_deref().unwrap_or("(no title)"));
    println!("link:  {}", report.feed.link.as_deref().unwrap_or("(none)"));
    if let Some(repaired) = &report.feed.recovered {
        println!("recovered: {repaired}");
    }
    println!("items: {}", report.items.len());
    for item in &report.items {
        println!();
        println!("- {}", item.title.as_deref().unwrap_or("(no title)"));
        println!("  id:        {}", item.id.as_deref().unwrap_or("(none)"));
        println!("  link:      {}", item.link.as_deref().unwrap_or("(none)"));
        println!("  published: {}", item.published.as_deref().unwrap_or("(none)"));
        println!("  updated:   {}", item.updated.as_deref().unwrap_or("(none)"));
        println!("  tags:      {}", item.tags.join(", "));
        if let Some(summary) = &item.summary {
            println!("  summary:   {}", tidings::text::shorten(summary, 300));
        }
        match &item.article {
            Some(tidings::app::InspectArticle {
                text: Some(text),
                words,
                ..
            }) => {
                println!("  article:   {words} words");
                for paragraph in text.split("\n\n") {
                    println!("    {paragraph}");
                }
            }
            Some(tidings::app::InspectArticle { error: Some(e), .. }) => println!("  article:   none — {e}"),
            _ => {}
        }
    }
    Ok(Outcome::Success)
}

pub(super) async fn rank_cmd(app: &App, audience_name: &str, limit: usize, explain: bool) -> anyhow::Result<Outcome> {
    let now = app.now();
    let ranked = app.rank_audience(audience_name, now).await?;
    let weights = app.source_weights();
    let selection = ranked.select(now, &weights);
    let policy = &ranked.policy;
    let caps = match &ranked.edition {
        Some(e) => format!(
            "edition {e}: max_stories {}, max_per_source {}, {} section(s)",
            policy.limit,
            policy.max_per_source,
            policy.sections.len().max(1)
        ),
        None => format!(
            "no edition serves this audience: max_stories {}, max_per_source {}",
            policy.limit, policy.max_per_source
        ),
    };
    println!(
        "{} — {} stories kept of {} considered over {} days ({caps})",
        ranked.audience.title,
        selection.len(),
        selection.considered.len(),
        policy.window.num_days()
    );
    if let Some(note) = &ranked.overrides.note {
        println!("editor's note: {note}");
    }
    let kept: Vec<&tidings::domain::StoredStory> = selection.stories().map(|r| r.story).collect();
    let (cards, briefing) = app.cards_for(&kept, now).await?;
    for c in selection.considered.iter().take(limit) {
        let place = match &c.verdict {
            rank::Verdict::Kept { section, position } => format!("{position:>3}. {section}:"),
            rank::Verdict::LeftOut(_) => "  —".to_string(),
        };
        println!(
            "{place} [{:>7.3}] #{} {} — {} ({}){}",
            c.score,
            c.story.id,
            c.story.title,
            c.story.source,
            c.story.published_at.format("%Y-%m-%d"),
            if c.pinned { " [pinned]" } else { "" }
        );
        if let rank::Verdict::LeftOut(why) = &c.verdict {
            println!("        left out: {why}");
        }
        if let Some(card) = cards.get(&c.story.id) {
            let mark = if card.unverified_fields().is_empty() {
                ""
            } else {
                " [unverified fields: tidings briefing]"
            };
            println!("        TL;DR: {}{mark}", card.tldr.text);
        }
        if explain {
            if let Some(p) = &c.parts {
                for t in &p.tags {
                    println!("        tag {:<20} weight {:>5.2}  via {}", t.tag, t.weight, t.origin);
                }
                println!(
                    "        = tags {:.2} × source {:.2} × decay {:.3} (age {:.1} h, half-life {:.1} h) × cluster {:.2} ({} other source{})",
                    p.tag_sum,
                    p.source_weight,
                    p.decay,
                    p.age_hours,
                    policy.half_life.num_seconds() as f64 / 3600.0,
                    p.cluster_factor,
                    p.other_sources,
                    if p.other_sources == 1 { "" } else { "s" }
                );
            } else if c.pinned {
                println!("        pinned by the editor; it does not rank on its own");
            }
            println!("        {}", c.story.link);
        }
    }
    if app.config.briefing.is_some() {
        println!("{}", briefing_line(&briefing));
    }
    Ok(Outcome::Success)
}

pub(super) async fn issue_cmd(app: &App, command: IssueCommand) -> anyhow::Result<Outcome> {
    let now = app.now();
    let edition = |name: &str| -> anyhow::Result<String> { Ok(app.config.edition(name)?.name.clone()) };
    match command {
        IssueCommand::Pin {
            edition: e,
            story,
            position,
        } => {
            let e = edition(&e)?;
            let position = position.map(|p| p as usize);
            let story = app.pin(&e, &story, position, now).await?;
            let at = position.map_or("where its score puts it".to_string(), |p| format!("at position {p}"));
            println!(
                "{e}: #{} \"{}\" pinned into the next issue, {at}",
                story.id, story.title
            );
        }
        IssueCommand::Exclude { edition: e, story } => {
            let e = edition(&e)?;
            let story = app.exclude(&e, &story, now).await?;
            println!("{e}: #{} \"{}\" kept out of the next issue", story.id, story.title);
        }
        IssueCommand::Unpick { edition: e, story } => {
            let e = edition(&e)?;
            match app.unpick(&e, &story).await? {
                (story, true) => println!("{e}: #{} is ranked as usual again", story.id),
                (story, false) => println!("{e}: #{} was neither pinned nor excluded", story.id),
            }
        }
        IssueCommand::Note {
            edition: e,
            text,
            accept_draft,
        } => {
            let e = edition(&e)?;
            if accept_draft {
                match app.accept_intro_draft(&e, now).await? {
                    Some(draft) => println!("{e}: drafted intro accepted (used while no note is written):\n{draft}"),
                    None => {
                        println!(
                            "{e}: no intro drafted yet (it is drafted from the cards after a collect, or by preview)"
                        );
                        return Ok(Outcome::Failure);
                    }
                }
            } else {
                let text = text.unwrap_or_default();
                app.set_note(&e, &text, now).await?;
                if text.trim().is_empty() {
                    println!("{e}: intro note removed");
                } else {
                    println!("{e}: intro note set");
                }
            }
        }
        IssueCommand::Edit {
            edition: e,
            story,
            field,
            text,
        } => {
            let e = edition(&e)?;
            let (story, field) = app.edit_card(&e, &story, &field, &text, now).await?;
            if text.trim().is_empty() {
                println!("{e}: #{} {field} given back to the draft", story.id);
            } else {
                println!("{e}: #{} {field} set by the editor (kept over every draft)", story.id);
            }
        }
        IssueCommand::Approve { edition: e } => {
            let e = edition(&e)?;
            return Ok(match app.approve(&e, now).await? {
                SendReport::Delivered {
                    issue, composed, run, ..
                } => {
                    let when = if issue.slot_at > now {
                        format!("sent from {}", issue.slot_at.format("%Y-%m-%d %H:%M UTC"))
                    } else {
                        "sent now by the daemon or the next `tidings send`".to_string()
                    };
                    let what = if composed {
                        "approved and composed"
                    } else {
                        "was already composed"
                    };
                    println!(
                        "{e}: issue #{} \"{}\" {what}: {} stories frozen, {} deliveries, {when}",
                        issue.id,
                        issue.subject,
                        app.issue_story_count(issue.id).await?,
                        run.counts.total()
                    );
                    Outcome::Success
                }
                other => print_send(&e, &other),
            });
        }
        IssueCommand::Show { edition: e } => {
            let e = edition(&e)?;
            let o = app.choices(&e).await?;
            println!("{e}: the editor's choices for the next issue");
            println!("note: {}", o.note.as_deref().unwrap_or("(none)"));
            match app.intro_draft(&e).await? {
                Some((draft, true)) => println!("drafted intro (accepted; used while there is no note): {draft}"),
                Some((draft, false)) => {
                    println!("drafted intro (not used; tidings issue note {e} --accept-draft): {draft}")
                }
                None => {}
            }
            for pin in &o.pins {
                let at = pin.position.map_or(String::new(), |p| format!(" at position {p}"));
                println!("pinned: #{}{at}", pin.story_id);
            }
            for id in &o.excluded {
                println!("excluded: #{id}");
            }
        }
    }
    Ok(Outcome::Success)
}

pub(super) async fn preview(
    app: &App,
    edition: &str,
    format: FormatArg,
    out: Option<PathBuf>,
    to: Option<String>,
) -> anyhow::Result<Outcome> {
    let to = to
        .map(|t| EmailAddress::parse(&t).map_err(|e| tidings::Error::Usage(format!("--to: {e}"))))
        .transpose()?;
    let format = match format {
        FormatArg::Html => PreviewFormat::Html,
        FormatArg::Text => PreviewFormat::Text,
        FormatArg::Eml => PreviewFormat::Eml,
    };
    let bytes = app.preview(edition, format, to.as_ref(), app.now()).await?;
    match out {
        Some(path) => {
            std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("preview written to {}", path.display());
        }
        None => std::io::stdout().write_all(&bytes)?,
    }
    Ok(Outcome::Success)
}

pub(super) fn schedule(config: &Config) -> Outcome {
    let now = SystemClock.now();
    let mut jobs: Vec<(String, &tidings::schedule::Schedule)> = vec![("collect".into(), &config.collect.schedule)];
    for e in &config.editions {
        jobs.push((format!("edition {}", e.name), &e.schedule));
    }
    for (name, schedule) in jobs {
        let tz = schedule.timezone();
        println!("{name}: \"{}\" in {tz}", schedule.expr());
        let mut at = now;
        for _ in 0..5 {
            let Some(next) = schedule.next_after(at) else { break };
            println!(
                "  {}   {}",
                next.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z"),
                next.format("%Y-%m-%d %H:%M:%S UTC")
            );
            at = next;
        }
    }
    Outcome::Success
}

pub(super) async fn send(
    app: &App,
    edition: &str,
    dry_run: bool,
    resume: bool,
    wait: std::time::Duration,
) -> anyhow::Result<Outcome> {
    use std::io::IsTerminal;
    let stop = stop_on_signals();
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        bar
    });
    let started = std::time::Instant::now();
    let progress = |r: &tidings::deliver::RunReport| {
        if let Some(bar) = &bar {
            bar.set_message(r.progress_line(started.elapsed()));
        }
    };
    let options = SendOptions {
        dry_run,
        wait,
        stop,
        progress: &progress,
    };
    if resume {
        let reports = app.resume(edition, &options, app.now()).await;
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let reports = reports?;
        if reports.is_empty() {
            println!("{edition}: nothing to resume — no composed issue has deliveries due");
            return Ok(Outcome::Success);
        }
        let mut outcome = Outcome::Success;
        for report in &reports {
            if print_send(edition, report) == Outcome::Failure {
                outcome = Outcome::Failure;
            }
        }
        return Ok(outcome);
    }
    let report = app.send(edition, &options, app.now()).await;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok(print_send(edition, &report?))
}

/// Bounces, complaints and unsubscribes of one issue: counts and rates
/// against what it sent, then each event.
fn print_feedback(sent: i64, events: &[tidings::store::InboundEventRow]) {
    use std::collections::BTreeMap;
    use tidings::domain::InboundKind;
    if events.is_empty() {
        return;
    }
    let mut per_kind: BTreeMap<&str, std::collections::BTreeSet<Option<&str>>> = BTreeMap::new();
    for e in events {
        per_kind.entry(e.kind.as_str()).or_default().insert(e.email.as_deref());
    }
    let count = |k: InboundKind| per_kind.get(k.as_str()).map_or(0, |s| s.len());
    let rate = |n: usize| if sent > 0 { 100.0 * n as f64 / sent as f64 } else { 0.0 };
    let (hard, soft, complaints, unsubscribes) = (
        count(InboundKind::HardBounce),
        count(InboundKind::SoftBounce),
        count(InboundKind::Complaint),
        count(InboundKind::Unsubscribe),
    );
    println!(
        "  came back: {hard} hard bounces ({:.2}%), {soft} soft bounces, {complaints} complaints ({:.2}%), {unsubscribes} unsubscribed by mail",
        rate(hard),
        rate(complaints)
    );
    for e in events {
        println!(
            "  {}: {} {}{}: {}",
            e.received_at.format("%Y-%m-%d %H:%M"),
            e.kind,
            e.email.as_deref().unwrap_or("-"),
            e.status_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default(),
            e.detail
        );
    }
}

pub(super) async fn deliveries(app: &App, issue: Option<i64>) -> anyhow::Result<Outcome> {
    let issues = app.deliveries(issue).await?;
    if issues.is_empty() {
        println!("no issue has been composed yet");
    }
    for IssueDeliveries {
        issue: i,
        counts: c,
        detail,
    } in &issues
    {
        println!(
            "issue #{} {} {} \"{}\": {} sent, {} pending, {} sending, {} failed{} of {}",
            i.id,
            i.edition,
            i.slot_at.format("%Y-%m-%d %H:%M UTC"),
            i.subject,
            c.sent,
            c.pending,
            c.sending,
            c.failed,
            withdrawn_clause(c),
            c.total()
        );
        let Some(detail) = detail else { continue };
        if let Some((first, last)) = detail.sent_between {
            let secs = (last - first).num_milliseconds() as f64 / 1000.0;
            let rate = if secs > 0.0 {
                c.sent as f64 / secs
            } else {
                c.sent as f64
            };
            println!(
                "  sent from {} to {} ({rate:.1} messages/s)",
                first.format("%H:%M:%S"),
                last.format("%H:%M:%S UTC")
            );
        }
        if let Some(next) = detail.next_retry {
            println!("  next retry: {}", next.format("%Y-%m-%d %H:%M:%S UTC"));
        }
        for (email, reply) in &detail.failures {
            println!("  failed: {email}: {reply}");
        }
        for (email, why) in &detail.withdrawn {
            println!("  withdrawn: {email}: {why}");
        }
        print_feedback(c.sent + c.failed, &detail.events);
    }
    Ok(Outcome::Success)
}

pub(super) async fn run_once(app: &App) -> anyhow::Result<Outcome> {
    let report = collect_with_progress(app, false).await?;
    print_collect(&report);
    brief_upcoming(app).await?;
    let mut ok = report.failed() == 0;
    for edition in &app.config.editions {
        match app.send(&edition.name, &SendOptions::standard(), app.now()).await {
            Ok(report) => ok &= matches!(print_send(&edition.name, &report), Outcome::Success),
            Err(e) => {
                println!("{}: FAILED: {e}", edition.name);
                ok = false;
            }
        }
    }
    Ok(if ok { Outcome::Success } else { Outcome::Failure })
}

pub(super) async fn subscribers(app: &App, cmd: SubscribersCommand) -> anyhow::Result<Outcome> {
    let all_editions = || app.config.editions.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    match cmd {
        SubscribersCommand::Add(a) => {
            let email = EmailAddress::parse(&a.email).map_err(|e| tidings::Error::Usage(e.to_string()))?;
            let editions = if a.editions.is_empty() {
                all_editions()
            } else {
                a.editions
            };
            let name = SubscriberName::parse(a.name.as_deref().unwrap_or_default())
                .map_err(|e| tidings::Error::Usage(e.to_string()))?;
            match app.add_subscriber(&email, name.as_ref(), &editions, app.now()).await? {
                AddOutcome::Added(_) => println!("added {email} ({})", editions.join(", ")),
                AddOutcome::Updated(_, status) => println!(
                    "{email} was already known (status {}); editions now include {}",
                    status.as_str(),
                    editions.join(", ")
                ),
            }
        }
        SubscribersCommand::List => {
            // Columns: address, name, status, editions, then for an address
            // no longer mailed: since when, and why.
            for s in app.subscribers().await? {
                let mut line = format!(
                    "{}\t{}\t{}\t{}",
                    s.email,
                    s.name.as_deref().unwrap_or("-"),
                    s.status.as_str(),
                    s.editions.join(",")
                );
                if s.status != SubscriberStatus::Active {
                    let since = s
                        .status_since
                        .map_or("-".to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
                    line.push_str(&format!("\t{since}\t{}", s.status_reason.as_deref().unwrap_or("-")));
                }
                println!("{line}");
            }
        }
        SubscribersCommand::Remove { email } => {
            let email = EmailAddress::parse(&email).map_err(|e| tidings::Error::Usage(e.to_string()))?;
            if app.remove_subscriber(&email).await? {
                println!("removed {email}");
            } else {
                println!("{email} is not a subscriber");
                return Ok(Outcome::Failure);
            }
        }
        SubscribersCommand::Import { file } => return import(app, &file).await,
    }
    Ok(Outcome::Success)
}

pub(super) async fn import(app: &App, file: &Path) -> anyhow::Result<Outcome> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let rows = tidings::app::parse_subscriber_csv(&data, &app.config)
        .map_err(|e| tidings::Error::Usage(format!("{}: {e}", file.display())))?;
    let (mut added, mut updated, mut invalid) = (0, 0, 0);
    let now = app.now();
    for row in rows {
        match row {
            Ok(r) => match app.add_subscriber(&r.email, r.name.as_ref(), &r.editions, now).await? {
                AddOutcome::Added(_) => added += 1,
                AddOutcome::Updated(..) => updated += 1,
            },
            Err((line, reason)) => {
                invalid += 1;
                println!("{}: line {line}: {reason}", file.display());
            }
        }
    }
    println!("{added} added, {updated} already known, {invalid} invalid rows skipped");
    Ok(if invalid > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

pub(super) async fn sources(app: &App) -> anyhow::Result<Outcome> {
    let states = app.source_states().await?;
    let now = app.now();
    let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "never".into())
    };
    for (s, row) in &states {
        let Some(r) = row else {
            println!("{:<28} never fetched", s.name);
            continue;
        };
        let next = match (&r.disabled_reason, r.next_fetch_at) {
            (Some(_), _) => "never".to_string(),
            (None, Some(t)) if t > now => fmt(Some(t)),
            (None, _) => "now".to_string(),
        };
        let moved = if r.url != s.location.to_string() {
            format!(" (moved to {})", r.url)
        } else {
            String::new()
        };
        let error = match (&r.last_error, &r.last_warning) {
            (Some(e), _) => format!(" — {e}"),
            (None, Some(w)) => format!(" — recovered: {w}"),
            (None, None) => String::new(),
        };
        println!(
            "{:<28} {:<13} last success {:<16} stories {:<5} errors {:<3} next fetch {}{moved}{error}",
            s.name,
            r.last_status.as_deref().unwrap_or("-"),
            fmt(r.last_success_at),
            r.story_count,
            r.error_count,
            next,
        );
    }
    Ok(Outcome::Success)
}

/// After a collect: cards for the upcoming issues' stories, when `[briefing]` is set.
async fn brief_upcoming(app: &App) -> anyhow::Result<()> {
    if app.config.briefing.is_some() {
        let report = app.brief_upcoming(app.now()).await?;
        println!("{}", super::print::briefing_line(&report));
    }
    Ok(())
}

pub(super) async fn briefing(app: &App, story: &str, regenerate: bool) -> anyhow::Result<Outcome> {
    let b = app.story_briefing(story, regenerate, app.now()).await?;
    super::print::print_briefing(&b);
    Ok(if b.card.is_some() {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

/// `tidings doctor`: one line per check, then what failed; exit 1 then.
pub(super) async fn doctor(app: &App) -> anyhow::Result<Outcome> {
    let doctor = tidings::doctor::Doctor::new(&app.config.doctor)?;
    let findings = doctor.examine(app).await;
    for f in &findings {
        println!("{:<4}  {:<16}  {}", f.verdict.label(), f.check, f.detail);
    }
    let failed: Vec<_> = findings
        .iter()
        .filter(|f| f.verdict == tidings::doctor::Verdict::Fail)
        .collect();
    if failed.is_empty() {
        let warnings = findings
            .iter()
            .filter(|f| f.verdict == tidings::doctor::Verdict::Warn)
            .count();
        match warnings {
            0 => println!("all {} checks passed", findings.len()),
            n => println!("no check failed ({n} to look at)"),
        }
        return Ok(Outcome::Success);
    }
    println!("\n{} of {} checks failed:", failed.len(), findings.len());
    for f in failed {
        println!("  - {}: {}", f.check, f.detail);
    }
    Ok(Outcome::Failure)
}
