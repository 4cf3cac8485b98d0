//! Command-line interface: one subcommand per scenario and the flags they share.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Longest measured phase or warm-up accepted, so a typo cannot start an
/// hour-long run.
pub const MAX_PHASE: Duration = Duration::from_secs(600);

#[derive(Parser, Debug)]
#[command(
    name = "confab-load",
    version,
    about = "Load generator for a Confab server running on this machine"
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,

    #[command(subcommand)]
    pub scenario: Scenario,
}

/// Flags every scenario accepts.
#[derive(Args, Debug, Clone)]
pub struct Common {
    /// Server address as host:port; must be a loopback address unless
    /// --allow-non-loopback is given.
    #[arg(long, global = true, default_value = "127.0.0.1:8000")]
    pub addr: String,

    /// Length of the measured phase, for example `10s` (at most 10 minutes).
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,

    /// Load applied before measuring starts, for example `3s`; not recorded.
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// Write the full results as JSON to this file.
    #[arg(long, global = true, value_name = "PATH")]
    pub json: Option<PathBuf>,

    /// Accept a server address outside 127.0.0.0/8 and ::1.
    #[arg(long, global = true)]
    pub allow_non_loopback: bool,

    /// PID of the server process, to report its CPU use and resident memory
    /// (read from /proc/PID/stat and /proc/PID/status).
    #[arg(long, global = true, value_name = "PID")]
    pub server_pid: Option<u32>,

    /// Registrations sent at once while creating the user pool; the server
    /// hashes each password with Argon2, so more than its core count only queues.
    #[arg(long, global = true, default_value_t = 4)]
    pub register_concurrency: usize,
}

#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// N connections send requests to one endpoint as fast as the server answers.
    Http(HttpArgs),
    /// Logins at a fixed rate while other connections call /auth/me at a fixed rate.
    LoginStorm(LoginStormArgs),
    /// Opens N authenticated WebSockets, holds them idle and reports server memory per socket.
    Sockets(SocketsArgs),
    /// Groups of connected members receive messages posted at a fixed rate.
    Fanout(FanoutArgs),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Http(_) => "http",
            Self::LoginStorm(_) => "login-storm",
            Self::Sockets(_) => "sockets",
            Self::Fanout(_) => "fanout",
        }
    }
}

/// Endpoints the `http` scenario can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Endpoint {
    /// `GET /healthz`, no authentication and no database.
    Healthz,
    /// `GET /auth/me`, token check and one user lookup.
    Me,
    /// `POST /chats/{id}/messages`, one committed insert per request.
    Post,
    /// `GET /chats/{id}/messages?limit=50`, one page of stored messages.
    Page,
}

impl std::fmt::Display for Endpoint {
    /// Writes the name used on the command line, such as `healthz`.
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = self
            .to_possible_value()
            .expect("every endpoint has a command-line name");
        formatter.write_str(value.get_name())
    }
}

impl Endpoint {
    /// Reports whether the endpoint needs users and chats prepared first.
    pub fn needs_chats(self) -> bool {
        matches!(self, Self::Post | Self::Page)
    }
}

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// Endpoint to load.
    #[arg(long, value_enum, default_value_t = Endpoint::Healthz)]
    pub endpoint: Endpoint,

    /// Endpoint measured first with the same connections and duration, so
    /// the result can be read as a ratio taken under the same machine noise.
    #[arg(long, value_enum)]
    pub baseline: Option<Endpoint>,

    /// Concurrent HTTP/1.1 connections, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,

    /// Users registered for authenticated endpoints; connections share them round-robin.
    #[arg(long, default_value_t = 16)]
    pub users: usize,

    /// Group chats that the connections post to or page through, round-robin.
    #[arg(long, default_value_t = 16)]
    pub chats: usize,

    /// Messages stored in each chat before the `page` endpoint is measured.
    #[arg(long, default_value_t = 100)]
    pub seed_messages: usize,

    /// Length of each posted message body in bytes.
    #[arg(long, default_value_t = 64)]
    pub body_bytes: usize,

    /// After a `post` run, skip paging through every chat to check that
    /// each acknowledged message was stored.
    #[arg(long)]
    pub no_verify: bool,
}

#[derive(Args, Debug)]
pub struct LoginStormArgs {
    /// Logins per second, started on schedule whether or not earlier ones finished.
    #[arg(long, default_value_t = 80.0)]
    pub rate: f64,

    /// Connections calling /auth/me during both phases.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,

    /// Total /auth/me requests per second, spread evenly over the connections.
    #[arg(long, default_value_t = 1000.0)]
    pub me_rate: f64,

    /// Users registered and then logged in, round-robin.
    #[arg(long, default_value_t = 16)]
    pub users: usize,

    /// Maximum logins in flight; a login that would exceed it is counted as skipped.
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,
}

#[derive(Args, Debug)]
pub struct SocketsArgs {
    /// WebSockets to open and hold.
    #[arg(long, default_value_t = 1000)]
    pub count: usize,

    /// Users registered; the sockets share their tokens round-robin.
    #[arg(long, default_value_t = 20)]
    pub users: usize,

    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,

    /// How each socket authenticates.
    #[arg(long, value_enum, default_value_t = SocketAuth::Header)]
    pub auth: SocketAuth,
}

/// Ways a WebSocket can present its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SocketAuth {
    /// `Authorization: Bearer` header on the upgrade request.
    Header,
    /// First frame `{"type":"auth","token":"..."}` after the upgrade.
    Frame,
}

#[derive(Args, Debug)]
pub struct FanoutArgs {
    /// Group chats, each with its own members.
    #[arg(long, default_value_t = 1)]
    pub groups: usize,

    /// Members per group, the owner included (the server accepts at most 1000).
    #[arg(long, default_value_t = 1000)]
    pub members: usize,

    /// Messages posted per second, over all groups together.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,

    /// Time to wait after the last post for deliveries still in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,

    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 128)]
    pub connect_concurrency: usize,

    /// Maximum posts in flight; a post that would exceed it is counted as skipped.
    #[arg(long, default_value_t = 512)]
    pub max_in_flight: usize,
}

fn parse_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value.trim())
        .map_err(|error| format!("invalid duration {value:?} ({error}); write it like `10s`"))?;
    if duration > MAX_PHASE {
        return Err(format!(
            "{value} is longer than the maximum of {}",
            humantime::format_duration(MAX_PHASE)
        ));
    }
    Ok(duration)
}
