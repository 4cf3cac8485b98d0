//! Conversations and messages.

use axum::Router;

use crate::AppState;

/// Routes for conversations and messages.
pub fn router() -> Router<AppState> {
    Router::new()
}
