//! Integration tests: one binary, a module per area.

mod auth;
mod helpers;
mod observability;
mod proxy;
mod realtime;
mod scaleout;
mod ws;
