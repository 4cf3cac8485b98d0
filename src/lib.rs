//! Confab: a self-hosted chat server.
//!
//! [`Application::build`] turns a [`Config`] into a bound server, and
//! [`Application::run_until_stopped`] serves it; `main.rs` only parses the
//! command line. Tests and benchmarks start the real thing the same way.

pub mod admin;
pub mod auth;
pub mod chat;
pub mod cli;
pub mod config;
pub mod health;
pub mod http;
pub mod realtime;
mod server;
pub mod store;
pub mod telemetry;
pub mod throttle;
pub mod web;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use secrecy::ExposeSecret as _;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use auth::failed_logins::FailedLogins;
use auth::password::PasswordHasher;
use auth::redis_revocation::RedisRevocationList;
use auth::refresh::RefreshTokenKey;
use auth::revocation::{MemoryRevocationList, RevocationList};
use auth::token::TokenService;
pub use config::Config;
use realtime::Hub;
pub use server::shutdown_signal;
use store::files::ServerLock;
use store::{Backend, Store};

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<TokenService>,
    pub revocations: Arc<dyn RevocationList>,
    pub hasher: PasswordHasher,
    pub realtime: Hub,
    /// Connection used to check Redis for `/readyz`, when Redis is configured.
    pub redis: Option<redis::aio::ConnectionManager>,
    pub settings: Arc<Config>,
    /// Key that derives a refresh token's successor, taken from the JWT secret.
    pub refresh_key: Arc<RefreshTokenKey>,
    /// Failed logins of the last hour on this instance.
    pub failed_logins: Arc<FailedLogins>,
    /// Login throttle and per-address request limits.
    pub throttle: Arc<throttle::Throttle>,
    /// Keeps repeated audit events to one line per failure window.
    pub audit_repeats: Arc<auth::audit::RepeatLog>,
    /// Cross-origin policy; its origins may also refresh with the cookie.
    pub cors: Arc<config::CorsPolicy>,
}

/// A server bound to its address and ready to serve.
pub struct Application {
    listener: TcpListener,
    /// TLS settings of the API listener; `None` serves plain HTTP.
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    state: AppState,
    address: SocketAddr,
    /// Tasks that live as long as the server, such as the Redis subscriber.
    background: Vec<JoinHandle<()>>,
    metrics_listener: Option<TcpListener>,
    /// Keeps a second server off the same SQLite data folder while this one runs.
    _server_lock: Option<ServerLock>,
}

impl Application {
    /// Validates the configuration, prepares storage and keys, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        let layers = http::middleware::LayerSettings::from_config(&config)?;
        let tls = config.tls_settings()?;

        store::files::create_data_dir(&config.storage.data_dir)?;
        // Each process keeps its own revocation list and delivers events only
        // to its own sockets, so a second server on one SQLite database
        // would miss the first one's logouts.
        let server_lock = match Backend::from_url(&config.storage.database_url())? {
            Backend::Sqlite => Some(store::files::lock_data_dir(&config.storage.data_dir)?),
            Backend::Postgres => None,
        };
        let secret =
            auth::secret::load_or_generate(config.jwt_secret.as_ref(), &config.storage.data_dir)?;
        let store = connect_store(&config.storage).await?;

        let tokens = TokenService::new(
            secret.expose_secret(),
            &config.jwt_issuer,
            &config.jwt_audience,
            config.access_token_ttl,
            config.clock_leeway,
        );
        let concurrency = config
            .hash_concurrency
            .unwrap_or_else(|| default_hash_concurrency(std::thread::available_parallelism().ok()));
        let hasher = PasswordHasher::new(
            config.argon2_memory_kib,
            config.argon2_iterations,
            config.argon2_parallelism,
            concurrency,
        )
        .await?;

        let realtime = Hub::new(config.ws_queue_capacity, config.ws_max_sockets_per_user);
        let mut background = Vec::new();
        let (revocations, redis): (Arc<dyn RevocationList>, _) = match config.redis() {
            Some(settings) => {
                let list = RedisRevocationList::connect(settings.clone()).await?;
                let (bus, tasks) = realtime::bus::start(settings.clone(), realtime.clone()).await?;
                realtime.attach_bus(bus);
                background.extend(tasks);
                let probe = settings.connect().await?;
                (Arc::new(list), Some(probe))
            }
            None => (Arc::new(MemoryRevocationList::new()), None),
        };
        // Cut-offs and ended sessions live in the database; loading them
        // keeps a restart from reviving the access tokens they rejected.
        let horizon = auth::sessions::revocation_horizon(&tokens, auth::unix_now());
        let loaded = auth::sessions::load_revocations(
            &store,
            revocations.as_ref(),
            &tokens,
            &realtime,
            horizon,
        )
        .await
        .context("failed to load revocations from the database")?;
        tracing::info!(loaded, "revocations loaded");

        let throttle = throttle::Throttle::new(&config.throttle, redis.clone().zip(config.redis()));
        let state = AppState {
            store,
            refresh_key: Arc::new(RefreshTokenKey::new(secret.expose_secret())),
            tokens: Arc::new(tokens),
            revocations,
            hasher,
            realtime,
            redis,
            settings: Arc::new(config.clone()),
            failed_logins: Arc::new(FailedLogins::new()),
            throttle: Arc::new(throttle),
            audit_repeats: Arc::new(auth::audit::RepeatLog::new(
                config.throttle.login_failure_window,
            )),
            cors: Arc::new(layers.cors.clone()),
        };
        let router = http::middleware::apply(app_routes(state.clone()), &layers).layer(
            axum::middleware::from_fn(telemetry::metrics::track_requests),
        );
        telemetry::metrics::recorder();

