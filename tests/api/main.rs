//! Integration tests: one binary, a module per area.

mod admin;
mod auth;
mod binary;
mod chat;
mod config;
mod helpers;
mod http;
mod live;
mod observability;
mod openapi;
mod proxy;
mod realtime;
mod scaleout;
mod sessions;
mod storage;
mod throttle;
mod tokens;
mod ws;
