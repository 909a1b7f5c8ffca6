//! Typed settings from one TOML file, with environment overrides.
//!
//! Loading is two steps: serde reads the file into `Raw*` structs (unknown
//! keys are errors, so a typo never silently does nothing), then
//! [`Config::from_raw`] checks every value, resolves relative paths against
//! the folder holding the file, and applies the environment (which wins over
//! the file). Every problem found is reported at once, each naming its key.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use serde::Deserialize;
use url::Url;

use crate::domain::Mailbox;
use crate::schedule::Schedule;

/// Environment variables the configuration reads.
pub const ENV_CONFIG: &str = "TIDINGS_CONFIG";
pub const ENV_DATABASE_URL: &str = "DATABASE_URL";
pub const ENV_SMTP_URL: &str = "TIDINGS_SMTP_URL";
pub const ENV_SECRET: &str = "TIDINGS_SECRET";
/// The web editor's login token; without it the editor pages are off.
pub const ENV_EDITOR_TOKEN: &str = "TIDINGS_EDITOR_TOKEN";
pub const MIN_EDITOR_TOKEN_LEN: usize = 16;
/// The shortest `TIDINGS_SECRET` accepted: 32 bytes, the HMAC-SHA256 block of entropy.
pub const MIN_SECRET_LEN: usize = 32;
pub const DEFAULT_CONFIG_PATH: &str = "config/tidings.toml";

