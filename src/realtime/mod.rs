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

    /// Closes the sockets authenticated with a revoked token.
    pub fn token_revoked(&self, _token_id: u128) {}

    /// Closes every socket, for shutdown.
    pub fn close_all(&self) {}
}

/// The WebSocket route.
pub fn router() -> Router<AppState> {
    Router::new()
}
