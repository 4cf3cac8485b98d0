//! Timed phases: a warm-up that is not recorded, a measured window, and the
//! loops that send requests through it.

use std::future::Future;
use std::time::Duration;

use tokio::time::{sleep_until, Instant};

use crate::stats::PhaseStats;

/// Times of one phase: requests scheduled in `[measure_from, end)` are
/// recorded, earlier ones are warm-up, and nothing is sent from `end` on.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    /// Starts a window now.
    pub fn start(warmup: Duration, duration: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Self {
            measure_from,
            end: measure_from + duration,
        }
    }

    pub fn duration(&self) -> Duration {
        self.end - self.measure_from
    }

    pub fn is_measured(&self, at: Instant) -> bool {
        at >= self.measure_from && at < self.end
    }
}

/// One connection's way of sending a request; `Err` carries a short cause
/// such as `status 503`, used to count errors by kind.
pub trait Call: Send + 'static {
    fn call(&mut self, seq: u64) -> impl Future<Output = Result<(), String>> + Send;
}

/// Runs one task per call site until the window ends. With `rate` set,
/// each task sends on a fixed schedule that adds up to `rate` requests per
/// second, and latency counts from the scheduled time, so a slow response
/// delays the requests behind it and shows in their latency instead of
/// silently lowering the rate (no coordinated omission). Without it, each
/// task sends its next request as soon as the previous one returns.
pub async fn run_calls<C: Call>(calls: Vec<C>, window: Window, rate: Option<f64>) -> PhaseStats {
    let connections = calls.len().max(1);
    let interval = rate.map(|rate| Duration::from_secs_f64(connections as f64 / rate));
    let tasks: Vec<_> = calls
        .into_iter()
        .enumerate()
        .map(|(index, call)| {
            // Offsets spread the paced tasks over one interval instead of sending in bursts.
            let offset = interval.map_or(Duration::ZERO, |interval| {
                interval.mul_f64(index as f64 / connections as f64)
            });
            tokio::spawn(run_one(call, window, interval, Instant::now() + offset))
        })
        .collect();

    let mut total = PhaseStats::default();
    for task in tasks {
        match task.await {
            Ok(stats) => total.merge(&stats),
            Err(error) => total.errors.add(format!("task failed: {error}")),
        }
    }
    total
}

async fn run_one<C: Call>(
    mut call: C,
    window: Window,
    interval: Option<Duration>,
    mut next: Instant,
) -> PhaseStats {
    let mut stats = PhaseStats::default();
    let mut seq = 0;
    loop {
        let scheduled = match interval {
            Some(interval) => {
                let scheduled = next;
                next += interval;
                sleep_until(scheduled).await;
                scheduled
            }
            None => Instant::now(),
        };
        if scheduled >= window.end {
            return stats;
        }
        let outcome = call.call(seq).await;
        seq += 1;
        if !window.is_measured(scheduled) {
            continue;
        }
        match outcome {
            Ok(()) => stats.latencies.record(scheduled.elapsed()),
            Err(cause) => stats.errors.add(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct OneMillisecondCall;

    impl Call for OneMillisecondCall {
        async fn call(&mut self, _seq: u64) -> Result<(), String> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn paced_calls_follow_rate() {
        let window = Window::start(Duration::from_secs(1), Duration::from_secs(2));
        let stats = run_calls(
            vec![OneMillisecondCall, OneMillisecondCall],
            window,
            Some(100.0),
        )
        .await;
        let count = stats.latencies.count();
        assert!(
            (195..=205).contains(&count),
            "{count} requests in 2 s at 100/s"
        );
        assert_eq!(stats.errors.total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn warmup_not_recorded() {
        let window = Window::start(Duration::from_secs(5), Duration::from_secs(1));
        let stats = run_calls(vec![OneMillisecondCall], window, Some(10.0)).await;
        let count = stats.latencies.count();
        assert!((9..=11).contains(&count), "{count} requests in 1 s at 10/s");
    }
}
