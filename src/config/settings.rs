//! The validated settings of each section (`[site]`, `[database]`,
//! `[smtp]`, `[delivery]`, `[dkim]`, `[web]`, `[collect]`).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

use super::Secret;
use super::validate::resolve;
use crate::domain::Mailbox;
use crate::schedule::Schedule;

/// `[collect]`'s limits on one fetch (the collector and the link checker
/// apply them).
#[derive(Debug, Clone)]
pub struct FetchLimits {
    pub connect_timeout: std::time::Duration,
    pub total_timeout: std::time::Duration,
    /// Largest body accepted, counted after decompression.
    pub max_body_bytes: usize,
    pub max_redirects: usize,
    /// `[collect] allow_private`: URLs from outside may reach internal
    /// addresses too (see `guard.rs`).
    pub allow_private: bool,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect_timeout: std::time::Duration::from_secs(10),
            total_timeout: std::time::Duration::from_secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
            allow_private: false,
        }
    }
}

/// How often and how much to collect.
#[derive(Debug, Clone)]
pub struct CollectPolicy {
    /// Items kept per fetch (newest first); the rest are dropped and counted.
    pub max_items: usize,
    /// First delay after a failure; doubles per consecutive failure.
    pub backoff_initial: chrono::Duration,
    pub backoff_max: chrono::Duration,
    /// Cache hints (max-age, Expires, ttl) are honoured up to this long.
    pub max_cache: chrono::Duration,
}

impl Default for CollectPolicy {
    fn default() -> Self {
        CollectPolicy {
            max_items: 500,
            backoff_initial: chrono::Duration::minutes(5),
            backoff_max: chrono::Duration::hours(24),
            max_cache: chrono::Duration::hours(24),
        }
    }
}

/// `[web]`: how `serve` guards itself against slow, idle and many clients.
#[derive(Debug, Clone)]
pub struct Web {
    /// `/metrics` on its own address; then not on `listen`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Longest a client may take to send a request's headers, and to start
    /// the next request on a kept-alive connection.
    pub header_timeout: std::time::Duration,
    /// A connection on which nothing is read or written for this long is closed.
    pub idle_timeout: std::time::Duration,
    pub max_connections: usize,
    pub max_header_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Unconfirmed sign-ups are deleted after this many days.
    pub pending_days: u32,
}

impl Default for Web {
    fn default() -> Self {
        Web {
            metrics_listen: None,
            header_timeout: std::time::Duration::from_secs(10),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            pending_days: 7,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Site {
    pub title: String,
    /// Public URL, without a trailing slash.
    pub base_url: String,
    pub from: Mailbox,
    pub templates_dir: PathBuf,
    /// Address for `List-Unsubscribe: <mailto:…>`; defaults to the From address.
    /// `[site] unsubscribe_mailto`: advertised in `List-Unsubscribe` only
    /// when set, since someone must read that mailbox.
    pub unsubscribe_mailto: Option<crate::domain::EmailAddress>,
    /// A story collected this long after it was published is marked stale.
    pub stale_after_hours: i64,
}

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(Secret),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for DatabaseUrl {
    /// Shows where the database is without any password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(url) => match Url::parse(url.expose()) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("***"));
                    }
                    write!(f, "{u}")
                }
                Err(_) => f.write_str("postgres://***"),
            },
        }
    }
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH` (relative paths against `base`), `sqlite::memory:`
    /// is refused (every command would start empty), or `postgres://…`.
    pub fn parse(raw: &str, base: &Path) -> Result<Self, String> {
        if let Some(rest) = raw.strip_prefix("sqlite://").or_else(|| raw.strip_prefix("sqlite:")) {
            let rest = rest.split('?').next().unwrap_or(rest);
            if rest.is_empty() || rest.starts_with(":memory:") {
                return Err(format!(
                    "\"{raw}\" is not a file: tidings needs a database that outlives one command"
                ));
            }
            return Ok(DatabaseUrl::Sqlite(resolve(base, rest)));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(Secret::new(raw)));
        }
        Err("must start with sqlite:// or postgres://".to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartTls {
    Required,
    #[default]
    Opportunistic,
    Never,
}

#[derive(Debug, Clone)]
pub struct Smtp {
    /// `smtps://`: TLS from the first byte; otherwise plain TCP then STARTTLS.
    pub implicit_tls: bool,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub starttls: StartTls,
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

impl Smtp {
    pub(super) fn parse(raw: &str, starttls: StartTls) -> Result<Self, String> {
        let url = Url::parse(raw).map_err(|e| format!("not a URL ({e})"))?;
        let implicit_tls = match url.scheme() {
            "smtps" => true,
            "smtp" => false,
            other => return Err(format!("scheme \"{other}\" is not smtp:// or smtps://")),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url.port().unwrap_or(if implicit_tls { 465 } else { 25 });
        let decode =
            |s: &str| percent_decode(s).ok_or_else(|| "user or password is not valid percent-encoding".to_string());
        let username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url.password().map(decode).transpose()?.map(Secret::new);
        Ok(Smtp {
            implicit_tls,
            host,
            port,
            username,
            password,
            starttls,
            ca_file: None,
            timeout_secs: 30,
        })
    }
}

pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[derive(Debug, Clone)]
pub struct Delivery {
    /// Messages in flight at once.
    pub concurrency: usize,
    /// Messages per second at most; 0 = unlimited.
    pub rate_per_second: u32,
    pub max_attempts: i64,
    /// First retry delay; doubles per attempt (with jitter) up to `retry_max`.
    pub retry_initial: std::time::Duration,
    pub retry_max: std::time::Duration,
    /// How long a claimed delivery stays with the process that claimed it.
    pub lease: std::time::Duration,
    /// `Feedback-ID` header (for providers' complaint loops), if set.
    pub feedback_id: Option<String>,
    /// `return_path`: list messages are sent from a VERP address of it.
    pub return_path: Option<crate::domain::ReturnPath>,
    pub dkim: Option<Dkim>,
}

/// `[inbound]`: the listener for mail that comes back, and what a bounce
/// does to a subscriber.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// SMTP and LMTP on one address; `None`: no listener.
    pub listen: Option<std::net::SocketAddr>,
    /// A larger message is refused (552) before it is read to the end.
    pub max_message_bytes: usize,
    pub max_connections: usize,
    /// Messages one client address may hand over per minute.
    pub messages_per_minute: u32,
    /// A client silent this long is disconnected.
    pub timeout: std::time::Duration,
    /// Soft bounces in a row (no clean delivery between them) that
    /// suppress an address, within `soft_bounce_window`.
    pub soft_bounce_limit: u32,
    pub soft_bounce_window: std::time::Duration,
    /// `mailbox`: an IMAP mailbox the daemon reads bounces from.
    pub mailbox: Option<ImapMailbox>,
    pub webhooks: Webhooks,
}

/// `[inbound] mailbox = "imaps://user:pass@host/INBOX"`.
#[derive(Debug, Clone)]
pub struct ImapMailbox {
    /// `imaps://` (TLS from the start); `imap://` is plain text, for a
    /// server on the same machine.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: super::Secret,
    /// The folder read (the URL's path; `INBOX` when none).
    pub folder: String,
    /// `mailbox_processed_folder`: where each message goes once recorded.
    pub processed_folder: String,
    /// `mailbox_poll`: how often the folder is read when the server does
    /// not announce new mail itself (IMAP IDLE), and the longest IDLE.
    pub poll: std::time::Duration,
}

impl std::fmt::Display for ImapMailbox {
    /// Where the mailbox is, without the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "imaps" } else { "imap" };
        write!(
            f,
            "{scheme}://{}@{}:{}/{}",
            self.user, self.host, self.port, self.folder
        )
    }
}

/// `[doctor]`.
#[derive(Debug, Clone, Default)]
pub struct Doctor {
    /// The DNS servers asked; empty: the system's (/etc/resolv.conf).
    pub nameservers: Vec<std::net::SocketAddr>,
}

/// `[inbound.webhooks]`: each provider's secret, read from the variable
/// its `*_env` key names; a provider without one has no webhook.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    /// Mailgun's HTTP webhook signing key.
    pub mailgun: Option<super::Secret>,
    /// SendGrid's verification key (base64 DER of a P-256 public key).
    pub sendgrid: Option<super::Secret>,
    /// `user:password` that Postmark's webhook URL carries.
    pub postmark: Option<super::Secret>,
    /// The SNS topics whose SES notifications are accepted (any AWS account
    /// can sign a notification, so the topic is what makes it ours).
    pub ses_topic_arns: Vec<String>,
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            listen: None,
            max_message_bytes: 10 * 1024 * 1024,
            max_connections: 64,
            messages_per_minute: 600,
            timeout: std::time::Duration::from_secs(120),
            soft_bounce_limit: 3,
            soft_bounce_window: std::time::Duration::from_secs(30 * 86_400),
            mailbox: None,
            webhooks: Webhooks::default(),
        }
    }
}

