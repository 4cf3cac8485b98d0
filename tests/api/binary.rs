//! The `confab` binary itself: start-up with no settings, its log lines,
//! that no credential ever reaches them, and shutdown on SIGTERM.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

use crate::helpers::{register_at, PASSWORD};
use crate::ws::close_code;

/// A `confab` process and the lines it has written to stderr.
struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    base_url: String,
}

impl Server {
    /// Starts the binary with only `env` set (plus a free port and `data_dir`)
    /// and waits for the line that names the address it serves.
    fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .env_clear()
            .env("CONFAB_ADDR", "127.0.0.1:0")
            .env("CONFAB_DATA_DIR", data_dir)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start the confab binary");
        let stderr = child.stderr.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            lines,
            seen: Vec::new(),
            base_url: String::new(),
        };
        server.base_url = server.wait_for_address();
        server
    }

    fn wait_for_address(&mut self) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .expect("the server never logged its address");
            self.seen.push(line.clone());
            if let Some((_, rest)) = line.split_once("serving on http://") {
                let address: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return format!("http://{address}");
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Waits until `count` logged lines in all contain `text`.
    fn wait_for_lines(&mut self, text: &str, count: usize) {
        let mut found = self.seen.iter().filter(|line| line.contains(text)).count();
        while found < count {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the server logged {text:?} only {found} times"));
            found += usize::from(line.contains(text));
            self.seen.push(line);
        }
    }

    /// Sends SIGTERM, as a service manager does to stop the process.
    fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("failed to run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `within` for the process to exit and returns its status.
    fn wait_exit(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the process did not exit within {within:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the process and returns every line it logged.
    fn stop(mut self) -> Vec<String> {
        self.child.kill().expect("failed to stop the server");
        self.child.wait().unwrap();
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.iter());
        lines
    }
}

#[tokio::test]
async fn binary_starts_with_defaults() {
    let folder = tempfile::tempdir().unwrap();
    let data_dir = folder.path().join("data");
    let server = Server::start(&data_dir, &[]);

    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(data_dir.join("confab.db").exists());
    assert!(data_dir.join("jwt-secret").exists());

    let lines = server.stop();
    let serving: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("serving on"))
        .collect();
    assert_eq!(serving.len(), 1, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|line| line.contains("WARN") && line.contains("jwt-secret")),
        "no warning names the generated secret file: {lines:#?}"
    );
}

/// Returns the parsed JSON log lines with this `event` field.
fn events<'a>(lines: &'a [Value], event: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["fields"]["event"] == event)
        .collect()
}

#[tokio::test]
async fn logs_are_json_and_hold_no_credentials() {
    let folder = tempfile::tempdir().unwrap();
    let secret = "json-log-test-secret-that-is-long-enough";
    let server = Server::start(
        folder.path(),
        &[
            ("CONFAB_LOG_FORMAT", "json"),
            ("CONFAB_LOG", "debug"),
            ("CONFAB_JWT_SECRET", secret),
        ],
    );
    let client = reqwest::Client::new();
    let credentials = json!({ "email": "logs@example.test", "password": PASSWORD });
    let registered: Value = client
        .post(server.url("/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let user_id = registered["user"]["id"].as_i64().unwrap();

    let login = client
        .post(server.url("/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = json!({ "email": "logs@example.test", "password": "wrong password 123" });
    let failed = client
        .post(server.url("/auth/login"))
        .json(&wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let unknown = json!({ "email": "nobody@example.test", "password": PASSWORD });
    let failed = client
        .post(server.url("/auth/login"))
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let bad_token = client
        .get(server.url("/auth/me"))
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad_token.status(), 401);
    let logout = client
        .post(server.url("/auth/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);

    let raw = server.stop();
    let lines: Vec<Value> = raw
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();

    let secrets = [PASSWORD, "wrong password 123", &token, secret, "$argon2"];
    for line in &raw {
        for secret in secrets {
            assert!(!line.contains(secret), "a credential was logged: {line}");
        }
    }

    let logins = events(&lines, "login");
    assert_eq!(logins.len(), 3, "{logins:#?}");
    let success = &logins[0]["fields"];
    assert_eq!(success["result"], "success");
    assert_eq!(success["user_id"], user_id);
    assert_eq!(success["client"], "127.0.0.1");
    let wrong_password = &logins[1]["fields"];
    assert_eq!(wrong_password["result"], "failure");
    assert_eq!(wrong_password["user_id"], user_id, "the user is known");
    assert_eq!(wrong_password["client"], "127.0.0.1");
    let unknown_email = &logins[2]["fields"];
    assert_eq!(unknown_email["result"], "failure");
    assert!(unknown_email.get("user_id").is_none());
    assert_eq!(events(&lines, "logout").len(), 1);
}

#[tokio::test]
async fn sigterm_finishes_request_and_closes_sockets() {
    let folder = tempfile::tempdir().unwrap();
    let grace = Duration::from_secs(10);
    let mut server = Server::start(
        folder.path(),
        &[
            ("CONFAB_SHUTDOWN_GRACE", "10s"),
            // The request span's start event shows when a request is in flight.
            ("CONFAB_LOG", "info,tower_http=debug"),
        ],
    );
    let registered = register_at(
        &reqwest::Client::new(),
        &server.url("/auth/register"),
        "term@example.test",
    )
    .await;
    let token = registered["access_token"].as_str().unwrap();

    let ws_url = server.url("/ws").replacen("http://", "ws://", 1);
    let mut request = ws_url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    // A request whose body is only half sent stays in flight until the rest arrives.
    let body = json!({ "email": "late@example.test", "password": PASSWORD }).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    let address = server.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /auth/register HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first_half.as_bytes()).await.unwrap();
    // Registration, the upgrade and this request.
    server.wait_for_lines("started processing request", 3);

    server.terminate();
    server.wait_for_lines("shutdown requested", 1);
    assert_eq!(close_code(&mut socket, grace).await, 1001);

    stream.write_all(second_half.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight request did not complete: {response}"
    );

    let status = server.wait_exit(grace);
    assert!(status.success(), "exit status {status}");
}
