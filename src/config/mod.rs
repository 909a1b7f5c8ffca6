//! Typed settings from one TOML file, with environment overrides.
//!
//! Loading is two steps: serde reads the file into `Raw*` structs (unknown
//! keys are errors, so a typo never silently does nothing), then
//! [`Config::from_raw`] checks every value, resolves relative paths against
//! the folder holding the file, and applies the environment (which wins over
//! the file). Every problem found is reported at once, each naming its key.

//!
//! Files: `raw` (the file as written), `validate` (one function per
//! section, into the types of `settings` and of [`crate::domain`] for the
//! configured sources, tags, audiences and editions). Checks that need the
//! files a configuration names (templates, the DKIM key) are
//! the start-up preflight's (`preflight.rs`); this module imports no stage.

pub mod opml;
mod raw;
mod settings;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::domain::configured::*;
use raw::RawConfig;
pub use settings::*;
use validate::describe_toml_error;
pub use validate::parse_duration;

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
    pub inbound: Inbound,
    pub collect: Collect,
    /// `[briefing]`: `None` keeps the extractive TL;DR only.
    pub briefing: Option<Briefing>,
    /// `[doctor]`: how `tidings doctor` looks things up.
    pub doctor: Doctor,
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

impl Config {
    /// The name the inbound listener greets with: the return path's
    /// domain, else the site's host.
    pub fn inbound_hostname(&self) -> String {
        if let Some(rp) = &self.delivery.return_path {
            return rp.domain().to_string();
        }
        url::Url::parse(&self.site.base_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "localhost".to_string())
    }

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
        validate::config(raw, path, &base, env)
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

#[cfg(test)]
mod tests;
