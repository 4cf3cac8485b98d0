//! `confab-load`: reproduces Confab's performance figures against a server
//! on this machine. See the "Load tool" section of docs/BENCHMARKS.md.

mod api;
mod cli;
mod phase;
mod report;
mod scenario;
mod stats;
mod system;
mod target;
mod ws;

use std::process::ExitCode;

use clap::Parser as _;

use cli::{Cli, Scenario};
use report::Report;
use scenario::{Context, Outcome};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("confab-load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let addr = target::resolve(&cli.common.addr, cli.common.allow_non_loopback)?;
    // Every client socket holds a file; scenarios that need more raise it further.
    system::raise_open_file_limit(1024)?;
    let api = api::Api::new(addr)?;
    api.check_health().await?;
    let context = Context {
        common: cli.common.clone(),
        addr,
        api,
    };

    let started_at_unix = report::unix_now();
    let outcome: Outcome = match &cli.scenario {
        Scenario::Http(args) => scenario::http::run(&context, args).await?,
        Scenario::LoginStorm(args) => scenario::login_storm::run(&context, args).await?,
        Scenario::Sockets(args) => scenario::sockets::run(&context, args).await?,
        Scenario::Fanout(args) => scenario::fanout::run(&context, args).await?,
    };
    let report = Report {
        scenario: cli.scenario.name(),
        tool_version: env!("CARGO_PKG_VERSION"),
        started_at_unix,
        addr: addr.to_string(),
        warmup_s: cli.common.warmup.as_secs_f64(),
        duration_s: cli.common.duration.as_secs_f64(),
        parameters: outcome.parameters,
        results: outcome.results,
        summary: outcome.summary,
    };
    report.publish(cli.common.json.as_deref())
}
