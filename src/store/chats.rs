//! Conversations and their members, and the user search that finds people to
//! talk to.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{Any, FromRow, Transaction};

use super::messages::{Message, MessageRow, MESSAGE_COLUMNS};
use super::users::fold_for_search;
use super::{format_millis, Store};

/// Whether a conversation is between two fixed users or a titled group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatKind {
    Direct,
    Group,
}

impl ChatKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
        }
    }

    fn from_column(value: &str) -> Self {
        // The column's CHECK constraint admits only these two values.
        if value == "direct" {
            Self::Direct
        } else {
            Self::Group
        }
    }
}

/// A member's role in a conversation. Members of direct chats are all `Member`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberRole {
    Owner,
    Member,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Member => "member",
        }
    }

    fn from_column(value: &str) -> Self {
        // The column's CHECK constraint admits only these two values.
        if value == "owner" {
            Self::Owner
        } else {
            Self::Member
        }
    }
}

/// A member of a conversation as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub user_id: i64,
    pub display_name: String,
    pub role: MemberRole,
    /// RFC 3339 time the user joined.
    pub joined_at: String,
    /// 0 until the member has read anything.
    pub last_read_message_id: i64,
}

/// A conversation from one member's view: `unread_count` counts the other
/// members' messages past this member's read marker, tombstones excluded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Chat {
    pub id: i64,
    pub kind: ChatKind,
    /// Always `None` for direct chats.
    pub title: Option<String>,
    /// RFC 3339 creation time.
    pub created_at: String,
    pub members: Vec<Member>,
    pub last_message: Option<Message>,
    pub unread_count: i64,
}

/// The caller's place in a conversation, for permission checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Membership {
    pub kind: ChatKind,
    pub role: MemberRole,
}

/// Position of a chat in the activity-ordered list: newest activity first,
/// ties broken by descending id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActivityKey {
    /// Unix milliseconds of the chat's creation or latest message.
    pub last_activity_at: i64,
    pub id: i64,
}

/// One page of the chat list.
#[derive(Clone, Debug)]
pub struct ChatPage {
    pub items: Vec<Chat>,
    /// Key of the last item when another page follows.
    pub next: Option<ActivityKey>,
}

/// Outcome of adding a member to a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddMember {
    Added,
    AlreadyMember,
    GroupFull,
}

/// Outcome of removing a member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Removal {
    /// False when the user was not a member.
    pub removed: bool,
    /// The member promoted because the owner left.
    pub new_owner: Option<i64>,
    /// True when the last member left and the chat was deleted with its messages.
    pub chat_deleted: bool,
}

/// A user as the search shows them: id and display name only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, FromRow, utoipa::ToSchema)]
pub struct UserSummary {
    pub id: i64,
    pub display_name: String,
}

#[derive(FromRow)]
struct ChatRow {
    id: i64,
    kind: String,
    title: Option<String>,
    created_at: i64,
    last_activity_at: i64,
    unread_count: i64,
    last_message_id: Option<i64>,
}

#[derive(FromRow)]
struct MemberRow {
    chat_id: i64,
    user_id: i64,
    display_name: String,
    role: String,
    joined_at: i64,
    last_read_message_id: i64,
}

impl From<MemberRow> for Member {
    fn from(row: MemberRow) -> Self {
        Self {
            user_id: row.user_id,
            display_name: row.display_name,
            role: MemberRole::from_column(&row.role),
            joined_at: format_millis(row.joined_at),
            last_read_message_id: row.last_read_message_id,
        }
    }
}

/// Columns of a `ChatRow` as seen by the member joined as `cm`.
const CHAT_COLUMNS: &str = "c.id, c.kind, c.title, c.created_at, c.last_activity_at, \
     (SELECT COUNT(*) FROM messages m WHERE m.chat_id = c.id \
        AND m.id > cm.last_read_message_id AND m.sender_id <> cm.user_id \
        AND m.deleted_at IS NULL) AS unread_count, \
     (SELECT MAX(m.id) FROM messages m WHERE m.chat_id = c.id) AS last_message_id";

