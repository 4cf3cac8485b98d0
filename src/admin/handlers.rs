//! HTTP handlers for `/admin`. Every one takes [`RequireAdmin`], so a caller
//! without the admin role gets 403 before anything else happens.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::RequireAdmin;
use crate::auth::sessions;
use crate::auth::{unix_now, Role, AUDIT_TARGET};
use crate::chat::validate::check_id;
use crate::http::client_address::ClientAddress;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Path, Query};
use crate::store::accounts::AdminUser;
use crate::store::now_millis;
use crate::AppState;

/// Page size of `GET /admin/users` when `limit` is not given.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Largest accepted `limit` of `GET /admin/users`.
pub const MAX_PAGE_SIZE: i64 = 200;
/// Longest accepted search text, in characters.
pub const MAX_QUERY_CHARS: usize = 254;

/// Query of `GET /admin/users`. Every parameter is read as text and checked
/// here, so an empty or invalid value gets a 422 naming it.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Text to find in emails and display names; at most 254 characters.
    #[serde(default)]
    #[param(max_length = 254)]
    query: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 0)]
    cursor: Option<String>,
    /// Page size; 50 when absent.
    #[serde(default)]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 200)]
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct UserPage {
    items: Vec<AdminUser>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Lists users by ascending id, optionally filtered (`GET /admin/users`).
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "A page of users", body = UserPage),
        (status = 403, description = "The caller is not an administrator (`admin_required`)"),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    _admin: RequireAdmin,
    Query(query): Query<ListQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = match query.limit.as_deref().filter(|value| !value.is_empty()) {
        None => DEFAULT_PAGE_SIZE,
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|limit| (1..=MAX_PAGE_SIZE).contains(limit))
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "limit",
                    format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
                )
            })?,
    };
    let after = match query.cursor.as_deref().filter(|value| !value.is_empty()) {
        None => 0,
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|cursor| *cursor >= 0)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "cursor",
                    "must be a next_cursor value from a previous page",
                )
            })?,
    };
    let search = query
        .query
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty());
    if search.is_some_and(|text| text.chars().count() > MAX_QUERY_CHARS) {
        return Err(ApiError::invalid_field(
            "query",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    // PostgreSQL text cannot hold NUL, and no email or name contains a control character.
    if search.is_some_and(|text| text.chars().any(char::is_control)) {
        return Err(ApiError::invalid_field(
            "query",
            "must not contain control characters",
        ));
    }

    // One row more than the page shows whether another page follows.
    let mut accounts = state.store.list_accounts(search, after, limit + 1).await?;
    let next_cursor = if accounts.len() as i64 > limit {
        accounts.truncate(limit as usize);
        accounts.last().map(|account| account.user.id.to_string())
    } else {
        None
    };
    let items = accounts.into_iter().map(AdminUser::from).collect();
    Ok(Json(UserPage { items, next_cursor }))
}

/// Path of the per-user routes; a struct so an invalid id is reported as `id`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id.
    #[param(minimum = 1)]
    id: i64,
}

impl UserPath {
    /// Returns the id, rejecting 0 and negative ids with 422 like the chat
    /// routes do, so a malformed id is not reported as a missing user.
    fn user_id(&self) -> Result<i64, ApiError> {
        check_id("id", self.id).map_err(|error| ApiError::Validation(vec![error]))
    }
}

#[derive(Deserialize, ToSchema)]
pub struct UserUpdate {
    role: Role,
}

/// Changes a user's role and ends their sessions (`PATCH /admin/users/{id}`).
#[utoipa::path(
    patch,
    path = "/admin/users/{id}",
    tag = "admin",
    security(("bearer" = [])),
    params(UserPath),
    request_body = UserUpdate,
    responses(
        (status = 200, description = "The user with the new role", body = AdminUser),
        (status = 403, description = "The caller is not an administrator (`admin_required`)"),
        (status = 404, description = "No user has this id (`user_not_found`)"),
        (status = 409, description = "Administrators cannot change their own role (`cannot_change_own_role`)"),
    )
)]
pub async fn update_user(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    RequireAdmin(admin): RequireAdmin,
    Path(path): Path<UserPath>,
    Json(update): Json<UserUpdate>,
) -> Result<Json<AdminUser>, ApiError> {
    let user_id = path.user_id()?;
    if user_id == admin.user_id {
        return Err(ApiError::conflict(
            "cannot_change_own_role",
            "administrators cannot change their own role; ask another administrator",
        ));
    }
    ensure_exists(&state, user_id).await?;
    let cutoff = unix_now();
    let ended = state
        .store
        .change_role(user_id, update.role, cutoff, now_millis())
        .await?;
    sessions::apply_cutoff(&state, user_id, cutoff, &ended).await?;
    tracing::info!(
        target: AUDIT_TARGET,
        event = "role_change",
        user_id,
        role = update.role.as_str(),
        admin_id = admin.user_id,
        client = client.map(tracing::field::display)
    );
    Ok(Json(admin_view(&state, user_id).await?))
}

