//! `login-storm`: /auth/me at a fixed rate, first alone (the baseline) and
//! then while logins arrive at a fixed rate, each login hashing a password.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::time::{Instant, MissedTickBehavior};

use super::http::send_expecting;
use super::{Context, Outcome};
use crate::api::Account;
use crate::cli::LoginStormArgs;
use crate::phase::{run_calls, Call, Window};
use crate::stats::PhaseStats;
use crate::system::CpuMeter;

/// Longest wait for one request; a login waits in the server's hashing queue.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(context: &Context, args: &LoginStormArgs) -> anyhow::Result<Outcome> {
    if args.connections == 0 || args.users == 0 || args.rate <= 0.0 || args.me_rate <= 0.0 {
        bail!("--connections and --users must be at least 1, and both rates above 0");
    }
    let users = context
        .api
        .create_users(args.users, context.common.register_concurrency)
        .await?;
    let (warmup, duration) = (context.common.warmup, context.common.duration);

    eprintln!(
        "baseline: /auth/me at {} req/s without logins",
        args.me_rate
    );
    let cpu = CpuMeter::start(context.common.server_pid);
    let window = Window::start(warmup, duration);
    let baseline = run_calls(me_calls(context, &users, args)?, window, Some(args.me_rate)).await;
    let baseline_cpu = cpu.stop();

    eprintln!(
        "storm: /auth/me at {} req/s and {} logins/s",
        args.me_rate, args.rate
    );
    let cpu = CpuMeter::start(context.common.server_pid);
    let window = Window::start(warmup, duration);
    let logins = tokio::spawn(run_logins(
        context.api.base.clone(),
        users.clone(),
        window,
        args.rate,
        args.max_in_flight,
    ));
    let during = run_calls(me_calls(context, &users, args)?, window, Some(args.me_rate)).await;
    let (logins, skipped) = logins.await?;
    let storm_cpu = cpu.stop();

    let seconds = window.duration();
    let (baseline, during, logins) = (
        baseline.report(seconds),
        during.report(seconds),
        logins.report(seconds),
    );
    let summary = format!(
        "login-storm: {:.1} logins/s ({}, {} errors, {skipped} skipped); /auth/me at {:.0} req/s: {} during, {} before",
        logins.rate_per_s,
        logins.latency.short(),
        logins.errors_total,
        during.rate_per_s,
        during.latency.short(),
        baseline.latency.short()
    );
    Ok(Outcome {
        parameters: json!({
            "login_rate": args.rate,
            "me_rate": args.me_rate,
            "connections": args.connections,
            "users": args.users,
        }),
        results: json!({
            "me_baseline": baseline,
            "me_during_storm": during,
            "logins": logins,
            "logins_skipped": skipped,
            "cpu_baseline": baseline_cpu,
            "cpu_storm": storm_cpu,
        }),
        summary,
    })
}

fn me_calls(
    context: &Context,
    users: &[Account],
    args: &LoginStormArgs,
) -> anyhow::Result<Vec<MeCall>> {
    (0..args.connections)
        .map(|index| {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(REQUEST_TIMEOUT)
                .build()?;
            Ok(MeCall {
                client,
                url: context.api.url("/auth/me"),
                token: users[index % users.len()].token.clone(),
            })
        })
        .collect()
}

struct MeCall {
    client: reqwest::Client,
    url: String,
    token: String,
}

impl Call for MeCall {
    async fn call(&mut self, _seq: u64) -> Result<(), String> {
        send_expecting(self.client.get(&self.url).bearer_auth(&self.token), 200).await
    }
}

/// Starts logins on a fixed schedule until the window ends, each on its own
/// task, and returns their statistics and the number skipped because
/// `max_in_flight` logins were already waiting.
async fn run_logins(
    base: String,
    users: Vec<Account>,
    window: Window,
    rate: f64,
    max_in_flight: usize,
) -> (PhaseStats, u64) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            let mut stats = PhaseStats::default();
            stats.errors.add(format!("client: {error}"));
            return (stats, 0);
        }
    };
    let url: Arc<str> = Arc::from(format!("{base}/auth/login"));
    let permits = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut skipped = 0;
    for index in 0.. {
        let scheduled = ticker.tick().await;
        if scheduled >= window.end {
            break;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            skipped += u64::from(window.is_measured(scheduled));
            continue;
        };
        let user = &users[index % users.len()];
        let body = json!({ "email": user.email, "password": &*user.password });
        let request = client.post(&*url).json(&body);
        tasks.push(tokio::spawn(async move {
            let outcome = send_expecting(request, 200).await;
            drop(permit);
            (scheduled, outcome, Instant::now())
        }));
    }

    let mut stats = PhaseStats::default();
    for task in tasks {
        let Ok((scheduled, outcome, finished)) = task.await else {
            stats.errors.add("task failed");
            continue;
        };
        if !window.is_measured(scheduled) {
            continue;
        }
        match outcome {
            Ok(()) => stats.latencies.record(finished - scheduled),
            Err(cause) => stats.errors.add(cause),
        }
    }
    (stats, skipped)
}
