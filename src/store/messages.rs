//! Messages: idempotent sends, id-ordered pages, edits, tombstones and read
//! markers.

use serde::Serialize;
use sqlx::FromRow;

use sqlx::AnyConnection;

use super::{format_millis, Backend, Store};

/// A message as the API and the server events show it. A deleted message is
/// a tombstone: `body` is `None` and `deleted_at` is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: i64,
    pub chat_id: i64,
    pub sender_id: i64,
    pub body: Option<String>,
    pub client_id: Option<String>,
    /// RFC 3339 times.
    pub created_at: String,
    pub edited_at: Option<String>,
    pub deleted_at: Option<String>,
}

/// A message to store; the body is already validated.
#[derive(Clone, Debug)]
pub struct NewMessage<'a> {
    pub chat_id: i64,
    pub sender_id: i64,
    pub body: &'a str,
    pub client_id: Option<&'a str>,
    pub created_at: i64,
}

/// The part of a chat's history a page covers: ids strictly between
/// `after` and `before`, each bound optional.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageRange {
    pub before: Option<i64>,
    pub after: Option<i64>,
}

/// One page of messages in ascending id order.
#[derive(Clone, Debug)]
pub struct MessagePage {
    pub items: Vec<Message>,
    /// Whether more messages lie beyond the page in the direction read: newer
    /// ones when `after` was given, older ones otherwise.
    pub has_more: bool,
}

/// A read marker's position after a request to move it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadMarker {
    pub last_read_message_id: i64,
    /// False when the marker already stood at or past the requested message.
    pub moved: bool,
}

#[derive(FromRow)]
pub(super) struct MessageRow {
    id: i64,
    chat_id: i64,
    sender_id: i64,
    body: Option<String>,
    client_id: Option<String>,
    created_at: i64,
    edited_at: Option<i64>,
    deleted_at: Option<i64>,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Self {
            id: row.id,
            chat_id: row.chat_id,
            sender_id: row.sender_id,
            body: row.body,
            client_id: row.client_id,
            created_at: format_millis(row.created_at),
            edited_at: row.edited_at.map(format_millis),
            deleted_at: row.deleted_at.map(format_millis),
        }
    }
}

pub(super) const MESSAGE_COLUMNS: &str =
    "id, chat_id, sender_id, body, client_id, created_at, edited_at, deleted_at";

/// First key of the PostgreSQL advisory lock taken per chat while a message
/// is inserted; the second key is the chat id. The two-key form has a key
/// space of its own (PostgreSQL manual, "Advisory Lock Functions"), so it
/// cannot collide with sqlx's migration lock, which uses a single bigint key.
const MESSAGE_LOCK_CLASS: i64 = 0x6d73_6773; // "msgs" in ASCII

impl Store {
    /// Stores a message and returns it with `true`, or, when the sender
    /// already sent this `client_id` in this chat, returns the stored message
    /// with `false` and stores nothing. Racing sends of one `client_id` store
    /// one message: the unique index turns all but the first insert into
    /// no-ops. The message is committed before this returns.
    ///
    /// On SQLite the insert goes through the store's
    /// [`MessageWriter`](super::message_writer::MessageWriter), which
    /// commits the messages of concurrent requests together.
    pub async fn create_message(
        &self,
        new: NewMessage<'_>,
    ) -> Result<(Message, bool), sqlx::Error> {
        if let Some(writer) = self.message_writer() {
            return writer.create(&new).await;
        }
        // TODO: PostgreSQL still commits one message per transaction, about
        // 250 messages/s on a loaded two-CPU machine; batching it as on SQLite
        // needs a savepoint per message, because there a failed insert aborts
        // the whole transaction.
        let mut transaction = self.pool().begin().await?;
        if self.backend() == Backend::Postgres {
            // Held until commit, so ids in this chat commit in the order the
            // sequence hands them out and `after=` paging never skips one.
            sqlx::query(
                "SELECT pg_advisory_xact_lock(CAST($1 AS INTEGER), CAST($2 % 2147483648 AS INTEGER))",
            )
            .bind(MESSAGE_LOCK_CLASS)
            .bind(new.chat_id)
            .execute(&mut *transaction)
            .await?;
        }
        let (message, created) = insert_message(&mut transaction, &new).await?;
        if created {
            touch_chat(&mut transaction, new.chat_id, new.created_at).await?;
        }
        transaction.commit().await?;
        Ok((message, created))
    }

