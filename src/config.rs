//! Settings for `confab serve`, each a command-line flag with an environment
//! variable, validated as a whole before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};

use crate::http::client_address::TrustedProxies;
pub use crate::throttle::settings::ThrottleConfig;

/// Minimum length of an HS256 key in bytes; shorter keys are easy to brute-force.
pub const MIN_SECRET_BYTES: usize = 32;

/// Upper bound of `CONFAB_ACCESS_TOKEN_TTL`. It also keeps `iat + ttl` far
/// from overflowing the signed seconds used in claims.
pub const MAX_ACCESS_TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Upper bound of `CONFAB_CLOCK_LEEWAY`. jsonwebtoken 9 subtracts the leeway
/// from the current time in unsigned seconds, so an unbounded value would overflow.
pub const MAX_CLOCK_LEEWAY: Duration = Duration::from_secs(300);

/// OWASP's minimum Argon2id cost: 19 MiB of memory, 2 passes, 1 lane.
pub const ARGON2_MIN_MEMORY_KIB: u32 = 19 * 1024;
pub const ARGON2_MIN_ITERATIONS: u32 = 2;
pub const ARGON2_MIN_PARALLELISM: u32 = 1;

/// Upper bound of `CONFAB_REFRESH_GRACE_PERIOD`: during the grace period a
/// rotated refresh token still works, so a long one weakens theft detection.
pub const MAX_REFRESH_GRACE_PERIOD: Duration = Duration::from_secs(300);

/// Upper bound of `CONFAB_REFRESH_TOKEN_TTL`. Session expiry is stored as
/// milliseconds since the epoch, so an unbounded lifetime would overflow it.
pub const MAX_REFRESH_TOKEN_TTL: Duration = Duration::from_secs(365 * 24 * 3600);

/// Upper bound of `CONFAB_DB_STATEMENT_TIMEOUT`. PostgreSQL takes
/// `statement_timeout` as a 32-bit count of milliseconds, about 24.8 days.
pub const MAX_DB_STATEMENT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Default of `CONFAB_MIN_PASSWORD_SCORE`. The zxcvbn crate (3.1) documents
/// any score below 3, about 10^10 guesses, as too weak.
pub const DEFAULT_MIN_PASSWORD_SCORE: u8 = 3;

/// Deployment mode. Production refuses settings that are only safe on a laptop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Storage and logging settings shared by every subcommand that opens the database.
#[derive(Args, Clone, Debug)]
pub struct StorageConfig {
    /// Folder for the SQLite database and the generated JWT secret.
    #[arg(long, env = "CONFAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL (`sqlite://...` or `postgres://...`); default: confab.db in the data folder.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Maximum number of pooled database connections.
    #[arg(long, env = "CONFAB_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,

    /// How long a request waits for a free database connection before it fails with 503.
    #[arg(long, env = "CONFAB_DB_ACQUIRE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub db_acquire_timeout: Duration,

    /// How long one statement may run before the database cancels it (PostgreSQL only).
    #[arg(long, env = "CONFAB_DB_STATEMENT_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub db_statement_timeout: Duration,

    /// Log filter in `tracing` syntax, for example `info` or `confab=debug,info`.
    #[arg(long, env = "CONFAB_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `text` for people, `json` for log collectors.
    #[arg(long, env = "CONFAB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl StorageConfig {
    /// Returns the pool settings.
    pub fn pool_settings(&self) -> crate::store::PoolSettings {
        crate::store::PoolSettings {
            max_connections: self.db_pool_size,
            acquire_timeout: self.db_acquire_timeout,
            statement_timeout: self.db_statement_timeout,
        }
    }

    /// Returns the database URL, defaulting to `confab.db` inside the data folder.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("confab.db").display()
            ),
        }
    }
}

