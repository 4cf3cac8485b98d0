//! HTTPS and WSS with a certificate generated at test time, HSTS, and the
//! start-up checks on the TLS settings.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use confab::config::Environment;
use confab::http::tls::crypto_provider;
use confab::Config;
use serde_json::json;
use tempfile::TempDir;
use tokio_tungstenite::Connector;

use crate::helpers::{register_at, spawn_app_with, test_config, TestApp, PASSWORD};
use crate::ws::{next_event, send_json};

const HSTS: &str = "max-age=31536000; includeSubDomains";

/// A self-signed certificate for 127.0.0.1 and localhost, written as PEM files.
struct TestCert {
    folder: TempDir,
    cert_path: PathBuf,
    key_path: PathBuf,
    cert_pem: String,
}

impl TestCert {
    fn generate() -> Self {
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let generated =
            rcgen::generate_simple_self_signed(names).expect("failed to generate a certificate");
        let folder = tempfile::tempdir().unwrap();
        let cert_pem = generated.cert.pem();
        let cert_path = write(folder.path(), "cert.pem", &cert_pem);
        let key_path = write(
            folder.path(),
            "key.pem",
            &generated.signing_key.serialize_pem(),
        );
        Self {
            folder,
            cert_path,
            key_path,
            cert_pem,
        }
    }

    fn apply(&self, config: &mut Config) {
        config.tls_cert = Some(self.cert_path.clone());
        config.tls_key = Some(self.key_path.clone());
    }

    /// Returns an HTTPS client that trusts only this certificate.
    fn client(&self) -> reqwest::Client {
        let certificate = reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap();
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(certificate)
            .build()
            .unwrap()
    }

    /// Returns a rustls client configuration that trusts only this certificate.
    fn rustls_client(&self) -> Arc<rustls::ClientConfig> {
        use rustls::pki_types::pem::PemObject as _;

        let mut roots = rustls::RootCertStore::empty();
        let der =
            rustls::pki_types::CertificateDer::from_pem_slice(self.cert_pem.as_bytes()).unwrap();
        roots.add(der).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }
}

