//! Throttling of authentication traffic: failed logins per account and
//! client address with a doubling lockout, and request limits per address.
//!
//! Counters live in this process, or in Redis when `REDIS_URL` is set so
//! that every instance reads the same counts. With Redis unreachable,
//! throttled routes fail closed with 503, as token checks do.

pub mod memory;
pub mod redis;
pub mod settings;

use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::http::client_address::ClientAddress;
use crate::http::error::ApiError;
use crate::store::redis::RedisSettings;
use crate::telemetry::metrics::RATE_LIMITED;
use crate::AppState;
use memory::MemoryThrottle;
use redis::RedisThrottle;
use settings::ThrottleConfig;

/// A per-address request limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Every request to `/auth/*`.
    Auth,
    /// `POST /auth/register` and `/auth/signup`.
    Registration,
}

impl Limit {
    /// Returns the `limit` label of `confab_rate_limited_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Registration => "register",
        }
    }
}

/// Counting and lockout rules for the failed logins of one pair.
#[derive(Clone, Debug)]
pub struct LoginPolicy {
    pub max_failures: u32,
    pub window_ms: u64,
    /// Lockouts in ms for the `max_failures`-th attempt, the next, and so on;
    /// the last entry applies from then on. Never empty.
    pub schedule: Vec<u64>,
}

impl LoginPolicy {
    /// Returns the lockout in ms that the `attempts`-th attempt starts, if any.
    pub fn lockout_after(&self, attempts: u32) -> Option<u64> {
        let over = attempts.checked_sub(self.max_failures)? as usize;
        let last = self.schedule.len().checked_sub(1)?;
        Some(self.schedule[over.min(last)])
    }
}

/// Outcome of starting a login attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginStart {
    /// The attempt may go ahead; it is the pair's `attempts`-th in the
    /// window. `lockout_ms` is set when this attempt started a lockout that
    /// remains in force unless it succeeds.
    Allowed {
        attempts: u32,
        lockout_ms: Option<u64>,
    },
    /// The pair is locked out for `retry_ms` more milliseconds.
    Locked { retry_ms: u64 },
}

/// The throttle store could not be reached.
#[derive(Debug, thiserror::Error)]
#[error("throttle store unavailable: {0}")]
pub struct ThrottleUnavailable(pub String);

enum Backend {
    Memory(MemoryThrottle),
    Redis(RedisThrottle),
}

/// Login throttle and per-address limits, in memory or in Redis.
pub struct Throttle {
    backend: Backend,
    policy: LoginPolicy,
}

impl Throttle {
    /// Builds the throttle; with `redis`, counters go to Redis under its key prefix.
    pub fn new(
        settings: &ThrottleConfig,
        redis: Option<(::redis::aio::ConnectionManager, RedisSettings)>,
    ) -> Self {
        let policy = LoginPolicy {
            max_failures: settings.login_max_failures,
            window_ms: settings.login_failure_window.as_millis() as u64,
            schedule: settings.lockout_schedule(),
        };
        let backend = match redis {
            Some((connection, redis_settings)) => Backend::Redis(RedisThrottle::new(
                connection,
                redis_settings,
                (settings.auth_requests_per_minute, 60_000),
                (settings.registrations_per_hour, 3_600_000),
            )),
            None => Backend::Memory(MemoryThrottle::new(
                NonZeroU32::new(settings.auth_requests_per_minute).unwrap_or(NonZeroU32::MIN),
                NonZeroU32::new(settings.registrations_per_hour).unwrap_or(NonZeroU32::MIN),
            )),
        };
        Self { backend, policy }
    }

    /// Starts a login attempt for a normalised email from `address` at `now` (ms).
    pub async fn begin_login(
        &self,
        email: &str,
        address: IpAddr,
        now: i64,
    ) -> Result<LoginStart, ApiError> {
        match &self.backend {
            Backend::Memory(memory) => Ok(memory.begin_login(email, address, now, &self.policy)),
            Backend::Redis(redis) => redis
                .begin_login(email, address, now, &self.policy)
                .await
                .map_err(throttle_failed),
        }
    }

    /// Forgets the pair's failures after a successful login.
    pub async fn clear_login(&self, email: &str, address: IpAddr) -> Result<(), ApiError> {
        match &self.backend {
            Backend::Memory(memory) => {
                memory.clear_login(email, address);
                Ok(())
            }
            Backend::Redis(redis) => redis
                .clear_login(email, address)
                .await
                .map_err(throttle_failed),
        }
    }

    /// Counts one request from `address` against `limit`; a request over it
    /// gets 429 and is counted in `confab_rate_limited_total`.
    pub async fn hit(&self, limit: Limit, address: Option<IpAddr>) -> Result<(), ApiError> {
        let address = address.unwrap_or(UNKNOWN_ADDRESS);
        let wait_ms = match &self.backend {
            Backend::Memory(memory) => memory.hit(limit, address),
            Backend::Redis(redis) => redis.hit(limit, address).await.map_err(throttle_failed)?,
        };
        let Some(wait_ms) = wait_ms else {
            return Ok(());
        };
        metrics::counter!(RATE_LIMITED, "limit" => limit.as_str()).increment(1);
        Err(ApiError::TooManyRequests {
            code: "rate_limited",
            detail: "too many requests from this address; retry after the time in Retry-After",
            retry_after: Duration::from_millis(wait_ms),
        })
    }

    /// Forgets expired in-memory counters; Redis expires its keys by itself.
    pub fn purge(&self, now: i64) {
        if let Backend::Memory(memory) = &self.backend {
            memory.purge(now);
        }
    }
}

/// Address used for a request that came through no socket, so such
/// requests share one set of counters.
pub const UNKNOWN_ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Builds the 503 for a throttle store that cannot be reached. Throttled
/// routes fail closed: without the counters, guessing would be unbounded.
fn throttle_failed(error: ThrottleUnavailable) -> ApiError {
    tracing::warn!(%error, "throttle check failed");
    ApiError::Unavailable {
        code: "throttle_unavailable",
        detail: "the request limits cannot be checked right now; retry shortly".to_owned(),
    }
}

/// Middleware over `/auth/*` that applies the per-address request limit.
pub async fn limit_auth_requests(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    request: Request,
    next: Next,
) -> Response {
    if let Err(error) = state.throttle.hit(Limit::Auth, address).await {
        if matches!(error, ApiError::TooManyRequests { .. }) {
            crate::auth::audit::rate_limited(&state, Limit::Auth, address);
        }
        return error.into_response();
    }
    next.run(request).await
}

/// Forgets expired in-memory counters once a minute.
pub fn spawn_purge(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(60));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let now = crate::store::now_millis();
            state.throttle.purge(now);
            state.audit_repeats.purge(now);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_follows_schedule() {
        let policy = LoginPolicy {
            max_failures: 5,
            window_ms: 900_000,
            schedule: vec![60_000, 120_000],
        };
        assert_eq!(policy.lockout_after(4), None);
        assert_eq!(policy.lockout_after(5), Some(60_000));
        assert_eq!(policy.lockout_after(6), Some(120_000));
        assert_eq!(policy.lockout_after(60), Some(120_000));
    }
}
