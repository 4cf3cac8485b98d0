//! Latency histograms, error counts and their JSON summaries.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency a histogram records, in microseconds; larger values are
/// clamped to it so one stalled request cannot fail a run.
const MAX_MICROS: u64 = 60_000_000;

/// Latencies in microseconds, from 1 µs to 60 s at three significant digits.
#[derive(Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                .expect("the histogram bounds are valid constants"),
        }
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.record_micros(latency.as_micros() as u64);
    }

    pub fn record_micros(&mut self, micros: u64) {
        self.histogram
            .saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with equal bounds always merge");
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// Summarises the distribution in milliseconds.
    pub fn summary(&self) -> LatencySummary {
        let millis = |micros: u64| micros as f64 / 1000.0;
        let quantile = |q: f64| millis(self.histogram.value_at_quantile(q));
        LatencySummary {
            count: self.histogram.len(),
            mean_ms: self.histogram.mean() / 1000.0,
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
            p999_ms: quantile(0.999),
            max_ms: millis(self.histogram.max()),
        }
    }
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Clone, Debug, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Formats p50/p99/p999 for a summary line.
    pub fn short(&self) -> String {
        format!(
            "p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms",
            self.p50_ms, self.p99_ms, self.p999_ms
        )
    }
}

/// Failed requests by cause, such as `status 503` or `connect`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Errors(BTreeMap<String, u64>);

impl Errors {
    pub fn add(&mut self, cause: impl Into<String>) {
        *self.0.entry(cause.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Errors) {
        for (cause, count) in &other.0 {
            *self.0.entry(cause.clone()).or_default() += count;
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }
}

/// Results of one closed- or fixed-rate request phase.
#[derive(Clone, Default)]
pub struct PhaseStats {
    pub latencies: Latencies,
    pub errors: Errors,
}

impl PhaseStats {
    pub fn merge(&mut self, other: &PhaseStats) {
        self.latencies.merge(&other.latencies);
        self.errors.merge(&other.errors);
    }

    /// Summarises the phase; `rate` counts successful requests per second.
    pub fn report(&self, duration: Duration) -> PhaseReport {
        let ok = self.latencies.count();
        PhaseReport {
            requests_ok: ok,
            errors_total: self.errors.total(),
            errors: self.errors.clone(),
            rate_per_s: ok as f64 / duration.as_secs_f64(),
            latency: self.latencies.summary(),
        }
    }
}

/// JSON form of [`PhaseStats`].
#[derive(Clone, Debug, Serialize)]
pub struct PhaseReport {
    pub requests_ok: u64,
    pub errors_total: u64,
    pub errors: Errors,
    pub rate_per_s: f64,
    pub latency: LatencySummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_reports_percentiles_in_ms() {
        let mut latencies = Latencies::default();
        for micros in 1..=1000 {
            latencies.record_micros(micros);
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 1000);
        assert!((summary.p50_ms - 0.5).abs() < 0.01, "{summary:?}");
        assert!((summary.p99_ms - 0.99).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 1.0).abs() < 0.01, "{summary:?}");
    }

    #[test]
    fn huge_latency_clamped() {
        let mut latencies = Latencies::default();
        latencies.record(Duration::from_secs(3600));
        assert_eq!(latencies.count(), 1);
        assert!(latencies.summary().max_ms <= 60_100.0);
    }

    #[test]
    fn merge_adds_counts_and_errors() {
        let mut first = PhaseStats::default();
        first.latencies.record_micros(10);
        first.errors.add("status 503");
        let mut second = PhaseStats::default();
        second.latencies.record_micros(20);
        second.errors.add("status 503");
        second.errors.add("connect");
        first.merge(&second);
        assert_eq!(first.latencies.count(), 2);
        assert_eq!(first.errors.total(), 3);
    }
}
