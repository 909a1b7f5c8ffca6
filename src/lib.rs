//! tidings: collect stories from feeds, rank them per audience, render each
//! edition through templates and deliver it to subscribers exactly once.
//!
//! The data flows one way: [`collect`] → [`store`] → [`rank`] → [`brief`]
//! → [`issue`] → [`render`] → [`deliver`]. [`config`], [`schedule`], [`daemon`], [`web`]
//! and [`app`] (what the commands call) sit at the edges. Only [`clock`]
//! reads the wall clock and only `config` the environment: `now` (or the
//! app's clock) and settings are passed in, so tests control both.

pub mod app;
pub mod brief;
pub mod clock;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod deliver;
pub mod doctor;
pub mod domain;
pub mod inbound;
pub mod issue;
pub mod preflight;
pub mod rank;
pub mod render;
pub mod schedule;
pub mod store;
pub mod text;
pub mod token;
pub mod web;

mod error;

pub use error::{Error, Result};

/// rustls needs one process-wide crypto provider; tidings uses ring. Safe to
/// call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