/// Every setting of `confab serve`.
#[derive(Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub storage: StorageConfig,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "CONFAB_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,

    /// `development` or `production`; production requires an explicit secret and CORS origins.
    #[arg(long = "env", env = "CONFAB_ENV", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,

    /// HS256 signing key, at least 32 bytes; generated into the data folder when unset outside production.
    #[arg(long, env = "CONFAB_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<SecretString>,

    /// Value of the `iss` claim in issued tokens, required on every presented token.
    #[arg(long, env = "CONFAB_JWT_ISSUER", default_value = "confab")]
    pub jwt_issuer: String,

    /// Value of the `aud` claim in issued tokens, required on every presented token.
    #[arg(long, env = "CONFAB_JWT_AUDIENCE", default_value = "confab-api")]
    pub jwt_audience: String,

    /// Lifetime of an access token, for example `30m` or `900s`; at most 24h.
    #[arg(long, env = "CONFAB_ACCESS_TOKEN_TTL", default_value = "30m", value_parser = parse_duration)]
    pub access_token_ttl: Duration,

    /// Tolerated clock difference when checking `exp`, `nbf` and `iat`; at most 5m.
    #[arg(long, env = "CONFAB_CLOCK_LEEWAY", default_value = "0s", value_parser = parse_duration)]
    pub clock_leeway: Duration,

    /// How often expired entries are removed from the revocation list.
    #[arg(long, env = "CONFAB_REVOCATION_PURGE_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub revocation_purge_interval: Duration,

    /// Lifetime of a refresh token, for example `14d`; each refresh issues a new one.
    #[arg(long, env = "CONFAB_REFRESH_TOKEN_TTL", default_value = "14d", value_parser = parse_duration)]
    pub refresh_token_ttl: Duration,

    /// How long after a rotation the old refresh token still returns the same successor; `0s` turns it off.
    #[arg(long, env = "CONFAB_REFRESH_GRACE_PERIOD", default_value = "10s", value_parser = parse_duration)]
    pub refresh_grace_period: Duration,

    /// How often cut-offs and ended sessions written by other processes are loaded from the database.
    #[arg(long, env = "CONFAB_REVOCATION_SYNC_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub revocation_sync_interval: Duration,

    /// Comma-separated exact origins allowed to call the API from a browser, or `*` (no credentials).
    #[arg(long, env = "CONFAB_CORS_ORIGINS")]
    pub cors_origins: Option<String>,

    /// Argon2id memory cost in KiB (at least 19456).
    #[arg(long, env = "CONFAB_ARGON2_MEMORY_KIB", default_value_t = ARGON2_MIN_MEMORY_KIB)]
    pub argon2_memory_kib: u32,

    /// Argon2id passes over memory (at least 2).
    #[arg(long, env = "CONFAB_ARGON2_ITERATIONS", default_value_t = ARGON2_MIN_ITERATIONS)]
    pub argon2_iterations: u32,

    /// Argon2id lanes (at least 1).
    #[arg(long, env = "CONFAB_ARGON2_PARALLELISM", default_value_t = ARGON2_MIN_PARALLELISM)]
    pub argon2_parallelism: u32,

    /// Password hashes computed at once; further logins wait. Default: the number of CPUs minus one, at least 1.
    #[arg(long, env = "CONFAB_HASH_CONCURRENCY")]
    pub hash_concurrency: Option<usize>,

    /// Largest accepted request body in bytes.
    #[arg(long, env = "CONFAB_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Time a client has to authenticate a WebSocket with its first frame.
    #[arg(long, env = "CONFAB_WS_AUTH_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub ws_auth_timeout: Duration,

    /// Interval between server pings on each WebSocket; a socket that misses two is dropped.
    #[arg(long, env = "CONFAB_WS_PING_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub ws_ping_interval: Duration,

    /// Address for `GET /metrics` (Prometheus text format); metrics are off when unset.
    #[arg(long, env = "CONFAB_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Redis URL (`redis://host:port/db`); moves the revocation list and cross-instance delivery to Redis.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Prefix of every Redis key and channel, so deployments can share one Redis.
    #[arg(long, env = "CONFAB_REDIS_PREFIX", default_value = "confab:")]
    pub redis_prefix: String,

    /// Longest wait for one Redis command; past it token checks fail closed with 503.
    #[arg(long, env = "CONFAB_REDIS_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub redis_timeout: Duration,

    /// Events queued for one socket before the server closes it as too slow (close code 4008).
    #[arg(long, env = "CONFAB_WS_QUEUE_CAPACITY", default_value_t = 256)]
    pub ws_queue_capacity: usize,

    /// Comma-separated IP addresses and CIDR networks of reverse proxies whose `X-Forwarded-For` is believed.
    #[arg(long, env = "CONFAB_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Lowest zxcvbn score (0 to 4) a new password needs.
    #[arg(long, env = "CONFAB_MIN_PASSWORD_SCORE", default_value_t = DEFAULT_MIN_PASSWORD_SCORE)]
    pub min_password_score: u8,

    #[command(flatten)]
    pub throttle: ThrottleConfig,

    /// Largest WebSocket message or frame a client may send, in bytes; a larger one closes the socket with 1009.
    #[arg(long, env = "CONFAB_WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_message_bytes: usize,

    /// Open WebSockets one user may hold on this instance; a further one is rejected (429 or close code 4029).
    #[arg(long, env = "CONFAB_WS_MAX_SOCKETS_PER_USER", default_value_t = 16)]
    pub ws_max_sockets_per_user: usize,

    /// Longest time a request may take before it is answered with 503; WebSocket upgrades are exempt.
    #[arg(long, env = "CONFAB_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest time shutdown waits for in-flight requests and socket close frames before the process exits.
    #[arg(long, env = "CONFAB_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// PEM file with the TLS certificate chain; with `CONFAB_TLS_KEY`, Confab serves HTTPS and WSS.
    #[arg(long, env = "CONFAB_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the TLS private key (PKCS#8, PKCS#1 or SEC1) matching `CONFAB_TLS_CERT`.
    #[arg(long, env = "CONFAB_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// `true` when a reverse proxy terminates TLS in front of Confab: allows plain HTTP in production and sends HSTS.
    #[arg(long, env = "CONFAB_BEHIND_TLS_PROXY", default_value_t = false, action = clap::ArgAction::Set)]
    pub behind_tls_proxy: bool,
}

