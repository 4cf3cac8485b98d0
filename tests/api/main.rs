//! Integration tests: one binary, a module per area.

mod admin;
mod auth;
mod binary;
mod chat;
mod config;
mod helpers;
mod http;
mod observability;
mod proxy;
mod realtime;
mod scaleout;
mod sessions;
mod shutdown;
mod tls;
mod tokens;
mod ws;
