use std::process::ExitCode;

use clap::Parser as _;
use confab::cli::{Cli, Command};
use confab::{telemetry, Application};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
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
