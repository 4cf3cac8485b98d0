//! Integration tests: one binary, a module per area.

mod admin;
mod auth;
mod helpers;
mod sessions;
