//! Integration tests: one binary, real servers on loopback, real databases.

mod support;

mod briefing;
mod browser;
mod cli;
mod collector;
mod curation;
mod daemon;
mod delivery;
mod doctor;
mod inbound;
mod pipeline;
mod security;
mod store;
mod web;