/// Disables an account and ends every session (`POST /admin/users/{id}/disable`).
#[utoipa::path(
    post,
    path = "/admin/users/{id}/disable",
    tag = "admin",
    security(("bearer" = [])),
    params(UserPath),
    responses(
        (status = 200, description = "The disabled user", body = AdminUser),
        (status = 403, description = "The caller is not an administrator (`admin_required`)"),
        (status = 404, description = "No user has this id (`user_not_found`)"),
        (status = 409, description = "Administrators cannot disable themselves (`cannot_disable_self`)"),
    )
)]
pub async fn disable_user(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    RequireAdmin(admin): RequireAdmin,
    Path(path): Path<UserPath>,
) -> Result<Json<AdminUser>, ApiError> {
    let user_id = path.user_id()?;
    if user_id == admin.user_id {
        return Err(ApiError::conflict(
            "cannot_disable_self",
            "administrators cannot disable their own account",
        ));
    }
    // Disabled first, so a refresh racing with this call is refused.
    if !state
        .store
        .set_disabled(user_id, Some(now_millis()))
        .await?
    {
        return Err(user_not_found());
    }
    let ended = sessions::end_all_sessions(&state, user_id).await?;
    tracing::info!(
        target: AUDIT_TARGET,
        event = "disable",
        user_id,
        admin_id = admin.user_id,
        sessions_ended = ended,
        client = client.map(tracing::field::display)
    );
    Ok(Json(admin_view(&state, user_id).await?))
}

/// Enables a disabled account (`POST /admin/users/{id}/enable`).
#[utoipa::path(
    post,
    path = "/admin/users/{id}/enable",
    tag = "admin",
    security(("bearer" = [])),
    params(UserPath),
    responses(
        (status = 200, description = "The enabled user", body = AdminUser),
        (status = 403, description = "The caller is not an administrator (`admin_required`)"),
        (status = 404, description = "No user has this id (`user_not_found`)"),
    )
)]
pub async fn enable_user(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    RequireAdmin(admin): RequireAdmin,
    Path(path): Path<UserPath>,
) -> Result<Json<AdminUser>, ApiError> {
    let user_id = path.user_id()?;
    if !state.store.set_disabled(user_id, None).await? {
        return Err(user_not_found());
    }
    tracing::info!(target: AUDIT_TARGET, event = "enable", user_id, admin_id = admin.user_id, client = client.map(tracing::field::display));
    Ok(Json(admin_view(&state, user_id).await?))
}

/// Counters of `GET /admin/security`.
#[derive(Serialize, ToSchema)]
pub struct SecurityOverview {
    /// Token and session ids in this instance's revocation list.
    revoked_tokens: usize,
    /// Failed logins handled by this instance in the last hour.
    failed_logins_last_hour: u64,
    /// Sessions of all users that have neither ended nor expired.
    active_sessions: i64,
    /// WebSockets open on this instance.
    open_sockets: usize,
}

/// Returns security counters (`GET /admin/security`).
#[utoipa::path(
    get,
    path = "/admin/security",
    tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Security counters", body = SecurityOverview),
        (status = 403, description = "The caller is not an administrator (`admin_required`)"),
    )
)]
pub async fn security(
    State(state): State<AppState>,
    _admin: RequireAdmin,
) -> Result<Json<SecurityOverview>, ApiError> {
    let revoked_tokens = state.revocations.count().await.map_err(|error| {
        tracing::warn!(%error, "revocation list count failed");
        ApiError::Unavailable {
            code: "revocation_unavailable",
            detail: "the revocation list cannot be read right now; retry shortly".to_owned(),
        }
    })?;
    let active_sessions = state.store.count_active_sessions(now_millis()).await?;
    Ok(Json(SecurityOverview {
        revoked_tokens,
        failed_logins_last_hour: state.failed_logins.last_hour(unix_now()),
        active_sessions,
        open_sockets: state.realtime.open_sockets(),
    }))
}

fn user_not_found() -> ApiError {
    ApiError::not_found("user_not_found", "no user has this id")
}

async fn ensure_exists(state: &AppState, user_id: i64) -> Result<(), ApiError> {
    match state.store.account(user_id).await? {
        Some(_) => Ok(()),
        None => Err(user_not_found()),
    }
}

async fn admin_view(state: &AppState, user_id: i64) -> Result<AdminUser, ApiError> {
    let account = state
        .store
        .account(user_id)
        .await?
        .ok_or_else(user_not_found)?;
    Ok(AdminUser::from(account))
}