/// The configuration is unusable; each problem names the file and the key.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub path: PathBuf,
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for problem in &self.problems {
            if !first {
                writeln!(f)?;
            }
            first = false;
            write!(f, "{}: {}", self.path.display(), problem)?;
        }
        Ok(())
    }
}

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    site: RawSite,
    #[serde(default)]
    database: RawDatabase,
    smtp: Option<RawSmtp>,
    #[serde(default)]
    mailbox: RawMailbox,
    #[serde(default)]
    delivery: RawDelivery,
    dkim: Option<RawDkim>,
    #[serde(default)]
    collect: RawCollect,
    #[serde(default)]
    web: RawWeb,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    tags: BTreeMap<String, RawTagRule>,
    #[serde(default)]
    audiences: BTreeMap<String, RawAudience>,
    #[serde(default)]
    editions: Vec<RawEdition>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    title: String,
    base_url: String,
    from: String,
    templates: Option<String>,
    unsubscribe_mailto: Option<String>,
    stale_after_hours: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    url: Option<String>,
    #[serde(default)]
    starttls: StartTls,
    ca_file: Option<String>,
    timeout_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    concurrency: Option<usize>,
    rate_per_second: Option<u32>,
    max_attempts: Option<i64>,
    retry_initial: Option<String>,
    retry_max: Option<String>,
    lease: Option<String>,
    feedback_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: String,
    selector: String,
    private_key_file: String,
    canonicalization: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<String>,
    metrics_listen: Option<String>,
    header_timeout: Option<String>,
    idle_timeout: Option<String>,
    max_connections: Option<usize>,
    max_header_bytes: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    pending_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCollect {
    schedule: Option<String>,
    concurrency: Option<usize>,
    per_host: Option<usize>,
    timeout: Option<String>,
    connect_timeout: Option<String>,
    max_body_bytes: Option<usize>,
    max_items: Option<usize>,
    max_backoff: Option<String>,
    #[serde(default)]
    allow_private: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    url: String,
    #[serde(default)]
    tags: Vec<String>,
    weight: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTagRule {
    #[serde(default)]
    keywords: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAudience {
    title: String,
    #[serde(default)]
    weights: BTreeMap<String, f64>,
    #[serde(default)]
    source_weights: BTreeMap<String, f64>,
    #[serde(default)]
    exclude_tags: Vec<String>,
    half_life: Option<String>,
    threshold: Option<f64>,
    cluster_bonus: Option<f64>,
    cluster_bonus_max: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    max: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdition {
    name: String,
    title: String,
    audience: String,
    schedule: String,
    #[serde(default = "default_timezone")]
    timezone: String,
    window_days: Option<i64>,
    max_stories: Option<usize>,
    min_stories: Option<usize>,
    template: Option<String>,
    subject: Option<String>,
    grace: Option<String>,
    max_per_source: Option<usize>,
    #[serde(default)]
    sections: Vec<RawSection>,
    #[serde(default)]
    approval: bool,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

// ---------------------------------------------------------------------------
// The validated settings.

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
pub struct Config {
    /// The file this was read from.
    pub path: PathBuf,
    pub site: Site,
    pub database: DatabaseUrl,
    /// `None`: no SMTP server, messages go to the mailbox folder.
    pub smtp: Option<Smtp>,
    pub mailbox_dir: PathBuf,
    pub delivery: Delivery,
    pub collect: Collect,
    /// `[web] listen`: where `serve` answers the pages, /healthz and /metrics.
    pub web_listen: std::net::SocketAddr,
    pub web: Web,
    pub sources: Vec<Source>,
    pub tag_rules: Vec<TagRule>,
    pub audiences: BTreeMap<String, Audience>,
    pub editions: Vec<Edition>,
    /// From `TIDINGS_SECRET`; `None` means "use the one kept in the database".
    pub secret: Option<Secret>,
    /// `TIDINGS_EDITOR_TOKEN`: the web editor's login.
    pub editor_token: Option<Secret>,
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
    fn parse(raw: &str, starttls: StartTls) -> Result<Self, String> {
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

fn percent_decode(s: &str) -> Option<String> {
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
    pub dkim: Option<Dkim>,
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
}

/// Parses "30s", "10m", "1h 30m", "24h".
/// A duration longer than zero, or `default` with the problem recorded.
fn positive_duration(
    key: &str,
    value: Option<&str>,
    default: std::time::Duration,
    bad: &mut impl FnMut(&str, String),
) -> std::time::Duration {
    match value.map(parse_duration) {
        None => default,
        Some(Ok(d)) if !d.is_zero() => d,
        Some(Ok(_)) => {
            bad(key, "must be longer than 0".into());
            default
        }
        Some(Err(e)) => {
            bad(key, e);
            default
        }
    }
}

/// A token whose characters carry less than about 80 bits, estimated as
/// length × log2(distinct characters): `aaaa…`, `abababab…`, 16 spaces.
fn guessable(token: &str) -> bool {
    let distinct: std::collections::BTreeSet<char> = token.chars().collect();
    let bits = token.chars().count() as f64 * (distinct.len().max(1) as f64).log2();
    token.trim() != token || bits < 80.0
}

pub fn parse_duration(raw: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| format!("\"{raw}\" is not a duration like \"30s\", \"10m\" or \"6h\" ({e})"))
}

/// Where a source's feed comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceLocation {
    Http(Url),
    File(PathBuf),
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceLocation::Http(url) => write!(f, "{url}"),
            SourceLocation::File(path) => write!(f, "{}", path.display()),
        }
    }
}

impl SourceLocation {
    /// `http(s)://…` is fetched; `file://…` or any other string is a path,
    /// relative paths against `base`.
    pub fn parse(raw: &str, base: &Path) -> Result<Self, String> {
        if raw.starts_with("http://") || raw.starts_with("https://") {
            let url = Url::parse(raw).map_err(|e| format!("not a valid URL ({e})"))?;
            return Ok(SourceLocation::Http(url));
        }
        if raw.starts_with("file://") {
            let url = Url::parse(raw).map_err(|e| format!("not a valid file URL ({e})"))?;
            let path = url.to_file_path().map_err(|_| "not a local file URL".to_string())?;
            return Ok(SourceLocation::File(path));
        }
        if raw.contains("://") {
            return Err("only http://, https:// and file:// URLs or local paths are supported".into());
        }
        Ok(SourceLocation::File(resolve(base, raw)))
    }
}

#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub location: SourceLocation,
    pub tags: Vec<String>,
    pub weight: f64,
}

#[derive(Debug, Clone)]
pub struct TagRule {
    pub tag: String,
    /// Lower-cased.
    pub keywords: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Audience {
    pub name: String,
    pub title: String,
    pub weights: BTreeMap<String, f64>,
    /// Per-source weights for this audience; a source not named here has
    /// its `[[sources]] weight`.
    pub source_weights: BTreeMap<String, f64>,
    /// A story with any of these tags never ranks for this audience.
    pub exclude_tags: BTreeSet<String>,
    /// Recency half-life; `None`: a third of the edition's window.
    pub half_life: Option<chrono::Duration>,
    /// "Who should care" lists the audience when a story's relevance (tags
    /// × source weight) is above this.
    pub threshold: f64,
    /// Score bonus per other source covering the same story…
    pub cluster_bonus: f64,
    /// …capped at this, so one viral story does not swamp the rest.
    pub cluster_bonus_max: f64,
}

impl Audience {
    /// An audience with these weights and every other key at its default.
    pub fn with_weights(name: &str, title: &str, weights: BTreeMap<String, f64>) -> Self {
        Audience {
            name: name.to_string(),
            title: title.to_string(),
            weights,
            source_weights: BTreeMap::new(),
            exclude_tags: BTreeSet::new(),
            half_life: None,
            threshold: DEFAULT_THRESHOLD,
            cluster_bonus: DEFAULT_CLUSTER_BONUS,
            cluster_bonus_max: DEFAULT_CLUSTER_BONUS_MAX,
        }
    }
}

pub const DEFAULT_THRESHOLD: f64 = 0.0;
pub const DEFAULT_CLUSTER_BONUS: f64 = 0.25;
pub const DEFAULT_CLUSTER_BONUS_MAX: f64 = 0.5;
pub const DEFAULT_MAX_PER_SOURCE: usize = 3;

/// A part of an edition holding stories with some tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: String,
    /// Normalised tags; empty: every story no other section takes.
    pub tags: Vec<String>,
    /// Most stories in the section (the edition's `max_stories` still holds).
    pub max: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Edition {
    pub name: String,
    pub title: String,
    pub audience: String,
    pub schedule: Schedule,
    pub window_days: i64,
    pub max_stories: usize,
    pub min_stories: usize,
    pub template: String,
    pub subject: Option<String>,
    /// A slot missed while the daemon was down is caught up when it is at
    /// most this old; older ones are skipped.
    pub grace: chrono::Duration,
    /// Most stories from one source in an issue.
    pub max_per_source: usize,
    /// Empty: one section of all stories.
    pub sections: Vec<Section>,
    /// An issue is composed and sent only once an editor approved it
    /// (`tidings issue approve`); the slot waits until its grace ends.
    pub approval: bool,
}

impl Config {
    /// Reads and validates the file; `env` supplies environment variables.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let fail = |problem: String| ConfigError {
            path: path.to_path_buf(),
            problems: vec![problem],
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        Self::parse(&text, path, env)
    }

    /// Validates TOML text as if read from `path`.
    pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError {
            path: path.to_path_buf(),
            problems: vec![describe_toml_error(&e)],
        })?;
        let base = path
            .parent()
            .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
            .unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
        Self::from_raw(raw, path, &base, env)
    }

    fn from_raw(
        raw: RawConfig,
        path: &Path,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let mut bad = |key: &str, msg: String| problems.push(format!("{key}: {msg}"));

        // [site]
        let base_url = raw.site.base_url.trim_end_matches('/').to_string();
        match Url::parse(&base_url) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
            Ok(_) => bad("site.base_url", "must be an http:// or https:// URL".into()),
            Err(e) => bad("site.base_url", format!("\"{base_url}\" is not a URL ({e})")),
        }
        let from = match Mailbox::parse(&raw.site.from) {
            Ok(m) => Some(m),
            Err(e) => {
                bad("site.from", format!("\"{}\": {e}", raw.site.from));
                None
            }
        };
        if raw.site.title.trim().is_empty() {
            bad("site.title", "must not be empty".into());
        }
        let templates_dir = resolve(base, raw.site.templates.as_deref().unwrap_or("templates"));
        // Only when set: a mailto nobody reads would lose unsubscribes.
        let unsubscribe_mailto = match &raw.site.unsubscribe_mailto {
            Some(addr) => match crate::domain::EmailAddress::parse(addr) {
                Ok(a) => Some(a),
                Err(e) => {
                    bad("site.unsubscribe_mailto", format!("\"{addr}\": {e}"));
                    None
                }
            },
            None => None,
        };
        let stale_after_hours = raw.site.stale_after_hours.unwrap_or(48);
        if stale_after_hours < 1 {
            bad("site.stale_after_hours", "must be at least 1".into());
        }

        // [database], env DATABASE_URL wins.
        let (db_key, db_raw) = match env(ENV_DATABASE_URL).filter(|v| !v.is_empty()) {
            Some(v) => (ENV_DATABASE_URL.to_string(), v),
            None => (
                "database.url".to_string(),
                raw.database.url.clone().unwrap_or_else(|| "sqlite://tidings.db".into()),
            ),
        };
        let database = match DatabaseUrl::parse(&db_raw, base) {
            Ok(d) => Some(d),
            Err(e) => {
                bad(&db_key, e);
                None
            }
        };

        // [smtp], env TIDINGS_SMTP_URL wins over [smtp] url.
        let starttls = raw.smtp.as_ref().map(|s| s.starttls).unwrap_or_default();
        let smtp_url = match env(ENV_SMTP_URL).filter(|v| !v.is_empty()) {
            Some(v) => Some((ENV_SMTP_URL.to_string(), v)),
            None => raw
                .smtp
                .as_ref()
                .and_then(|s| s.url.clone())
                .map(|u| ("smtp.url".to_string(), u)),
        };
        let smtp = match smtp_url {
            None => None,
            Some((key, url)) => match Smtp::parse(&url, starttls) {
                Ok(mut smtp) => {
                    if let Some(s) = &raw.smtp {
                        if let Some(ca) = &s.ca_file {
                            let ca = resolve(base, ca);
                            if !ca.is_file() {
                                bad("smtp.ca_file", format!("file {} does not exist", ca.display()));
                            }
                            smtp.ca_file = Some(ca);
                        }
                        if let Some(t) = s.timeout_secs {
                            if t == 0 {
                                bad("smtp.timeout_secs", "must be at least 1".into());
                            }
                            smtp.timeout_secs = t;
                        }
                    }
                    Some(smtp)
                }
                Err(e) => {
                    // Never echo the URL: it may hold a password.
                    bad(&key, e);
                    None
                }
            },
        };

        let mailbox_dir = resolve(base, raw.mailbox.dir.as_deref().unwrap_or("outbox"));

        let concurrency = raw.delivery.concurrency.unwrap_or(8);
        if concurrency == 0 || concurrency > 256 {
            bad("delivery.concurrency", "must be between 1 and 256".into());
        }
        let max_attempts = raw.delivery.max_attempts.unwrap_or(6);
        if !(1..=100).contains(&max_attempts) {
            bad("delivery.max_attempts", "must be between 1 and 100".into());
        }
        if let Some(id) = &raw.delivery.feedback_id
            && (id.is_empty() || !id.chars().all(|c| c.is_ascii_graphic()))
        {
            bad("delivery.feedback_id", "must be printable ASCII without spaces".into());
        }
        let dkim = match &raw.dkim {
            None => None,
            Some(d) => {
                let file = resolve(base, &d.private_key_file);
                if d.domain.trim().is_empty() || d.domain.contains(char::is_whitespace) {
                    bad("dkim.domain", "must be a domain name".into());
                }
                if d.selector.trim().is_empty() || d.selector.contains(char::is_whitespace) {
                    bad("dkim.selector", "must be a DNS label".into());
                }
                let body_canonicalization = match d.canonicalization.as_deref().map(str::trim) {
                    None | Some("relaxed/simple") => BodyCanonicalization::Simple,
                    Some("relaxed/relaxed") => BodyCanonicalization::Relaxed,
                    Some(other) => {
                        bad(
                            "dkim.canonicalization",
                            format!("\"{other}\" is not \"relaxed/simple\" or \"relaxed/relaxed\""),
                        );
                        BodyCanonicalization::Simple
                    }
                };
                Some(Dkim {
                    domain: d.domain.trim().to_lowercase(),
                    selector: d.selector.trim().to_string(),
                    private_key_file: file,
                    body_canonicalization,
                })
            }
        };

        // [collect]
        let c = &raw.collect;
        let mut duration = |key: &str, value: &Option<String>, default: std::time::Duration| {
            positive_duration(key, value.as_deref(), default, &mut bad)
        };
        let defaults = FetchLimits::default();
        let total_timeout = duration("collect.timeout", &c.timeout, defaults.total_timeout);
        let connect_timeout = duration("collect.connect_timeout", &c.connect_timeout, defaults.connect_timeout);
        let max_backoff = duration(
            "collect.max_backoff",
            &c.max_backoff,
            std::time::Duration::from_secs(24 * 3600),
        );
        let d = &raw.delivery;
        let retry_initial = duration(
            "delivery.retry_initial",
            &d.retry_initial,
            std::time::Duration::from_secs(30),
        );
        let retry_max = duration("delivery.retry_max", &d.retry_max, std::time::Duration::from_secs(3600));
        let lease = duration("delivery.lease", &d.lease, std::time::Duration::from_secs(60));
        if retry_max < retry_initial {
            bad(
                "delivery.retry_max",
                "must not be shorter than delivery.retry_initial".into(),
            );
        }
        let collect_schedule_raw = c.schedule.clone().unwrap_or_else(|| "0 */30 * * * *".to_string());
        let collect_schedule = match Schedule::parse(&collect_schedule_raw, Tz::UTC) {
            Ok(s) => Some(s),
            Err(e) => {
                bad("collect.schedule", format!("\"{collect_schedule_raw}\": {e}"));
                None
            }
        };
        let collect_concurrency = c.concurrency.unwrap_or(16);
        if !(1..=256).contains(&collect_concurrency) {
            bad("collect.concurrency", "must be between 1 and 256".into());
        }
        let per_host = c.per_host.unwrap_or(2);
        if !(1..=64).contains(&per_host) {
            bad("collect.per_host", "must be between 1 and 64".into());
        }
        let max_body_bytes = c.max_body_bytes.unwrap_or(defaults.max_body_bytes);
        if max_body_bytes < 1024 {
            bad("collect.max_body_bytes", "must be at least 1024".into());
        }
        let max_items = c.max_items.unwrap_or(500);
        if max_items == 0 {
            bad("collect.max_items", "must be at least 1".into());
        }
        let chrono_max_backoff = chrono::Duration::from_std(max_backoff).unwrap_or(chrono::Duration::hours(24));

        // [[sources]]
        let mut sources = Vec::new();
        let mut seen = HashSet::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let key = format!("sources[{i}]");
            if s.name.trim().is_empty() {
                bad(&format!("{key}.name"), "must not be empty".into());
            } else if !seen.insert(s.name.clone()) {
                bad(
                    &format!("{key}.name"),
                    format!("\"{}\" is used by another source", s.name),
                );
            }
            let weight = s.weight.unwrap_or(1.0);
            if !weight.is_finite() || weight < 0.0 {
                bad(&format!("{key}.weight"), "must be a number ≥ 0".into());
            }
            let tags = match normalise_tags(&s.tags) {
                Ok(t) => t,
                Err(e) => {
                    bad(&format!("{key}.tags"), e);
                    Vec::new()
                }
            };
            match SourceLocation::parse(&s.url, base) {
                Ok(location) => sources.push(Source {
                    name: s.name,
                    location,
                    tags,
                    weight,
                }),
                Err(e) => bad(&format!("{key}.url"), format!("\"{}\": {e}", s.url)),
            }
        }

        // [tags.NAME]
        let mut tag_rules = Vec::new();
        for (tag, rule) in raw.tags {
            let key = format!("tags.{tag}");
            let Some(norm) = crate::domain::normalise_tag(&tag) else {
                bad(&key, "is not a usable tag name".into());
                continue;
            };
            if norm != tag {
                bad(
                    &key,
                    format!("tag names are lower-case words joined by '-': use \"{norm}\""),
                );
            }
            let mut keywords = Vec::new();
            for (j, k) in rule.keywords.iter().enumerate() {
                let k = k.trim().to_lowercase();
                if k.is_empty() {
                    bad(&format!("{key}.keywords[{j}]"), "must not be empty".into());
                } else {
                    keywords.push(k);
                }
            }
            tag_rules.push(TagRule { tag: norm, keywords });
        }

        // [audiences.NAME]
        let source_names: HashSet<&str> = sources.iter().map(|s: &Source| s.name.as_str()).collect();
        let mut audiences = BTreeMap::new();
        for (name, a) in raw.audiences {
            let key = format!("audiences.{name}");
            let mut weights = BTreeMap::new();
            for (tag, w) in a.weights {
                if !w.is_finite() || w < 0.0 {
                    bad(&format!("{key}.weights.{tag}"), "must be a number ≥ 0".into());
                }
                match crate::domain::normalise_tag(&tag) {
                    Some(t) => {
                        weights.insert(t, w);
                    }
                    None => bad(&format!("{key}.weights.{tag}"), "is not a usable tag name".into()),
                }
            }
            if weights.values().all(|w| *w <= 0.0) {
                bad(
                    &format!("{key}.weights"),
                    "needs at least one tag with a weight above 0".into(),
                );
            }
            for (source, w) in &a.source_weights {
                if !w.is_finite() || *w < 0.0 {
                    bad(&format!("{key}.source_weights.{source}"), "must be a number ≥ 0".into());
                }
                if !source_names.contains(source.as_str()) {
                    bad(
                        &format!("{key}.source_weights.{source}"),
                        format!("no [[sources]] is named \"{source}\""),
                    );
                }
            }
            let mut exclude_tags = BTreeSet::new();
            for tag in &a.exclude_tags {
                match crate::domain::normalise_tag(tag) {
                    Some(t) => {
                        exclude_tags.insert(t);
                    }
                    None => bad(
                        &format!("{key}.exclude_tags"),
                        format!("\"{tag}\" is not a usable tag name"),
                    ),
                }
            }
            let half_life =
                a.half_life
                    .as_deref()
                    .and_then(|h| match parse_duration(h).map(chrono::Duration::from_std) {
                        Ok(Ok(d)) if d > chrono::Duration::zero() => Some(d),
                        Ok(_) => {
                            bad(
                                &format!("{key}.half_life"),
                                "must be above zero and not absurdly long".into(),
                            );
                            None
                        }
                        Err(err) => {
                            bad(&format!("{key}.half_life"), err);
                            None
                        }
                    });
            let mut number = |field: &str, value: Option<f64>, default: f64| match value {
                Some(v) if v.is_finite() && v >= 0.0 => v,
                Some(_) => {
                    bad(&format!("{key}.{field}"), "must be a number ≥ 0".into());
                    default
                }
                None => default,
            };
            let threshold = number("threshold", a.threshold, DEFAULT_THRESHOLD);
            let cluster_bonus = number("cluster_bonus", a.cluster_bonus, DEFAULT_CLUSTER_BONUS);
            let cluster_bonus_max = number("cluster_bonus_max", a.cluster_bonus_max, DEFAULT_CLUSTER_BONUS_MAX);
            audiences.insert(
                name.clone(),
                Audience {
                    name,
                    title: a.title,
                    weights,
                    source_weights: a.source_weights,
                    exclude_tags,
                    half_life,
                    threshold,
                    cluster_bonus,
                    cluster_bonus_max,
                },
            );
        }

        // [[editions]]
        let mut editions = Vec::new();
        let mut seen = HashSet::new();
        for (i, e) in raw.editions.into_iter().enumerate() {
            let key = format!("editions[{i}]");
            if !is_slug(&e.name) {
                bad(
                    &format!("{key}.name"),
                    format!("\"{}\" must be lower-case letters, digits, '-' or '_'", e.name),
                );
            } else if !seen.insert(e.name.clone()) {
                bad(
                    &format!("{key}.name"),
                    format!("\"{}\" is used by another edition", e.name),
                );
            }
            if !audiences.contains_key(&e.audience) {
                bad(
                    &format!("{key}.audience"),
                    format!("no [audiences.{}] is defined", e.audience),
                );
            }
            let tz: Option<Tz> = match e.timezone.parse() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    bad(
                        &format!("{key}.timezone"),
                        format!("\"{}\" is not an IANA time zone name", e.timezone),
                    );
                    None
                }
            };
            let schedule = match (Schedule::parse(&e.schedule, tz.unwrap_or(Tz::UTC)), tz) {
                (Ok(s), Some(_)) => Some(s),
                (Ok(_), None) => None,
                (Err(err), _) => {
                    bad(&format!("{key}.schedule"), format!("\"{}\": {err}", e.schedule));
                    None
                }
            };
            let window_days = e.window_days.unwrap_or(7);
            if !(1..=3660).contains(&window_days) {
                bad(&format!("{key}.window_days"), "must be between 1 and 3660".into());
            }
            let max_stories = e.max_stories.unwrap_or(10);
            if !(1..=500).contains(&max_stories) {
                bad(&format!("{key}.max_stories"), "must be between 1 and 500".into());
            }
            let min_stories = e.min_stories.unwrap_or(1);
            if min_stories > max_stories {
                bad(&format!("{key}.min_stories"), "must not exceed max_stories".into());
            }
            let grace = match &e.grace {
                None => chrono::Duration::hours(6),
                Some(g) => match parse_duration(g).map(chrono::Duration::from_std) {
                    Ok(Ok(d)) => d,
                    Ok(Err(_)) => {
                        bad(&format!("{key}.grace"), "is too long".into());
                        chrono::Duration::hours(6)
                    }
                    Err(err) => {
                        bad(&format!("{key}.grace"), err);
                        chrono::Duration::hours(6)
                    }
                },
            };
            let max_per_source = e.max_per_source.unwrap_or(DEFAULT_MAX_PER_SOURCE);
            if max_per_source == 0 {
                bad(&format!("{key}.max_per_source"), "must be at least 1".into());
            }
            let mut sections = Vec::new();
            let mut sectioned_tags = HashSet::new();
            for (j, section) in e.sections.into_iter().enumerate() {
                let skey = format!("{key}.sections[{j}]");
                if section.title.trim().is_empty() {
                    bad(&format!("{skey}.title"), "must not be empty".into());
                }
                if section.max == Some(0) {
                    bad(&format!("{skey}.max"), "must be at least 1".into());
                }
                let mut tags = Vec::new();
                for tag in &section.tags {
                    match crate::domain::normalise_tag(tag) {
                        Some(t) if !sectioned_tags.insert(t.clone()) => bad(
                            &format!("{skey}.tags"),
                            format!("\"{t}\" is already in an earlier section (a story appears in one section only)"),
                        ),
                        Some(t) => tags.push(t),
                        None => bad(&format!("{skey}.tags"), format!("\"{tag}\" is not a usable tag name")),
                    }
                }
                sections.push(Section {
                    title: section.title,
                    tags,
                    max: section.max,
                });
            }
            if sections.iter().filter(|s| s.tags.is_empty()).count() > 1 {
                bad(
                    &format!("{key}.sections"),
                    "at most one section may have no tags (the one for all other stories)".into(),
                );
            }
            let template = e.template.unwrap_or_else(|| e.name.clone());
            if !is_slug(&template) {
                bad(&format!("{key}.template"), "must be a plain name, not a path".into());
            }
            if let Some(schedule) = schedule {
                editions.push(Edition {
                    name: e.name,
                    title: e.title,
                    audience: e.audience,
                    schedule,
                    window_days,
                    max_stories,
                    min_stories,
                    template,
                    subject: e.subject,
                    grace,
                    max_per_source,
                    sections,
                    approval: e.approval,
                });
            }
        }

        let web_listen_raw = raw.web.listen.clone().unwrap_or_else(|| "127.0.0.1:8080".to_string());
        let web_listen = match web_listen_raw.parse::<std::net::SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                bad(
                    "web.listen",
                    format!("\"{web_listen_raw}\" is not an address like 127.0.0.1:8080"),
                );
                None
            }
        };

        let web = {
            let w = &raw.web;
            let defaults = Web::default();
            let mut web_duration = |key: &str, value: &Option<String>, default: std::time::Duration| {
                positive_duration(key, value.as_deref(), default, &mut bad)
            };
            let header_timeout = web_duration("web.header_timeout", &w.header_timeout, defaults.header_timeout);
            let idle_timeout = web_duration("web.idle_timeout", &w.idle_timeout, defaults.idle_timeout);
            let metrics_listen = w.metrics_listen.as_deref().and_then(|m| match m.parse() {
                Ok(a) => Some(a),
                Err(_) => {
                    bad(
                        "web.metrics_listen",
                        format!("\"{m}\" is not an address like 127.0.0.1:9090"),
                    );
                    None
                }
            });
            let max_connections = match w.max_connections {
                Some(0) => {
                    bad("web.max_connections", "must be at least 1".into());
                    defaults.max_connections
                }
                Some(n) => n,
                None => defaults.max_connections,
            };
            let max_header_bytes = match w.max_header_bytes {
                Some(n) if !(1024..=1024 * 1024).contains(&n) => {
                    bad("web.max_header_bytes", format!("{n} is outside 1024 to 1048576"));
                    defaults.max_header_bytes
                }
                Some(n) => n,
                None => defaults.max_header_bytes,
            };
            let mut trusted_proxies = Vec::new();
            for (i, p) in w.trusted_proxies.iter().flatten().enumerate() {
                let parsed = p
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
                match parsed {
                    Ok(net) => trusted_proxies.push(net),
                    Err(_) => bad(
                        &format!("web.trusted_proxies[{i}]"),
                        format!("\"{p}\" is not an address or a CIDR block like 10.0.0.0/8"),
                    ),
                }
            }
            let pending_days = match w.pending_days {
                Some(0) => {
                    bad("web.pending_days", "must be at least 1".into());
                    defaults.pending_days
                }
                Some(n) => n,
                None => defaults.pending_days,
            };
            Web {
                metrics_listen,
                header_timeout,
                idle_timeout,
                max_connections,
                max_header_bytes,
                trusted_proxies,
                pending_days,
            }
        };

        let editor_token = match env(ENV_EDITOR_TOKEN) {
            None => None,
            Some(s) if s.len() < MIN_EDITOR_TOKEN_LEN => {
                bad(
                    ENV_EDITOR_TOKEN,
                    format!(
                        "is {} bytes long; it must be at least {MIN_EDITOR_TOKEN_LEN} (make one with: openssl rand -hex 32)",
                        s.len()
                    ),
                );
                None
            }
            Some(s) if guessable(&s) => {
                bad(
                    ENV_EDITOR_TOKEN,
                    "is too easy to guess (too few different characters, or white space at either end); \
                     make one with: openssl rand -hex 32"
                        .into(),
                );
                None
            }
            Some(s) => Some(Secret::new(s)),
        };
        let secret = match env(ENV_SECRET) {
            None => None,
            Some(s) if s.len() < MIN_SECRET_LEN => {
                bad(
                    ENV_SECRET,
                    format!(
                        "is {} bytes long; it must be at least {MIN_SECRET_LEN} (try: openssl rand -hex 32)",
                        s.len()
                    ),
                );
                None
            }
            Some(s) => Some(Secret::new(s)),
        };

        if !problems.is_empty() {
            return Err(ConfigError {
                path: path.to_path_buf(),
                problems,
            });
        }
        let (Some(from), Some(database), Some(collect_schedule), Some(web_listen)) =
            (from, database, collect_schedule, web_listen)
        else {
            unreachable!("a missing value always records a problem");
        };
        Ok(Config {
            path: path.to_path_buf(),
            site: Site {
                title: raw.site.title,
                base_url,
                from,
                templates_dir,
                unsubscribe_mailto,
                stale_after_hours,
            },
            database,
            smtp,
            mailbox_dir,
            delivery: Delivery {
                concurrency,
                rate_per_second: raw.delivery.rate_per_second.unwrap_or(0),
                max_attempts,
                retry_initial,
                retry_max,
                lease,
                feedback_id: raw.delivery.feedback_id.clone(),
                dkim,
            },
            web_listen,
            web,
            collect: Collect {
                schedule: collect_schedule,
                concurrency: collect_concurrency,
                per_host,
                limits: FetchLimits {
                    connect_timeout,
                    total_timeout,
                    max_body_bytes,
                    max_redirects: defaults.max_redirects,
                    allow_private: raw.collect.allow_private,
                },
                policy: CollectPolicy {
                    max_items,
                    backoff_max: chrono_max_backoff,
                    ..CollectPolicy::default()
                },
            },
            sources,
            tag_rules,
            audiences,
            editions,
            secret,
            editor_token,
        })
    }

    /// The edition's title, or its name for an issue of an edition no
    /// longer configured.
    pub fn edition_title(&self, name: &str) -> String {
        self.editions
            .iter()
            .find(|e| e.name == name)
            .map_or_else(|| name.to_string(), |e| e.title.clone())
    }

    /// The title of the edition's audience.
    pub fn audience_title(&self, edition: &Edition) -> String {
        self.audiences
            .get(&edition.audience)
            .map_or_else(|| edition.audience.clone(), |a| a.title.clone())
    }

    pub fn edition(&self, name: &str) -> crate::Result<&Edition> {
        self.editions.iter().find(|e| e.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.editions.iter().map(|e| e.name.as_str()).collect();
            crate::Error::Usage(format!(
                "no edition named \"{name}\" in {} (editions: {})",
                self.path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }

    pub fn audience(&self, name: &str) -> crate::Result<&Audience> {
        self.audiences.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.audiences.keys().map(String::as_str).collect();
            crate::Error::Usage(format!(
                "no audience named \"{name}\" in {} (audiences: {})",
                self.path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }
}

/// toml's messages carry the line, column and an excerpt; keep them whole but
/// drop the leading "TOML parse error" noise.
fn describe_toml_error(e: &toml::de::Error) -> String {
    let msg = e.to_string();
    let msg = msg.trim_end();
    match e.span() {
        Some(_) => msg.replacen("TOML parse error at ", "", 1),
        None => msg.to_string(),
    }
}

fn normalise_tags(tags: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for t in tags {
        match crate::domain::normalise_tag(t) {
            Some(n) => {
                if !out.contains(&n) {
                    out.push(n)
                }
            }
            None => return Err(format!("\"{t}\" is not a usable tag name")),
        }
    }
    Ok(out)
}

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `p` relative to the configuration file's folder, with `.` and `..`
/// taken out (`/srv/news/config/../tidings.db` is `/srv/news/tidings.db`).
fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_path_buf() } else { base.join(p) };
    normalise(&joined)
}

/// Removes `.` and resolves `..` by the path's text: what an operator
/// reads, without touching the file system.
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn dir_with_templates() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("templates")).expect("mkdir");
        for f in ["weekly.html.j2", "weekly.txt.j2"] {
            std::fs::write(dir.path().join("templates").join(f), "x").expect("write");
        }
        dir
    }

    const GOOD: &str = r#"
