//! Throttle counters in Redis, shared by every instance.

use std::net::IpAddr;

use redis::aio::ConnectionManager;
use sha2::{Digest as _, Sha256};

use super::{Limit, LoginPolicy, LoginStart, ThrottleUnavailable};
use crate::store::redis::RedisSettings;

/// One login attempt for a pair, the Redis form of `memory::next_attempt`.
/// KEYS[1] is the pair's hash; ARGV is now (ms), the window (ms), the
/// failure limit, then the lockout schedule (ms). Returns `{retry_ms, 0}`
/// when locked, otherwise `{0, attempts, lockout_ms}`.
const BEGIN_LOGIN: &str = "\
local now = tonumber(ARGV[1]) \
local window = tonumber(ARGV[2]) \
local max_failures = tonumber(ARGV[3]) \
local locked_until = tonumber(redis.call('HGET', KEYS[1], 'locked_until') or '0') \
if locked_until > now then return {locked_until - now, 0, 0} end \
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1) \
if attempts == 1 then redis.call('PEXPIRE', KEYS[1], window) end \
if attempts < max_failures then return {0, attempts, 0} end \
local step = math.min(attempts - max_failures + 1, #ARGV - 3) \
local lockout = tonumber(ARGV[3 + step]) \
redis.call('HSET', KEYS[1], 'locked_until', string.format('%d', now + lockout)) \
redis.call('PEXPIRE', KEYS[1], lockout + window) \
return {0, attempts, lockout}";

/// A fixed-window counter. KEYS[1] is the counter; ARGV is the limit and the
/// window (ms). Returns 0 when the request is within the limit, otherwise the
/// milliseconds until the window ends.
const HIT: &str = "\
local count = redis.call('INCR', KEYS[1]) \
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
if count <= tonumber(ARGV[1]) then return 0 end \
local left = redis.call('PTTL', KEYS[1]) \
if left < 1 then return tonumber(ARGV[2]) end \
return left";

pub struct RedisThrottle {
    connection: ConnectionManager,
    settings: RedisSettings,
    /// Requests per window of each limit, with the window in milliseconds.
    auth: (u32, u64),
    registration: (u32, u64),
}

impl RedisThrottle {
    pub fn new(
        connection: ConnectionManager,
        settings: RedisSettings,
        auth: (u32, u64),
        registration: (u32, u64),
    ) -> Self {
        Self {
            connection,
            settings,
            auth,
            registration,
        }
    }

    /// Keys name the account by a hash, so Redis contains no email addresses.
    fn pair_key(&self, email: &str, address: IpAddr) -> String {
        let digest = Sha256::digest(email.as_bytes());
        let account: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        self.settings
            .key(&format!("throttle:login:{account}:{address}"))
    }

    pub async fn begin_login(
        &self,
        email: &str,
        address: IpAddr,
        now: i64,
        policy: &LoginPolicy,
    ) -> Result<LoginStart, ThrottleUnavailable> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("EVAL");
        command
            .arg(BEGIN_LOGIN)
            .arg(1)
            .arg(self.pair_key(email, address))
            .arg(now)
            .arg(policy.window_ms)
            .arg(policy.max_failures);
        for lockout in &policy.schedule {
            command.arg(lockout);
        }
        let (retry_ms, attempts, lockout_ms): (u64, u32, u64) = command
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        if retry_ms > 0 {
            return Ok(LoginStart::Locked { retry_ms });
        }
        Ok(LoginStart::Allowed {
            attempts,
            lockout_ms: (lockout_ms > 0).then_some(lockout_ms),
        })
    }

    pub async fn clear_login(
        &self,
        email: &str,
        address: IpAddr,
    ) -> Result<(), ThrottleUnavailable> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(self.pair_key(email, address))
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    pub async fn hit(
        &self,
        limit: Limit,
        address: IpAddr,
    ) -> Result<Option<u64>, ThrottleUnavailable> {
        let (requests, window_ms) = match limit {
            Limit::Auth => self.auth,
            Limit::Registration => self.registration,
        };
        let key = self
            .settings
            .key(&format!("throttle:{}:{address}", limit.as_str()));
        let mut connection = self.connection.clone();
        let wait_ms: u64 = redis::cmd("EVAL")
            .arg(HIT)
            .arg(1)
            .arg(key)
            .arg(requests)
            .arg(window_ms)
            .query_async(&mut connection)
            .await
            .map_err(unavailable)?;
        Ok((wait_ms > 0).then_some(wait_ms))
    }
}

fn unavailable(error: redis::RedisError) -> ThrottleUnavailable {
    ThrottleUnavailable(error.to_string())
}
