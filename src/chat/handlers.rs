//! HTTP handlers for conversations and their members. Each one authenticates,
//! checks membership (404 for non-members, as for missing chats), applies the
//! rules in `validate` and `permissions`, calls the store, and publishes
//! events after the change is committed.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::cursor::{decode_cursor, encode_cursor};
use super::events::{publish_chat_to_members, publish_to_members, Event};
use super::permissions::{check_can_add_member, check_can_remove_member, check_can_rename};
use super::validate::{
    check_id, check_member_ids, check_title, page_limit, CHAT_PAGE, MAX_GROUP_MEMBERS,
};
use crate::auth::AuthUser;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{Json, Path, Query};
use crate::store::chats::{AddMember, Chat, ChatKind, Membership};
use crate::store::now_millis;
use crate::AppState;

/// `/chats/{chat_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ChatPath {
    /// Id of a conversation the caller is a member of.
    #[param(minimum = 1)]
    pub(super) chat_id: i64,
}

/// `/chats/{chat_id}/members/{user_id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MemberPath {
    /// Id of a conversation the caller is a member of.
    #[param(minimum = 1)]
    chat_id: i64,
    /// Id of the member to remove; the caller's own id to leave.
    #[param(minimum = 1)]
    user_id: i64,
}

/// Body of `POST /chats`: `user_id` for a direct chat, `title` and
/// `member_ids` for a group.
#[derive(Deserialize, ToSchema)]
pub struct CreateChatRequest {
    kind: ChatKind,
    /// The other user of a direct chat; required when `kind` is `direct`.
    user_id: Option<i64>,
    /// 1 to 100 characters after trimming; required when `kind` is `group`.
    title: Option<String>,
    /// Initial members of a group besides the caller, who becomes the owner.
    member_ids: Option<Vec<i64>>,
}

/// A chat to create, checked except for the existence of the users it names.
pub enum NewChat {
    Direct { other: i64 },
    Group { title: String, member_ids: Vec<i64> },
}

