-- Conversations, their members and their messages. Times are Unix
-- milliseconds.

-- `direct_key` is "<lower user id>:<higher user id>" for direct chats and
-- NULL for groups; its unique index makes one direct chat per pair of users,
-- also when both users start it at once. `last_activity_at` is the creation
-- time, then the time of the latest message, and orders the chat list.
CREATE TABLE chats (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT      NOT NULL CHECK (kind IN ('direct', 'group')),
    title            TEXT,
    direct_key       TEXT      UNIQUE,
    created_by       BIGINT    NOT NULL REFERENCES users (id),
    created_at       BIGINT    NOT NULL,
    last_activity_at BIGINT    NOT NULL,
    CHECK ((kind = 'direct') = (direct_key IS NOT NULL))
);
CREATE INDEX chats_activity ON chats (last_activity_at, id);

-- `last_read_message_id` is 0 until the member reads something; it only
-- moves forward.
CREATE TABLE chat_members (
    chat_id              BIGINT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    user_id              BIGINT NOT NULL REFERENCES users (id),
    role                 TEXT   NOT NULL CHECK (role IN ('owner', 'member')),
    joined_at            BIGINT NOT NULL,
    last_read_message_id BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user ON chat_members (user_id, chat_id);

-- A sequence hands out strictly increasing ids, but concurrent transactions
-- can commit them out of order: a reader could see id 12 before 11 commits
-- and page past it. Every insert therefore takes a per-chat advisory lock
-- first (see `Store::create_message`), so within one chat ids commit in
-- order. A deleted message keeps its row as a tombstone with `body` NULL.
CREATE TABLE messages (
    id         BIGSERIAL PRIMARY KEY,
    chat_id    BIGINT    NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    sender_id  BIGINT    NOT NULL REFERENCES users (id),
    body       TEXT,
    client_id  TEXT,
    created_at BIGINT    NOT NULL,
    edited_at  BIGINT,
    deleted_at BIGINT,
    CHECK ((body IS NULL) = (deleted_at IS NOT NULL))
);
CREATE INDEX messages_chat ON messages (chat_id, id);
-- Retried sends: NULL client ids never conflict (NULLS DISTINCT is the
-- default), so messages without one are always stored.
CREATE UNIQUE INDEX messages_client_id ON messages (chat_id, sender_id, client_id);
