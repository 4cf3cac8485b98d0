//! The one server address the tool sends traffic to, and the loopback check on it.

use std::net::{SocketAddr, ToSocketAddrs as _};

use anyhow::{bail, Context as _};

/// Resolves `addr` to one socket address and rejects it unless it is a
/// loopback address or `allow_non_loopback` is set. A name that resolves to
/// several addresses is rejected if any of them is outside loopback, so the
/// check does not depend on which one the resolver lists first.
pub fn resolve(addr: &str, allow_non_loopback: bool) -> anyhow::Result<SocketAddr> {
    let candidates: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .with_context(|| format!("invalid server address {addr:?}; write it as host:port"))?
        .collect();
    let Some(first) = candidates.first().copied() else {
        bail!("server address {addr:?} resolved to no address");
    };
    if !allow_non_loopback {
        if let Some(outside) = candidates
            .iter()
            .find(|candidate| !candidate.ip().is_loopback())
        {
            bail!(
                "server address {addr:?} resolves to {outside}, which is not a loopback address; \
                 confab-load only targets 127.0.0.0/8 or ::1 unless --allow-non-loopback is given"
            );
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::resolve;

    #[test]
    fn loopback_addresses_accepted() {
        for addr in [
            "127.0.0.1:8000",
            "127.3.2.1:1",
            "[::1]:8000",
            "localhost:8000",
        ] {
            assert!(resolve(addr, false).is_ok(), "{addr} should be accepted");
        }
    }

    #[test]
    fn other_addresses_rejected() {
        for addr in [
            "10.0.0.1:8000",
            "192.168.1.1:80",
            "0.0.0.0:8000",
            "[::]:8000",
        ] {
            let error = resolve(addr, false).unwrap_err().to_string();
            assert!(error.contains("not a loopback"), "{addr}: {error}");
        }
    }

    #[test]
    fn flag_allows_other_addresses() {
        assert!(resolve("10.0.0.1:8000", true).is_ok());
    }

    #[test]
    fn missing_port_rejected() {
        assert!(resolve("127.0.0.1", false).is_err());
    }
}
