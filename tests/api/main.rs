//! Integration tests: one binary, a module per area.

mod auth;
mod chat;
mod helpers;