/// A setting that cannot be used, with the variable that sets it.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

pub(crate) fn config_error(variable: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        variable,
        reason: reason.into(),
    }
}

/// Parses a duration such as `30m`, `900s` or `1h 30m`.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim()).map_err(|error| {
        format!("invalid duration {value:?} ({error}); write it like `30m` or `900s`")
    })
}

/// Cross-origin policy parsed from `CONFAB_CORS_ORIGINS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No cross-origin access: browsers block other sites from reading responses.
    Disabled,
    /// Any origin may call the API, but never with credentials.
    AnyOrigin,
    /// Only these exact origins, with credentials.
    Origins(Vec<String>),
}

impl Config {
    /// Returns the Redis settings when `REDIS_URL` is set.
    pub fn redis(&self) -> Option<crate::store::redis::RedisSettings> {
        self.redis_url
            .as_ref()
            .map(|url| crate::store::redis::RedisSettings {
                url: url.clone(),
                prefix: self.redis_prefix.clone(),
                timeout: self.redis_timeout,
            })
    }

    /// Checks the settings as a whole and names the first one that cannot be used.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let production = self.environment == Environment::Production;
        if production && self.jwt_secret.is_none() {
            return Err(config_error(
                "CONFAB_JWT_SECRET",
                "is required in production; set it to at least 32 random bytes",
            ));
        }
        // An empty list parses to no CORS at all, which is not an explicit choice of origins.
        if production && self.cors_policy()? == CorsPolicy::Disabled {
            return Err(config_error(
                "CONFAB_CORS_ORIGINS",
                "is required in production; list the exact origins of your web clients",
            ));
        }
        if let Some(secret) = &self.jwt_secret {
            let length = secret.expose_secret().len();
            if length < MIN_SECRET_BYTES {
                return Err(config_error(
                    "CONFAB_JWT_SECRET",
                    format!("is {length} bytes long; it must be at least {MIN_SECRET_BYTES} bytes"),
                ));
            }
        }
        self.cors_policy()?;
        if self.trusted_proxies.trusts_everyone() {
            return Err(config_error(
                "CONFAB_TRUSTED_PROXIES",
                "must not contain 0.0.0.0/0 or ::/0; that would let every client choose its own address",
            ));
        }
        check_min_password_score(self.min_password_score)?;
        self.throttle.validate()?;
        self.validate_transport()?;
        self.validate_limits()?;
        self.validate_runtime_limits()
    }

    /// Checks the TLS files and that production never serves plain HTTP to other hosts.
    fn validate_transport(&self) -> Result<(), ConfigError> {
        let tls = self.tls_settings()?;
        let exposed = !self.addr.ip().is_loopback();
        if self.environment == Environment::Production
            && tls.is_none()
            && exposed
            && !self.behind_tls_proxy
        {
            return Err(config_error(
                "CONFAB_TLS_CERT",
                format!(
                    "is required in production to serve on the non-loopback address {}; \
                     set CONFAB_TLS_CERT and CONFAB_TLS_KEY, or CONFAB_BEHIND_TLS_PROXY=true \
                     when a reverse proxy terminates TLS",
                    self.addr
                ),
            ));
        }
        Ok(())
    }

    fn validate_runtime_limits(&self) -> Result<(), ConfigError> {
        if self.ws_max_message_bytes < 1024 {
            return Err(config_error(
                "CONFAB_WS_MAX_MESSAGE_BYTES",
                "must be at least 1024",
            ));
        }
        if self.ws_max_sockets_per_user == 0 {
            return Err(config_error(
                "CONFAB_WS_MAX_SOCKETS_PER_USER",
                "must be at least 1",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(config_error(
                "CONFAB_REQUEST_TIMEOUT",
                "must be more than 0s",
            ));
        }
        if self.shutdown_grace.is_zero() {
            return Err(config_error(
                "CONFAB_SHUTDOWN_GRACE",
                "must be more than 0s",
            ));
        }
        Ok(())
    }

    /// Loads the TLS certificate and key when both are set; `None` when neither is.
    pub fn tls_settings(
        &self,
    ) -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (None, None) => Ok(None),
            (Some(_), None) => Err(config_error(
                "CONFAB_TLS_KEY",
                "is required when CONFAB_TLS_CERT is set; set both or neither",
            )),
            (None, Some(_)) => Err(config_error(
                "CONFAB_TLS_CERT",
                "is required when CONFAB_TLS_KEY is set; set both or neither",
            )),
            (Some(cert), Some(key)) => crate::http::tls::server_config(cert, key).map(Some),
        }
    }

    fn validate_limits(&self) -> Result<(), ConfigError> {
        if self.access_token_ttl < Duration::from_secs(1) {
            return Err(config_error(
                "CONFAB_ACCESS_TOKEN_TTL",
                "must be at least 1s",
            ));
        }
        if self.access_token_ttl > MAX_ACCESS_TOKEN_TTL {
            return Err(config_error(
                "CONFAB_ACCESS_TOKEN_TTL",
                "must be at most 24h; access tokens are short-lived and revocation entries live as long",
            ));
        }
        if self.clock_leeway > MAX_CLOCK_LEEWAY {
            return Err(config_error(
                "CONFAB_CLOCK_LEEWAY",
                "must be at most 5m; a larger leeway keeps expired tokens usable",
            ));
        }
        if self.revocation_purge_interval.is_zero() {
            return Err(config_error(
                "CONFAB_REVOCATION_PURGE_INTERVAL",
                "must be more than 0s",
            ));
        }
        self.validate_sessions()?;
        if self.argon2_memory_kib < ARGON2_MIN_MEMORY_KIB {
            return Err(config_error(
                "CONFAB_ARGON2_MEMORY_KIB",
                format!("must be at least {ARGON2_MIN_MEMORY_KIB} (OWASP minimum)"),
            ));
        }
        if self.argon2_iterations < ARGON2_MIN_ITERATIONS {
            return Err(config_error(
                "CONFAB_ARGON2_ITERATIONS",
                format!("must be at least {ARGON2_MIN_ITERATIONS} (OWASP minimum)"),
            ));
        }
        if self.argon2_parallelism < ARGON2_MIN_PARALLELISM {
            return Err(config_error(
                "CONFAB_ARGON2_PARALLELISM",
                "must be at least 1",
            ));
        }
        if self.hash_concurrency == Some(0) {
            return Err(config_error(
                "CONFAB_HASH_CONCURRENCY",
                "must be at least 1",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(config_error(
                "CONFAB_MAX_BODY_BYTES",
                "must be at least 1024",
            ));
        }
        if self.ws_queue_capacity == 0 {
            return Err(config_error(
                "CONFAB_WS_QUEUE_CAPACITY",
                "must be at least 1",
            ));
        }
        if self.ws_ping_interval.is_zero() {
            return Err(config_error(
                "CONFAB_WS_PING_INTERVAL",
                "must be more than 0s",
            ));
        }
        if self.redis_timeout.is_zero() {
            return Err(config_error("CONFAB_REDIS_TIMEOUT", "must be more than 0s"));
        }
        if self.storage.db_statement_timeout > MAX_DB_STATEMENT_TIMEOUT {
            return Err(config_error(
                "CONFAB_DB_STATEMENT_TIMEOUT",
                "must be at most 24h",
            ));
        }
        if self.storage.db_pool_size == 0 {
            return Err(config_error("CONFAB_DB_POOL_SIZE", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_sessions(&self) -> Result<(), ConfigError> {
        if self.refresh_token_ttl < self.access_token_ttl {
            return Err(config_error(
                "CONFAB_REFRESH_TOKEN_TTL",
                "must be at least CONFAB_ACCESS_TOKEN_TTL",
            ));
        }
        if self.refresh_token_ttl > MAX_REFRESH_TOKEN_TTL {
            return Err(config_error(
                "CONFAB_REFRESH_TOKEN_TTL",
                "must be at most 365d",
            ));
        }
        if self.refresh_grace_period > MAX_REFRESH_GRACE_PERIOD {
            return Err(config_error(
                "CONFAB_REFRESH_GRACE_PERIOD",
                "must be at most 5m; a rotated token is usable by anyone holding it for this long",
            ));
        }
        if self.revocation_sync_interval.is_zero() {
            return Err(config_error(
                "CONFAB_REVOCATION_SYNC_INTERVAL",
                "must be more than 0s",
            ));
        }
        Ok(())
    }

    /// Parses `CONFAB_CORS_ORIGINS` into a policy, rejecting origins a browser would never send.
    pub fn cors_policy(&self) -> Result<CorsPolicy, ConfigError> {
        let Some(raw) = &self.cors_origins else {
            return Ok(CorsPolicy::Disabled);
        };
        let origins: Vec<String> = raw
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect();
        if origins.is_empty() {
            return Ok(CorsPolicy::Disabled);
        }
        if origins.iter().any(|origin| origin == "*") {
            if origins.len() > 1 {
                return Err(config_error(
                    "CONFAB_CORS_ORIGINS",
                    "`*` cannot be combined with other origins",
                ));
            }
            return Ok(CorsPolicy::AnyOrigin);
        }
        for origin in &origins {
            check_origin(origin)?;
        }
        Ok(CorsPolicy::Origins(origins))
    }
}

/// Rejects a `CONFAB_MIN_PASSWORD_SCORE` outside zxcvbn's 0 to 4.
pub fn check_min_password_score(score: u8) -> Result<(), ConfigError> {
    if score > crate::auth::strength::MAX_SCORE {
        return Err(config_error(
            "CONFAB_MIN_PASSWORD_SCORE",
            format!("is {score}; it must be from 0 to 4"),
        ));
    }
    Ok(())
}

/// Accepts `scheme://host[:port]` with no path, which is the only form browsers send.
fn check_origin(origin: &str) -> Result<(), ConfigError> {
    let invalid = || {
        config_error(
            "CONFAB_CORS_ORIGINS",
            format!("invalid origin {origin:?}; write it as scheme://host[:port] with no path"),
        )
    };
    let (scheme, rest) = origin.split_once("://").ok_or_else(invalid)?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return Err(invalid());
    }
    if axum::http::HeaderValue::from_str(origin).is_err() {
        return Err(invalid());
    }
    Ok(())
}
