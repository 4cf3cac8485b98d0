//! Integration tests: one binary, a module per area.

mod admin;
mod auth;
mod binary;
mod browser;
mod chat;
mod config;
mod helpers;
mod http;
mod live;
mod observability;
mod openapi;
mod proxy;
mod realtime;
mod refresh_cookie;
mod scaleout;
mod sessions;
mod shutdown;
mod storage;
mod throttle;
mod tls;
mod tokens;
mod ws;
