//! Count of failed logins over the last hour, for the security overview.
//!
//! The count is kept in memory per server instance: it restarts at zero with
//! the process, and each instance of a multi-instance deployment counts only
//! the logins it handled.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Number of one-minute buckets, one hour in total.
const BUCKETS: usize = 60;

/// A ring of per-minute counters. A bucket is reset lazily when a failure
/// lands in a minute it last counted an hour or more ago.
pub struct FailedLogins {
    /// Minute (seconds since the epoch divided by 60) each bucket counts.
    minutes: [AtomicI64; BUCKETS],
    counts: [AtomicU64; BUCKETS],
}

impl Default for FailedLogins {
    fn default() -> Self {
        Self {
            minutes: std::array::from_fn(|_| AtomicI64::new(i64::MIN)),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl FailedLogins {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one failed login at `now` (seconds since the epoch).
    pub fn record(&self, now: i64) {
        let minute = now.div_euclid(60);
        let index = minute.rem_euclid(BUCKETS as i64) as usize;
        let previous = self.minutes[index].swap(minute, Ordering::AcqRel);
        if previous == minute {
            self.counts[index].fetch_add(1, Ordering::Relaxed);
        } else {
            // NOTE: two failures racing into a fresh minute can lose one count;
            // the figure is an overview, not an audit log.
            self.counts[index].store(1, Ordering::Relaxed);
        }
    }

    /// Returns the failures counted in the 60 minutes up to and including `now`'s minute.
    pub fn last_hour(&self, now: i64) -> u64 {
        let current = now.div_euclid(60);
        (0..BUCKETS)
            .filter(|&index| {
                let minute = self.minutes[index].load(Ordering::Acquire);
                minute <= current && minute > current - BUCKETS as i64
            })
            .map(|index| self.counts[index].load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_within_the_hour() {
        let counter = FailedLogins::new();
        counter.record(1_000_000);
        counter.record(1_000_001);
        counter.record(1_000_000 + 30 * 60);
        assert_eq!(counter.last_hour(1_000_000 + 30 * 60), 3);
    }

    #[test]
    fn old_failures_drop_out() {
        let counter = FailedLogins::new();
        counter.record(1_000_000);
        assert_eq!(counter.last_hour(1_000_000 + 61 * 60), 0);
        counter.record(1_000_000 + 60 * 60);
        assert_eq!(counter.last_hour(1_000_000 + 60 * 60), 1);
    }
}