impl CreateChatRequest {
    /// Checks the fields for the requested kind on behalf of `creator`.
    pub fn validate(self, creator: i64) -> Result<NewChat, ApiError> {
        match self.kind {
            ChatKind::Direct => {
                let other = self
                    .user_id
                    .ok_or_else(|| ApiError::invalid_field("user_id", "is required"))?;
                let other = check_id("user_id", other).map_err(single)?;
                if other == creator {
                    return Err(ApiError::invalid_field(
                        "user_id",
                        "must be another user, not yourself",
                    ));
                }
                Ok(NewChat::Direct { other })
            }
            ChatKind::Group => {
                let title = self
                    .title
                    .ok_or_else(|| ApiError::invalid_field("title", "is required"))?;
                let title = check_title(&title).map_err(single)?;
                let member_ids = self.member_ids.unwrap_or_default();
                let member_ids = check_member_ids(creator, &member_ids).map_err(single)?;
                Ok(NewChat::Group { title, member_ids })
            }
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatListQuery {
    /// `next_cursor` of the previous page.
    #[param(max_length = 64)]
    cursor: Option<String>,
    /// Page size; 20 when absent, and values above 100 read as 100.
    #[param(minimum = 1)]
    limit: Option<i64>,
}

/// A page of chats; `next_cursor` is null on the last page.
#[derive(Serialize, ToSchema)]
pub struct ChatList {
    items: Vec<Chat>,
    next_cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct RenameRequest {
    /// 1 to 100 characters after trimming.
    title: String,
}

#[derive(Deserialize, ToSchema)]
pub struct AddMemberRequest {
    user_id: i64,
}

/// Checks a chat id from the path and returns the caller's membership, or
/// 404 when the chat does not exist or the caller is not a member.
pub(super) async fn membership_or_404(
    state: &AppState,
    chat_id: i64,
    caller: i64,
) -> Result<Membership, ApiError> {
    check_id("chat_id", chat_id).map_err(single)?;
    state
        .store
        .membership(chat_id, caller)
        .await?
        .ok_or_else(chat_not_found)
}

pub(super) fn chat_not_found() -> ApiError {
    ApiError::not_found("chat_not_found", "no conversation with this id")
}

pub(super) fn single(error: FieldError) -> ApiError {
    ApiError::Validation(vec![error])
}

/// Loads the chat for the caller. It was just checked or changed, so its
/// absence means a concurrent removal, which returns 404.
async fn chat_view(state: &AppState, chat_id: i64, viewer: i64) -> Result<Chat, ApiError> {
    state
        .store
        .chat_for(chat_id, viewer)
        .await?
        .ok_or_else(chat_not_found)
}

/// Returns a 422 error naming `field` when any of `ids` is not a user.
async fn require_users(state: &AppState, field: &str, ids: &[i64]) -> Result<(), ApiError> {
    let missing = state.store.missing_user_ids(ids).await?;
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    Err(ApiError::invalid_field(
        field,
        format!("no user with id {list}"),
    ))
}

/// Finds or creates a direct chat (`200` or `201`), or creates a group (`201`).
#[utoipa::path(
    post,
    path = "/chats",
    tag = "chat",
    security(("bearer" = [])),
    request_body = CreateChatRequest,
    responses(
        (status = 200, description = "The direct chat with this user already existed", body = Chat),
        (status = 201, description = "The chat was created", body = Chat),
    )
)]
pub async fn create_chat(
    State(state): State<AppState>,
    caller: AuthUser,
    Json(request): Json<CreateChatRequest>,
) -> Result<(StatusCode, Json<Chat>), ApiError> {
    let now = now_millis();
    let (chat_id, created) = match request.validate(caller.user_id)? {
        NewChat::Direct { other } => {
            require_users(&state, "user_id", &[other]).await?;
            state
                .store
                .find_or_create_direct_chat(caller.user_id, other, now)
                .await?
        }
        NewChat::Group { title, member_ids } => {
            require_users(&state, "member_ids", &member_ids).await?;
            let chat_id = state
                .store
                .create_group_chat(caller.user_id, &title, &member_ids, now)
                .await?;
            (chat_id, true)
        }
    };

    if created {
        publish_chat_to_members(&state, chat_id, |chat| Event::ChatCreated { chat }).await;
    }
    let chat = chat_view(&state, chat_id, caller.user_id).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(chat)))
}

/// Lists the caller's chats, most recent activity first.
#[utoipa::path(
    get,
    path = "/chats",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatListQuery),
    responses((status = 200, description = "A page of chats", body = ChatList))
)]
pub async fn list_chats(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(query): Query<ChatListQuery>,
) -> Result<Json<ChatList>, ApiError> {
    let limit = page_limit(query.limit, CHAT_PAGE).map_err(single)?;
    let after = query
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()
        .map_err(single)?;

    let page = state.store.list_chats(caller.user_id, after, limit).await?;
    Ok(Json(ChatList {
        items: page.items,
        next_cursor: page.next.map(encode_cursor),
    }))
}

/// Returns a chat with its members.
#[utoipa::path(
    get,
    path = "/chats/{chat_id}",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatPath),
    responses(
        (status = 200, description = "The chat", body = Chat),
        (status = 404, description = "No such chat, or the caller is not a member (`chat_not_found`)"),
    )
)]
pub async fn get_chat(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<ChatPath>,
) -> Result<Json<Chat>, ApiError> {
    membership_or_404(&state, path.chat_id, caller.user_id).await?;
    Ok(Json(chat_view(&state, path.chat_id, caller.user_id).await?))
}

/// Renames a group; owner only.
#[utoipa::path(
    patch,
    path = "/chats/{chat_id}",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatPath),
    request_body = RenameRequest,
    responses(
        (status = 200, description = "The renamed chat", body = Chat),
        (status = 403, description = "The caller is not the group's owner (`not_owner`)"),
        (status = 404, description = "No such chat, or the caller is not a member (`chat_not_found`)"),
        (status = 409, description = "Direct chats have no title (`direct_chat`)"),
    )
)]
pub async fn rename_chat(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<ChatPath>,
    Json(request): Json<RenameRequest>,
) -> Result<Json<Chat>, ApiError> {
    let membership = membership_or_404(&state, path.chat_id, caller.user_id).await?;
    check_can_rename(membership)?;
    let title = check_title(&request.title).map_err(single)?;

    state.store.set_chat_title(path.chat_id, &title).await?;
    publish_chat_to_members(&state, path.chat_id, |chat| Event::ChatUpdated { chat }).await;
    Ok(Json(chat_view(&state, path.chat_id, caller.user_id).await?))
}

