//! WebSocket client helpers for tests.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::TestApp;

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for an expected frame.
pub const WAIT: Duration = Duration::from_secs(5);

/// Connects with an `Authorization` header and waits for the `ready` event.
pub async fn connect(app: &TestApp, token: &str) -> Socket {
    let mut request = app.ws_url("/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("WebSocket connect failed");
    let ready = next_event(&mut socket).await;
    assert_eq!(ready["type"], "ready", "unexpected first event: {ready}");
    socket
}

/// Connects without credentials; the caller sends the auth frame.
pub async fn connect_anonymous(app: &TestApp) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(app.ws_url("/ws"))
        .await
        .expect("WebSocket connect failed");
    socket
}

pub async fn send_json(socket: &mut Socket, value: &Value) {
    socket
        .send(Message::text(value.to_string()))
        .await
        .expect("WebSocket send failed");
}

/// Returns the next JSON event, skipping pings; panics on close or timeout.
pub async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(WAIT, socket.next())
            .await
            .expect("timed out waiting for an event")
            .expect("socket ended")
            .expect("socket failed");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

/// Returns the next event of `kind`, skipping others (for example typing notices).
pub async fn next_event_of(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let event = next_event(socket).await;
        if event["type"] == kind {
            return event;
        }
    }
}

/// Reads until the close frame and returns its code; panics on timeout.
pub async fn close_code(socket: &mut Socket, within: Duration) -> u16 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("timed out waiting for the close frame");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code.into(),
            Some(Ok(Message::Close(None))) => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("socket failed before the close frame: {error}"),
            None => panic!("socket ended without a close frame"),
        }
    }
}

/// Asserts that no event arrives within `quiet`.
pub async fn assert_silent(socket: &mut Socket, quiet: Duration) {
    if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(quiet, socket.next()).await {
        panic!("unexpected event: {text}");
    }
}
