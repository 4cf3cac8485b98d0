//! Settings of the login throttle and the per-address request limits.

use std::time::Duration;

use clap::Args;

use crate::config::{config_error, parse_duration, ConfigError};

/// Upper bound of `CONFAB_LOGIN_MAX_LOCKOUT`: a longer lockout would let
/// anyone who shares an address with a user lock them out for days.
pub const MAX_LOGIN_LOCKOUT: Duration = Duration::from_secs(24 * 3600);

/// Limits on authentication traffic from one client address.
#[derive(Args, Clone, Debug)]
pub struct ThrottleConfig {
    /// Failed logins for one account from one address, within the failure window, before further attempts get 429.
    #[arg(long, env = "CONFAB_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,

    /// Period over which failed logins of one account from one address are counted.
    #[arg(long, env = "CONFAB_LOGIN_FAILURE_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub login_failure_window: Duration,

    /// First lockout after too many failed logins; it doubles with each further failure.
    #[arg(long, env = "CONFAB_LOGIN_LOCKOUT", default_value = "1m", value_parser = parse_duration)]
    pub login_lockout: Duration,

    /// Longest lockout the doubling reaches; at most 24h.
    #[arg(long, env = "CONFAB_LOGIN_MAX_LOCKOUT", default_value = "1h", value_parser = parse_duration)]
    pub login_max_lockout: Duration,

    /// Requests to `/auth/*` one address may make per minute, all routes together.
    #[arg(long, env = "CONFAB_AUTH_REQUESTS_PER_MINUTE", default_value_t = 60)]
    pub auth_requests_per_minute: u32,

    /// Registrations one address may make per hour.
    #[arg(long, env = "CONFAB_REGISTRATIONS_PER_HOUR", default_value_t = 10)]
    pub registrations_per_hour: u32,
}

impl ThrottleConfig {
    /// Names the first setting that cannot be used.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.login_max_failures == 0 {
            return Err(config_error(
                "CONFAB_LOGIN_MAX_FAILURES",
                "must be at least 1",
            ));
        }
        if self.login_failure_window < Duration::from_secs(1) {
            return Err(config_error(
                "CONFAB_LOGIN_FAILURE_WINDOW",
                "must be at least 1s",
            ));
        }
        if self.login_lockout < Duration::from_secs(1) {
            return Err(config_error("CONFAB_LOGIN_LOCKOUT", "must be at least 1s"));
        }
        if self.login_max_lockout < self.login_lockout {
            return Err(config_error(
                "CONFAB_LOGIN_MAX_LOCKOUT",
                "must be at least CONFAB_LOGIN_LOCKOUT",
            ));
        }
        if self.login_max_lockout > MAX_LOGIN_LOCKOUT {
            return Err(config_error(
                "CONFAB_LOGIN_MAX_LOCKOUT",
                "must be at most 24h; anyone sharing an address with a user could lock them out that long",
            ));
        }
        if self.auth_requests_per_minute == 0 {
            return Err(config_error(
                "CONFAB_AUTH_REQUESTS_PER_MINUTE",
                "must be at least 1",
            ));
        }
        if self.registrations_per_hour == 0 {
            return Err(config_error(
                "CONFAB_REGISTRATIONS_PER_HOUR",
                "must be at least 1",
            ));
        }
        Ok(())
    }

    /// Returns the lockouts in milliseconds after the `max_failures`-th,
    /// the next, and so on: doubling from `login_lockout` until the last
    /// entry, `login_max_lockout`, which applies from then on.
    pub fn lockout_schedule(&self) -> Vec<u64> {
        let cap = self.login_max_lockout.as_millis() as u64;
        let mut lockout = self.login_lockout.as_millis() as u64;
        let mut schedule = Vec::new();
        while lockout < cap {
            schedule.push(lockout);
            lockout = lockout.saturating_mul(2);
        }
        schedule.push(cap);
        schedule
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(lockout: u64, max_lockout: u64) -> ThrottleConfig {
        ThrottleConfig {
            login_max_failures: 5,
            login_failure_window: Duration::from_secs(900),
            login_lockout: Duration::from_secs(lockout),
            login_max_lockout: Duration::from_secs(max_lockout),
            auth_requests_per_minute: 60,
            registrations_per_hour: 10,
        }
    }

    #[test]
    fn schedule_doubles_up_to_cap() {
        let schedule = settings(60, 600).lockout_schedule();
        assert_eq!(schedule, [60_000, 120_000, 240_000, 480_000, 600_000]);
    }

    #[test]
    fn schedule_of_equal_bounds_is_one_step() {
        assert_eq!(settings(60, 60).lockout_schedule(), [60_000]);
    }

    #[test]
    fn defaults_validate() {
        assert!(settings(60, 3600).validate().is_ok());
        assert!(settings(60, 30).validate().is_err());
        assert!(settings(60, 2 * 24 * 3600).validate().is_err());
    }
}
