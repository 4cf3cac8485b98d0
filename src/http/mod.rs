//! HTTP plumbing shared by every module: errors, extractors, middleware and
//! the OpenAPI document.

pub mod client_address;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod openapi;
pub mod tls;
