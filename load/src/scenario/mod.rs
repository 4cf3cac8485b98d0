//! The four scenarios. Each prepares its users and chats through the public
//! API, runs its timed phases and returns what the report needs.

pub mod fanout;
pub mod http;
pub mod login_storm;
pub mod sockets;

use std::net::SocketAddr;

use serde_json::Value;

use crate::api::Api;
use crate::cli::Common;

/// What every scenario gets: the flags, the checked server address and an API client.
pub struct Context {
    pub common: Common,
    pub addr: SocketAddr,
    pub api: Api,
}

/// What a scenario returns for the report.
pub struct Outcome {
    pub parameters: Value,
    pub results: Value,
    /// One line with the headline figures.
    pub summary: String,
}
