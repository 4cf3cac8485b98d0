use std::process::ExitCode;

use clap::Parser as _;
use confab::cli::{Cli, Command};
use confab::{telemetry, Application};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    raise_open_file_limit();
    let result = match cli.command {
        Some(Command::Migrate(storage)) => {
            match telemetry::init(&storage.log, storage.log_format) {
                Ok(()) => confab::migrate(&storage).await,
                Err(error) => Err(error),
            }
        }
        Some(Command::User(command)) => {
            let storage = command.storage();
            match telemetry::init(&storage.log, storage.log_format) {
                Ok(()) => confab::admin::cli::run(command).await,
                Err(error) => Err(error),
            }
        }
        Some(Command::Serve(config)) => serve(*config).await,
        None => serve(cli.serve).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("confab: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: confab::Config) -> anyhow::Result<()> {
    telemetry::init(&config.storage.log, config.storage.log_format)?;
    Application::build(config).await?.run_until_stopped().await
}

/// Raises the soft limit on open files to the hard limit. Every WebSocket
/// holds one descriptor, and the usual soft limit of 1024 would cap the
/// server at about a thousand clients; only the hard limit, which an
/// administrator sets, should. Failure is not fatal: the server then runs
/// with the limit it was given.
fn raise_open_file_limit() {
    if let Err(error) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("confab: could not raise the open-file limit: {error}");
    }
}
