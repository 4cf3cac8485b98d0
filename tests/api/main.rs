//! Integration tests: one binary, a module per area.

mod auth;
mod binary;
mod config;
mod helpers;
mod http;
mod tokens;
