//! The library's error type: one enum whose variants say which stage failed,
//! so the binary can map them to exit codes in one place.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration (file or environment) is invalid: exit code 2.
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),

    /// The command was given an argument it cannot use (unknown edition, …): exit code 2.
    #[error("{0}")]
    Usage(String),

    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),

    #[error("template: {0}")]
    Render(#[from] crate::render::RenderError),

    #[error("delivery: {0}")]
    Deliver(#[from] crate::deliver::DeliverError),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Whether the error is the operator's input (config, arguments) rather
    /// than something that went wrong while running.
    pub fn is_usage(&self) -> bool {
        matches!(self, Error::Config(_) | Error::Usage(_))
    }
}
