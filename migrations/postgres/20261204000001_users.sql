-- Accounts. `email` is stored normalised (NFC, lowercase), so the unique
-- index makes differently written forms of one address a single account.
CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    email         TEXT      NOT NULL UNIQUE,
    display_name  TEXT      NOT NULL,
    password_hash TEXT      NOT NULL,
    role          TEXT      NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    BIGINT    NOT NULL
);
