//! Throttle counters kept in this process, for single-instance deployments.

use std::net::IpAddr;
use std::num::NonZeroU32;

use dashmap::DashMap;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{Limit, LoginPolicy, LoginStart};

/// Login pairs tracked at most. The map is purged of expired pairs every
/// minute; past this size a new pair is not tracked until a purge frees room.
// NOTE: an attacker with enough addresses to fill the map within one failure
// window could already spread as many guesses over those addresses.
const MAX_TRACKED_PAIRS: usize = 100_000;

/// Failed-login counter of one (account, address) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PairState {
    pub attempts: u32,
    /// Milliseconds since the epoch until which attempts are refused; 0 when not locked.
    pub locked_until: i64,
    /// Milliseconds since the epoch when the whole record is forgotten.
    pub expires_at: i64,
}

/// Applies one login attempt at `now` (ms) to a pair's record. Returns the
/// updated record, or the milliseconds left of the lockout that refuses it.
///
/// The attempt that reaches `max_failures` starts a lockout at once, so
/// parallel attempts cannot slip past while it is being verified; a success
/// clears the record and with it the lockout.
pub fn next_attempt(
    state: Option<PairState>,
    now: i64,
    policy: &LoginPolicy,
) -> Result<PairState, i64> {
    let window = policy.window_ms as i64;
    let mut state = state
        .filter(|state| state.expires_at > now)
        .unwrap_or(PairState {
            attempts: 0,
            locked_until: 0,
            expires_at: now + window,
        });
    if state.locked_until > now {
        return Err(state.locked_until - now);
    }
    state.attempts += 1;
    if let Some(lockout) = policy.lockout_after(state.attempts) {
        state.locked_until = now + lockout as i64;
        // The count outlives the lockout, so the next failure doubles it.
        state.expires_at = state.locked_until + window;
    }
    Ok(state)
}

/// In-process counters: a map of login pairs and one `governor` limiter per limit.
pub struct MemoryThrottle {
    pairs: DashMap<(String, IpAddr), PairState>,
    auth: DefaultKeyedRateLimiter<IpAddr>,
    registration: DefaultKeyedRateLimiter<IpAddr>,
}

impl MemoryThrottle {
    pub fn new(auth_per_minute: NonZeroU32, registrations_per_hour: NonZeroU32) -> Self {
        Self {
            pairs: DashMap::new(),
            auth: RateLimiter::keyed(Quota::per_minute(auth_per_minute)),
            registration: RateLimiter::keyed(Quota::per_hour(registrations_per_hour)),
        }
    }

    pub fn begin_login(
        &self,
        email: &str,
        address: IpAddr,
        now: i64,
        policy: &LoginPolicy,
    ) -> LoginStart {
        let key = (email.to_owned(), address);
        if !self.pairs.contains_key(&key) && self.pairs.len() >= MAX_TRACKED_PAIRS {
            self.purge(now);
            if self.pairs.len() >= MAX_TRACKED_PAIRS {
                tracing::warn!(
                    limit = MAX_TRACKED_PAIRS,
                    "login throttle is full; a new account and address pair is not counted"
                );
                return LoginStart::Allowed {
                    attempts: 1,
                    lockout_ms: None,
                };
            }
        }
        // The entry lock makes check and update one step for this pair.
        let mut entry = self.pairs.entry(key).or_insert(PairState {
            attempts: 0,
            locked_until: 0,
            expires_at: now + policy.window_ms as i64,
        });
        match next_attempt(Some(*entry), now, policy) {
            Ok(state) => {
                *entry = state;
                LoginStart::Allowed {
                    attempts: state.attempts,
                    lockout_ms: (state.locked_until > now)
                        .then(|| (state.locked_until - now) as u64),
                }
            }
            Err(retry_ms) => LoginStart::Locked {
                retry_ms: retry_ms as u64,
            },
        }
    }