[site]
title = "Weekly AI Recap"
base_url = "http://127.0.0.1:8080/"
from = "Weekly AI Recap <recap@example.com>"

[smtp]
url = "smtp://user:p%40ss@127.0.0.1:2525"
starttls = "required"

[[sources]]
name = "Local"
url = "feeds/local.xml"
tags = ["Enterprise"]

[tags.security]
keywords = ["Ransomware", "zero-day"]

[audiences.security]
title = "Enterprise & Security Teams"
weights = { security = 3.0, cloud = 2.0 }

[[editions]]
name = "weekly"
title = "Weekly AI Recap"
audience = "security"
schedule = "0 0 8 * * Mon"
timezone = "Europe/Berlin"
template = "weekly"
"#;

    #[test]
    fn good_config_resolves_paths_and_defaults() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let cfg = Config::parse(GOOD, &path, &no_env).expect("valid");
        assert_eq!(cfg.site.base_url, "http://127.0.0.1:8080");
        assert_eq!(cfg.database, DatabaseUrl::Sqlite(dir.path().join("tidings.db")));
        assert_eq!(cfg.mailbox_dir, dir.path().join("outbox"));
        assert_eq!(
            cfg.sources[0].location,
            SourceLocation::File(dir.path().join("feeds/local.xml"))
        );
        assert_eq!(cfg.sources[0].tags, vec!["enterprise"]);
        let smtp = cfg.smtp.expect("smtp");
        assert_eq!(smtp.username.as_deref(), Some("user"));
        assert_eq!(smtp.password.as_ref().map(Secret::expose), Some("p@ss"));
        assert_eq!(smtp.port, 2525);
        assert_eq!(smtp.starttls, StartTls::Required);
        assert_eq!(cfg.tag_rules[0].keywords, vec!["ransomware", "zero-day"]);
        assert_eq!(cfg.editions[0].window_days, 7);
        assert_eq!(cfg.editions[0].min_stories, 1);
        assert_eq!(cfg.site.unsubscribe_mailto, None);
    }

    #[test]
    fn env_overrides_win_and_secrets_never_print() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let env = |k: &str| match k {
            ENV_DATABASE_URL => Some("postgres://u:hunter2hunter2@db/x".to_string()),
            ENV_SMTP_URL => Some("smtps://a:topsecretpw@mail.example.com".to_string()),
            ENV_SECRET => Some("0123456789abcdef0123456789abcdef".to_string()),
            _ => None,
        };
        let cfg = Config::parse(GOOD, &path, &env).expect("valid");
        let smtp = cfg.smtp.as_ref().expect("smtp");
        assert!(smtp.implicit_tls);
        assert_eq!(smtp.port, 465);
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(!debug.contains("topsecretpw"), "{debug}");
        assert!(!debug.contains("0123456789abcdef"), "{debug}");
        assert_eq!(cfg.database.to_string(), "postgres://u:***@db/x");
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let text = GOOD
            .replace("Europe/Berlin", "Mars/Olympus")
            .replace("audience = \"security\"", "audience = \"nobody\"")
            .replace("0 0 8 * * Mon", "0 8 * * Mon")
            .replace("recap@example.com>", "not an address>");
        let err = Config::parse(&text, &path, &no_env).expect_err("invalid");
        let msg = err.to_string();
        assert!(msg.contains("editions[0].timezone"), "{msg}");
        assert!(msg.contains("editions[0].audience"), "{msg}");
        assert!(msg.contains("editions[0].schedule"), "{msg}");
        assert!(msg.contains("site.from"), "{msg}");
        assert!(msg.contains("tidings.toml"), "{msg}");
    }

    #[test]
    fn dkim_canonicalization_defaults_to_relaxed_simple_and_is_checked() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/dkim/ed25519.pem");
        let with = |setting: &str| {
            format!(
                "{GOOD}\n[dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nprivate_key_file = \"{key}\"\n{setting}"
            )
        };
        let body = |text: &str| {
            Config::parse(text, &path, &no_env)
                .expect("valid")
                .delivery
                .dkim
                .expect("dkim")
                .body_canonicalization
        };
        assert_eq!(body(&with("")), BodyCanonicalization::Simple);
        assert_eq!(
            body(&with("canonicalization = \"relaxed/relaxed\"\n")),
            BodyCanonicalization::Relaxed
        );
        let err = Config::parse(&with("canonicalization = \"simple/simple\"\n"), &path, &no_env).expect_err("invalid");
        assert!(err.to_string().contains("dkim.canonicalization"), "{err}");
    }

    #[test]
    fn curation_keys_are_read_and_checked() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let good = format!(
            "{GOOD}max_per_source = 2\n\n[[editions.sections]]\ntitle = \"Security\"\ntags = [\"Security\"]\nmax = 3\n\n\
             [[editions.sections]]\ntitle = \"Everything else\"\n"
        )
        .replace(
            "weights = { security = 3.0, cloud = 2.0 }",
            "weights = { security = 3.0, cloud = 2.0 }\nsource_weights = { Local = 0.5 }\nexclude_tags = [\"Sponsored\"]\n\
             half_life = \"36h\"\nthreshold = 1.5\ncluster_bonus = 0.1\ncluster_bonus_max = 0.3",
        );
        let cfg = Config::parse(&good, &path, &no_env).expect("valid");
        let a = &cfg.audiences["security"];
        assert_eq!(a.source_weights.get("Local"), Some(&0.5));
        assert!(a.exclude_tags.contains("sponsored"));
        assert_eq!(a.half_life, Some(chrono::Duration::hours(36)));
        assert_eq!((a.threshold, a.cluster_bonus, a.cluster_bonus_max), (1.5, 0.1, 0.3));
        let e = &cfg.editions[0];
        assert_eq!(e.max_per_source, 2);
        assert_eq!(e.sections.len(), 2);
        assert_eq!(e.sections[0].tags, ["security"]);
        assert!(e.sections[1].tags.is_empty());

        // Defaults.
        let cfg = Config::parse(GOOD, &path, &no_env).expect("valid");
        assert_eq!(cfg.editions[0].max_per_source, DEFAULT_MAX_PER_SOURCE);
        assert!(cfg.editions[0].sections.is_empty());
        assert_eq!(cfg.audiences["security"].threshold, DEFAULT_THRESHOLD);

        let bad = good
            .replace("Local = 0.5", "Nowhere = 0.5")
            .replace("half_life = \"36h\"", "half_life = \"soon\"")
            .replace("threshold = 1.5", "threshold = -1")
            .replace("max_per_source = 2", "max_per_source = 0")
            .replace(
                "title = \"Everything else\"",
                "title = \"Again\"\ntags = [\"security\"]",
            );
        let msg = Config::parse(&bad, &path, &no_env).expect_err("invalid").to_string();
        for key in [
            "audiences.security.source_weights.Nowhere",
            "audiences.security.half_life",
            "audiences.security.threshold",
            "editions[0].max_per_source",
            "editions[0].sections[1].tags",
        ] {
            assert!(msg.contains(key), "{key} not named: {msg}");
        }
    }

    #[test]
    fn short_secret_and_unknown_keys_are_refused() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let env = |k: &str| (k == ENV_SECRET).then(|| "short".to_string());
        let err = Config::parse(GOOD, &path, &env).expect_err("short secret");
        assert!(err.to_string().contains("TIDINGS_SECRET"));
        assert!(!err.to_string().contains("short\""));

        let text = GOOD.replace("[smtp]", "[smtp]\nport = 25");
        let err = Config::parse(&text, &path, &no_env).expect_err("unknown key");
        assert!(err.to_string().contains("unknown field `port`"), "{err}");
    }

    #[test]
    fn smtp_url_errors_do_not_echo_the_password() {
        let dir = dir_with_templates();
        let path = dir.path().join("tidings.toml");
        let text = GOOD.replace("smtp://user:p%40ss@", "imap://user:sekritpass@");
        let err = Config::parse(&text, &path, &no_env).expect_err("bad scheme");
        let msg = err.to_string();
        assert!(msg.contains("smtp.url"), "{msg}");
        assert!(!msg.contains("sekritpass"), "{msg}");
    }
}

