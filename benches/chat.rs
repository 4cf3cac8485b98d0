//! Benchmarks of the chat message JSON: the send request the server parses,
//! the message it returns, the event it serialises once per fan-out, and the
//! fan-out of one serialised event to 1,000 sockets.
//!
//! Run with `cargo bench --bench chat`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use confab::chat::events::Event;
use confab::chat::messages::SendRequest;
use confab::realtime::hub::{SocketIdentity, Subscription};
use confab::realtime::Hub;
use confab::store::messages::Message;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Members of the largest group the server accepts.
const GROUP_MEMBERS: i64 = 1000;

/// A message as the load tool posts it: a 64-byte body and a client id.
fn sample_message() -> Message {
    Message {
        id: 123_456,
        chat_id: 42,
        sender_id: 7,
        body: Some("x".repeat(64)),
        client_id: Some("0f7c2a9e-5b1d-4c3e-9a8f-1e2d3c4b5a69".to_owned()),
        created_at: "2026-12-04T21:00:00.123Z".to_owned(),
        edited_at: None,
        deleted_at: None,
    }
}

fn serde_benches(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("message");
    let request = serde_json::json!({
        "body": "x".repeat(64),
        "client_id": "0f7c2a9e-5b1d-4c3e-9a8f-1e2d3c4b5a69",
    })
    .to_string();
    group.bench_function("parse_send_request", |bench| {
        bench.iter(|| serde_json::from_str::<SendRequest>(black_box(&request)).unwrap())
    });

    let message = sample_message();
    group.bench_function("serialise_message", |bench| {
        bench.iter(|| serde_json::to_vec(black_box(&message)).unwrap())
    });

    let event = Event::MessageCreated {
        chat_id: message.chat_id,
        message: message.clone(),
    };
    group.bench_function("serialise_created_event", |bench| {
        bench.iter(|| serde_json::to_string(black_box(&event)).unwrap())
    });

    // What a client does with each frame it receives.
    let frame = serde_json::to_string(&event).unwrap();
    group.bench_function("parse_created_event", |bench| {
        bench.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&frame)).unwrap())
    });
    group.finish();
}

/// Registers one socket for each member of a full group.
fn subscribe_group(hub: &Hub) -> Vec<Subscription> {
    (1..=GROUP_MEMBERS)
        .map(|user_id| {
            hub.subscribe(SocketIdentity {
                user_id,
                token_id: user_id as u128,
                session_id: None,
                issued_at: 0,
            })
            .expect("one socket per user is under the limit")
        })
        .collect()
}

fn fanout_benches(criterion: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Subscribing creates Tokio channels, which need a runtime context.
    let _context = runtime.enter();
    let hub = Hub::new(64, 1);
    let mut sockets = subscribe_group(&hub);
    let recipients: Vec<i64> = (1..=GROUP_MEMBERS).collect();
    let event = Event::MessageCreated {
        chat_id: 42,
        message: sample_message(),
    };

    let mut group = criterion.benchmark_group("fanout");
    group.throughput(Throughput::Elements(GROUP_MEMBERS as u64));
    group.bench_function("publish_to_1000_members", |bench| {
        bench.iter_custom(|iterations| {
            let mut elapsed = Duration::ZERO;
            for _ in 0..iterations {
                let started = Instant::now();
                hub.publish(black_box(&recipients), black_box(&event));
                elapsed += started.elapsed();
                // Drained outside the timed part, so no queue fills up and
                // gets its socket closed as too slow.
                for socket in &mut sockets {
                    while socket.events.try_recv().is_ok() {}
                }
            }
            elapsed
        })
    });
    group.finish();
}

criterion_group!(benches, serde_benches, fanout_benches);
criterion_main!(benches);
