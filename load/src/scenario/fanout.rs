//! `fanout`: G groups of M members, every member connected by WebSocket,
//! and messages posted at a fixed total rate. Each message body carries its
//! send time, so every delivery yields one send-to-receive latency.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::{stream, StreamExt as _};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{watch, Semaphore};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::{Context, Outcome};
use crate::api::{Account, Api};
use crate::cli::{FanoutArgs, SocketAuth};
use crate::stats::{Latencies, PhaseStats};
use crate::system::{raise_open_file_limit, CpuMeter};
use crate::ws::{self, Socket};

/// The server's limit on group size, the owner included.
const MAX_GROUP_MEMBERS: usize = 1000;

/// Open files kept free for HTTP clients and the runtime.
const SPARE_FILES: u64 = 1024;

/// Common time base of senders and receivers in this process.
static ORIGIN: OnceLock<std::time::Instant> = OnceLock::new();

fn micros_now() -> u64 {
    ORIGIN
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_micros() as u64
}

/// Send times, in microseconds since `ORIGIN`, of messages that are measured.
#[derive(Clone, Copy)]
struct MeasuredSpan {
    from: u64,
    until: u64,
}

impl MeasuredSpan {
    fn contains(&self, micros: u64) -> bool {
        (self.from..self.until).contains(&micros)
    }
}

/// What one member's socket received.
#[derive(Default)]
struct Receipts {
    group: usize,
    latencies: Latencies,
    /// Measured messages received; should equal the group's measured posts.
    measured: u64,
    /// The server closed the socket before the run ended.
    closed_early: bool,
}

pub async fn run(context: &Context, args: &FanoutArgs) -> anyhow::Result<Outcome> {
    if args.groups == 0 || args.members < 2 || args.rate <= 0.0 {
        bail!("--groups must be at least 1, --members at least 2 and --rate above 0");
    }
    if args.members > MAX_GROUP_MEMBERS {
        bail!(
            "--members is {}; the server accepts at most {MAX_GROUP_MEMBERS} per group",
            args.members
        );
    }
    micros_now();
    let sockets = args.groups * args.members;
    raise_open_file_limit(sockets as u64 + SPARE_FILES)?;
    let api = &context.api;
    let users = api
        .create_users(sockets, context.common.register_concurrency)
        .await?;
    let groups = create_groups(api, &users, args).await?;

    let span: Arc<OnceLock<MeasuredSpan>> = Arc::new(OnceLock::new());
    let (stop, stopped) = watch::channel(false);
    eprintln!("connecting {sockets} members");
    let receivers = connect_members(context, &users, args, span.clone(), stopped).await?;

    let cpu = CpuMeter::start(context.common.server_pid);
    let measure_from = micros_now() + context.common.warmup.as_micros() as u64;
    let measured = MeasuredSpan {
        from: measure_from,
        until: measure_from + context.common.duration.as_micros() as u64,
    };
    let _ = span.set(measured);
    eprintln!(
        "posting {} messages/s for {} s ({} s warm-up)",
        args.rate,
        context.common.duration.as_secs_f64(),
        context.common.warmup.as_secs_f64()
    );
    let sent = send_messages(api, &users, &groups, args, context, measured).await;
    tokio::time::sleep(args.drain).await;
    let cpu = cpu.stop();
    let _ = stop.send(true);

    let mut latencies = Latencies::default();
    let mut received = 0;
    let mut incomplete_members = 0;
    let mut closed_early = 0;
    for receiver in receivers {
        let receipts = receiver.await.context("a receiving task failed")?;
        latencies.merge(&receipts.latencies);
        received += receipts.measured;
        let posted = sent.posted_per_group[receipts.group].load(Ordering::Relaxed);
        incomplete_members += u64::from(receipts.measured < posted);
        closed_early += u64::from(receipts.closed_early);
    }
    let posted: u64 = sent
        .posted_per_group
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .sum();
    let expected = posted * args.members as u64;
    let seconds = context.common.duration.as_secs_f64();
    let delivery = latencies.summary();
    let posts = sent.posts.report(context.common.duration);
    let summary = format!(
        "fanout: {} groups x {} members, {:.1} messages/s posted, {:.0} events/s delivered, \
         {received} of {expected} deliveries, send-to-receive {}, {} post errors, {} skipped",
        args.groups,
        args.members,
        posted as f64 / seconds,
        received as f64 / seconds,
        delivery.short(),
        posts.errors_total,
        sent.skipped
    );
    Ok(Outcome {
        parameters: json!({
            "groups": args.groups,
            "members": args.members,
            "rate": args.rate,
            "drain_s": args.drain.as_secs_f64(),
        }),
        results: json!({
            "messages_posted": posted,
            "messages_per_s": posted as f64 / seconds,
            "deliveries_expected": expected,
            "deliveries_received": received,
            "delivered_per_s": received as f64 / seconds,
            "members_missing_messages": incomplete_members,
            "sockets_closed_by_server": closed_early,
            "delivery_latency": delivery,
            "post": posts,
            "posts_skipped": sent.skipped,
            "cpu": cpu,
        }),
        summary,
    })
}

/// Creates one group per `args.members` consecutive users; the first is the owner.
async fn create_groups(
    api: &Api,
    users: &[Account],
    args: &FanoutArgs,
) -> anyhow::Result<Vec<i64>> {
    let mut groups = Vec::with_capacity(args.groups);
    for (index, members) in users.chunks(args.members).enumerate() {
        let others: Vec<i64> = members[1..].iter().map(|user| user.id).collect();
        let title = format!("fanout {} {index}", api.run_tag);
        groups.push(api.create_group(&members[0], &title, &others).await?);
    }
    Ok(groups)
}

