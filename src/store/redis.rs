//! Connections to Redis, shared by the revocation list and the event bus.

use std::time::Duration;

use anyhow::Context as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Where Redis is and how long to wait for it.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub url: String,
    /// Prepended to every key and channel, so several deployments can share one Redis.
    pub prefix: String,
    /// Upper bound on one command's round trip; past it the request fails closed.
    pub timeout: Duration,
}

impl RedisSettings {
    /// Returns `key` with the configured prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub fn client(&self) -> anyhow::Result<redis::Client> {
        redis::Client::open(self.url.as_str()).context("REDIS_URL is not a valid Redis URL")
    }

    /// Opens a multiplexed connection that reconnects by itself after a failure.
    pub async fn connect(&self) -> anyhow::Result<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(self.timeout)
            .set_response_timeout(self.timeout)
            // Retries happen on the next command; the first failure is reported at once.
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        self.client()?
            .get_connection_manager_with_config(config)
            .await
            .context("failed to connect to Redis")
    }
}
