//! Real-time delivery over WebSocket: the hub that fans events out to open
//! sockets, and the `/ws` endpoint.

pub mod bus;
pub mod hub;
mod socket;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use hub::Hub;

use crate::AppState;

/// Builds the WebSocket route.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(socket::upgrade))
}
