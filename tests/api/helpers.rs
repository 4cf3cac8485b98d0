//! Test harness: every test gets its own server on an ephemeral port, with a
//! fresh data folder and SQLite database, reached over real HTTP.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]
use std::net::SocketAddr;

use clap::Parser as _;
use confab::cli::Cli;
use confab::{AppState, Application, Config};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::Connection as _;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Signing key used by test servers, so tests can forge tokens with it.
pub const TEST_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

pub const PASSWORD: &str = "correct horse battery staple";

/// A running server and a client for it.
pub struct TestApp {
    pub address: SocketAddr,
    /// Address of `/metrics`, when the test turned metrics on.
    pub metrics_address: Option<SocketAddr>,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    data_dir: Option<TempDir>,
    /// PostgreSQL schema created for this test, dropped with the app.
    schema: Option<TestSchema>,
    /// Redis key prefix of this test, whose keys are deleted with the app.
    redis: Option<TestRedis>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Returns the configuration every test server starts from.
pub fn test_config(data_dir: &std::path::Path) -> Config {
    let mut config = Cli::parse_from(["confab"]).serve;
    config.addr = "127.0.0.1:0".parse().unwrap();
    config.storage.data_dir = data_dir.to_path_buf();
    config.storage.database_url = None;
    config.storage.log = "warn".to_owned();
    config.jwt_secret = Some(SecretString::from(TEST_SECRET.to_owned()));
    config.cors_origins = None;
    config.environment = confab::config::Environment::Development;
    // Tests register and call many accounts from 127.0.0.1; the throttle
    // tests set small limits of their own.
    config.throttle.auth_requests_per_minute = 100_000;
    config.throttle.registrations_per_hour = 100_000;
    config
}

fn init_logging() {
    // Set TEST_LOG=debug to see server logs while debugging a test.
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = confab::telemetry::init(&filter, confab::config::LogFormat::Text);
    }
}

/// Starts a server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server after `customize` has adjusted the settings.
///
/// With `CONFAB_TEST_BACKEND=postgres` (and `CONFAB_TEST_DATABASE_URL`), the
/// server stores into a fresh PostgreSQL schema instead of SQLite, and with
/// `CONFAB_TEST_REDIS_URL` also set, keeps revocations and delivery in Redis
/// under a fresh key prefix, so the whole suite runs on the scale-out setup.
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("failed to create a temporary folder");
    let mut config = test_config(data_dir.path());
    let schema = match std::env::var("CONFAB_TEST_BACKEND").as_deref() {
        Ok("postgres") => {
            let schema = TestSchema::create()
                .await
                .expect("CONFAB_TEST_BACKEND=postgres needs CONFAB_TEST_DATABASE_URL to be set");
            config.storage.database_url = Some(schema.url.clone());
            Some(schema)
        }
        _ => None,
    };
    let redis = match schema {
        Some(_) => TestRedis::new(),
        None => None,
    };
    if let Some(redis) = &redis {
        config.redis_url = Some(redis.url.clone());
        config.redis_prefix = redis.prefix.clone();
    }
    customize(&mut config);
    let mut app = start(config).await;
    app.data_dir = Some(data_dir);
    app.schema = schema;
    app.redis = redis;
    app
}

/// A Redis key prefix private to one test; its keys are deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// Picks a fresh prefix in `CONFAB_TEST_REDIS_URL`; `None` when the variable is unset.
    pub fn new() -> Option<Self> {
        let url = std::env::var("CONFAB_TEST_REDIS_URL").ok()?;
        Some(Self {
            url,
            prefix: format!("confab_test_{}:", uuid_like()),
        })
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let url = self.url.clone();
        let pattern = format!("{}*", self.prefix);
        // Blocking client on its own thread: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut connection) = client.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(pattern)
                .query(&mut connection)
                .unwrap_or_default();
            if !keys.is_empty() {
                let _: redis::RedisResult<()> = redis::cmd("DEL").arg(keys).query(&mut connection);
            }
        })
        .join();
    }
}

/// A PostgreSQL schema private to one test, dropped when the value is.
pub struct TestSchema {
    pub name: String,
    /// Database URL whose connections use only this schema.
    pub url: String,
    admin_url: String,
}

impl TestSchema {
    /// Creates a schema in `CONFAB_TEST_DATABASE_URL`; `None` when the variable is unset.
    pub async fn create() -> Option<Self> {
        let admin_url = std::env::var("CONFAB_TEST_DATABASE_URL").ok()?;
        let name = format!("confab_test_{}", uuid_like());
        let mut connection = sqlx::PgConnection::connect(&admin_url)
            .await
            .expect("failed to connect to CONFAB_TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut connection)
            .await
            .expect("failed to create the test schema");
        let separator = if admin_url.contains('?') { '&' } else { '?' };
        // The application name tags the server's connections, so Drop can end
        // them: a background task of a server that is still shutting down
        // may hold a lock that DROP SCHEMA would otherwise wait for forever.
        let url = format!(
            "{admin_url}{separator}options=-c%20search_path%3D{name}&application_name={name}"
        );
        Some(Self {
            name,
            url,
            admin_url,
        })
    }
}

impl Drop for TestSchema {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and the test's runtime may be shutting down, so
        // the schema is removed on a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("failed to build a runtime");
            runtime.block_on(async move {
                if let Ok(mut connection) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE application_name = $1",
                    )
                    .bind(&name)
                    .execute(&mut connection)
                    .await;
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut connection)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Returns a random lowercase identifier part, unique enough for parallel tests.
pub fn uuid_like() -> String {
    use rand::Rng as _;
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| char::from(b'a' + rng.gen_range(0..26u8)))
        .collect()
}

/// Starts a server with exactly this configuration; its data folder and database are left in place.
pub async fn start(config: Config) -> TestApp {
    init_logging();
    let application = Application::build(config.clone())
        .await
        .expect("failed to build the application");
    let address = application.address();
    let metrics_address = application.metrics_address();
    let state = application.state().clone();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        metrics_address,
        client: reqwest::Client::new(),
        state,
        config,
        data_dir: None,
        schema: None,
        redis: None,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.address, path)
    }

    /// Stops the server gracefully: in-flight requests finish, sockets close.
    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }

    /// Stops the server gracefully and starts a new one on the same
    /// configuration, data folder and database.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown_and_wait().await;
        let mut restarted = start(self.config.clone()).await;
        restarted.data_dir = self.data_dir.take();
        restarted.schema = self.schema.take();
        restarted.redis = self.redis.take();
        restarted
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task panicked")
                .expect("server failed");
        }
    }

    pub async fn post_json(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request failed")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request failed")
    }

    /// Registers `email` with the shared test password and returns the whole response body.
    pub async fn register(&self, email: &str) -> Value {
        let response = self
            .post_json(
                "/auth/register",
                &json!({ "email": email, "password": PASSWORD }),
                None,
            )
            .await;
        assert_eq!(response.status(), 201, "registration of {email} failed");
        response.json().await.unwrap()
    }

    /// Registers `email` and returns its user id and access token.
    pub async fn user(&self, email: &str) -> (i64, String) {
        let body = self.register(email).await;
        (
            body["user"]["id"].as_i64().unwrap(),
            body["access_token"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Close the pool before the schema goes, so DROP SCHEMA does not wait on it.
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Asserts a problem+json error with this status and code, and returns its body.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "unexpected problem: {body}");
    assert_eq!(body["status"], status);
    assert!(body["type"].is_string());
    assert!(body["title"].is_string());
    assert!(body["detail"].is_string());
    body
}
