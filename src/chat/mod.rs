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

use axum::routing::{delete, get, patch, post};
use axum::Router;

use crate::AppState;

pub use handlers::{CreateChatRequest, NewChat};
pub use messages::{SendRequest, ValidMessage};

/// Routes for `/users` and `/chats`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(users::search_users))
        .route(
            "/chats",
            get(handlers::list_chats).post(handlers::create_chat),
        )
        .route(
            "/chats/{chat_id}",
            get(handlers::get_chat).patch(handlers::rename_chat),
        )
        .route("/chats/{chat_id}/members", post(handlers::add_member))
        .route(
            "/chats/{chat_id}/members/{user_id}",
            delete(handlers::remove_member),
        )
        .route(
            "/chats/{chat_id}/messages",
            get(messages::list_messages).post(messages::send_message),
        )
        .route(
            "/chats/{chat_id}/messages/{message_id}",
            patch(messages::edit_message).delete(messages::delete_message),
        )
        .route("/chats/{chat_id}/read", post(messages::mark_read))
}
