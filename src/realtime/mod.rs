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

    /// Closes the user's sockets whose tokens no longer pass authentication,
    /// after a cut-off, a disabling, a role or a password change.
    pub fn close_user(&self, _user_id: i64) {}

    /// Closes the sockets authenticated with a token of an ended session.
    pub fn session_revoked(&self, _session_id: u128) {}

    /// Returns the number of open sockets on this instance.
    pub fn open_sockets(&self) -> usize {
        0
    }

    /// Closes every socket, for shutdown.
    pub fn close_all(&self) {}
}

/// The WebSocket route.
pub fn router() -> Router<AppState> {
    Router::new()
}