        let listener = TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("failed to listen on {}", config.addr))?;
        let address = listener.local_addr()?;
        let metrics_listener = match config.metrics_addr {
            Some(address) => Some(telemetry::metrics::bind(address).await?),
            None => None,
        };
        Ok(Self {
            listener,
            tls,
            router,
            state,
            address,
            background,
            metrics_listener,
            _server_lock: server_lock,
        })
    }

    /// Returns the address actually bound, useful when the port was 0.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Returns the address serving `/metrics`, when metrics are on.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes. Then it stops accepting, closes
    /// WebSockets with 1001, lets in-flight requests finish and closes the
    /// database, all within `CONFAB_SHUTDOWN_GRACE` of the signal. Requests
    /// still running at the end of the grace period are cut off.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let metrics_server = self
            .metrics_listener
            .map(|listener| telemetry::metrics::serve(listener, self.state.clone()));
        let purge = spawn_revocation_purge(
            self.state.revocations.clone(),
            self.state.settings.revocation_purge_interval,
        );
        let sync = auth::sessions::spawn_revocation_sync(
            self.state.clone(),
            self.state.settings.revocation_sync_interval,
        );
        let throttle_purge = throttle::spawn_purge(self.state.clone());
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(address = %self.address, "confab is serving on {scheme}://{}", self.address);

        let grace = self.state.settings.shutdown_grace;
        let handle = axum_server::Handle::new();
        let (stopping, mut stopping_at) = oneshot::channel::<Instant>();
        let trigger = tokio::spawn({
            let handle = handle.clone();
            let realtime = self.state.realtime.clone();
            async move {
                shutdown.await;
                let _ = stopping.send(Instant::now());
                tracing::info!(
                    grace_ms = grace.as_millis() as u64,
                    open_sockets = realtime.open_sockets(),
                    "shutting down"
                );
                handle.graceful_shutdown(Some(grace));
                // Upgraded sockets are not connections the HTTP server
                // tracks: they are closed here, with 1001.
                realtime.close_all();
            }
        });
        let result = server::serve(self.listener, self.tls, self.router, handle).await;
        trigger.abort();

        purge.abort();
        sync.abort();
        throttle_purge.abort();
        if let Some(task) = metrics_server {
            task.abort();
        }
        self.background.iter().for_each(JoinHandle::abort);
        // Socket tasks deregister only after their close frame is out; wait
        // for them, but not past the grace period.
        let deadline = stopping_at
            .try_recv()
            .map_or_else(|_| Instant::now(), |at| at + grace);
        let realtime = &self.state.realtime;
        while realtime.open_sockets() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if realtime.open_sockets() > 0 {
            tracing::warn!(
                open_sockets = realtime.open_sockets(),
                "grace period over; dropping sockets that did not close"
            );
        }
        self.state.store.close().await;
        tracing::info!("confab stopped");
        result
    }

    /// Serves until Ctrl-C or SIGTERM.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }
}

/// Returns how many password hashes may run at once by default: one core
/// fewer than the machine has, so a storm of logins always leaves a core to
/// answer other requests.
fn default_hash_concurrency(cpus: Option<std::num::NonZeroUsize>) -> usize {
    cpus.map_or(1, |cpus| cpus.get().saturating_sub(1).max(1))
}

/// Builds every API route together with its OpenAPI description, for the
/// document. The router and `/openapi.json` come from this one list, so no
/// API route is served undocumented.
pub fn api_routes() -> OpenApiRouter<AppState> {
    documented_routes(auth::router())
}

/// Builds every route with its state; the cross-cutting layers are added by the caller.
pub fn app_routes(state: AppState) -> Router {
    let auth = auth::router().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        throttle::limit_auth_requests,
    ));
    let (router, _document) = documented_routes(auth).split_for_parts();
    // The web client's files are documents for browsers, not API operations,
    // so they stay out of the OpenAPI document.
    router
        .merge(web::router())
        .fallback(http::middleware::not_found)
        .method_not_allowed_fallback(http::middleware::method_not_allowed)
        .with_state(state)
}

/// Merges the `/auth` routes, which the server wraps in its request limit
/// and the document takes as they are, with every other route.
fn documented_routes(auth: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(http::openapi::ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(http::openapi::serve_document))
        .merge(http::openapi::throttled(auth))
        .merge(admin::router())
        .merge(chat::router())
        .merge(realtime::router())
}

pub(crate) async fn connect_store(storage: &config::StorageConfig) -> anyhow::Result<Store> {
    Store::connect(&storage.database_url(), &storage.pool_settings()).await
}

/// Applies migrations and exits (`confab migrate`).
pub async fn migrate(storage: &config::StorageConfig) -> anyhow::Result<()> {
    store::files::create_data_dir(&storage.data_dir)?;
    let store = connect_store(storage).await?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// Purges expired revocations on a fixed interval and logs the remaining count.
fn spawn_revocation_purge(list: Arc<dyn RevocationList>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let purged = list.purge_expired(auth::unix_now()).await;
            let remaining = list.count().await;
            match (purged, remaining) {
                (Ok(purged), Ok(remaining)) => {
                    tracing::info!(purged, remaining, "revocation list purged")
                }
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(%error, "revocation purge failed")
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroUsize;

    use super::default_hash_concurrency;

    #[test]
    fn hashing_leaves_one_core_free() {
        assert_eq!(default_hash_concurrency(NonZeroUsize::new(1)), 1);
        assert_eq!(default_hash_concurrency(NonZeroUsize::new(2)), 1);
        assert_eq!(default_hash_concurrency(NonZeroUsize::new(8)), 7);
        assert_eq!(default_hash_concurrency(None), 1);
    }
}