/// Connects every member and starts a task that records what it receives.
async fn connect_members(
    context: &Context,
    users: &[Account],
    args: &FanoutArgs,
    span: Arc<OnceLock<MeasuredSpan>>,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Receipts>>> {
    let server = context.addr;
    let tag: Arc<str> = Arc::from(format!("fanout {} ", context.api.run_tag));
    let mut attempts = stream::iter(users.iter().enumerate())
        .map(|(index, user)| {
            let source = ws::source_address(server, index);
            async move {
                let socket = ws::connect(server, source, &user.token, SocketAuth::Header).await;
                (index, socket)
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1));
    let mut receivers = Vec::with_capacity(users.len());
    while let Some((index, socket)) = attempts.next().await {
        let socket = socket.with_context(|| format!("member {index} could not connect"))?;
        let group = index / args.members;
        receivers.push(tokio::spawn(receive(
            socket,
            group,
            tag.clone(),
            span.clone(),
            stopped.clone(),
        )));
    }
    Ok(receivers)
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    message: Option<EventMessage<'a>>,
}

#[derive(Deserialize)]
struct EventMessage<'a> {
    #[serde(borrow)]
    body: Cow<'a, str>,
}

/// Reads events until stopped and records the latency of each message
/// this run sent, from the send time in its body to now.
async fn receive(
    mut socket: Socket,
    group: usize,
    tag: Arc<str>,
    span: Arc<OnceLock<MeasuredSpan>>,
    mut stop: watch::Receiver<bool>,
) -> Receipts {
    let mut receipts = Receipts {
        group,
        ..Receipts::default()
    };
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return receipts,
            message = socket.next() => message,
        };
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_)) | Err(_)) | None => {
                receipts.closed_early = true;
                return receipts;
            }
            Some(Ok(_)) => continue,
        };
        let received_at = micros_now();
        let Some(sent_at) = send_time(&text, &tag) else {
            continue;
        };
        if span.get().is_some_and(|span| span.contains(sent_at)) {
            receipts.measured += 1;
            receipts
                .latencies
                .record_micros(received_at.saturating_sub(sent_at));
        }
    }
}

/// Returns the send time from a `message.created` event of this run.
fn send_time(text: &str, tag: &str) -> Option<u64> {
    let event: Event = serde_json::from_str(text).ok()?;
    if event.kind != "message.created" {
        return None;
    }
    event.message?.body.strip_prefix(tag)?.parse().ok()
}

/// Outcome of the sending side.
struct Sent {
    /// Successful posts per group whose send time is in the measured span.
    posted_per_group: Arc<Vec<AtomicU64>>,
    posts: PhaseStats,
    skipped: u64,
}

/// Posts messages at `args.rate` per second until the warm-up and the
/// measured phase are over, rotating over groups and then over each group's
/// members as senders, and waits for every post to finish.
async fn send_messages(
    api: &Api,
    users: &[Account],
    groups: &[i64],
    args: &FanoutArgs,
    context: &Context,
    measured: MeasuredSpan,
) -> Sent {
    let end = Instant::now() + context.common.warmup + context.common.duration;
    let posted_per_group: Arc<Vec<AtomicU64>> =
        Arc::new(groups.iter().map(|_| AtomicU64::new(0)).collect());
    let permits = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut skipped = 0;
    for index in 0.. {
        if ticker.tick().await >= end {
            break;
        }
        let group = index % groups.len();
        let sender = users[group * args.members + (index / groups.len()) % args.members].clone();
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let (api, chat_id, counts) = (api.clone(), groups[group], posted_per_group.clone());
        tasks.push(tokio::spawn(async move {
            let sent_at = micros_now();
            let body = format!("fanout {} {sent_at}", api.run_tag);
            let started = Instant::now();
            let outcome = api.post_message(&sender, chat_id, &body).await;
            drop(permit);
            let in_span = measured.contains(sent_at);
            if outcome.is_ok() && in_span {
                counts[group].fetch_add(1, Ordering::Relaxed);
            }
            (in_span, outcome.map(|_| started.elapsed()))
        }));
    }

    let mut posts = PhaseStats::default();
    for task in tasks {
        match task.await {
            Ok((true, Ok(latency))) => posts.latencies.record(latency),
            Ok((true, Err(error))) => {
                if posts.errors.total() == 0 {
                    eprintln!("post failed: {error:#}");
                }
                posts.errors.add(short_cause(&error));
            }
            Ok((false, _)) => {}
            Err(error) => posts.errors.add(format!("task failed: {error}")),
        }
    }
    Sent {
        posted_per_group,
        posts,
        skipped,
    }
}

/// Keeps the part of an error before the server's detail, for counting.
fn short_cause(error: &anyhow::Error) -> String {
    let text = error.to_string();
    text.split(':').take(3).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_time_read_from_message_event() {
        let text = r#"{"seq":4,"type":"message.created","chat_id":1,"message":{"id":9,"body":"fanout ab 1234","sender_id":2}}"#;
        assert_eq!(send_time(text, "fanout ab "), Some(1234));
    }

    #[test]
    fn other_events_and_runs_ignored() {
        let other_run = r#"{"type":"message.created","message":{"body":"fanout zz 1234"}}"#;
        assert_eq!(send_time(other_run, "fanout ab "), None);
        let ready = r#"{"seq":1,"type":"ready","user_id":3}"#;
        assert_eq!(send_time(ready, "fanout ab "), None);
    }
}
