//! `GET /ws`: authenticates a WebSocket, registers it with the hub and runs
//! its loop until the client leaves, the token dies or the server stops.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use tokio::time::{sleep_until, Instant};

use super::hub::{
    Frame, SocketIdentity, Subscription, CLOSE_GOING_AWAY, CLOSE_TOO_MANY_SOCKETS,
    CLOSE_UNAUTHORIZED,
};
use crate::auth::extractor::{authenticate, bearer_token_from_headers};
use crate::auth::{unix_now, AuthUser};
use crate::http::error::ApiError;
use crate::AppState;

/// How long a close frame may take to reach a client that stopped reading.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one outgoing frame may wait for the client's TCP window.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Minimum spacing of typing notices from one socket; extra ones are dropped.
const TYPING_INTERVAL: Duration = Duration::from_millis(300);
/// Close code for a frame larger than the configured maximum (RFC 6455).
const CLOSE_TOO_BIG: u16 = 1009;
const TOO_BIG_REASON: &str = "message larger than the server accepts";

/// Upgrades to a WebSocket. A valid `Authorization` header authenticates at
/// once, and a user already at the socket limit gets 429 before the upgrade.
/// Otherwise the first frame must be `{"type":"auth","token":"..."}`.
#[utoipa::path(
    get,
    path = "/ws",
    tag = "realtime",
    security((), ("bearer" = [])),
    responses(
        (status = 101, description = "Switched to the WebSocket protocol; events follow as JSON text frames"),
        (status = 400, description = "The request is not a WebSocket upgrade (`websocket_upgrade_required`)"),
        (status = 401, description = "The `Authorization` header is present but the token fails a check"),
        (status = 429, description = "The user already holds the maximum number of open sockets (`too_many_sockets`)"),
        (status = 503, description = "The revocation list is unreachable; retry"),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let upgrade = upgrade.map_err(|rejection| ApiError::BadRequest {
        code: "websocket_upgrade_required",
        detail: format!("this endpoint only accepts WebSocket upgrades: {rejection}"),
    })?;
    let caller = match bearer_token_from_headers(&headers)? {
        Some(token) => Some(authenticate(&state, token).await?),
        None => None,
    };
    if let Some(caller) = &caller {
        if state.realtime.user_at_socket_limit(caller.user_id) {
            return Err(too_many_sockets(&state));
        }
    }
    let max_message = state.settings.ws_max_message_bytes;
    Ok(upgrade
        // Small buffers keep an idle socket's footprint in kilobytes; tungstenite
        // grows them on demand for larger frames.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(max_message)
        .max_frame_size(max_message)
        .on_upgrade(move |socket| run(socket, state, caller)))
}

/// Runs one socket from authentication to close.
async fn run(mut socket: WebSocket, state: AppState, caller: Option<AuthUser>) {
    let caller = match caller {
        Some(caller) => caller,
        None => match first_frame_auth(&mut socket, &state).await {
            Ok(caller) => caller,
            Err((code, reason)) => {
                close(&mut socket, code, reason).await;
                return;
            }
        },
    };
    let identity = SocketIdentity {
        user_id: caller.user_id,
        token_id: caller.token.token_id,
        session_id: Some(caller.token.session_id),
        issued_at: caller.token.claims.iat,
    };
    // A parallel connect can take the last place between the check before
    // the upgrade and this registration, so the limit is enforced here too.
    let Ok(mut subscription) = state.realtime.subscribe(identity) else {
        close(&mut socket, CLOSE_TOO_MANY_SOCKETS, TOO_MANY_SOCKETS_REASON).await;
        return;
    };
    let mut connection = Connection::new(socket, state, caller);
    let code = connection.serve(&mut subscription).await;
    if let Some((code, reason)) = code {
        close(&mut connection.socket, code, reason).await;
    }
    // The subscription stays registered until the close frame is out, so
    // shutdown, which waits for the hub to empty, does not exit before it.
    drop(subscription);
}

const TOO_MANY_SOCKETS_REASON: &str = "too many open WebSockets for this user";

