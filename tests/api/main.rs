//! Integration tests: one binary, a module per area.

mod admin;
mod auth;
mod helpers;
mod observability;
mod proxy;
mod realtime;
mod scaleout;
mod sessions;
mod ws;
