//! HTTP handlers for messages and read markers, shaped like those in
//! `handlers`: membership first, then rules, store, and events after commit.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::{publish_to_members, Event};
use super::handlers::{chat_not_found, membership_or_404, single, ChatPath};
use super::permissions::{check_can_delete, check_can_edit};
use super::validate::{
    check_body, check_client_id, check_id, check_message_bound, page_limit, MESSAGE_PAGE,
};
use crate::auth::{AuthUser, Role};
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{Json, Path, Query};
use crate::store::messages::{Message, MessageRange, NewMessage};
use crate::store::now_millis;
use crate::telemetry::metrics::MESSAGES_STORED;
use crate::AppState;

/// `/chats/{chat_id}/messages/{message_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MessagePath {
    /// Id of a conversation the caller is a member of.
    #[param(minimum = 1)]
    chat_id: i64,
    /// Id of a message in that conversation.
    #[param(minimum = 1)]
    message_id: i64,
}

#[derive(Deserialize, ToSchema)]
pub struct SendRequest {
    /// 1 to 4000 characters after trimming; no control characters but tab and line breaks.
    body: String,
    /// The sender's idempotency key, 1 to 128 characters: a repeat returns the first message.
    client_id: Option<String>,
}

/// The checked fields of a message to send.
pub struct ValidMessage {
    pub body: String,
    pub client_id: Option<String>,
}

impl SendRequest {
    /// Checks the body and the optional `client_id`, reporting both at once.
    pub fn validate(&self) -> Result<ValidMessage, ApiError> {
        let mut errors = Vec::new();
        let body = check_body(&self.body).map_err(|e| errors.push(e)).ok();
        let client_id = match self.client_id.as_deref().map(check_client_id) {
            Some(Err(error)) => {
                errors.push(error);
                None
            }
            Some(Ok(client_id)) => Some(client_id),
            None => None,
        };
        match (body, errors.is_empty()) {
            (Some(body), true) => Ok(ValidMessage { body, client_id }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

#[derive(Deserialize, ToSchema)]
pub struct EditRequest {
    /// 1 to 4000 characters after trimming; no control characters but tab and line breaks.
    body: String,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// Read messages with smaller ids than this one.
    #[param(minimum = 0)]
    before: Option<i64>,
    /// Read messages with larger ids than this one; `0` reads from the first.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Page size; 50 when absent, and values above 200 read as 200.
    #[param(minimum = 1)]
    limit: Option<i64>,
}

/// A page of messages in ascending id order. `has_more` is true when more
/// exist in the direction read: newer with `after`, older otherwise.
#[derive(Serialize, ToSchema)]
pub struct MessageList {
    items: Vec<Message>,
    has_more: bool,
}

#[derive(Deserialize, ToSchema)]
pub struct ReadRequest {
    message_id: i64,
}

/// The caller's read marker after `POST /chats/{chat_id}/read`.
#[derive(Serialize, ToSchema)]
pub struct ReadState {
    chat_id: i64,
    user_id: i64,
    last_read_message_id: i64,
}

fn message_not_found() -> ApiError {
    ApiError::not_found(
        "message_not_found",
        "no message with this id in this conversation",
    )
}

/// Sends a message: `201` when stored, `200` with the original message when
/// the sender already used this `client_id` in this chat.
#[utoipa::path(
    post,
    path = "/chats/{chat_id}/messages",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatPath),
    request_body = SendRequest,
    responses(
        (status = 200, description = "This `client_id` was used before; the first message", body = Message),
        (status = 201, description = "The message was stored", body = Message),
        (status = 404, description = "No such chat, or the caller is not a member (`chat_not_found`)"),
    )
)]
pub async fn send_message(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<ChatPath>,
    Json(request): Json<SendRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    let chat_id = path.chat_id;
    membership_or_404(&state, chat_id, caller.user_id).await?;
    let ValidMessage { body, client_id } = request.validate()?;

    let (message, created) = state
        .store
        .create_message(NewMessage {
            chat_id,
            sender_id: caller.user_id,
            body: &body,
            client_id: client_id.as_deref(),
            created_at: now_millis(),
        })
        .await?;
    if !created {
        return Ok((StatusCode::OK, Json(message)));
    }
    metrics::counter!(MESSAGES_STORED).increment(1);

    let event = Event::MessageCreated {
        chat_id,
        message: message.clone(),
    };
    publish_to_members(&state, chat_id, &event, None).await;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Reads a page of messages by id.
#[utoipa::path(
    get,
    path = "/chats/{chat_id}/messages",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatPath, MessageQuery),
    responses(
        (status = 200, description = "A page of messages in ascending id order", body = MessageList),
        (status = 404, description = "No such chat, or the caller is not a member (`chat_not_found`)"),
    )
)]
pub async fn list_messages(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<ChatPath>,
    Query(query): Query<MessageQuery>,
) -> Result<Json<MessageList>, ApiError> {
    membership_or_404(&state, path.chat_id, caller.user_id).await?;
    let errors: Vec<FieldError> = [
        check_message_bound("before", query.before).err(),
        check_message_bound("after", query.after).err(),
        page_limit(query.limit, MESSAGE_PAGE).err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let limit = page_limit(query.limit, MESSAGE_PAGE).map_err(single)?;

    let range = MessageRange {
        before: query.before,
        after: query.after,
    };
    let page = state
        .store
        .list_messages(path.chat_id, range, limit)
        .await?;
    Ok(Json(MessageList {
        items: page.items,
        has_more: page.has_more,
    }))
}

/// Replaces a message's body; sender only.
#[utoipa::path(
    patch,
    path = "/chats/{chat_id}/messages/{message_id}",
    tag = "chat",
    security(("bearer" = [])),
    params(MessagePath),
    request_body = EditRequest,
    responses(
        (status = 200, description = "The edited message", body = Message),
        (status = 403, description = "Only the sender edits a message (`not_sender`)"),
        (status = 404, description = "No such chat or message (`chat_not_found`, `message_not_found`)"),
        (status = 409, description = "The message is deleted (`message_deleted`)"),
    )
)]
pub async fn edit_message(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<MessagePath>,
    Json(request): Json<EditRequest>,
) -> Result<Json<Message>, ApiError> {
    membership_or_404(&state, path.chat_id, caller.user_id).await?;
    let message_id = check_id("message_id", path.message_id).map_err(single)?;
    let existing = state
        .store
        .message_in_chat(path.chat_id, message_id)
        .await?
        .ok_or_else(message_not_found)?;
    check_can_edit(caller.user_id, &existing)?;
    let body = check_body(&request.body).map_err(single)?;

    let Some(message) = state
        .store
        .edit_message(path.chat_id, message_id, &body, now_millis())
        .await?
    else {
        // Deleted between the check and the update.
        return Err(ApiError::conflict(
            "message_deleted",
            "a deleted message cannot be edited",
        ));
    };
    let event = Event::MessageUpdated {
        chat_id: path.chat_id,
        message: message.clone(),
    };
    publish_to_members(&state, path.chat_id, &event, None).await;
    Ok(Json(message))
}

