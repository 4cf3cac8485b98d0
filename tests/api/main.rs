//! Integration tests: one binary, a module per area.

mod auth;
mod helpers;
mod realtime;
mod ws;
