//! `sockets`: opens N authenticated WebSockets, holds them idle and reports
//! the server's resident memory per socket.

use anyhow::bail;
use futures_util::{stream, StreamExt as _};
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::{Context, Outcome};
use crate::cli::SocketsArgs;
use crate::stats::{Errors, Latencies};
use crate::system::{kernel_tcp_bytes, raise_open_file_limit, resident_bytes, CpuMeter};
use crate::ws::{self, Socket};

/// Open files kept free for HTTP clients, logs and the runtime.
const SPARE_FILES: u64 = 256;

/// How a held socket ended.
enum HoldEnd {
    /// Still open when the hold ended.
    Held,
    /// The server closed it.
    Closed,
}

pub async fn run(context: &Context, args: &SocketsArgs) -> anyhow::Result<Outcome> {
    if args.count == 0 || args.users == 0 {
        bail!("--count and --users must be at least 1");
    }
    let files = raise_open_file_limit(args.count as u64 + SPARE_FILES)?;
    eprintln!("open-file limit: {files}");
    let pid = context.common.server_pid;
    if pid.is_none() {
        eprintln!("warning: without --server-pid, server memory is not measured");
    }
    let users = context
        .api
        .create_users(args.users, context.common.register_concurrency)
        .await?;

    let rss_before = pid.map(resident_bytes).transpose()?;
    let kernel_before = kernel_tcp_bytes();
    let cpu = CpuMeter::start(pid);
    let (stop, stopped) = watch::channel(false);
    let started = Instant::now();
    eprintln!(
        "opening {} sockets, {} handshakes at a time",
        args.count, args.connect_concurrency
    );
    let server = context.addr;
    let mut handshakes = Latencies::default();
    let mut errors = Errors::default();
    let mut holders = Vec::with_capacity(args.count);
    let mut attempts = stream::iter(0..args.count)
        .map(|index| {
            let token = users[index % users.len()].token.clone();
            let source = ws::source_address(server, index);
            async move {
                let begun = Instant::now();
                let result = ws::connect(server, source, &token, args.auth).await;
                (result, begun.elapsed())
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1));
    while let Some((result, elapsed)) = attempts.next().await {
        match result {
            Ok(socket) => {
                handshakes.record(elapsed);
                holders.push(tokio::spawn(hold(socket, stopped.clone())));
                if holders.len() % 10_000 == 0 {
                    eprintln!("{} sockets open", holders.len());
                }
            }
            Err(error) => {
                if errors.total() < 3 {
                    eprintln!("socket failed: {error:#}");
                }
                errors.add(format!("{error}"));
            }
        }
    }
    let connect_time = started.elapsed();
    let open = holders.len();
    eprintln!(
        "{open} sockets open after {:.1} s; settling for {} s",
        connect_time.as_secs_f64(),
        context.common.warmup.as_secs_f64()
    );

    tokio::time::sleep(context.common.warmup).await;
    let rss_open = pid.map(resident_bytes).transpose()?;
    let kernel_open = kernel_tcp_bytes();
    tokio::time::sleep(context.common.duration).await;
    let rss_end = pid.map(resident_bytes).transpose()?;
    let cpu = cpu.stop();

    let _ = stop.send(true);
    let mut held = 0;
    for holder in holders {
        if matches!(holder.await, Ok(HoldEnd::Held)) {
            held += 1;
        }
    }

    let per_socket = |after: Option<u64>| match (rss_before, after) {
        (Some(before), Some(after)) if open > 0 => {
            Some(after.saturating_sub(before) as f64 / open as f64)
        }
        _ => None,
    };
    let per_socket_open = per_socket(rss_open);
    let per_socket_end = per_socket(rss_end);
    let kernel_per_socket = match (kernel_before, kernel_open) {
        (Some(before), Some(after)) if open > 0 => {
            Some(after.saturating_sub(before) as f64 / open as f64)
        }
        _ => None,
    };
    let memory = match per_socket_end {
        Some(bytes) => format!("{:.1} KiB server memory per socket", bytes / 1024.0),
        None => "server memory not measured".to_owned(),
    };
    let handshake = handshakes.summary();
    let summary = format!(
        "sockets: {open} of {} open ({held} still open after the hold, {} failed), {memory}, handshake {}",
        args.count,
        errors.total(),
        handshake.short()
    );
    Ok(Outcome {
        parameters: json!({
            "count": args.count,
            "users": args.users,
            "connect_concurrency": args.connect_concurrency,
            "auth": args.auth,
        }),
        results: json!({
            "opened": open,
            "held_to_end": held,
            "failed": errors.total(),
            "errors": errors,
            "connect_seconds": connect_time.as_secs_f64(),
            "connect_rate_per_s": open as f64 / connect_time.as_secs_f64(),
            "handshake_latency": handshake,
            "server_rss_before_bytes": rss_before,
            "server_rss_open_bytes": rss_open,
            "server_rss_end_bytes": rss_end,
            "server_bytes_per_socket": per_socket_open,
            "server_bytes_per_socket_at_end": per_socket_end,
            "kernel_tcp_bytes_per_socket_both_ends": kernel_per_socket,
            "cpu": cpu,
        }),
        summary,
    })
}

/// Keeps a socket open and answers the server's pings (tungstenite queues
/// the pong while reading) until `stop` changes or the server closes it.
async fn hold(mut socket: Socket, mut stop: watch::Receiver<bool>) -> HoldEnd {
    loop {
        tokio::select! {
            _ = stop.changed() => return HoldEnd::Held,
            message = socket.next() => match message {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return HoldEnd::Closed,
                Some(Ok(_)) => {}
            },
        }
    }
}