    pub fn clear_login(&self, email: &str, address: IpAddr) {
        self.pairs.remove(&(email.to_owned(), address));
    }

    /// Counts one request against `limit`; returns the milliseconds to wait when over it.
    pub fn hit(&self, limit: Limit, address: IpAddr) -> Option<u64> {
        let limiter = match limit {
            Limit::Auth => &self.auth,
            Limit::Registration => &self.registration,
        };
        limiter.check_key(&address).err().map(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_millis() as u64
        })
    }

    /// Forgets expired pairs and idle limiter keys.
    pub fn purge(&self, now: i64) {
        self.pairs.retain(|_, state| state.expires_at > now);
        self.auth.retain_recent();
        self.registration.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn policy() -> LoginPolicy {
        LoginPolicy {
            max_failures: 3,
            window_ms: 15 * MINUTE as u64,
            schedule: vec![MINUTE as u64, 2 * MINUTE as u64, 4 * MINUTE as u64],
        }
    }

    /// Runs attempts at the given times and returns each outcome.
    fn run(times: &[i64]) -> Vec<Result<PairState, i64>> {
        let policy = policy();
        let mut state = None;
        times
            .iter()
            .map(|&now| {
                let outcome = next_attempt(state, now, &policy);
                if let Ok(next) = outcome {
                    state = Some(next);
                }
                outcome
            })
            .collect()
    }

    #[test]
    fn attempt_reaching_limit_starts_lockout() {
        let outcomes = run(&[0, 1, 2, 3]);
        assert_eq!(outcomes[0].unwrap().locked_until, 0);
        assert_eq!(outcomes[1].unwrap().locked_until, 0);
        assert_eq!(outcomes[2].unwrap().locked_until, 2 + MINUTE);
        assert_eq!(outcomes[3], Err(MINUTE - 1));
    }

    #[test]
    fn lockout_doubles_then_stays_at_cap() {
        let first = MINUTE + 2;
        let second = first + 2 * MINUTE;
        let third = second + 4 * MINUTE;
        let outcomes = run(&[0, 1, 2, first, second, third]);
        assert_eq!(outcomes[3].unwrap().locked_until, first + 2 * MINUTE);
        assert_eq!(outcomes[4].unwrap().locked_until, second + 4 * MINUTE);
        assert_eq!(outcomes[5].unwrap().locked_until, third + 4 * MINUTE);
    }

    #[test]
    fn failures_expire_after_window() {
        let outcomes = run(&[0, 1, 15 * MINUTE]);
        assert_eq!(outcomes[2].unwrap().attempts, 1);
    }

    #[test]
    fn count_survives_window_while_locked() {
        // The third attempt locks until 2 + 1 min; the record lives a window past that.
        let outcomes = run(&[0, 1, 2, 15 * MINUTE + 1]);
        assert_eq!(outcomes[3].unwrap().attempts, 4);
    }

    #[test]
    fn cleared_pair_starts_over() {
        let throttle = MemoryThrottle::new(NonZeroU32::MIN, NonZeroU32::MIN);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        for now in 0..3 {
            throttle.begin_login("a@example.test", address, now, &policy());
        }
        let locked = throttle.begin_login("a@example.test", address, 3, &policy());
        assert!(matches!(locked, LoginStart::Locked { .. }));
        throttle.clear_login("a@example.test", address);
        let again = throttle.begin_login("a@example.test", address, 4, &policy());
        assert!(matches!(again, LoginStart::Allowed { attempts: 1, .. }));
    }

    #[test]
    fn limiter_refuses_past_burst() {
        let throttle = MemoryThrottle::new(NonZeroU32::new(2).unwrap(), NonZeroU32::MIN);
        let address: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(throttle.hit(Limit::Auth, address), None);
        assert_eq!(throttle.hit(Limit::Auth, address), None);
        assert!(throttle.hit(Limit::Auth, address).is_some());
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(throttle.hit(Limit::Auth, other), None);
    }
}
