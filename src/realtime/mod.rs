//! Real-time delivery over WebSocket: the hub that fans events out to open
//! sockets, and the `/ws` endpoint.

pub mod bus;
pub mod hub;
mod socket;

use axum::routing::get;
use axum::Router;

pub use hub::Hub;

use crate::AppState;

/// Builds the WebSocket route.
pub fn router() -> Router<AppState> {
    Router::new().route("/ws", get(socket::upgrade))
}
