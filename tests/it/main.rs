//! Integration tests: one binary, real servers on loopback, real databases.

mod support;

mod cli;
mod pipeline;
mod store;
