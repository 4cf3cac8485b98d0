//! TLS for the API listener: loading the certificate and key, and the
//! `Strict-Transport-Security` value sent once clients reach Confab over HTTPS.

use std::path::Path;
use std::sync::Arc;

use axum::http::HeaderValue;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::{config_error, ConfigError};

/// HSTS for one year on this host and its subdomains. Browsers only honour
/// the header over HTTPS, so it is sent when TLS is on or a proxy terminates it.
pub const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000; includeSubDomains");

/// Builds the rustls server configuration from PEM files, naming the setting
/// whose file is unreadable, is not PEM, or does not match the other.
pub fn server_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, ConfigError> {
    let chain = read_certificates(cert_path)?;
    let key = read_private_key(key_path)?;
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|error| config_error("CONFAB_TLS_CERT", format!("TLS setup failed: {error}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| {
            config_error(
                "CONFAB_TLS_KEY",
                format!(
                    "{} cannot be used with the certificate in {}: {error}",
                    key_path.display(),
                    cert_path.display()
                ),
            )
        })?;
    // The server does not enable RFC 8441 extended CONNECT, so a client that
    // negotiated HTTP/2 opens its WebSocket on a separate HTTP/1.1 connection.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Returns the rustls cryptography provider, chosen explicitly so the choice
/// does not depend on which rustls features other crates in the build enable.
// TODO: rustls 0.23.48 deprecates the ring provider because it has no
// post-quantum key exchange; aws-lc-rs has one but adds a large C build.
#[allow(
    deprecated,
    reason = "ring is the provider already built for jsonwebtoken"
)]
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(variable: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|error| config_error(variable, format!("cannot read {}: {error}", path.display())))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read_pem("CONFAB_TLS_CERT", path)?;
    let invalid = |reason: String| {
        config_error(
            "CONFAB_TLS_CERT",
            format!(
                "{} is not a valid PEM certificate chain: {reason}",
                path.display()
            ),
        )
    };
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(error.to_string()))?;
    if chain.is_empty() {
        return Err(invalid("it contains no CERTIFICATE section".to_owned()));
    }
    Ok(chain)
}

fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read_pem("CONFAB_TLS_KEY", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|error| {
        config_error(
            "CONFAB_TLS_KEY",
            format!("{} is not a valid PEM private key: {error}", path.display()),
        )
    })
}