fn write(folder: &Path, name: &str, contents: &str) -> PathBuf {
    let path = folder.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn https_url(app: &TestApp, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", app.address.port())
}

#[tokio::test]
async fn https_serves_api_with_hsts() {
    let cert = TestCert::generate();
    let app = spawn_app_with(|config| cert.apply(config)).await;
    let client = cert.client();

    let health = client
        .get(https_url(&app, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["strict-transport-security"], HSTS);

    let credentials = json!({ "email": "tls@example.test", "password": PASSWORD });
    let registered = client
        .post(https_url(&app, "/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    assert_eq!(registered.headers()["strict-transport-security"], HSTS);

    let missing = client
        .get(https_url(&app, "/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.headers()["strict-transport-security"],
        HSTS,
        "error responses carry HSTS too"
    );
}

#[tokio::test]
async fn https_listener_rejects_plain_http() {
    let cert = TestCert::generate();
    let app = spawn_app_with(|config| cert.apply(config)).await;
    let plain = reqwest::get(app.url("/healthz")).await;
    assert!(
        plain.is_err() || plain.is_ok_and(|response| response.status() != 200),
        "plain HTTP was served on the TLS listener"
    );
}

#[tokio::test]
async fn untrusted_certificate_is_rejected_by_client() {
    let cert = TestCert::generate();
    let other = TestCert::generate();
    let app = spawn_app_with(|config| cert.apply(config)).await;
    let result = other.client().get(https_url(&app, "/healthz")).send().await;
    assert!(
        result.is_err(),
        "a client trusting another certificate connected"
    );
}

#[tokio::test]
async fn wss_authenticates_with_first_frame() {
    let cert = TestCert::generate();
    let app = spawn_app_with(|config| cert.apply(config)).await;
    let registered = register_at(
        &cert.client(),
        &https_url(&app, "/auth/register"),
        "wss@example.test",
    )
    .await;
    let token = registered["access_token"].as_str().unwrap();
    let user_id = registered["user"]["id"].as_i64().unwrap();

    let url = format!("wss://127.0.0.1:{}/ws", app.address.port());
    let connector = Connector::Rustls(cert.rustls_client());
    let (mut socket, response) =
        tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(connector))
            .await
            .expect("WSS connect failed");
    assert_eq!(response.headers()["strict-transport-security"], HSTS);

    send_json(&mut socket, &json!({ "type": "auth", "token": token })).await;
    let ready = next_event(&mut socket).await;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["user_id"], user_id);
}

#[tokio::test]
async fn plain_http_has_no_hsts() {
    let app = spawn_app_with(|_| {}).await;
    let response = app.get("/healthz", None).await;
    assert!(response
        .headers()
        .get("strict-transport-security")
        .is_none());
}

#[tokio::test]
async fn tls_proxy_flag_sends_hsts() {
    let app = spawn_app_with(|config| config.behind_tls_proxy = true).await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.headers()["strict-transport-security"], HSTS);
}

/// Returns the validation error of `config` as text.
fn validation_error(config: &Config) -> String {
    config
        .validate()
        .expect_err("the configuration was accepted")
        .to_string()
}

#[test]
fn cert_without_key_is_rejected() {
    let cert = TestCert::generate();
    let mut config = test_config(cert.folder.path());
    config.tls_cert = Some(cert.cert_path.clone());
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_KEY:"), "{error}");
    assert!(error.contains("both or neither"), "{error}");
}

#[test]
fn key_without_cert_is_rejected() {
    let cert = TestCert::generate();
    let mut config = test_config(cert.folder.path());
    config.tls_key = Some(cert.key_path.clone());
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_CERT:"), "{error}");
}

#[test]
fn unreadable_tls_files_are_rejected() {
    let cert = TestCert::generate();
    let missing = cert.folder.path().join("missing.pem");

    let mut config = test_config(cert.folder.path());
    cert.apply(&mut config);
    config.tls_cert = Some(missing.clone());
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_CERT:"), "{error}");
    assert!(error.contains("cannot read"), "{error}");
    assert!(error.contains("missing.pem"), "{error}");

    cert.apply(&mut config);
    config.tls_key = Some(missing);
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_KEY:"), "{error}");
    assert!(error.contains("cannot read"), "{error}");
}

#[test]
fn invalid_pem_is_rejected() {
    let cert = TestCert::generate();
    let garbage = write(cert.folder.path(), "garbage.pem", "not a PEM file\n");

    let mut config = test_config(cert.folder.path());
    cert.apply(&mut config);
    config.tls_cert = Some(garbage.clone());
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_CERT:"), "{error}");
    assert!(error.contains("not a valid PEM certificate"), "{error}");

    cert.apply(&mut config);
    config.tls_key = Some(garbage);
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_KEY:"), "{error}");
    assert!(error.contains("not a valid PEM private key"), "{error}");

    // A key file that contains a certificate instead of a key.
    cert.apply(&mut config);
    config.tls_key = Some(cert.cert_path.clone());
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_KEY:"), "{error}");
}

#[test]
fn mismatched_key_is_rejected() {
    let cert = TestCert::generate();
    let other = TestCert::generate();
    let mut config = test_config(cert.folder.path());
    cert.apply(&mut config);
    config.tls_key = Some(other.key_path.clone());
    let error = validation_error(&config);
    assert!(error.starts_with("CONFAB_TLS_KEY:"), "{error}");
    assert!(
        error.contains("cannot be used with the certificate"),
        "{error}"
    );
}

/// Returns a production configuration that passes every other check.
fn production_config(folder: &Path) -> Config {
    let mut config = test_config(folder);
    config.environment = Environment::Production;
    config.cors_origins = Some("https://chat.example.test".to_owned());
    config
}

#[test]
fn production_rejects_plain_http_on_public_address() {
    let folder = tempfile::tempdir().unwrap();
    let mut config = production_config(folder.path());
    for address in ["0.0.0.0:8000", "192.0.2.10:8000", "[::]:8000"] {
        config.addr = address.parse().unwrap();
        let error = validation_error(&config);
        assert!(error.starts_with("CONFAB_TLS_CERT:"), "{address}: {error}");
        assert!(
            error.contains("CONFAB_BEHIND_TLS_PROXY"),
            "{address}: {error}"
        );
    }
}

#[test]
fn production_allows_plain_http_when_safe() {
    let cert = TestCert::generate();
    let mut config = production_config(cert.folder.path());

    config.addr = "127.0.0.1:8000".parse().unwrap();
    config.validate().expect("loopback needs no TLS");

    config.addr = "0.0.0.0:8000".parse().unwrap();
    config.behind_tls_proxy = true;
    config.validate().expect("a TLS proxy in front is enough");

    config.behind_tls_proxy = false;
    cert.apply(&mut config);
    config.validate().expect("TLS on the listener is enough");
}
