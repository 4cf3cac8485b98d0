//! Integration tests: one binary, a module per area.

mod auth;
mod helpers;
