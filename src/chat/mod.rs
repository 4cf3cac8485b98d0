//! Conversations and messages: the REST API, its rules and its events.
//!
//! `validate`, `cursor` and `permissions` contain the rules as plain
//! functions. `handlers`, `messages` and `users` are thin HTTP handlers over
//! those rules and the store. `events` defines what the WebSocket side
//! delivers.

pub mod cursor;
pub mod events;
mod handlers;
pub mod messages;
pub mod permissions;
mod users;
pub mod validate;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub use handlers::{CreateChatRequest, NewChat};
pub use messages::{SendRequest, ValidMessage};

/// Routes for `/users` and `/chats`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users::search_users))
        .routes(routes!(handlers::list_chats, handlers::create_chat))
        .routes(routes!(handlers::get_chat, handlers::rename_chat))
        .routes(routes!(handlers::add_member))
        .routes(routes!(handlers::remove_member))
        .routes(routes!(messages::list_messages, messages::send_message))
        .routes(routes!(messages::edit_message, messages::delete_message))
        .routes(routes!(messages::mark_read))
}
