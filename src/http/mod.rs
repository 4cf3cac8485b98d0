//! HTTP plumbing shared by every module: errors, extractors and middleware.

pub mod client_address;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod tls;
