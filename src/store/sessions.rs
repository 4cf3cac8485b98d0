//! Sessions and their refresh tokens.
//!
//! Session ids are the access tokens' `sid` in base64url; refresh tokens are
//! stored only as their SHA-256. Times are Unix milliseconds.

use sqlx::FromRow;

use super::{format_millis, Store};

/// A session to create together with its first refresh token.
#[derive(Clone, Debug)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<&'a str>,
    pub client_address: Option<&'a str>,
    pub refresh_token_hash: &'a str,
}

/// A stored refresh token with the state of its session.
#[derive(Clone, Debug, FromRow)]
pub struct RefreshRecord {
    pub session_id: String,
    pub user_id: i64,
    /// Expiry of this refresh token.
    pub expires_at: i64,
    pub rotated_at: Option<i64>,
    pub session_ended_at: Option<i64>,
}

/// A rotation: the presented token's hash, and its successor's.
#[derive(Clone, Debug)]
pub struct Rotation<'a> {
    pub old_hash: &'a str,
    pub new_hash: &'a str,
    pub session_id: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// An active session as its owner sees it.
#[derive(Clone, Debug, FromRow)]
pub struct SessionRow {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub user_agent: Option<String>,
    pub client_address: Option<String>,
}

impl SessionRow {
    pub fn created(&self) -> String {
        format_millis(self.created_at)
    }

    pub fn last_used(&self) -> String {
        format_millis(self.last_used_at)
    }
}

/// A session that ended, for loading its id into the revocation list.
#[derive(Clone, Debug, FromRow)]
pub struct EndedSession {
    pub id: String,
    pub ended_at: i64,
}

#[derive(FromRow)]
struct IdRow {
    id: String,
}

impl Store {
    /// Creates a session and its first refresh token in one transaction.
    pub async fn create_session(&self, new: NewSession<'_>) -> Result<(), sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, \
             user_agent, client_address) VALUES ($1, $2, $3, $3, $4, $5, $6)",
        )
        .bind(new.id)
        .bind(new.user_id)
        .bind(new.created_at)
        .bind(new.expires_at)
        .bind(new.user_agent)
        .bind(new.client_address)
        .execute(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(new.refresh_token_hash)
        .bind(new.id)
        .bind(new.created_at)
        .bind(new.expires_at)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await
    }

    /// Finds a refresh token by its hash.
    pub async fn refresh_record(&self, hash: &str) -> Result<Option<RefreshRecord>, sqlx::Error> {
        sqlx::query_as(
            "SELECT r.session_id, s.user_id, r.expires_at, r.rotated_at, \
             s.ended_at AS session_ended_at \
             FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id \
             WHERE r.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(self.pool())
        .await
    }

    /// Marks the old token rotated and stores its successor, in one
    /// transaction. The conditional update lets exactly one of several
    /// concurrent rotations win; returns `false` for the others, and when the
    /// session has ended.
    pub async fn rotate_refresh_token(&self, rotation: Rotation<'_>) -> Result<bool, sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        let updated = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $1 \
             WHERE token_hash = $2 AND rotated_at IS NULL AND session_id IN \
             (SELECT id FROM sessions WHERE id = $3 AND ended_at IS NULL)",
        )
        .bind(rotation.now)
        .bind(rotation.old_hash)
        .bind(rotation.session_id)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            transaction.rollback().await?;
            return Ok(false);
        }

        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(rotation.new_hash)
        .bind(rotation.session_id)
        .bind(rotation.now)
        .bind(rotation.expires_at)
        .execute(&mut *transaction)
        .await?;
        sqlx::query("UPDATE sessions SET last_used_at = $1, expires_at = $2 WHERE id = $3")
            .bind(rotation.now)
            .bind(rotation.expires_at)
            .bind(rotation.session_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(true)
    }

    /// Ends one session if it is still active; `user_id` restricts it to one
    /// owner. Returns whether this call ended it.
    pub async fn end_session(
        &self,
        id: &str,
        user_id: Option<i64>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let result = sqlx::query(
            "UPDATE sessions SET ended_at = $1 \
             WHERE id = $2 AND ($3 IS NULL OR user_id = $3) AND ended_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Ends every active session of a user except `keep`; returns the ids ended.
    pub async fn end_user_sessions(
        &self,
        user_id: i64,
        keep: Option<&str>,
        now: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let rows: Vec<IdRow> = sqlx::query_as(
            "UPDATE sessions SET ended_at = $1 \
             WHERE user_id = $2 AND ended_at IS NULL AND ($3 IS NULL OR id <> $3) \
             RETURNING id",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    /// Lists a user's sessions that have neither ended nor expired, newest first.
    pub async fn active_sessions(
        &self,
        user_id: i64,
        now: i64,
    ) -> Result<Vec<SessionRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, created_at, last_used_at, user_agent, client_address FROM sessions \
             WHERE user_id = $1 AND ended_at IS NULL AND expires_at > $2 \
             ORDER BY created_at DESC, id",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(self.pool())
        .await
    }

    /// Counts sessions of every user that have neither ended nor expired.
    pub async fn count_active_sessions(&self, now: i64) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM sessions WHERE ended_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await
    }

    /// Lists sessions that ended at or after `since`.
    pub async fn sessions_ended_since(&self, since: i64) -> Result<Vec<EndedSession>, sqlx::Error> {
        sqlx::query_as("SELECT id, ended_at FROM sessions WHERE ended_at >= $1")
            .bind(since)
            .fetch_all(self.pool())
            .await
    }

    /// Deletes sessions that expired before `now`, with their refresh tokens.
    /// Until then a rotated refresh token stays stored, so its reuse is
    /// recognised as theft even after a restart.
    pub async fn purge_expired_sessions(&self, now: i64) -> Result<u64, sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE session_id IN \
             (SELECT id FROM sessions WHERE expires_at <= $1)",
        )
        .bind(now)
        .execute(&mut *transaction)
        .await?;
        let deleted = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected())
    }
}
