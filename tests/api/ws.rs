//! WebSocket client helpers for tests, and the tests of socket limits.

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

mod limits {
    //! Limits on WebSockets: message size and open sockets per user.

    use serde_json::json;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    use super::*;
    use crate::helpers::spawn_app_with;

    #[tokio::test]
    async fn oversized_message_closes_1009() {
        let app = spawn_app_with(|config| config.ws_max_message_bytes = 1024).await;
        let (_, token) = app.user("big@example.test").await;
        let mut socket = connect(&app, &token).await;

        let padding = "x".repeat(2000);
        send_json(
            &mut socket,
            &json!({ "type": "typing", "padding": padding }),
        )
        .await;
        assert_eq!(close_code(&mut socket, WAIT).await, 1009);
    }

    #[tokio::test]
    async fn oversized_auth_frame_closes_1009() {
        let app = spawn_app_with(|config| config.ws_max_message_bytes = 1024).await;
        let mut socket = connect_anonymous(&app).await;
        let token = "x".repeat(2000);
        send_json(&mut socket, &json!({ "type": "auth", "token": token })).await;
        assert_eq!(close_code(&mut socket, WAIT).await, 1009);
    }

    #[tokio::test]
    async fn message_under_limit_is_read() {
        let app = spawn_app_with(|config| config.ws_max_message_bytes = 1024).await;
        let (_, token) = app.user("small@example.test").await;
        let mut socket = connect(&app, &token).await;
        send_json(
            &mut socket,
            &json!({ "type": "nonsense", "padding": "x".repeat(900) }),
        )
        .await;
        let error = next_event(&mut socket).await;
        assert_eq!(error["code"], "invalid_frame");
    }

    #[tokio::test]
    async fn extra_header_socket_is_429() {
        let app = spawn_app_with(|config| config.ws_max_sockets_per_user = 2).await;
        let (_, token) = app.user("many@example.test").await;
        let _first = connect(&app, &token).await;
        let _second = connect(&app, &token).await;

        let mut request = app.ws_url("/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let error = tokio_tungstenite::connect_async(request)
            .await
            .expect_err("a third socket was accepted");
        let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
            panic!("expected an HTTP rejection, got {error}");
        };
        assert_eq!(response.status(), 429);
        let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
        assert!(body.contains("too_many_sockets"), "{body}");
    }

    #[tokio::test]
    async fn extra_frame_auth_socket_closes_4029() {
        let app = spawn_app_with(|config| config.ws_max_sockets_per_user = 1).await;
        let (_, token) = app.user("many@example.test").await;
        let _first = connect(&app, &token).await;

        let mut extra = connect_anonymous(&app).await;
        send_json(&mut extra, &json!({ "type": "auth", "token": token })).await;
        assert_eq!(close_code(&mut extra, WAIT).await, 4029);
    }

    #[tokio::test]
    async fn closed_socket_frees_its_place() {
        let app = spawn_app_with(|config| config.ws_max_sockets_per_user = 1).await;
        let (_, token) = app.user("again@example.test").await;
        let mut first = connect(&app, &token).await;
        first.close(None).await.unwrap();
        // The server deregisters the socket after the close handshake.
        while app.state.realtime.open_sockets() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _second = connect(&app, &token).await;
    }

    #[tokio::test]
    async fn socket_outlives_request_timeout() {
        // Long enough for the registration's password hash on a busy machine.
        let timeout = Duration::from_secs(1);
        let app = spawn_app_with(|config| config.request_timeout = timeout).await;
        let (_, token) = app.user("long@example.test").await;
        let mut socket = connect(&app, &token).await;
        tokio::time::sleep(timeout * 2).await;
        send_json(&mut socket, &json!({ "type": "nonsense" })).await;
        let error = next_event(&mut socket).await;
        assert_eq!(error["code"], "invalid_frame");
    }
}