fn too_many_sockets(state: &AppState) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_sockets",
        detail: format!(
            "this user already has {} open WebSockets, the maximum; close one and retry",
            state.settings.ws_max_sockets_per_user
        ),
        retry_after: None,
    }
}

#[derive(Deserialize)]
struct AuthFrame {
    #[serde(rename = "type")]
    kind: String,
    token: String,
}

/// Waits for the first text frame and authenticates its token; on failure
/// returns the close code and reason to send.
async fn first_frame_auth(
    socket: &mut WebSocket,
    state: &AppState,
) -> Result<AuthUser, (u16, &'static str)> {
    let unauthorized = |reason| (CLOSE_UNAUTHORIZED, reason);
    let deadline = Instant::now() + state.settings.ws_auth_timeout;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.recv())
            .await
            .map_err(|_| unauthorized("authentication timed out"))?;
        let text = match message {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(_)) => return Err(unauthorized("the first frame must be an auth frame")),
            Some(Err(error)) => {
                return Err(if error_is_too_big(error) {
                    (CLOSE_TOO_BIG, TOO_BIG_REASON)
                } else {
                    unauthorized("connection closed before authentication")
                })
            }
            None => return Err(unauthorized("connection closed before authentication")),
        };
        let frame: AuthFrame = serde_json::from_str(&text)
            .map_err(|_| unauthorized("the first frame must be an auth frame"))?;
        if frame.kind != "auth" {
            return Err(unauthorized("the first frame must be an auth frame"));
        }
        return authenticate(state, &frame.token)
            .await
            .map_err(|_| unauthorized("the access token is invalid, expired or revoked"));
    }
}

async fn close(socket: &mut WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
}

/// Messages a client may send after authenticating.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientFrame {
    Typing { chat_id: i64 },
    Auth {},
}

/// One authenticated socket's state.
struct Connection {
    socket: WebSocket,
    state: AppState,
    caller: AuthUser,
    /// Counts every frame sent to this socket, so a client can detect a gap.
    seq: u64,
    last_typing: Option<Instant>,
}

/// The next action of the socket loop.
enum Step {
    Send(String),
    Incoming(Message),
    Ping,
    Close(u16, &'static str),
    Stop,
}

impl Connection {
    fn new(socket: WebSocket, state: AppState, caller: AuthUser) -> Self {
        Self {
            socket,
            state,
            caller,
            seq: 0,
            last_typing: None,
        }
    }