    /// Finds a message by id within one chat.
    pub async fn message_in_chat(
        &self,
        chat_id: i64,
        message_id: i64,
    ) -> Result<Option<Message>, sqlx::Error> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1 AND id = $2");
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(chat_id)
            .bind(message_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(Message::from))
    }

    /// Reads up to `limit` messages of a chat within `range`. With `after`,
    /// the page contains the oldest messages past it; otherwise the newest ones
    /// before `before` (or the newest of all). Items are always in ascending
    /// id order, and ids alone decide membership of a page, so pages neither
    /// skip nor repeat a message whatever its timestamps.
    pub async fn list_messages(
        &self,
        chat_id: i64,
        range: MessageRange,
        limit: i64,
    ) -> Result<MessagePage, sqlx::Error> {
        let mut sql = format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE chat_id = $1");
        let mut bounds = Vec::new();
        if let Some(before) = range.before {
            bounds.push(before);
            sql.push_str(&format!(" AND id < ${}", bounds.len() + 1));
        }
        if let Some(after) = range.after {
            bounds.push(after);
            sql.push_str(&format!(" AND id > ${}", bounds.len() + 1));
        }
        let forward = range.after.is_some();
        let order = if forward { "ASC" } else { "DESC" };
        sql.push_str(&format!(" ORDER BY id {order} LIMIT ${}", bounds.len() + 2));

        let mut query = sqlx::query_as::<_, MessageRow>(&sql).bind(chat_id);
        for bound in bounds {
            query = query.bind(bound);
        }
        // One extra row shows whether another page follows.
        let mut rows = query.bind(limit + 1).fetch_all(self.pool()).await?;

        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        if !forward {
            rows.reverse();
        }
        Ok(MessagePage {
            items: rows.into_iter().map(Message::from).collect(),
            has_more,
        })
    }

    /// Replaces the body of a message that is not deleted and returns it;
    /// `None` when there is no such message or it is deleted.
    pub async fn edit_message(
        &self,
        chat_id: i64,
        message_id: i64,
        body: &str,
        edited_at: i64,
    ) -> Result<Option<Message>, sqlx::Error> {
        let sql = format!(
            "UPDATE messages SET body = $1, edited_at = $2 \
             WHERE chat_id = $3 AND id = $4 AND deleted_at IS NULL \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(body)
            .bind(edited_at)
            .bind(chat_id)
            .bind(message_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(Message::from))
    }

    /// Turns a message into a tombstone and returns it; `None` when there is
    /// no such message or it was already deleted. The body is set to NULL,
    /// and on SQLite `secure_delete` zeroes the old bytes and a checkpoint
    /// moves them out of the write-ahead log, so the text leaves the files.
    ///
    /// NOTE: PostgreSQL keeps the old row version, body included, until
    /// VACUUM reclaims it.
    pub async fn delete_message(
        &self,
        chat_id: i64,
        message_id: i64,
        deleted_at: i64,
    ) -> Result<Option<Message>, sqlx::Error> {
        let sql = format!(
            "UPDATE messages SET body = NULL, deleted_at = $1 \
             WHERE chat_id = $2 AND id = $3 AND deleted_at IS NULL \
             RETURNING {MESSAGE_COLUMNS}"
        );
        let row: Option<MessageRow> = sqlx::query_as(&sql)
            .bind(deleted_at)
            .bind(chat_id)
            .bind(message_id)
            .fetch_optional(self.pool())
            .await?;
        if row.is_some() && self.backend() == Backend::Sqlite {
            self.checkpoint_wal().await;
        }
        Ok(row.map(Message::from))
    }

    /// Copies the write-ahead log into the database file and truncates it, so
    /// erased text does not linger in old log frames. A checkpoint that a
    /// concurrent reader blocks is only logged: the next one completes it.
    async fn checkpoint_wal(&self) {
        let result: Result<(i64, i64, i64), sqlx::Error> =
            sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(self.pool())
                .await;
        match result {
            Ok((0, _, _)) => {}
            Ok((_, _, _)) => tracing::warn!("WAL checkpoint after a deletion was blocked"),
            Err(error) => tracing::warn!(%error, "WAL checkpoint after a deletion failed"),
        }
    }

    /// Moves a member's read marker forward to `message_id`, never back.
    pub async fn mark_read(
        &self,
        chat_id: i64,
        user_id: i64,
        message_id: i64,
    ) -> Result<ReadMarker, sqlx::Error> {
        let moved = sqlx::query(
            "UPDATE chat_members SET last_read_message_id = $1 \
             WHERE chat_id = $2 AND user_id = $3 AND last_read_message_id < $1",
        )
        .bind(message_id)
        .bind(chat_id)
        .bind(user_id)
        .execute(self.pool())
        .await?
        .rows_affected()
            > 0;

        let last_read_message_id: i64 = sqlx::query_scalar(
            "SELECT last_read_message_id FROM chat_members WHERE chat_id = $1 AND user_id = $2",
        )
        .bind(chat_id)
        .bind(user_id)
        .fetch_optional(self.pool())
        .await?
        .unwrap_or(0);
        Ok(ReadMarker {
            last_read_message_id,
            moved,
        })
    }
}

/// Inserts one message inside the caller's transaction. Returns it with
/// `true`, or the message stored earlier under the same `client_id` with
/// `false`.
pub(super) async fn insert_message(
    connection: &mut AnyConnection,
    new: &NewMessage<'_>,
) -> Result<(Message, bool), sqlx::Error> {
    let sql = format!(
        "INSERT INTO messages (chat_id, sender_id, body, client_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (chat_id, sender_id, client_id) DO NOTHING \
         RETURNING {MESSAGE_COLUMNS}"
    );
    let inserted: Option<MessageRow> = sqlx::query_as(&sql)
        .bind(new.chat_id)
        .bind(new.sender_id)
        .bind(new.body)
        .bind(new.client_id)
        .bind(new.created_at)
        .fetch_optional(&mut *connection)
        .await?;
    if let Some(row) = inserted {
        return Ok((row.into(), true));
    }

    // Only a repeated client id conflicts, and the first send is visible
    // here: on SQLite it was written earlier by the one writer (in this
    // transaction or a committed one), and on PostgreSQL this transaction
    // waited for the chat's lock until the first one committed.
    let sql = format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages \
         WHERE chat_id = $1 AND sender_id = $2 AND client_id = $3"
    );
    let existing: MessageRow = sqlx::query_as(&sql)
        .bind(new.chat_id)
        .bind(new.sender_id)
        .bind(new.client_id)
        .fetch_one(&mut *connection)
        .await?;
    Ok((existing.into(), false))
}

/// Moves a chat's `last_activity_at` forward to `at` (Unix milliseconds).
pub(super) async fn touch_chat(
    connection: &mut AnyConnection,
    chat_id: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE chats SET last_activity_at = $1 WHERE id = $2 AND last_activity_at < $1")
        .bind(at)
        .bind(chat_id)
        .execute(&mut *connection)
        .await?;
    Ok(())
}