/// Deletes a message and erases its body. Responds `204`, also when it was
/// already deleted. An admin may delete in chats they are not a member of.
#[utoipa::path(
    delete,
    path = "/chats/{chat_id}/messages/{message_id}",
    tag = "chat",
    security(("bearer" = [])),
    params(MessagePath),
    responses(
        (status = 204, description = "The message is now a tombstone"),
        (status = 403, description = "Not the sender, the group owner or an admin (`not_sender`)"),
        (status = 404, description = "No such chat or message (`chat_not_found`, `message_not_found`)"),
    )
)]
pub async fn delete_message(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<MessagePath>,
) -> Result<StatusCode, ApiError> {
    let is_admin = caller.token.claims.role == Role::Admin;
    check_id("chat_id", path.chat_id).map_err(single)?;
    let membership = state.store.membership(path.chat_id, caller.user_id).await?;
    if membership.is_none() && !is_admin {
        return Err(chat_not_found());
    }
    let message_id = check_id("message_id", path.message_id).map_err(single)?;
    let existing = state
        .store
        .message_in_chat(path.chat_id, message_id)
        .await?
        .ok_or_else(message_not_found)?;
    check_can_delete(caller.user_id, membership, is_admin, &existing)?;

    let deleted = state
        .store
        .delete_message(path.chat_id, message_id, now_millis())
        .await?;
    if let Some(message) = deleted {
        let event = Event::MessageDeleted {
            chat_id: path.chat_id,
            message,
        };
        publish_to_members(&state, path.chat_id, &event, None).await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Moves the caller's read marker forward to a message of this chat.
#[utoipa::path(
    post,
    path = "/chats/{chat_id}/read",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatPath),
    request_body = ReadRequest,
    responses(
        (status = 200, description = "The caller's read marker", body = ReadState),
        (status = 404, description = "No such chat, or the caller is not a member (`chat_not_found`)"),
    )
)]
pub async fn mark_read(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<ChatPath>,
    Json(request): Json<ReadRequest>,
) -> Result<Json<ReadState>, ApiError> {
    membership_or_404(&state, path.chat_id, caller.user_id).await?;
    let message_id = check_id("message_id", request.message_id).map_err(single)?;
    if state
        .store
        .message_in_chat(path.chat_id, message_id)
        .await?
        .is_none()
    {
        return Err(ApiError::invalid_field(
            "message_id",
            "is not a message in this conversation",
        ));
    }

    let marker = state
        .store
        .mark_read(path.chat_id, caller.user_id, message_id)
        .await?;
    if marker.moved {
        let event = Event::ReadUpdated {
            chat_id: path.chat_id,
            user_id: caller.user_id,
            message_id: marker.last_read_message_id,
        };
        publish_to_members(&state, path.chat_id, &event, None).await;
    }
    Ok(Json(ReadState {
        chat_id: path.chat_id,
        user_id: caller.user_id,
        last_read_message_id: marker.last_read_message_id,
    }))
}
