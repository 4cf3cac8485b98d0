//! Account state that ends sessions: roles, disabling and token cut-offs,
//! and the paged user list for administrators.

use serde::Serialize;
use sqlx::FromRow;

use super::{format_millis, Store};
use crate::auth::Role;
use crate::store::users::fold_for_search;
use crate::store::User;

/// A user with the state that decides whether they may sign in.
#[derive(Clone, Debug)]
pub struct Account {
    pub user: User,
    /// When the account was disabled, in Unix milliseconds.
    pub disabled_at: Option<i64>,
    /// Access tokens of this user issued before this second are rejected.
    pub token_cutoff: Option<i64>,
}

impl Account {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

/// A user as the administration API lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AdminUser {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// RFC 3339 time of registration.
    pub created_at: String,
    pub disabled: bool,
}

impl From<Account> for AdminUser {
    fn from(account: Account) -> Self {
        let disabled = account.is_disabled();
        let user = account.user;
        Self {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            role: user.role,
            created_at: user.created_at,
            disabled,
        }
    }
}

#[derive(FromRow)]
struct AccountRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    created_at: i64,
    disabled_at: Option<i64>,
    token_cutoff: Option<i64>,
}

impl AccountRow {
    fn into_account(self) -> Account {
        Account {
            user: User {
                id: self.id,
                email: self.email,
                display_name: self.display_name,
                // The column only ever receives `Role::as_str` values.
                role: self.role.parse().unwrap_or(Role::User),
                created_at: format_millis(self.created_at),
            },
            disabled_at: self.disabled_at,
            token_cutoff: self.token_cutoff,
        }
    }
}

const ACCOUNT_COLUMNS: &str =
    "id, email, display_name, role, created_at, disabled_at, token_cutoff";

/// SQL that moves a user's cut-off to `$1` unless it is already later.
const RAISE_CUTOFF: &str = "token_cutoff = CASE WHEN token_cutoff IS NULL OR token_cutoff < $1 \
                            THEN $1 ELSE token_cutoff END";

/// A user id and cut-off, for loading into the revocation list.
#[derive(Clone, Copy, Debug, FromRow)]
pub struct UserCutoff {
    pub id: i64,
    pub token_cutoff: i64,
}

impl Store {
    /// Finds a user by id with their account state.
    pub async fn account(&self, id: i64) -> Result<Option<Account>, sqlx::Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE id = $1");
        let row: Option<AccountRow> = sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(AccountRow::into_account))
    }

    /// Finds a user by normalised email with their account state.
    pub async fn account_by_email(&self, email: &str) -> Result<Option<Account>, sqlx::Error> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE email = $1");
        let row: Option<AccountRow> = sqlx::query_as(&sql)
            .bind(email)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.map(AccountRow::into_account))
    }

    /// Returns a user's stored password hash.
    pub async fn password_hash(&self, id: i64) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
    }

    /// Moves the user's cut-off to `cutoff` (seconds) and ends every active
    /// session, in one transaction. Returns the ids of the sessions ended.
    pub async fn cut_off_user(
        &self,
        user_id: i64,
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        raise_cutoff(&mut transaction, user_id, cutoff).await?;
        let ended = end_all_sessions(&mut transaction, user_id, now).await?;
        transaction.commit().await?;
        Ok(ended)
    }

    /// Changes a user's role and, when it differs, cuts off their tokens and
    /// ends their sessions, so no token carries the old role. Returns the ids
    /// of the sessions ended.
    pub async fn change_role(
        &self,
        user_id: i64,
        role: Role,
        cutoff: i64,
        now: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        let mut transaction = self.pool().begin().await?;
        let changed = sqlx::query("UPDATE users SET role = $1 WHERE id = $2 AND role <> $1")
            .bind(role.as_str())
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        if changed.rows_affected() == 0 {
            transaction.rollback().await?;
            return Ok(Vec::new());
        }
        raise_cutoff(&mut transaction, user_id, cutoff).await?;
        let ended = end_all_sessions(&mut transaction, user_id, now).await?;
        transaction.commit().await?;
        Ok(ended)
    }

    /// Disables (`Some(time)`) or enables (`None`) an account; returns whether it exists.
    pub async fn set_disabled(
        &self,
        user_id: i64,
        disabled_at: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        // COALESCE keeps the first disabling time when an account is disabled twice.
        let result = sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $1 IS NULL THEN NULL \
             ELSE COALESCE(disabled_at, $1) END WHERE id = $2",
        )
        .bind(disabled_at)
        .bind(user_id)
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() > 0)
    }

    /// Lists users whose cut-off is at or after `since` (seconds).
    pub async fn cutoffs_since(&self, since: i64) -> Result<Vec<UserCutoff>, sqlx::Error> {
        sqlx::query_as("SELECT id, token_cutoff FROM users WHERE token_cutoff >= $1")
            .bind(since)
            .fetch_all(self.pool())
            .await
    }

    /// Lists users by ascending id after `after`, optionally only those whose
    /// email or display name contains `search`, compared case-insensitively by
    /// Unicode rules (see [`fold_for_search`]).
    pub async fn list_accounts(
        &self,
        search: Option<&str>,
        after: i64,
        limit: i64,
    ) -> Result<Vec<Account>, sqlx::Error> {
        let rows: Vec<AccountRow> = match search {
            Some(search) => {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM users WHERE id > $1 \
                     AND (email LIKE $2 ESCAPE '\\' OR display_name_folded LIKE $2 ESCAPE '\\') \
                     ORDER BY id LIMIT $3"
                );
                sqlx::query_as(&sql)
                    .bind(after)
                    .bind(contains_pattern(search))
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
            None => {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2"
                );
                sqlx::query_as(&sql)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
            }
        };
        Ok(rows.into_iter().map(AccountRow::into_account).collect())
    }
}

/// Builds a LIKE pattern matching `search` anywhere, with `%`, `_` and `\` escaped.
fn contains_pattern(search: &str) -> String {
    let mut pattern = String::with_capacity(search.len() + 2);
    pattern.push('%');
    for character in fold_for_search(search).chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

async fn raise_cutoff(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    cutoff: i64,
) -> Result<(), sqlx::Error> {
    let sql = format!("UPDATE users SET {RAISE_CUTOFF} WHERE id = $2");
    sqlx::query(&sql)
        .bind(cutoff)
        .bind(user_id)
        .execute(&mut **transaction)
        .await?;
    Ok(())
}

async fn end_all_sessions(
    transaction: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: i64,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(user_id)
    .fetch_all(&mut **transaction)
    .await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_pattern_escapes_wildcards() {
        assert_eq!(contains_pattern("Ann"), "%ann%");
        assert_eq!(contains_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
    }
}
