//! Revocation list in Redis, shared by every instance.
//!
//! Each revoked token id is a key that Redis expires by itself at the
//! token's own expiry (`EXAT`), so lookups are one `EXISTS`. A sorted set
//! scored by expiry keeps the count available without scanning keys.

use async_trait::async_trait;
use redis::aio::ConnectionManager;

use super::revocation::{RevocationList, RevocationUnavailable, TokenStatus};
use crate::store::redis::RedisSettings;

/// Stores a cut-off unless a later one is already stored, so it never moves
/// back, and lets Redis drop it once every token it covers has expired.
const RAISE_CUTOFF: &str = "\
local current = redis.call('GET', KEYS[1]) \
if (not current) or tonumber(current) < tonumber(ARGV[1]) then \
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[2]) \
end \
return 1";

/// Revocation list stored in Redis. Every error is reported as
/// [`RevocationUnavailable`], which callers turn into a rejection (fail closed).
#[derive(Clone)]
pub struct RedisRevocationList {
    connection: ConnectionManager,
    settings: RedisSettings,
    index_key: String,
}

impl RedisRevocationList {
    /// Connects to Redis; fails when it cannot be reached at start.
    pub async fn connect(settings: RedisSettings) -> anyhow::Result<Self> {
        let connection = settings.connect().await?;
        let index_key = settings.key("revoked-index");
        Ok(Self {
            connection,
            settings,
            index_key,
        })
    }

    fn token_key(&self, token_id: u128) -> String {
        self.settings.key(&format!("revoked:{token_id:032x}"))
    }

    fn cutoff_key(&self, user_id: i64) -> String {
        self.settings.key(&format!("cutoff:{user_id}"))
    }
}

fn unavailable(error: redis::RedisError) -> RevocationUnavailable {
    RevocationUnavailable(error.to_string())
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke(&self, token_id: u128, expires_at: i64) -> Result<(), RevocationUnavailable> {
        if expires_at <= super::unix_now() {
            // The token is already expired, so there is nothing left to revoke.
            return Ok(());
        }
        let mut connection = self.connection.clone();
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.token_key(token_id))
            .arg(1)
            .arg("EXAT")
            .arg(expires_at)
            .ignore()
            .cmd("ZADD")
            .arg(&self.index_key)
            .arg(expires_at)
            .arg(format!("{token_id:032x}"))
            .ignore()
            .query_async::<()>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn is_revoked(&self, token_id: u128, _now: i64) -> Result<bool, RevocationUnavailable> {
        let mut connection = self.connection.clone();
        redis::cmd("EXISTS")
            .arg(self.token_key(token_id))
            .query_async::<bool>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, RevocationUnavailable> {
        // The token keys expire by themselves; only the counting index needs trimming.
        let mut connection = self.connection.clone();
        redis::cmd("ZREMRANGEBYSCORE")
            .arg(&self.index_key)
            .arg("-inf")
            .arg(now)
            .query_async::<usize>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn count(&self) -> Result<usize, RevocationUnavailable> {
        let mut connection = self.connection.clone();
        redis::cmd("ZCOUNT")
            .arg(&self.index_key)
            .arg(format!("({}", super::unix_now()))
            .arg("+inf")
            .query_async::<usize>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn set_user_cutoff(
        &self,
        user_id: i64,
        cutoff: i64,
        expires_at: i64,
    ) -> Result<(), RevocationUnavailable> {
        if expires_at <= super::unix_now() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        redis::cmd("EVAL")
            .arg(RAISE_CUTOFF)
            .arg(1)
            .arg(self.cutoff_key(user_id))
            .arg(cutoff)
            .arg(expires_at)
            .query_async::<i64>(&mut connection)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn user_cutoff(&self, user_id: i64) -> Result<Option<i64>, RevocationUnavailable> {
        let mut connection = self.connection.clone();
        redis::cmd("GET")
            .arg(self.cutoff_key(user_id))
            .query_async::<Option<i64>>(&mut connection)
            .await
            .map_err(unavailable)
    }

    async fn token_status(
        &self,
        token_id: u128,
        session_id: u128,
        user_id: i64,
        _now: i64,
    ) -> Result<TokenStatus, RevocationUnavailable> {
        let mut connection = self.connection.clone();
        let (token_revoked, session_revoked, user_cutoff): (bool, bool, Option<i64>) =
            redis::pipe()
                .cmd("EXISTS")
                .arg(self.token_key(token_id))
                .cmd("EXISTS")
                .arg(self.token_key(session_id))
                .cmd("GET")
                .arg(self.cutoff_key(user_id))
                .query_async(&mut connection)
                .await
                .map_err(unavailable)?;
        Ok(TokenStatus {
            token_revoked,
            session_revoked,
            user_cutoff,
        })
    }
}
