//! Permission checks for conversations, as plain functions over the
//! caller's membership. Callers check membership first: a non-member gets 404 before
//! any of these run.

use crate::http::error::ApiError;
use crate::store::chats::{ChatKind, MemberRole, Membership};
use crate::store::messages::Message;

fn direct_chat_conflict(detail: &str) -> ApiError {
    ApiError::conflict("direct_chat", detail)
}

fn require_owner(membership: Membership, detail: &str) -> Result<(), ApiError> {
    if membership.role != MemberRole::Owner {
        return Err(ApiError::forbidden("not_owner", detail));
    }
    Ok(())
}

/// Only a group's owner may rename it; direct chats have no title.
pub fn check_can_rename(membership: Membership) -> Result<(), ApiError> {
    if membership.kind == ChatKind::Direct {
        return Err(direct_chat_conflict("a direct chat has no title"));
    }
    require_owner(membership, "only the group owner can change the title")
}

/// Only a group's owner may add members; direct chats have fixed members.
pub fn check_can_add_member(membership: Membership) -> Result<(), ApiError> {
    if membership.kind == ChatKind::Direct {
        return Err(direct_chat_conflict("a direct chat has fixed members"));
    }
    require_owner(membership, "only the group owner can add members")
}

/// Allows a group's owner to remove anyone and any other member to remove
/// only themself. Direct chats have fixed members.
pub fn check_can_remove_member(
    membership: Membership,
    caller: i64,
    target: i64,
) -> Result<(), ApiError> {
    if membership.kind == ChatKind::Direct {
        return Err(direct_chat_conflict("a direct chat has fixed members"));
    }
    if caller == target {
        return Ok(());
    }
    require_owner(
        membership,
        "only the group owner can remove other members; members can only leave",
    )
}

/// Only the sender may edit a message, and only while it is not deleted.
pub fn check_can_edit(caller: i64, message: &Message) -> Result<(), ApiError> {
    if message.sender_id != caller {
        return Err(ApiError::forbidden(
            "not_sender",
            "only the sender can edit a message",
        ));
    }
    if message.deleted_at.is_some() {
        return Err(ApiError::conflict(
            "message_deleted",
            "a deleted message cannot be edited",
        ));
    }
    Ok(())
}

/// Allows the sender, the owner of the group, or an admin to delete a
/// message. `membership` is `None` for an admin who is not a member.
pub fn check_can_delete(
    caller: i64,
    membership: Option<Membership>,
    is_admin: bool,
    message: &Message,
) -> Result<(), ApiError> {
    let is_group_owner = membership.is_some_and(|membership| {
        membership.kind == ChatKind::Group && membership.role == MemberRole::Owner
    });
    if message.sender_id == caller || is_group_owner || is_admin {
        return Ok(());
    }
    Err(ApiError::forbidden(
        "not_sender",
        "only the sender, the group owner or an admin can delete a message",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWNER: Membership = Membership {
        kind: ChatKind::Group,
        role: MemberRole::Owner,
    };
    const MEMBER: Membership = Membership {
        kind: ChatKind::Group,
        role: MemberRole::Member,
    };
    const DIRECT: Membership = Membership {
        kind: ChatKind::Direct,
        role: MemberRole::Member,
    };

    fn message(sender_id: i64, deleted: bool) -> Message {
        Message {
            id: 1,
            chat_id: 1,
            sender_id,
            body: (!deleted).then(|| "hi".to_owned()),
            client_id: None,
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            edited_at: None,
            deleted_at: deleted.then(|| "2026-01-01T00:00:01.000Z".to_owned()),
        }
    }

    fn status(result: Result<(), ApiError>) -> u16 {
        result.map_or_else(|error| error.status().as_u16(), |()| 200)
    }

    #[test]
    fn rename_rules() {
        assert_eq!(status(check_can_rename(OWNER)), 200);
        assert_eq!(status(check_can_rename(MEMBER)), 403);
        assert_eq!(status(check_can_rename(DIRECT)), 409);
    }

    #[test]
    fn add_member_rules() {
        assert_eq!(status(check_can_add_member(OWNER)), 200);
        assert_eq!(status(check_can_add_member(MEMBER)), 403);
        assert_eq!(status(check_can_add_member(DIRECT)), 409);
    }

    #[test]
    fn remove_member_rules() {
        assert_eq!(status(check_can_remove_member(OWNER, 1, 2)), 200);
        assert_eq!(status(check_can_remove_member(OWNER, 1, 1)), 200);
        assert_eq!(status(check_can_remove_member(MEMBER, 2, 2)), 200);
        assert_eq!(status(check_can_remove_member(MEMBER, 2, 3)), 403);
        assert_eq!(status(check_can_remove_member(DIRECT, 2, 2)), 409);
    }

    #[test]
    fn edit_rules() {
        assert_eq!(status(check_can_edit(7, &message(7, false))), 200);
        assert_eq!(status(check_can_edit(8, &message(7, false))), 403);
        assert_eq!(status(check_can_edit(7, &message(7, true))), 409);
    }

    #[test]
    fn delete_rules() {
        let sent_by_7 = message(7, false);
        assert_eq!(
            status(check_can_delete(7, Some(MEMBER), false, &sent_by_7)),
            200
        );
        assert_eq!(
            status(check_can_delete(8, Some(OWNER), false, &sent_by_7)),
            200
        );
        assert_eq!(status(check_can_delete(8, None, true, &sent_by_7)), 200);
        assert_eq!(
            status(check_can_delete(8, Some(MEMBER), false, &sent_by_7)),
            403
        );
        // Members of a direct chat have role `member`, so neither can delete the other's messages.
        assert_eq!(
            status(check_can_delete(8, Some(DIRECT), false, &sent_by_7)),
            403
        );
    }
}
