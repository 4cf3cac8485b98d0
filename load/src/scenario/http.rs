//! `http`: N connections send requests to one endpoint as fast as the server
//! answers, optionally after a baseline endpoint measured the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::json;

use super::{Context, Outcome};
use crate::api::{Account, Api};
use crate::cli::{Endpoint, HttpArgs};
use crate::phase::{run_calls, Call, Window};
use crate::stats::PhaseReport;
use crate::system::CpuMeter;

/// Longest wait for one measured request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Users and chats prepared for authenticated endpoints.
struct Fixture {
    users: Vec<Account>,
    chats: Vec<Arc<ChatCounter>>,
}

/// A chat and the number of messages the server acknowledged in it.
struct ChatCounter {
    id: i64,
    acknowledged: AtomicU64,
}

pub async fn run(context: &Context, args: &HttpArgs) -> anyhow::Result<Outcome> {
    if args.connections == 0 || args.users == 0 || args.chats == 0 {
        bail!("--connections, --users and --chats must be at least 1");
    }
    let endpoints: Vec<Endpoint> = args.baseline.into_iter().chain([args.endpoint]).collect();
    let fixture = prepare(context, args, &endpoints).await?;

    let mut phases = Vec::new();
    for endpoint in &endpoints {
        eprintln!(
            "{endpoint}: {} connections, {} s warm-up, {} s measured",
            args.connections,
            context.common.warmup.as_secs_f64(),
            context.common.duration.as_secs_f64()
        );
        let calls = (0..args.connections)
            .map(|index| HttpCall::new(&context.api, *endpoint, &fixture, index, args))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let cpu = CpuMeter::start(context.common.server_pid);
        let window = Window::start(context.common.warmup, context.common.duration);
        let stats = run_calls(calls, window, None).await;
        let cpu = cpu.stop();
        phases.push((*endpoint, stats.report(window.duration()), cpu));
    }

    let verification = if args.endpoint == Endpoint::Post && !args.no_verify {
        Some(verify_stored(&context.api, &fixture).await?)
    } else {
        None
    };

    let (endpoint, target, _) = phases.last().expect("the target endpoint always runs");
    let mut summary = format!(
        "http {endpoint}: {} connections, {:.0} req/s, {}, {} errors",
        args.connections,
        target.rate_per_s,
        target.latency.short(),
        target.errors_total
    );
    let ratio = baseline_ratio(&phases);
    if let (Some(ratio), Some(baseline)) = (ratio, args.baseline) {
        summary.push_str(&format!(", {:.0}% of {baseline} throughput", ratio * 100.0));
    }
    if let Some(check) = &verification {
        summary.push_str(&format!(
            ", {} of {} acknowledged messages stored",
            check["stored"], check["acknowledged"]
        ));
    }

    let phase_results: Vec<_> = phases
        .iter()
        .map(
            |(endpoint, report, cpu)| json!({ "endpoint": endpoint, "report": report, "cpu": cpu }),
        )
        .collect();
    Ok(Outcome {
        parameters: json!({
            "endpoint": args.endpoint,
            "baseline": args.baseline,
            "connections": args.connections,
            "users": args.users,
            "chats": args.chats,
            "seed_messages": args.seed_messages,
            "body_bytes": args.body_bytes,
        }),
        results: json!({
            "phases": phase_results,
            "ratio_to_baseline": ratio,
            "verification": verification,
        }),
        summary,
    })
}

/// Returns target throughput divided by baseline throughput when both ran.
fn baseline_ratio(phases: &[(Endpoint, PhaseReport, crate::system::CpuUse)]) -> Option<f64> {
    match phases {
        [(_, baseline, _), (_, target, _)] if baseline.rate_per_s > 0.0 => {
            Some(target.rate_per_s / baseline.rate_per_s)
        }
        _ => None,
    }
}

