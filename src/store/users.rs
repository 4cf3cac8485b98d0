//! User accounts.

use serde::Serialize;
use sqlx::FromRow;
use unicode_normalization::UnicodeNormalization;

use super::{format_millis, is_unique_violation, Store};
use crate::auth::Role;

/// A stored user as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// RFC 3339 time of registration.
    pub created_at: String,
}

/// A user together with the stored password hash, for login.
#[derive(Clone, Debug)]
pub struct UserWithHash {
    pub user: User,
    pub password_hash: String,
}

/// Fields of a user to create.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub role: Role,
    pub created_at: i64,
}

#[derive(FromRow)]
struct UserRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    created_at: i64,
    password_hash: String,
}

impl UserRow {
    fn into_user(self) -> UserWithHash {
        UserWithHash {
            user: User {
                id: self.id,
                email: self.email,
                display_name: self.display_name,
                // The column only ever receives `Role::as_str` values.
                role: self.role.parse().unwrap_or(Role::User),
                created_at: format_millis(self.created_at),
            },
            password_hash: self.password_hash,
        }
    }
}

/// Returns the form display names are stored in for search and search text is
/// compared in: Unicode NFC, then lowercase by Unicode rules. Both engines
/// compare the stored result byte for byte, so `Иван` is found by `ив`.
pub fn fold_for_search(text: &str) -> String {
    text.nfc().collect::<String>().to_lowercase()
}

/// Rows filled per statement batch when backfilling folded names.
const FOLD_BATCH: i64 = 500;

const USER_COLUMNS: &str = "id, email, display_name, role, created_at, password_hash";

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email is already registered")]
    EmailTaken,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl Store {
    /// Creates a user; the email must already be normalised.
    pub async fn create_user(&self, new: NewUser<'_>) -> Result<User, CreateUserError> {
        let sql = format!(
            "INSERT INTO users (email, display_name, display_name_folded, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        );
        let row: UserRow = sqlx::query_as(&sql)
            .bind(new.email)
            .bind(new.display_name)
            .bind(fold_for_search(new.display_name))
            .bind(new.password_hash)
            .bind(new.role.as_str())
            .bind(new.created_at)
            .fetch_one(self.pool())
            .await
            .map_err(|error| {
                if is_unique_violation(&error) {
                    CreateUserError::EmailTaken
                } else {
                    CreateUserError::Database(error)
                }
            })?;
        Ok(row.into_user().user)
    }

    /// Finds a user by normalised email, with the password hash.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserWithHash>, sqlx::Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(UserRow::into_user))
    }

    /// Finds a user by id.
    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, sqlx::Error> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row: Option<UserRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(|row| row.into_user().user))
    }

    /// Fills `display_name_folded` for rows written before the column existed.
    /// Neither engine can compute it in SQL (see the migration that adds it),
    /// so this runs after every migration and finds nothing once done.
    pub(crate) async fn backfill_folded_names(&self) -> Result<u64, sqlx::Error> {
        let mut filled = 0;
        loop {
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "SELECT id, display_name FROM users WHERE display_name_folded IS NULL LIMIT $1",
            )
            .bind(FOLD_BATCH)
            .fetch_all(self.pool())
            .await?;
            if rows.is_empty() {
                return Ok(filled);
            }

            let mut transaction = self.pool().begin().await?;
            for (id, display_name) in &rows {
                sqlx::query("UPDATE users SET display_name_folded = $1 WHERE id = $2")
                    .bind(fold_for_search(display_name))
                    .bind(id)
                    .execute(&mut *transaction)
                    .await?;
            }
            transaction.commit().await?;
            filled += rows.len() as u64;
        }
    }

    /// Replaces a user's password hash, for example after raising the Argon2 cost.
    pub async fn set_password_hash(&self, id: i64, hash: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::fold_for_search;

    #[test]
    fn folding_uses_unicode_rules() {
        assert_eq!(fold_for_search("Иван"), "иван");
        assert_eq!(fold_for_search("ÉCLAIR"), "éclair");
        // E + combining acute becomes the single NFC code point first.
        assert_eq!(fold_for_search("E\u{301}CLAIR"), "\u{e9}clair");
    }
}
