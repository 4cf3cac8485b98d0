//! Benchmarks of the token hot path and the revocation list.
//!
//! Run with `cargo bench --bench auth`. After the criterion groups, the
//! binary measures how long lookups on other threads take while a purge of
//! 1,000,000 expired entries runs, and prints median, p99 and max.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab::auth::revocation::MemoryRevocationList;
use confab::auth::token::TokenService;
use confab::auth::Role;
use criterion::{criterion_group, BatchSize, Criterion};

const ENTRIES: u128 = 1_000_000;
/// Expiry given to entries that a purge at [`PURGE_AT`] removes.
const EXPIRED_AT: i64 = 10;
const PURGE_AT: i64 = 20;

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn token_service() -> TokenService {
    TokenService::new(
        &[7u8; 32],
        "confab",
        "confab-api",
        Duration::from_secs(1800),
        Duration::ZERO,
    )
}

/// Builds a list of `count` entries that all expire at `expires_at`.
fn filled_list(count: u128, expires_at: i64) -> MemoryRevocationList {
    let list = MemoryRevocationList::new();
    for token_id in 0..count {
        list.insert(token_id, expires_at);
    }
    list
}

fn token_benches(criterion: &mut Criterion) {
    let service = token_service();
    criterion.bench_function("token/issue", |bench| {
        bench.iter(|| {
            service
                .issue(black_box(42), "bench@example.test", Role::User, 7, now())
                .unwrap()
        })
    });

    // Revoked entries outlive the benchmark, so none of them expires mid-run.
    let list = filled_list(ENTRIES, i64::MAX);
    let token = service
        .issue(42, "bench@example.test", Role::User, 7, now())
        .unwrap()
        .token;
    criterion.bench_function("token/check_with_1m_revoked", |bench| {
        bench.iter(|| {
            let now = now();
            let verified = service.verify(black_box(&token), now).unwrap();
            // The same three lookups the request extractor makes.
            assert!(!list.contains(verified.token_id, now));
            assert!(!list.contains(verified.session_id, now));
            assert!(list
                .cutoff(verified.user_id)
                .is_none_or(|cutoff| verified.claims.iat >= cutoff));
        })
    });
}

fn purge_benches(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("revocation");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("purge_1m_expired", |bench| {
        bench.iter_batched(
            || filled_list(ENTRIES, EXPIRED_AT),
            |list| {
                assert_eq!(list.purge(PURGE_AT), ENTRIES as usize);
                // Dropping the emptied list is not part of the purge.
                list
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, token_benches, purge_benches);

/// Lookup latencies recorded by one reader thread.
fn read_until_stopped(list: &MemoryRevocationList, stop: &AtomicBool, seed: u128) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(1 << 20);
    let mut token_id = seed;
    while !stop.load(Ordering::Relaxed) {
        // A cheap LCG spreads lookups over present and absent ids.
        token_id = token_id
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1)
            % (2 * ENTRIES);
        let started = Instant::now();
        black_box(list.contains(black_box(token_id), PURGE_AT));
        latencies.push(started.elapsed());
    }
    latencies
}

/// Runs `readers` lookup threads while `work` runs on this thread, and
/// returns every lookup latency together with the time `work` took.
fn lookups_during(
    list: &Arc<MemoryRevocationList>,
    readers: usize,
    work: impl FnOnce(),
) -> (Vec<Duration>, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..readers)
        .map(|reader| {
            let list = Arc::clone(list);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || read_until_stopped(&list, &stop, reader as u128 + 1))
        })
        .collect();
    // Let every reader reach its loop before the measured work starts.
    std::thread::sleep(Duration::from_millis(50));
    let started = Instant::now();
    work();
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);

    let mut latencies: Vec<Duration> = handles
        .into_iter()
        .flat_map(|handle| handle.join().unwrap())
        .collect();
    latencies.sort_unstable();
    (latencies, elapsed)
}

fn print_latencies(label: &str, latencies: &[Duration]) {
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    println!(
        "{label}: {} lookups, median {:?}, p99 {:?}, p99.99 {:?}, max {:?}",
        latencies.len(),
        percentile(0.5),
        percentile(0.99),
        percentile(0.9999),
        latencies[latencies.len() - 1],
    );
}

/// Measures lookups on other threads while a purge of 1,000,000 entries
/// runs, against the same length of time with no purge.
fn lookup_latency_during_purge() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let readers = cores.saturating_sub(1).max(1);
    println!("revocation/lookup_latency_during_purge: {readers} reader thread(s), {cores} CPU(s)");

    let list = Arc::new(filled_list(ENTRIES, EXPIRED_AT));
    let (during, purge_time) = lookups_during(&list, readers, || {
        assert_eq!(list.purge(PURGE_AT), ENTRIES as usize);
    });
    println!("purge of {ENTRIES} expired entries took {purge_time:?}");
    print_latencies("lookups during the purge", &during);

    let idle = Arc::new(filled_list(ENTRIES, EXPIRED_AT));
    let (baseline, _) = lookups_during(&idle, readers, || std::thread::sleep(purge_time));
    print_latencies("lookups with no purge   ", &baseline);
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();

    // Criterion's filter is the first argument that is not a flag.
    let filter = std::env::args()
        .skip(1)
        .find(|argument| !argument.starts_with('-'));
    let is_test_run = std::env::args().any(|argument| argument == "--test");
    let selected =
        filter.is_none_or(|filter| "revocation/lookup_latency_during_purge".contains(&filter));
    if selected && !is_test_run {
        lookup_latency_during_purge();
    }
}