/// `[dkim]`: sign every message.
#[derive(Debug, Clone)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
    /// How the body is canonicalized before hashing (headers: always relaxed).
    pub body_canonicalization: BodyCanonicalization,
}

/// The body half of DKIM's `c=` tag (RFC 6376 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCanonicalization {
    /// `relaxed/simple`, the default: the body is hashed as sent. tidings'
    /// bodies are quoted-printable with CRLF line ends and no line ends in
    /// white space, the things `relaxed` forgives, so both survive the same
    /// relays; `simple` hashes without rewriting ~47 KB byte by byte first.
    Simple,
    /// `relaxed/relaxed`: white space runs in the body folded before hashing.
    Relaxed,
}

/// `[collect]`: how sources are fetched.
#[derive(Debug, Clone)]
pub struct Collect {
    /// When the daemon collects (cron with seconds, UTC).
    pub schedule: Schedule,
    /// Sources fetched at once.
    pub concurrency: usize,
    /// Connections at once to one host.
    pub per_host: usize,
    pub limits: FetchLimits,
    pub policy: CollectPolicy,
    /// `[collect] opml`, resolved; its sources are in `Config::sources`.
    pub opml: Option<std::path::PathBuf>,
}

/// `[briefing]`: story cards drafted by an OpenAI-compatible model server.
#[derive(Debug, Clone)]
pub struct Briefing {
    /// The API's base, e.g. `http://127.0.0.1:8081/v1`; requests go to
    /// `{endpoint}/chat/completions`.
    pub endpoint: url::Url,
    pub model: String,
    /// From the variable `api_key_env` names; sent as a Bearer token.
    pub api_key: Option<super::Secret>,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// One request, answer included.
    pub timeout: std::time::Duration,
    /// Characters of each source's text sent to the model.
    pub max_input_chars: usize,
    /// `max_tokens` of each request.
    pub max_output_tokens: u32,
    /// Stories sent to the model in one run at most; the rest wait.
    pub max_stories_per_run: usize,
    pub unverified: UnverifiedPolicy,
    /// How far back a story's timeline looks.
    pub timeline_days: i64,
}

/// What an issue does with a card field the grounding check could not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnverifiedPolicy {
    /// The field is replaced by the extractive TL;DR; the issue goes out.
    Fallback,
    /// The issue waits for an editor's approval.
    Hold,
}