    /// Runs the socket loop; returns the close frame to send, if any.
    async fn serve(&mut self, subscription: &mut Subscription) -> Option<(u16, &'static str)> {
        let claims = &self.caller.token.claims;
        let expires_in = (claims.exp - unix_now()).max(0) as u64;
        let expiry = Instant::now() + Duration::from_secs(expires_in);
        let ping_interval = self.state.settings.ws_ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
        let mut last_pong = Instant::now();

        let ready = json!({ "type": "ready", "user_id": self.caller.user_id });
        if !self.send_event(&ready.to_string()).await {
            return None;
        }

        loop {
            let step = tokio::select! {
                biased;
                _ = subscription.close.changed() => {
                    let code = subscription.close.borrow().unwrap_or(CLOSE_GOING_AWAY);
                    Step::Close(code, close_reason(code))
                }
                () = sleep_until(expiry) => Step::Close(CLOSE_UNAUTHORIZED, "the access token expired"),
                incoming = self.socket.recv() => match incoming {
                    Some(Ok(message)) => Step::Incoming(message),
                    Some(Err(error)) => {
                        tracing::debug!(%error, "socket read failed");
                        if error_is_too_big(error) {
                            Step::Close(CLOSE_TOO_BIG, TOO_BIG_REASON)
                        } else {
                            Step::Stop
                        }
                    }
                    None => Step::Stop,
                },
                frame = subscription.events.recv() => match frame {
                    Some(frame) => Step::Send(self.sequence(&frame)),
                    None => Step::Stop,
                },
                _ = ping.tick() => Step::Ping,
            };

            match step {
                Step::Send(text) => {
                    let sent = tokio::select! {
                        sent = tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::text(text))) => {
                            matches!(sent, Ok(Ok(())))
                        }
                        // A close while the client's window is full must not wait for the send.
                        _ = subscription.close.changed() => {
                            let code = subscription.close.borrow().unwrap_or(CLOSE_GOING_AWAY);
                            return Some((code, close_reason(code)));
                        }
                    };
                    if !sent {
                        return None;
                    }
                }
                Step::Incoming(Message::Pong(_)) => last_pong = Instant::now(),
                Step::Incoming(Message::Close(_)) | Step::Stop => return None,
                Step::Incoming(message) => self.handle_client_message(message).await,
                Step::Ping => {
                    // Two missed intervals: the peer is gone without a FIN.
                    if last_pong.elapsed() > ping_interval * 2 {
                        tracing::debug!(
                            user_id = self.caller.user_id,
                            "socket missed pings; dropping"
                        );
                        return None;
                    }
                    if self
                        .socket
                        .send(Message::Ping(Default::default()))
                        .await
                        .is_err()
                    {
                        return None;
                    }
                }
                Step::Close(code, reason) => return Some((code, reason)),
            }
        }
    }

    /// Prefixes a serialised event object with this socket's next sequence number.
    fn sequence(&mut self, frame: &Frame) -> String {
        self.seq += 1;
        let body = frame.strip_prefix('{').unwrap_or("}");
        let separator = if body.trim_start().starts_with('}') {
            ""
        } else {
            ","
        };
        format!("{{\"seq\":{}{separator}{body}", self.seq)
    }

    async fn send_event(&mut self, json: &str) -> bool {
        let text = self.sequence(&Frame::from(json));
        matches!(
            tokio::time::timeout(SEND_TIMEOUT, self.socket.send(Message::text(text))).await,
            Ok(Ok(()))
        )
    }

    async fn send_error(&mut self, code: &str, message: &str) {
        let event = json!({ "type": "error", "code": code, "message": message });
        self.send_event(&event.to_string()).await;
    }

    async fn handle_client_message(&mut self, message: Message) {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(_) => {
                return self
                    .send_error(
                        "unsupported_frame",
                        "binary frames are not supported; send JSON text",
                    )
                    .await
            }
            _ => return,
        };
        let frame = match serde_json::from_str::<ClientFrame>(&text) {
            Ok(frame) => frame,
            Err(error) => {
                let message = format!(
                    "invalid frame: {error}; expected {{\"type\":\"typing\",\"chat_id\":<id>}}"
                );
                return self.send_error("invalid_frame", &message).await;
            }
        };
        match frame {
            ClientFrame::Typing { chat_id } => self.typing(chat_id).await,
            ClientFrame::Auth {} => {
                self.send_error(
                    "already_authenticated",
                    "this socket is already authenticated",
                )
                .await
            }
        }
    }

    /// Relays a typing notice to the conversation's other members; nothing is stored.
    async fn typing(&mut self, chat_id: i64) {
        if self
            .last_typing
            .is_some_and(|last| last.elapsed() < TYPING_INTERVAL)
        {
            return;
        }
        self.last_typing = Some(Instant::now());
        let user_id = self.caller.user_id;
        let members = match self.state.store.chat_member_ids(chat_id).await {
            Ok(members) => members,
            Err(error) => {
                tracing::warn!(%error, chat_id, "typing: member lookup failed");
                return self
                    .send_error("unavailable", "the notice could not be sent; retry")
                    .await;
            }
        };
        if !members.contains(&user_id) {
            return self
                .send_error("chat_not_found", "no such conversation")
                .await;
        }
        let others: Vec<i64> = members.into_iter().filter(|id| *id != user_id).collect();
        let event = crate::chat::events::Event::Typing { chat_id, user_id };
        self.state.realtime.publish(&others, &event);
    }
}

fn close_reason(code: u16) -> &'static str {
    match code {
        CLOSE_UNAUTHORIZED => "the access token was revoked",
        super::hub::CLOSE_TOO_SLOW => "events were not read fast enough; catch up over REST",
        _ => "the server is shutting down",
    }
}

fn error_is_too_big(error: axum::Error) -> bool {
    let inner = error.into_inner();
    matches!(
        inner.downcast_ref::<tungstenite::Error>(),
        Some(tungstenite::Error::Capacity(_))
    )
}
