//! The command line: clap definitions and one function per subcommand that
//! calls into [`tidings::app`] and prints the report. No business logic.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use tidings::clock::{Clock, SystemClock};

use tidings::app::{App, CollectReport, SendOptions, SendReport, SourceStatus};
use tidings::config::{self, Config};
use tidings::domain::{EmailAddress, SubscriberName, SubscriberStatus};
use tidings::issue::PreviewFormat;
use tidings::rank;
use tidings::store::AddOutcome;

/// What a command asks `main` to exit with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// The command ran but something failed (a source, a delivery).
    Failure,
}

#[derive(Parser, Debug)]
#[command(
    name = "tidings",
    version,
    about = "Collect feeds, rank per audience, render and deliver digests."
)]
pub struct Cli {
    /// The configuration file.
    #[arg(long, global = true, env = config::ENV_CONFIG, default_value = config::DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// More log output (-v: info, -vv: debug). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines as human-readable text or JSON.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Fetch every source that is due and store new stories.
    Collect {
        /// Fetch every source now, even those waiting for their next fetch time.
        #[arg(long)]
        force: bool,
    },
    /// Fetch and parse one feed and print what tidings sees; stores nothing.
    Inspect {
        /// An http(s) URL, a file:// URL or a local path.
        target: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the ranked stories for an audience.
    Rank {
        audience: String,
        /// How many stories to show.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Show each score's parts.
        #[arg(long)]
        explain: bool,
    },
    /// Render the edition's next issue as a subscriber would receive it, without sending or recording anything.
    Preview {
        edition: String,
        #[arg(long, value_enum, default_value_t = FormatArg::Html)]
        format: FormatArg,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Render for this subscriber (default: the edition's first active subscriber).
        #[arg(long)]
        to: Option<String>,
    },
    /// Compose the current issue of an edition and deliver it to every active subscriber.
    Send {
        edition: String,
        /// Show what would be sent; send and record nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only deliver what earlier runs left of issues already composed;
        /// compose nothing new.
        #[arg(long, conflicts_with = "dry_run")]
        resume: bool,
        /// Keep going while retries are due within this long ("10m", "1h"; "0s" to return at once).
        #[arg(long, default_value = "10m", value_parser = parse_wait)]
        wait: std::time::Duration,
    },
    /// Delivery counts by status, failures with the server's replies, and the rate.
    Deliveries {
        /// An issue id (default: a summary of the latest issues).
        issue: Option<i64>,
    },
    /// Collect, then send every edition.
    Run {
        /// Run the whole job once and exit, which `run` always does (the
        /// daemon is `tidings serve`); kept for existing cron lines.
        #[arg(long)]
        once: bool,
    },
    /// An editor's hand on the next issue of an edition: pin, exclude, note.
    #[command(subcommand)]
    Issue(IssueCommand),
    /// Manage subscribers.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// List sources with their last fetch status.
    Sources,
    /// Apply database migrations and exit.
    Migrate,
    /// Run the daemon: schedules, delivery workers, /healthz and /metrics.
    Serve,
    /// Every scheduled job with its next five fire times, in its time zone and in UTC.
    Schedule,
    /// Check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    Html,
    Text,
    Eml,
}

#[derive(Subcommand, Debug)]
pub enum SubscribersCommand {
    /// Add a subscriber (active at once), or add editions to a known one.
    Add(AddArgs),
    /// One line per subscriber: address, name, status, editions.
    List,
    /// Delete a subscriber and their delivery records.
    Remove { email: String },
    /// Import a CSV file with the header `email,name,editions` (editions separated by ';').
    Import { file: PathBuf },
}

#[derive(Args, Debug)]
pub struct AddArgs {
    email: String,
    #[arg(long)]
    name: Option<String>,
    /// An edition to receive; repeat for several. Default: every edition.
    #[arg(long = "edition")]
    editions: Vec<String>,
}

/// STORY is the id `rank` prints (`42` or `#42`) or the story's link.
#[derive(Subcommand, Debug)]
pub enum IssueCommand {
    /// Always put STORY in the next issue, at --position N of its section (default: where its score puts it).
    Pin {
        edition: String,
        story: String,
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        position: Option<u32>,
    },
    /// Keep STORY out of the next issue.
    Exclude { edition: String, story: String },
    /// Undo a pin or an exclusion of STORY.
    Unpick { edition: String, story: String },
    /// Set the intro note of the next issue ("" removes it).
    Note { edition: String, text: String },
    /// Show the editor's choices for the next issue.
    Show { edition: String },
    /// Approve the next issue as `preview` shows it now (editions with `approval = true`): it is composed at once and sent at its slot.
    Approve { edition: String },
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate the file and print what it found.
    Check,
}

/// The configuration, validated, and the files it names checked.
pub fn load_config(path: &Path) -> Result<Config, tidings::Error> {
    let config = Config::load(path, &|k| std::env::var(k).ok())?;
    tidings::preflight::check(&config)?;
    Ok(config)
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Command::Inspect { target, json } = &cli.command {
        // Works without a configuration file; uses its tag rules when there is one.
        let config = if cli.config.exists() {
            Some(load_config(&cli.config)?)
        } else {
            None
        };
        return inspect(config.as_ref(), target, *json).await;
    }
    let config = load_config(&cli.config)?;
    if let Command::Config(ConfigCommand::Check) = cli.command {
        print_config(&config);
        return Ok(Outcome::Success);
    }
    let app = App::open(config).await?;
    let outcome = match cli.command {
        Command::Collect { force } => collect(&app, force).await?,
        Command::Inspect { .. } => Outcome::Success,
        Command::Rank {
            audience,
            limit,
            explain,
        } => rank_cmd(&app, &audience, limit, explain).await?,
        Command::Issue(command) => issue_cmd(&app, command).await?,
        Command::Preview {
            edition,
            format,
            out,
            to,
        } => preview(&app, &edition, format, out, to).await?,
        Command::Send {
            edition,
            dry_run,
            resume,
            wait,
        } => send(&app, &edition, dry_run, resume, wait).await?,
        Command::Deliveries { issue } => deliveries(&app, issue).await?,
        Command::Run { once: _ } => run_once(&app).await?,
        Command::Subscribers(cmd) => subscribers(&app, cmd).await?,
        Command::Sources => sources(&app).await?,
        Command::Serve => return serve(app, cli.config.clone()).await,
        Command::Schedule => schedule(&app.config),
        Command::Migrate => {
            println!("migrations applied to {}", app.config.database);
            Outcome::Success
        }
        Command::Config(_) => Outcome::Success,
    };
    app.store.close().await;
    Ok(outcome)
}

fn print_config(c: &Config) {
    println!("configuration {} is valid", c.path.display());
    println!("  site:      {} <{}>", c.site.title, c.site.base_url);
    println!("  from:      {}", c.site.from);
    println!("  database:  {}", c.database);
    match &c.smtp {
        Some(s) => println!(
            "  delivery:  SMTP {}://{}:{} (starttls {:?}, {})",
            if s.implicit_tls { "smtps" } else { "smtp" },
            s.host,
            s.port,
            s.starttls,
            if s.username.is_some() { "with AUTH" } else { "no AUTH" }
        ),
        None => println!("  delivery:  mailbox folder {}", c.mailbox_dir.display()),
    }
    println!("  templates: {}", c.site.templates_dir.display());
    if !c.site.base_url.starts_with("https://") {
        println!(
            "  note:      site.base_url is not https://; mail clients offer one-click unsubscribe (RFC 8058) only for https links"
        );
    }
    println!(
        "  secret:    {}",
        if c.secret.is_some() {
            "from TIDINGS_SECRET"
        } else {
            "generated and kept in the database"
        }
    );
    println!("  sources ({}):", c.sources.len());
    for s in &c.sources {
        println!(
            "    {} — {} (weight {}, tags: {})",
            s.name,
            s.location,
            s.weight,
            s.tags.join(", ")
        );
    }
    println!("  tag rules ({}):", c.tag_rules.len());
    for t in &c.tag_rules {
        println!("    {}: {}", t.tag, t.keywords.join(", "));
    }
    println!("  audiences ({}):", c.audiences.len());
    for a in c.audiences.values() {
        let w: Vec<String> = a.weights.iter().map(|(t, w)| format!("{t}={w}")).collect();
        println!("    {} \"{}\": {}", a.name, a.title, w.join(", "));
        let mut extra = Vec::new();
        if !a.source_weights.is_empty() {
            let s: Vec<String> = a.source_weights.iter().map(|(n, w)| format!("{n}={w}")).collect();
            extra.push(format!("source weights {}", s.join(", ")));
        }
        if !a.exclude_tags.is_empty() {
            extra.push(format!(
                "excludes {}",
                a.exclude_tags.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(h) = a.half_life {
            extra.push(format!(
                "half-life {}",
                humantime::format_duration(h.to_std().unwrap_or_default())
            ));
        }
        extra.push(format!(
            "threshold {}, cluster bonus {} (max {})",
            a.threshold, a.cluster_bonus, a.cluster_bonus_max
        ));
        println!("      {}", extra.join("; "));
    }
    println!("  editions ({}):", c.editions.len());
    let now = SystemClock.now();
    for e in &c.editions {
        let next = e
            .schedule
            .next_after(now)
            .map(|t| {
                t.with_timezone(&e.schedule.timezone())
                    .format("%Y-%m-%d %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_else(|| "never".into());
        println!(
            "    {} \"{}\" for {}: \"{}\" {} (next {}), {} days, up to {} stories, template {}",
            e.name,
            e.title,
            e.audience,
            e.schedule.expr(),
            e.schedule.timezone(),
            next,
            e.window_days,
            e.max_stories,
            e.template
        );
        println!("      at most {} per source", e.max_per_source);
        for section in &e.sections {
            let tags = if section.tags.is_empty() {
                "every other story".to_string()
            } else {
                section.tags.join(", ")
            };
            let max = section.max.map_or(String::new(), |m| format!(", up to {m}"));
            println!("      section \"{}\": {tags}{max}", section.title);
        }
    }
}

fn print_collect(report: &CollectReport) {
    let time = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    for s in &report.sources {
        let moved = s
            .moved_to
            .as_deref()
            .map(|u| format!(" (moved permanently to {u})"))
            .unwrap_or_default();
        match &s.status {
            SourceStatus::Collected {
                new,
                unchanged,
                skipped,
                dropped,
            } => {
                let mut extra = String::new();
                if *skipped > 0 {
                    extra.push_str(&format!(", {skipped} skipped (no title or link)"));
                }
                if *dropped > 0 {
                    extra.push_str(&format!(", {dropped} over the item limit dropped"));
                }
                println!(
                    "{:<28} ok            {new} new, {unchanged} unchanged{extra}{moved}",
                    s.name
                )
            }
            SourceStatus::NotModified => println!("{:<28} not modified{moved}", s.name),
            SourceStatus::Failed { reason, next_try } => println!(
                "{:<28} FAILED        {reason} ({}); next try {}",
                s.name,
                s.location,
                time(next_try)
            ),
            SourceStatus::NotDue { until, errors } if *errors > 0 => println!(
                "{:<28} backing off   after {errors} failures, until {} (--force to fetch now)",
                s.name,
                time(until)
            ),
            SourceStatus::NotDue { until, .. } => {
                println!("{:<28} not due       until {}", s.name, time(until))
            }
            SourceStatus::Disabled(reason) => println!("{:<28} DISABLED      {reason}", s.name),
        }
    }
    println!(
        "{} sources: {} fetched, {} not modified, {} failed, {} not due; {} new stories in {:.1}s",
        report.sources.len(),
        report.fetched(),
        report.not_modified(),
        report.failed(),
        report.not_due(),
        report.new_stories(),
        report.elapsed.as_secs_f64()
    );
}

/// Collects with a progress bar on a terminal, log lines otherwise.
async fn collect_with_progress(app: &App, force: bool) -> anyhow::Result<CollectReport> {
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

async fn collect(app: &App, force: bool) -> anyhow::Result<Outcome> {
    let report = collect_with_progress(app, force).await?;
    print_collect(&report);
    Ok(if report.failed() > 0 {
        Outcome::Failure
    } else {
        Outcome::Success
    })
}

async fn inspect(config: Option<&Config>, target: &str, json: bool) -> anyhow::Result<Outcome> {
    let rules = config.map(|c| c.tag_rules.clone()).unwrap_or_default();
    let limits = config.map(|c| c.collect.limits.clone()).unwrap_or_default();
    let base = std::env::current_dir().context("current directory")?;
    let report = tidings::app::inspect(target, &base, &rules, limits, SystemClock.now())
        .await
        .map_err(|e| anyhow::anyhow!("{target}: {e}"))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Success);
    }
    println!("feed:  {}", report.feed.title.as_deref().unwrap_or("(no title)"));
    println!("link:  {}", report.feed.link.as_deref().unwrap_or("(none)"));
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
    }
    Ok(Outcome::Success)
}

async fn rank_cmd(app: &App, audience_name: &str, limit: usize, explain: bool) -> anyhow::Result<Outcome> {
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
    Ok(Outcome::Success)
}

async fn issue_cmd(app: &App, command: IssueCommand) -> anyhow::Result<Outcome> {
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
        IssueCommand::Note { edition: e, text } => {
            let e = edition(&e)?;
            app.set_note(&e, &text, now).await?;
            if text.trim().is_empty() {
                println!("{e}: intro note removed");
            } else {
                println!("{e}: intro note set");
            }
        }
        IssueCommand::Approve { edition: e } => {
            let e = edition(&e)?;
            return Ok(match app.approve(&e, now).await? {
                SendReport::Delivered { issue, composed, run } => {
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
                        app.store.issue_story_count(issue.id).await?,
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

async fn preview(
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

fn print_send(edition: &str, report: &SendReport) -> Outcome {
    match report {
        SendReport::AwaitingApproval { slot } => {
            println!(
                "{edition}: not sent — the issue of {} waits for an editor's approval (tidings issue approve {edition})",
                slot.format("%Y-%m-%d %H:%M UTC")
            );
            Outcome::Failure
        }
        SendReport::TooFew { slot, found, min } => {
            println!(
                "{edition}: not sent — {found} stories rank for this issue ({}), the edition needs at least {min}",
                slot.format("%Y-%m-%d %H:%M UTC")
            );
            Outcome::Success
        }
        SendReport::DryRun {
            slot,
            subject,
            stories,
            recipients,
            existing,
        } => {
            println!(
                "{edition}: dry run for the issue of {}",
                slot.format("%Y-%m-%d %H:%M UTC")
            );
            println!("  subject:    {subject}");
            println!("  stories:    {stories}");
            match existing {
                Some(c) => println!(
                    "  already composed: {} sent, {} failed, {} would be sent now",
                    c.sent, c.failed, recipients
                ),
                None => println!("  recipients: {recipients}"),
            }
            Outcome::Success
        }
        SendReport::Delivered { issue, composed, run } => {
            let c = &run.counts;
            if !composed && run.sent == 0 && run.retried == 0 && run.failed == 0 && c.pending + c.sending == 0 {
                println!(
                    "{edition}: the issue of {} was already sent ({} sent, {} failed); nothing new to send",
                    issue.slot_at.format("%Y-%m-%d %H:%M UTC"),
                    c.sent,
                    c.failed
                );
            } else {
                println!(
                    "{edition}: issue #{} of {} \"{}\"{}",
                    issue.id,
                    issue.slot_at.format("%Y-%m-%d %H:%M UTC"),
                    issue.subject,
                    if *composed { " composed" } else { "" }
                );
                println!(
                    "  this run: {} sent, {} to retry, {} failed; issue: {} of {} sent",
                    run.sent,
                    run.retried,
                    run.failed,
                    c.sent,
                    c.total()
                );
            }
            for (email, reply) in &run.failures {
                println!("  refused: {email}: {reply}");
            }
            let exhausted = run
                .failures
                .iter()
                .filter(|(_, r)| r.starts_with("gave up after"))
                .count();
            if run.stopped {
                println!(
                    "  stopped by a signal; {} deliveries left for the next run (`tidings send {edition}`)",
                    c.pending + c.sending
                );
                Outcome::Failure
            } else if c.pending + c.sending > 0 {
                println!(
                    "  {} deliveries still waiting{}; run `tidings send {edition}` again later or keep `tidings serve` running",
                    c.pending + c.sending,
                    run.next_due
                        .map(|t| format!(" (next retry {})", t.format("%H:%M:%S UTC")))
                        .unwrap_or_default()
                );
                Outcome::Failure
            } else if exhausted > 0 {
                println!("  {exhausted} deliveries ran out of attempts");
                Outcome::Failure
            } else {
                Outcome::Success
            }
        }
    }
}

async fn serve(app: App, config_path: PathBuf) -> anyhow::Result<Outcome> {
    use tokio::signal::unix::{SignalKind, signal};
    let listener = tokio::net::TcpListener::bind(app.config.web_listen)
        .await
        .with_context(|| format!("web.listen {}", app.config.web_listen))?;
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = tokio::signal::ctrl_c() => tidings::daemon::Control::Stop,
                _ = term.recv() => tidings::daemon::Control::Stop,
                _ = hup.recv() => tidings::daemon::Control::Reload,
            };
            if tx.send(control).await.is_err() {
                return;
            }
        }
    });
    let reload = move || load_config(&config_path);
    tidings::daemon::serve(app, listener, rx, reload).await?;
    Ok(Outcome::Success)
}

fn schedule(config: &Config) -> Outcome {
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

fn parse_wait(raw: &str) -> Result<std::time::Duration, String> {
    config::parse_duration(raw)
}

/// A stop signal for `send`: SIGINT or SIGTERM turn it true.
fn stop_on_signals() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("cannot listen for SIGTERM: {e}");
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::warn!("stopping: finishing messages in flight, releasing the rest");
        let _ = tx.send(true);
    });
    rx
}

async fn send(
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

async fn deliveries(app: &App, issue: Option<i64>) -> anyhow::Result<Outcome> {
    let issues = app.store.list_issues(if issue.is_some() { 10_000 } else { 20 }).await?;
    let chosen: Vec<_> = match issue {
        Some(id) => {
            let found: Vec<_> = issues.into_iter().filter(|i| i.id == id).collect();
            if found.is_empty() {
                return Err(tidings::Error::Usage(format!("no issue #{id}")).into());
            }
            found
        }
        None => issues,
    };
    if chosen.is_empty() {
        println!("no issue has been composed yet");
    }
    for i in &chosen {
        let c = app.store.delivery_counts(i.id).await?;
        println!(
            "issue #{} {} {} \"{}\": {} sent, {} pending, {} sending, {} failed of {}",
            i.id,
            i.edition,
            i.slot_at.format("%Y-%m-%d %H:%M UTC"),
            i.subject,
            c.sent,
            c.pending,
            c.sending,
            c.failed,
            c.total()
        );
        if issue.is_some() {
            if let Some((first, last)) = app.store.send_window(i.id).await? {
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
            if let Some(next) = app.store.next_delivery_due(i.id).await? {
                println!("  next retry: {}", next.format("%Y-%m-%d %H:%M:%S UTC"));
            }
            for (email, reply) in app.store.failed_deliveries(i.id).await? {
                println!("  failed: {email}: {reply}");
            }
        }
    }
    Ok(Outcome::Success)
}

async fn run_once(app: &App) -> anyhow::Result<Outcome> {
    let report = collect_with_progress(app, false).await?;
    print_collect(&report);
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

async fn subscribers(app: &App, cmd: SubscribersCommand) -> anyhow::Result<Outcome> {
    let all_editions = || app.config.editions.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    match cmd {
        SubscribersCommand::Add(a) => {
            let email = EmailAddress::parse(&a.email).map_err(|e| tidings::Error::Usage(e.to_string()))?;
            let editions = if a.editions.is_empty() {
                all_editions()
            } else {
                a.editions
            };
            app.check_editions(&editions)?;
            let name = SubscriberName::parse(a.name.as_deref().unwrap_or_default())
                .map_err(|e| tidings::Error::Usage(e.to_string()))?;
            match app
                .store
                .add_subscriber(
                    &email,
                    name.as_ref().map(SubscriberName::as_str),
                    SubscriberStatus::Active,
                    &editions,
                    app.now(),
                )
                .await?
            {
                AddOutcome::Added(_) => println!("added {email} ({})", editions.join(", ")),
                AddOutcome::Updated(_, status) => println!(
                    "{email} was already known (status {}); editions now include {}",
                    status.as_str(),
                    editions.join(", ")
                ),
            }
        }
        SubscribersCommand::List => {
            for s in app.store.list_subscribers().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    s.email,
                    s.name.as_deref().unwrap_or("-"),
                    s.status.as_str(),
                    s.editions.join(",")
                );
            }
        }
        SubscribersCommand::Remove { email } => {
            let email = EmailAddress::parse(&email).map_err(|e| tidings::Error::Usage(e.to_string()))?;
            if app.store.remove_subscriber(&email).await? {
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

async fn import(app: &App, file: &Path) -> anyhow::Result<Outcome> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let rows = tidings::app::parse_subscriber_csv(&data, &app.config)
        .map_err(|e| tidings::Error::Usage(format!("{}: {e}", file.display())))?;
    let (mut added, mut updated, mut invalid) = (0, 0, 0);
    let now = app.now();
    for row in rows {
        match row {
            Ok(r) => {
                match app
                    .store
                    .add_subscriber(&r.email, r.name.as_deref(), SubscriberStatus::Active, &r.editions, now)
                    .await?
                {
                    AddOutcome::Added(_) => added += 1,
                    AddOutcome::Updated(..) => updated += 1,
                }
            }
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

async fn sources(app: &App) -> anyhow::Result<Outcome> {
    let rows = app.store.list_sources().await?;
    let now = app.now();
    let fmt = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "never".into())
    };
    for s in &app.config.sources {
        let row = rows.iter().find(|r| r.name == s.name);
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
        let error = r.last_error.as_deref().map(|e| format!(" — {e}")).unwrap_or_default();
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
