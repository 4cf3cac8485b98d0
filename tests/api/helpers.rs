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
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Signing key used by test servers, so tests can forge tokens with it.
pub const TEST_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

pub const PASSWORD: &str = "correct horse battery staple";

/// A running server and a client for it.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub config: Config,
    data_dir: Option<TempDir>,
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
pub async fn spawn_app_with(customize: impl FnOnce(&mut Config)) -> TestApp {
    let data_dir = tempfile::tempdir().expect("failed to create a temporary folder");
    let mut config = test_config(data_dir.path());
    customize(&mut config);
    let mut app = start(config).await;
    app.data_dir = Some(data_dir);
    app
}

/// Starts a server with exactly this configuration (its data folder is not removed afterwards).
pub async fn start(config: Config) -> TestApp {
    init_logging();
    let application = Application::build(config.clone())
        .await
        .expect("failed to build the application");
    let address = application.address();
    let state = application.state().clone();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(application.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        state,
        config,
        data_dir: None,
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

    /// Stops the server gracefully and returns its data folder, so a test can restart on it.
    pub async fn stop(mut self) -> Option<TempDir> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task panicked")
                .expect("server failed");
        }
        self.data_dir.take()
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