/// Adds a user to a group; owner only. Responds `201` with the chat.
#[utoipa::path(
    post,
    path = "/chats/{chat_id}/members",
    tag = "chat",
    security(("bearer" = [])),
    params(ChatPath),
    request_body = AddMemberRequest,
    responses(
        (status = 201, description = "The chat with the new member", body = Chat),
        (status = 403, description = "The caller is not the group's owner (`not_owner`)"),
        (status = 404, description = "No such chat, or the caller is not a member (`chat_not_found`)"),
        (status = 409, description = "A direct chat, a member already, or a full group \
                                      (`direct_chat`, `already_member`, `group_full`)"),
    )
)]
pub async fn add_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<ChatPath>,
    Json(request): Json<AddMemberRequest>,
) -> Result<(StatusCode, Json<Chat>), ApiError> {
    let membership = membership_or_404(&state, path.chat_id, caller.user_id).await?;
    check_can_add_member(membership)?;
    let user_id = check_id("user_id", request.user_id).map_err(single)?;
    require_users(&state, "user_id", &[user_id]).await?;

    let outcome = state
        .store
        .add_member(
            path.chat_id,
            user_id,
            MAX_GROUP_MEMBERS as i64,
            now_millis(),
        )
        .await?;
    match outcome {
        AddMember::Added => {}
        AddMember::AlreadyMember => {
            return Err(ApiError::conflict(
                "already_member",
                "this user is already a member",
            ))
        }
        AddMember::GroupFull => {
            return Err(ApiError::conflict(
                "group_full",
                format!("a group has at most {MAX_GROUP_MEMBERS} members"),
            ))
        }
    }

    let added = Event::MemberAdded {
        chat_id: path.chat_id,
        user_id,
    };
    publish_to_members(&state, path.chat_id, &added, None).await;
    if let Ok(Some(chat)) = state.store.chat_for(path.chat_id, user_id).await {
        state
            .realtime
            .publish(&[user_id], &Event::ChatCreated { chat });
    }
    let chat = chat_view(&state, path.chat_id, caller.user_id).await?;
    Ok((StatusCode::CREATED, Json(chat)))
}

/// Removes a member, or lets a member leave. Responds `204`.
#[utoipa::path(
    delete,
    path = "/chats/{chat_id}/members/{user_id}",
    tag = "chat",
    security(("bearer" = [])),
    params(MemberPath),
    responses(
        (status = 204, description = "The member was removed or has left"),
        (status = 403, description = "Only the owner removes others (`not_owner`)"),
        (status = 404, description = "No such chat or member (`chat_not_found`, `member_not_found`)"),
        (status = 409, description = "Direct chats have fixed members (`direct_chat`)"),
    )
)]
pub async fn remove_member(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(path): Path<MemberPath>,
) -> Result<StatusCode, ApiError> {
    let membership = membership_or_404(&state, path.chat_id, caller.user_id).await?;
    let target = check_id("user_id", path.user_id).map_err(single)?;
    check_can_remove_member(membership, caller.user_id, target)?;

    let removal = state.store.remove_member(path.chat_id, target).await?;
    if !removal.removed {
        return Err(ApiError::not_found(
            "member_not_found",
            "this user is not a member of the conversation",
        ));
    }

    let removed = Event::MemberRemoved {
        chat_id: path.chat_id,
        user_id: target,
    };
    publish_to_members(&state, path.chat_id, &removed, Some(target)).await;
    if removal.new_owner.is_some() {
        publish_chat_to_members(&state, path.chat_id, |chat| Event::ChatUpdated { chat }).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