/// Registers users and, for message endpoints, creates the chats and seeds them.
async fn prepare(
    context: &Context,
    args: &HttpArgs,
    endpoints: &[Endpoint],
) -> anyhow::Result<Fixture> {
    if endpoints == [Endpoint::Healthz] {
        return Ok(Fixture {
            users: Vec::new(),
            chats: Vec::new(),
        });
    }
    let api = &context.api;
    let users = api
        .create_users(args.users, context.common.register_concurrency)
        .await?;
    let mut chats = Vec::new();
    if endpoints.iter().any(|endpoint| endpoint.needs_chats()) {
        let others: Vec<i64> = users[1..].iter().map(|user| user.id).collect();
        for index in 0..args.chats {
            let title = format!("load {} {index}", api.run_tag);
            let id = api.create_group(&users[0], &title, &others).await?;
            chats.push(Arc::new(ChatCounter {
                id,
                acknowledged: AtomicU64::new(0),
            }));
        }
    }
    if endpoints.contains(&Endpoint::Page) {
        eprintln!(
            "storing {} messages in each of {} chats",
            args.seed_messages,
            chats.len()
        );
        for chat in &chats {
            for index in 0..args.seed_messages {
                let sender = &users[index % users.len()];
                api.post_message(sender, chat.id, &format!("seed {index}"))
                    .await?;
                chat.acknowledged.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(Fixture { users, chats })
}

/// Pages through every chat and compares the stored count with the number
/// of `201` answers. Fewer stored than acknowledged means a lost message.
async fn verify_stored(api: &Api, fixture: &Fixture) -> anyhow::Result<serde_json::Value> {
    eprintln!("checking that every acknowledged message was stored");
    let mut stored = 0;
    let mut acknowledged = 0;
    for chat in &fixture.chats {
        stored += api.count_messages(&fixture.users[0], chat.id).await?;
        acknowledged += chat.acknowledged.load(Ordering::Relaxed);
    }
    if stored < acknowledged {
        eprintln!("error: {acknowledged} messages were acknowledged but only {stored} are stored");
    }
    Ok(json!({
        "acknowledged": acknowledged,
        "stored": stored,
        "lost": acknowledged.saturating_sub(stored),
    }))
}

/// One connection's requests to one endpoint.
struct HttpCall {
    /// A client of its own keeps exactly one connection per call site.
    client: reqwest::Client,
    endpoint: Endpoint,
    url: String,
    authorization: Option<HeaderValue>,
    chat: Option<Arc<ChatCounter>>,
    /// Prefix of each `client_id`, unique per run and connection.
    client_id_prefix: String,
    body: String,
}

impl HttpCall {
    fn new(
        api: &Api,
        endpoint: Endpoint,
        fixture: &Fixture,
        index: usize,
        args: &HttpArgs,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .build()?;
        let user = (!fixture.users.is_empty()).then(|| &fixture.users[index % fixture.users.len()]);
        let chat =
            (!fixture.chats.is_empty()).then(|| fixture.chats[index % fixture.chats.len()].clone());
        let path = match (endpoint, &chat) {
            (Endpoint::Healthz, _) => "/healthz".to_owned(),
            (Endpoint::Me, _) => "/auth/me".to_owned(),
            (Endpoint::Post, Some(chat)) => format!("/chats/{}/messages", chat.id),
            (Endpoint::Page, Some(chat)) => format!("/chats/{}/messages?limit=50", chat.id),
            (_, None) => bail!("{endpoint} needs a chat, but none was created"),
        };
        let authorization = match (endpoint, user) {
            (Endpoint::Healthz, _) | (_, None) => None,
            (_, Some(user)) => Some(HeaderValue::from_str(&format!("Bearer {}", user.token))?),
        };
        Ok(Self {
            client,
            endpoint,
            url: api.url(&path),
            authorization,
            chat,
            client_id_prefix: format!("{}-{index}", api.run_tag),
            body: "x".repeat(args.body_bytes.max(1)),
        })
    }
}

impl Call for HttpCall {
    async fn call(&mut self, seq: u64) -> Result<(), String> {
        let mut request = match self.endpoint {
            Endpoint::Post => {
                let body = format!(
                    r#"{{"body":"{}","client_id":"{}-{seq}"}}"#,
                    self.body, self.client_id_prefix
                );
                self.client
                    .post(&self.url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body)
            }
            _ => self.client.get(&self.url),
        };
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization.clone());
        }
        let expected = if self.endpoint == Endpoint::Post {
            201
        } else {
            200
        };
        send_expecting(request, expected).await?;
        if let Some(chat) = &self
            .chat
            .as_ref()
            .filter(|_| self.endpoint == Endpoint::Post)
        {
            chat.acknowledged.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Names a transport failure by kind, for counting.
/// Sends a request and reads the whole body, which lets the connection carry
/// the next request. Fails with a short cause unless the status is `expected`.
pub async fn send_expecting(request: reqwest::RequestBuilder, expected: u16) -> Result<(), String> {
    let response = request
        .send()
        .await
        .map_err(|error| transport_cause(&error))?;
    let status = response.status().as_u16();
    response
        .bytes()
        .await
        .map_err(|error| transport_cause(&error))?;
    if status != expected {
        return Err(format!("status {status}"));
    }
    Ok(())
}

pub fn transport_cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".to_owned()
    } else if error.is_connect() {
        "connect".to_owned()
    } else {
        "transport".to_owned()
    }
}
