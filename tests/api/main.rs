//! Integration tests: one binary, a module per area.

mod auth;
mod browser;
mod helpers;
mod proxy;
mod realtime;
mod scaleout;
mod ws;
