//! The `confab` command line.

use clap::{Parser, Subcommand};

pub use crate::admin::cli::UserCommand;
use crate::config::{Config, StorageConfig};

/// Confab, a self-hosted chat server.
#[derive(Debug, Parser)]
#[command(
    name = "confab",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Settings for `serve`, which runs when no subcommand is given.
    #[command(flatten)]
    pub serve: Config,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(Box<Config>),
    /// Apply database migrations and exit.
    Migrate(StorageConfig),
    /// Manage accounts directly in the database, with the server running or stopped.
    #[command(subcommand)]
    User(UserCommand),
}