/// Returns `$first, $first+1, …` for `count` parameters of an `IN (…)` list.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Returns the caller's kind of chat and role, or `None` when the chat
    /// does not exist or the user is not a member, because callers treat both alike.
    pub async fn membership(
        &self,
        chat_id: i64,
        user_id: i64,
    ) -> Result<Option<Membership>, sqlx::Error> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT c.kind, cm.role FROM chats c \
             JOIN chat_members cm ON cm.chat_id = c.id \
             WHERE c.id = $1 AND cm.user_id = $2",
        )
        .bind(chat_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(kind, role)| Membership {
            kind: ChatKind::from_column(&kind),
            role: MemberRole::from_column(&role),
        }))
    }

    /// Returns whether the user is a member of the chat.
    pub async fn is_member(&self, chat_id: i64, user_id: i64) -> Result<bool, sqlx::Error> {
        Ok(self.membership(chat_id, user_id).await?.is_some())
    }

    /// Returns the ids of a chat's members, the recipients of its events.
    pub async fn chat_member_ids(&self, chat_id: i64) -> Result<Vec<i64>, sqlx::Error> {
        sqlx::query_scalar("SELECT user_id FROM chat_members WHERE chat_id = $1 ORDER BY user_id")
            .bind(chat_id)
            .fetch_all(self.pool())
            .await
    }

    /// Returns the chat from the view of member `viewer`, or `None` when the
    /// viewer is not a member.
    pub async fn chat_for(&self, chat_id: i64, viewer: i64) -> Result<Option<Chat>, sqlx::Error> {
        let sql = format!(
            "SELECT {CHAT_COLUMNS} FROM chats c \
             JOIN chat_members cm ON cm.chat_id = c.id \
             WHERE c.id = $1 AND cm.user_id = $2"
        );
        let row: Option<ChatRow> = sqlx::query_as(&sql)
            .bind(chat_id)
            .bind(viewer)
            .fetch_optional(self.pool())
            .await?;
        let chats = self.assemble_chats(row.into_iter().collect()).await?;
        Ok(chats.into_iter().next())
    }

    /// Returns the chat from each member's view, for events whose
    /// `unread_count` differs per recipient.
    pub async fn chat_for_each_member(
        &self,
        chat_id: i64,
    ) -> Result<Vec<(i64, Chat)>, sqlx::Error> {
        let sql = format!(
            "SELECT cm.user_id, {CHAT_COLUMNS} FROM chats c \
             JOIN chat_members cm ON cm.chat_id = c.id \
             WHERE c.id = $1 ORDER BY cm.user_id"
        );
        let rows = sqlx::query(&sql)
            .bind(chat_id)
            .fetch_all(self.pool())
            .await?;
        let mut viewers = Vec::with_capacity(rows.len());
        let mut unread = Vec::with_capacity(rows.len());
        for row in &rows {
            use sqlx::Row as _;
            viewers.push(row.try_get::<i64, _>("user_id")?);
            unread.push(row.try_get::<i64, _>("unread_count")?);
        }
        let Some(first) = rows.first() else {
            return Ok(Vec::new());
        };
        let template = self
            .assemble_chats(vec![ChatRow::from_row(first)?])
            .await?
            .remove(0);
        Ok(viewers
            .into_iter()
            .zip(unread)
            .map(|(viewer, unread_count)| {
                let mut chat = template.clone();
                chat.unread_count = unread_count;
                (viewer, chat)
            })
            .collect())
    }

    /// Returns one page of the user's chats, most recent activity first,
    /// starting after `after`.
    pub async fn list_chats(
        &self,
        user_id: i64,
        after: Option<ActivityKey>,
        limit: i64,
    ) -> Result<ChatPage, sqlx::Error> {
        let after_clause = match after {
            Some(_) => "AND (c.last_activity_at < $3 OR (c.last_activity_at = $3 AND c.id < $4))",
            None => "",
        };
        let sql = format!(
            "SELECT {CHAT_COLUMNS} FROM chats c \
             JOIN chat_members cm ON cm.chat_id = c.id AND cm.user_id = $1 \
             WHERE 1 = 1 {after_clause} \
             ORDER BY c.last_activity_at DESC, c.id DESC LIMIT $2"
        );
        // One extra row shows whether another page follows.
        let mut query = sqlx::query_as::<_, ChatRow>(&sql)
            .bind(user_id)
            .bind(limit + 1);
        if let Some(key) = after {
            query = query.bind(key.last_activity_at).bind(key.id);
        }
        let mut rows = query.fetch_all(self.pool()).await?;

        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next = has_more
            .then(|| rows.last())
            .flatten()
            .map(|row| ActivityKey {
                last_activity_at: row.last_activity_at,
                id: row.id,
            });
        let items = self.assemble_chats(rows).await?;
        Ok(ChatPage { items, next })
    }

    /// Adds members and last messages to chat rows, keeping their order.
    async fn assemble_chats(&self, rows: Vec<ChatRow>) -> Result<Vec<Chat>, sqlx::Error> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let chat_ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let sql = format!(
            "SELECT cm.chat_id, cm.user_id, u.display_name, cm.role, cm.joined_at, \
                    cm.last_read_message_id \
             FROM chat_members cm JOIN users u ON u.id = cm.user_id \
             WHERE cm.chat_id IN ({}) ORDER BY cm.chat_id, cm.joined_at, cm.user_id",
            placeholders(1, chat_ids.len())
        );
        let mut query = sqlx::query_as::<_, MemberRow>(&sql);
        for id in &chat_ids {
            query = query.bind(*id);
        }
        let mut members: HashMap<i64, Vec<Member>> = HashMap::new();
        for row in query.fetch_all(self.pool()).await? {
            members.entry(row.chat_id).or_default().push(row.into());
        }

        let message_ids: Vec<i64> = rows.iter().filter_map(|row| row.last_message_id).collect();
        let mut last_messages: HashMap<i64, Message> = HashMap::new();
        if !message_ids.is_empty() {
            let sql = format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN ({})",
                placeholders(1, message_ids.len())
            );
            let mut query = sqlx::query_as::<_, MessageRow>(&sql);
            for id in &message_ids {
                query = query.bind(*id);
            }
            for row in query.fetch_all(self.pool()).await? {
                let message = Message::from(row);
                last_messages.insert(message.chat_id, message);
            }
        }

        Ok(rows
            .into_iter()
            .map(|row| Chat {
                id: row.id,
                kind: ChatKind::from_column(&row.kind),
                title: row.title,
                created_at: format_millis(row.created_at),
                members: members.remove(&row.id).unwrap_or_default(),
                last_message: last_messages.remove(&row.id),
                unread_count: row.unread_count,
            })
            .collect())
    }

    /// Returns the direct chat between two users, creating it when there is
    /// none, with `true` when it was created. Two users starting it at once
    /// get one chat: the unique `direct_key` turns the second insert into a
    /// no-op.
    pub async fn find_or_create_direct_chat(
        &self,
        creator: i64,
        other: i64,
        now: i64,
    ) -> Result<(i64, bool), sqlx::Error> {
        let direct_key = format!("{}:{}", creator.min(other), creator.max(other));
        let mut transaction = self.pool().begin().await?;
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO chats (kind, direct_key, created_by, created_at, last_activity_at) \
             VALUES ('direct', $1, $2, $3, $3) \
             ON CONFLICT (direct_key) DO NOTHING RETURNING id",
        )
        .bind(&direct_key)
        .bind(creator)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;

        let Some(chat_id) = created else {
            let chat_id = sqlx::query_scalar("SELECT id FROM chats WHERE direct_key = $1")
                .bind(&direct_key)
                .fetch_one(&mut *transaction)
                .await?;
            transaction.commit().await?;
            return Ok((chat_id, false));
        };
        for user_id in [creator, other] {
            insert_member(&mut transaction, chat_id, user_id, MemberRole::Member, now).await?;
        }
        transaction.commit().await?;
        Ok((chat_id, true))
    }

    /// Creates a group owned by `owner` with the given other members, which
    /// must exist, be distinct and not include the owner.
    pub async fn create_group_chat(
        &self,
        owner: i64,
        title: &str,
        member_ids: &[i64],
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        let chat_id: i64 = sqlx::query_scalar(
            "INSERT INTO chats (kind, title, created_by, created_at, last_activity_at) \
             VALUES ('group', $1, $2, $3, $3) RETURNING id",
        )
        .bind(title)
        .bind(owner)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        insert_member(&mut transaction, chat_id, owner, MemberRole::Owner, now).await?;
        for user_id in member_ids {
            insert_member(&mut transaction, chat_id, *user_id, MemberRole::Member, now).await?;
        }
        transaction.commit().await?;
        Ok(chat_id)
    }

    /// Sets a group's title.
    pub async fn set_chat_title(&self, chat_id: i64, title: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE chats SET title = $1 WHERE id = $2 AND kind = 'group'")
            .bind(title)
            .bind(chat_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Adds an existing user to a group as a plain member, unless the group
    /// already has `max_members`.
    ///
    /// NOTE: two adds racing for the last free place can both succeed, so a
    /// group may exceed `max_members` by the number of concurrent adds.
    pub async fn add_member(
        &self,
        chat_id: i64,
        user_id: i64,
        max_members: i64,
        now: i64,
    ) -> Result<AddMember, sqlx::Error> {
        if self.is_member(chat_id, user_id).await? {
            return Ok(AddMember::AlreadyMember);
        }
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_members WHERE chat_id = $1")
            .bind(chat_id)
            .fetch_one(self.pool())
            .await?;
        if count >= max_members {
            return Ok(AddMember::GroupFull);
        }
        let inserted = sqlx::query(
            "INSERT INTO chat_members (chat_id, user_id, role, joined_at) \
             VALUES ($1, $2, 'member', $3) ON CONFLICT (chat_id, user_id) DO NOTHING",
        )
        .bind(chat_id)
        .bind(user_id)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(if inserted == 1 {
            AddMember::Added
        } else {
            AddMember::AlreadyMember
        })
    }

    /// Removes a member. When the owner leaves, the longest-standing member
    /// becomes owner; when the last member leaves, the chat and its messages
    /// are deleted.
    pub async fn remove_member(&self, chat_id: i64, user_id: i64) -> Result<Removal, sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        let role: Option<String> = sqlx::query_scalar(
            "DELETE FROM chat_members WHERE chat_id = $1 AND user_id = $2 RETURNING role",
        )
        .bind(chat_id)
        .bind(user_id)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(role) = role else {
            return Ok(Removal::default());
        };

        let mut removal = Removal {
            removed: true,
            ..Removal::default()
        };
        let successor: Option<i64> = sqlx::query_scalar(
            "SELECT user_id FROM chat_members WHERE chat_id = $1 \
             ORDER BY joined_at, user_id LIMIT 1",
        )
        .bind(chat_id)
        .fetch_optional(&mut *transaction)
        .await?;
        match successor {
            None => {
                sqlx::query("DELETE FROM chats WHERE id = $1")
                    .bind(chat_id)
                    .execute(&mut *transaction)
                    .await?;
                removal.chat_deleted = true;
            }
            Some(successor) if MemberRole::from_column(&role) == MemberRole::Owner => {
                sqlx::query(
                    "UPDATE chat_members SET role = 'owner' WHERE chat_id = $1 AND user_id = $2",
                )
                .bind(chat_id)
                .bind(successor)
                .execute(&mut *transaction)
                .await?;
                removal.new_owner = Some(successor);
            }
            Some(_) => {}
        }
        transaction.commit().await?;
        Ok(removal)
    }

    /// Returns those of `ids` that name no user.
    pub async fn missing_user_ids(&self, ids: &[i64]) -> Result<Vec<i64>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id FROM users WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for id in ids {
            query = query.bind(*id);
        }
        let found = query.fetch_all(self.pool()).await?;
        Ok(ids
            .iter()
            .copied()
            .filter(|id| !found.contains(id))
            .collect())
    }

    /// Finds users other than `exclude` whose display name starts with
    /// `name_prefix`, compared case-insensitively by Unicode rules (see
    /// [`fold_for_search`]), or whose normalised email equals `email`, ordered
    /// by display name.
    pub async fn search_users(
        &self,
        name_prefix: &str,
        email: Option<&str>,
        exclude: i64,
        limit: i64,
    ) -> Result<Vec<UserSummary>, sqlx::Error> {
        let pattern = format!("{}%", escape_like(&fold_for_search(name_prefix)));
        sqlx::query_as(
            "SELECT id, display_name FROM users \
             WHERE id <> $1 AND (display_name_folded LIKE $2 ESCAPE '\\' OR email = $3) \
             ORDER BY display_name, id LIMIT $4",
        )
        .bind(exclude)
        .bind(pattern)
        .bind(email.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await
    }
}

async fn insert_member(
    transaction: &mut Transaction<'_, Any>,
    chat_id: i64,
    user_id: i64,
    role: MemberRole,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO chat_members (chat_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(chat_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(now)
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

/// Escapes `%`, `_` and the escape character itself for a `LIKE … ESCAPE '\'`
/// pattern, so they match literally.
fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(escape_like("a%b_c\\d"), "a\\%b\\_c\\\\d");
    }

    #[test]
    fn placeholders_are_numbered_from_first() {
        assert_eq!(placeholders(3, 3), "$3, $4, $5");
    }
}
