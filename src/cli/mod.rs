//! The command line: clap definitions, the dispatch of each subcommand to
//! its function in `commands` (which calls into [`tidings::app`] and
//! [`tidings::issue`]) and the printing of reports in `print`. No business
//! logic and no store calls here; the exit code is decided in `main.rs`.

mod commands;
mod print;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use commands::*;
use print::print_config;
use tidings::app::App;
use tidings::config::{self, Config};

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
pub enum SourcesCommand {
    /// Print every configured source as OPML 2.0 (for Feedly, Inoreader,
    /// Miniflux, NetNewsWire).
    Export,
    /// Fetch a web page and print the feeds it advertises, each as a ready
    /// [[sources]] block.
    Discover { url: String },
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
        /// Also fetch each item's page and show the article text extracted.
        #[arg(long)]
        full_text: bool,
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
    /// Print a story's card (`[briefing]`): drafted by the model, or from the cache.
    Briefing {
        /// The id `rank` prints, or the story's link.
        story: String,
        /// Ask the model again; the editor's edits are kept.
        #[arg(long)]
        regenerate: bool,
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
    /// List sources with their last fetch status; export them as OPML;
    /// discover a site's feeds.
    Sources {
        #[command(subcommand)]
        command: Option<SourcesCommand>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Run the daemon: schedules, delivery workers, /healthz and /metrics.
    Serve,
    /// Every scheduled job with its next five fire times, in its time zone and in UTC.
    Schedule,
    /// Check what decides whether the mail arrives: SPF, DKIM, DMARC, the
    /// return path's MX, the public site and both unsubscribe paths.
    Doctor,
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
    /// Set the intro note of the next issue ("" removes it), or with
    /// --accept-draft take the intro the model drafted from the cards.
    Note {
        edition: String,
        #[arg(required_unless_present = "accept_draft")]
        text: Option<String>,
        /// Use the drafted intro (shown by `tidings preview`) while no note is written.
        #[arg(long, conflicts_with = "text")]
        accept_draft: bool,
    },
    /// Set FIELD of STORY's card in the next issues of EDITION to TEXT ("" gives it back to the draft).
    /// FIELD: tldr, what_changed, why_it_matters, what_to_do_next, takeaways (one per line).
    Edit {
        edition: String,
        story: String,
        field: String,
        text: String,
    },
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

/// For commands that work without a configuration file (`inspect`,
/// `sources discover`) and use its limits and tag rules when there is one.
fn optional_config(path: &Path) -> Result<Option<Config>, tidings::Error> {
    if path.exists() {
        load_config(path).map(Some)
    } else {
        Ok(None)
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Command::Inspect {
        target,
        json,
        full_text,
    } = &cli.command
    {
        return inspect(optional_config(&cli.config)?.as_ref(), target, *json, *full_text).await;
    }
    if let Command::Sources {
        command: Some(SourcesCommand::Discover { url }),
    } = &cli.command
    {
        return discover(optional_config(&cli.config)?.as_ref(), url).await;
    }
    let config = load_config(&cli.config)?;
    match cli.command {
        Command::Config(ConfigCommand::Check) => {
            print_config(&config);
            return Ok(Outcome::Success);
        }
        Command::Sources {
            command: Some(SourcesCommand::Export),
        } => {
            return Ok(export_sources(&config));
        }
        _ => {}
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
        Command::Briefing { story, regenerate } => briefing(&app, &story, regenerate).await?,
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
        Command::Sources { .. } => sources(&app).await?,
        Command::Serve => return serve(app, cli.config.clone()).await,
        Command::Schedule => schedule(&app.config),
        Command::Doctor => doctor(&app).await?,
        Command::Migrate => {
            println!("migrations applied to {}", app.config.database);
            Outcome::Success
        }
        Command::Config(_) => Outcome::Success,
    };
    app.close().await;
    Ok(outcome)
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
