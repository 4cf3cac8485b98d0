//! The audit log: authentication events on the tracing target
//! `confab::audit`, and a limiter that keeps repeated events from flooding it.
//!
//! Audit lines name accounts by `user_id` and never carry an email address,
//! a password or a token. An attempt on an unknown account is logged with
//! `reason = "unknown_account"` and no account at all.

use std::net::IpAddr;

use dashmap::DashMap;

use crate::throttle::Limit;
use crate::AppState;

/// Tracing target of authentication events, so they can be routed to an audit log.
pub const AUDIT_TARGET: &str = "confab::audit";

/// Distinct repeated events tracked at most; past it, new ones are dropped
/// from the log (metrics still count them) until the next purge.
const MAX_TRACKED_REPEATS: usize = 100_000;

#[derive(Clone, Copy)]
struct Repeat {
    /// Milliseconds since the epoch of the last line written for this key.
    logged_at: i64,
    /// Events left out of the log since that line.
    suppressed: u64,
}

/// Lets an event through to the log once per window per key and counts
/// the ones it holds back, so the next line can report them.
pub struct RepeatLog {
    window_ms: i64,
    entries: DashMap<String, Repeat>,
}

impl RepeatLog {
    pub fn new(window: std::time::Duration) -> Self {
        Self {
            window_ms: window.as_millis() as i64,
            entries: DashMap::new(),
        }
    }

    /// Returns `Some(suppressed)` when an event for `key` at `now` (ms) should
    /// be logged, with the count of events held back since the last line.
    /// Returns `None` when this event is held back and counted.
    pub fn admit(&self, key: &str, now: i64) -> Option<u64> {
        if let Some(mut repeat) = self.entries.get_mut(key) {
            if now - repeat.logged_at < self.window_ms {
                repeat.suppressed += 1;
                return None;
            }
            let suppressed = repeat.suppressed;
            *repeat = Repeat {
                logged_at: now,
                suppressed: 0,
            };
            return Some(suppressed);
        }
        if self.entries.len() >= MAX_TRACKED_REPEATS {
            self.purge(now);
            if self.entries.len() >= MAX_TRACKED_REPEATS {
                return None;
            }
        }
        self.entries.insert(
            key.to_owned(),
            Repeat {
                logged_at: now,
                suppressed: 0,
            },
        );
        Some(0)
    }

    /// Forgets keys whose window has passed. Their held-back count is lost
    /// from the log; the metrics still have it.
    pub fn purge(&self, now: i64) {
        self.entries
            .retain(|_, repeat| now - repeat.logged_at < self.window_ms);
    }
}

/// Logs a request refused by a per-address limit, once per window per address.
pub fn rate_limited(state: &AppState, limit: Limit, address: Option<IpAddr>) {
    let client = address.map(tracing::field::display);
    let key = format!("rate_limited:{}:{address:?}", limit.as_str());
    if let Some(repeated) = state.audit_repeats.admit(&key, crate::store::now_millis()) {
        tracing::info!(
            target: AUDIT_TARGET,
            event = "rate_limited",
            limit = limit.as_str(),
            client,
            repeated,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_then_summary_per_window() {
        let log = RepeatLog::new(std::time::Duration::from_secs(60));
        assert_eq!(log.admit("pair", 0), Some(0));
        assert_eq!(log.admit("pair", 1_000), None);
        assert_eq!(log.admit("pair", 2_000), None);
        assert_eq!(log.admit("other", 2_000), Some(0));
        assert_eq!(log.admit("pair", 60_000), Some(2));
        assert_eq!(log.admit("pair", 60_001), None);
    }

    #[test]
    fn purge_drops_old_keys() {
        let log = RepeatLog::new(std::time::Duration::from_secs(60));
        log.admit("pair", 0);
        log.purge(60_000);
        assert!(log.entries.is_empty());
    }
}
