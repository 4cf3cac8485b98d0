//! Authenticated WebSocket clients, each bound to its own loopback source
//! address so that tens of thousands fit under the ephemeral-port limit.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::cli::SocketAuth;

/// Longest wait from TCP connect to the server's `ready` event.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sockets given the same source address before moving on to the next one.
const SOCKETS_PER_SOURCE: usize = 250;

pub type Socket = WebSocketStream<TcpStream>;

/// Returns the source address for the `index`-th socket: 127.0.1.1 for the
/// first 250, then 127.0.1.2, and so on up to 127.0.255.250, then again from
/// the start. Each source address has its own range of ephemeral ports, so
/// the sockets are not limited to one range of about 28,000. Returns `None`
/// when the server is not on IPv4 loopback, where this trick does not apply.
pub fn source_address(server: SocketAddr, index: usize) -> Option<IpAddr> {
    if !matches!(server.ip(), IpAddr::V4(ip) if ip.is_loopback()) {
        return None;
    }
    let slot = index / SOCKETS_PER_SOURCE % (255 * 250);
    let third = 1 + slot / 250;
    let fourth = 1 + slot % 250;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, third as u8, fourth as u8)))
}

/// Opens a WebSocket to `/ws`, authenticates it with `token`, and waits for
/// the server's `ready` event, so the socket is registered when this returns.
pub async fn connect(
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
    auth: SocketAuth,
) -> anyhow::Result<Socket> {
    tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        connect_inner(server, source, token, auth),
    )
    .await
    .context("timed out waiting for the ready event")?
}

async fn connect_inner(
    server: SocketAddr,
    source: Option<IpAddr>,
    token: &str,
    auth: SocketAuth,
) -> anyhow::Result<Socket> {
    let tcp = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        tcp.bind(SocketAddr::new(source, 0))
            .with_context(|| format!("failed to bind the source address {source}"))?;
    }
    let stream = tcp
        .connect(server)
        .await
        .with_context(|| format!("failed to connect to {server}"))?;
    stream.set_nodelay(true)?;

    let mut request = format!("ws://{server}/ws").into_client_request()?;
    if auth == SocketAuth::Header {
        request.headers_mut().insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}"))?,
        );
    }
    let (mut socket, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .context("WebSocket handshake failed")?;
    if auth == SocketAuth::Frame {
        let frame = serde_json::json!({ "type": "auth", "token": token }).to_string();
        socket.send(Message::text(frame)).await?;
    }
    wait_ready(&mut socket).await?;
    Ok(socket)
}

/// Reads frames until the first event, which must be `ready`.
async fn wait_ready(socket: &mut Socket) -> anyhow::Result<()> {
    while let Some(message) = socket.next().await {
        let text = match message? {
            Message::Text(text) => text,
            Message::Close(frame) => bail!("server closed the socket before ready: {frame:?}"),
            _ => continue,
        };
        let event: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("first event is not JSON: {text}"))?;
        if event["type"] != "ready" {
            bail!("expected a ready event first, got {text}");
        }
        return Ok(());
    }
    bail!("server closed the connection before ready")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_rotate_every_250_sockets() {
        let server: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        let at = |index| source_address(server, index).unwrap().to_string();
        assert_eq!(at(0), "127.0.1.1");
        assert_eq!(at(249), "127.0.1.1");
        assert_eq!(at(250), "127.0.1.2");
        assert_eq!(at(250 * 250), "127.0.2.1");
        assert_eq!(at(250 * 255 * 250), "127.0.1.1");
    }

    #[test]
    fn no_source_address_for_ipv6() {
        let server: SocketAddr = "[::1]:8000".parse().unwrap();
        assert_eq!(source_address(server, 0), None);
    }
}
