//! InboxGrove: a self-hosted cold-email appliance in one process. See `DESIGN.md`-style overview
//! in the README; each module's own doc says what it is for.

pub mod aliases;
pub mod app;
pub mod audit;
pub mod auth;
pub mod campaign;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dns;
pub mod domains;
pub mod error;
pub mod events;
pub mod health;
pub mod imap;
pub mod listener;
pub mod mailbox;
pub mod mailstore;
pub mod mta;
pub mod serve;
pub mod settings;
pub mod smtp;
pub mod store;
pub mod suppression;
pub mod tls;
pub mod tracking;
pub mod warmup;
pub mod web;
pub mod workspaces;