#[cfg(test)]
mod path_tests {
    use super::resolve;
    use std::path::{Path, PathBuf};

    #[test]
    fn configured_paths_are_shown_normalised() {
        let base = Path::new("/srv/news/config");
        assert_eq!(resolve(base, "../tidings.db"), PathBuf::from("/srv/news/tidings.db"));
        assert_eq!(
            resolve(base, "./templates/"),
            PathBuf::from("/srv/news/config/templates")
        );
        assert_eq!(resolve(base, "/var/../etc/x"), PathBuf::from("/etc/x"));
        assert_eq!(
            resolve(Path::new("config"), "../../data/t.db"),
            PathBuf::from("../data/t.db")
        );
        assert_eq!(resolve(Path::new(""), "outbox"), PathBuf::from("outbox"));
    }
}

#[cfg(test)]
mod token_strength_tests {
    use super::guessable;

    #[test]
    fn editor_tokens_that_are_easy_to_guess_are_refused() {
        for weak in [
            "aaaaaaaaaaaaaaaa",
            "                ",
            "abababababababab",
            "0123456789abcdef",
            " padded-token-0123456789 ",
        ] {
            assert!(guessable(weak), "{weak:?} should be refused");
        }
        for strong in [
            "editor-token-0123456789",
            "3f9c2a7d41e08b56c9d2e71f4a3b8c60",
            "correct horse battery staple",
        ] {
            assert!(!guessable(strong), "{strong:?} should be accepted");
        }
    }
}
