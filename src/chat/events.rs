//! Server events about conversations, sent over WebSocket. Each serialises
//! as a JSON object whose `type` field names the event; message events carry
//! the same message object as the REST API.

use serde::Serialize;

use crate::store::chats::Chat;
use crate::store::messages::Message;
use crate::AppState;

/// An event sent to the members of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum Event {
    #[serde(rename = "message.created")]
    MessageCreated { chat_id: i64, message: Message },
    #[serde(rename = "message.updated")]
    MessageUpdated { chat_id: i64, message: Message },
    /// Carries the tombstone: `body` is null.
    #[serde(rename = "message.deleted")]
    MessageDeleted { chat_id: i64, message: Message },
    /// Sent to a user who was added to a conversation, or who created it.
    #[serde(rename = "chat.created")]
    ChatCreated { chat: Chat },
    /// The title or the owner changed.
    #[serde(rename = "chat.updated")]
    ChatUpdated { chat: Chat },
    #[serde(rename = "member.added")]
    MemberAdded { chat_id: i64, user_id: i64 },
    /// Also sent to the removed user, who receives nothing more about the chat.
    #[serde(rename = "member.removed")]
    MemberRemoved { chat_id: i64, user_id: i64 },
    /// A member's read marker moved forward to `message_id`.
    #[serde(rename = "read.updated")]
    ReadUpdated {
        chat_id: i64,
        user_id: i64,
        message_id: i64,
    },
    /// Published by the WebSocket code, never by the REST handlers.
    #[serde(rename = "typing")]
    Typing { chat_id: i64, user_id: i64 },
}

/// Publishes `event` to every current member of `chat_id`, plus `also`
/// (a member who was just removed). Call it after the change is committed.
/// Delivery is best effort: a failure to read the member list is logged,
/// because the change itself has succeeded and clients catch up over REST.
pub async fn publish_to_members(state: &AppState, chat_id: i64, event: &Event, also: Option<i64>) {
    let mut recipients = match state.store.chat_member_ids(chat_id).await {
        Ok(ids) => ids,
        Err(error) => {
            tracing::warn!(%error, chat_id, "failed to read members; event not published");
            return;
        }
    };
    recipients.extend(also);
    state.realtime.publish(&recipients, event);
}

/// Publishes `chat.created` or `chat.updated` to each member, with that
/// member's own `unread_count` in the chat.
pub async fn publish_chat_to_members(
    state: &AppState,
    chat_id: i64,
    make_event: fn(Chat) -> Event,
) {
    let views = match state.store.chat_for_each_member(chat_id).await {
        Ok(views) => views,
        Err(error) => {
            tracing::warn!(%error, chat_id, "failed to read the chat; event not published");
            return;
        }
    };
    for (user_id, chat) in views {
        state.realtime.publish(&[user_id], &make_event(chat));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_are_tagged_with_their_type() {
        let event = Event::ReadUpdated {
            chat_id: 3,
            user_id: 4,
            message_id: 5,
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({ "type": "read.updated", "chat_id": 3, "user_id": 4, "message_id": 5 })
        );
        let typing = Event::Typing {
            chat_id: 3,
            user_id: 4,
        };
        assert_eq!(serde_json::to_value(&typing).unwrap()["type"], "typing");
    }

    #[test]
    fn message_events_carry_the_whole_message() {
        let message = Message {
            id: 9,
            chat_id: 3,
            sender_id: 4,
            body: None,
            client_id: Some("c1".to_owned()),
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            edited_at: None,
            deleted_at: Some("2026-01-01T00:00:01.000Z".to_owned()),
        };
        let value = serde_json::to_value(Event::MessageDeleted {
            chat_id: 3,
            message,
        })
        .unwrap();
        assert_eq!(value["type"], "message.deleted");
        assert_eq!(value["chat_id"], 3);
        assert_eq!(value["message"]["id"], 9);
        assert!(value["message"]["body"].is_null());
        assert_eq!(value["message"]["client_id"], "c1");
    }
}
