-- Sessions, refresh tokens and account state for revocation.
--
-- `token_cutoff` is in seconds since the Unix epoch, the unit of the JWT
-- `iat` claim it is compared with: access tokens of the user issued earlier
-- are rejected. `disabled_at` is in milliseconds like every other time.
ALTER TABLE users ADD COLUMN disabled_at BIGINT;
ALTER TABLE users ADD COLUMN token_cutoff BIGINT;
CREATE INDEX users_token_cutoff ON users (token_cutoff);

-- One login on one device. `id` is the access tokens' `sid` claim (128
-- random bits, base64url). `ended_at` is set on logout, revocation or theft
-- detection, and the row stays until `expires_at` so reuse stays detectable.
CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     BIGINT  NOT NULL,
    last_used_at   BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    ended_at       BIGINT,
    user_agent     TEXT,
    client_address TEXT
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_ended_at ON sessions (ended_at);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

-- Every refresh token a session was given, stored as the hex SHA-256 of the
-- token. `rotated_at` is set once, when the token is exchanged; a rotated
-- token presented again after the grace period reveals a stolen token.
CREATE TABLE refresh_tokens (
    token_hash TEXT    PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    rotated_at BIGINT
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
