//! HTTP handlers for refreshing tokens, listing and ending sessions, and
//! changing the password.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::audit::AUDIT_TARGET;
use super::handlers::token_user;
use super::password::Verification;
use super::refresh::{is_well_formed, REFRESH_TOKEN_CHARS};
use super::refresh_cookie::{
    clearing_header, presented_token, BodyToken, RefreshBody, WithRefreshCookie,
};
use super::sessions::{self, ClientInfo};
use super::strength::require_strong_password;
use super::token::decode_token_id;
use super::validate::check_password;
use super::AuthUser;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{Json, Path};
use crate::store::now_millis;
use crate::AppState;

/// Rotates a refresh token (`POST /auth/refresh`). The token comes from
/// the body or, when the body has none, from the refresh cookie.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    request_body = Option<RefreshBody>,
    responses(
        (status = 200, description = "A new token pair; the refresh token is also set as the cookie", body = sessions::TokenResponse),
        (status = 401, description = "The refresh token is invalid, expired or already exchanged"),
        (status = 403, description = "The account is disabled (`account_disabled`), or a cookie refresh \
                                      came from another site (`cross_origin_refresh`)"),
        (status = 503, description = "The database or the revocation list is unreachable; retry"),
    )
)]
pub async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    BodyToken(body_token): BodyToken,
) -> Result<WithRefreshCookie, ApiError> {
    let (field, token) = presented_token(body_token, &headers, &state.cors)?;
    let token = token.trim();
    if token.is_empty() {
        return Err(ApiError::invalid_field(field, "is required"));
    }
    if !is_well_formed(token) {
        return Err(ApiError::invalid_field(
            field,
            format!(
                "must be a refresh token as issued: {REFRESH_TOKEN_CHARS} base64url characters"
            ),
        ));
    }
    Ok(WithRefreshCookie(
        sessions::rotate(&state, token, &client).await?,
    ))
}

/// One active session in `GET /auth/sessions`.
#[derive(Serialize, ToSchema)]
pub struct SessionView {
    id: String,
    /// RFC 3339 time of the login that started the session.
    created_at: String,
    /// RFC 3339 time of the session's last refresh, or of its login.
    last_used_at: String,
    user_agent: Option<String>,
    client_address: Option<String>,
    /// Whether the token of this request belongs to this session.
    current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct SessionList {
    items: Vec<SessionView>,
}

/// Lists the caller's active sessions (`GET /auth/sessions`).
#[utoipa::path(
    get,
    path = "/auth/sessions",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's active sessions", body = SessionList))
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<SessionList>, ApiError> {
    let current = caller.token.claims.sid.as_str();
    let rows = state
        .store
        .active_sessions(caller.user_id, now_millis())
        .await?;
    let items = rows
        .into_iter()
        .map(|row| SessionView {
            created_at: row.created(),
            last_used_at: row.last_used(),
            current: row.id == current,
            id: row.id,
            user_agent: row.user_agent,
            client_address: row.client_address,
        })
        .collect();
    Ok(Json(SessionList { items }))
}

/// Ends one of the caller's sessions (`DELETE /auth/sessions/{id}`).
#[utoipa::path(
    delete,
    path = "/auth/sessions/{id}",
    tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "A session id as listed by `GET /auth/sessions`")),
    responses(
        (status = 204, description = "The session has ended"),
        (status = 404, description = "No active session of the caller has this id (`session_not_found`)"),
    )
)]
pub async fn delete_session(
    State(state): State<AppState>,
    client: ClientInfo,
    caller: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let session_id = decode_token_id(&id).ok_or_else(|| {
        ApiError::invalid_field("id", "must be a session id as listed by GET /auth/sessions")
    })?;
    if !sessions::end_session(&state, session_id, Some(caller.user_id)).await? {
        return Err(ApiError::not_found(
            "session_not_found",
            "no active session of yours has this id",
        ));
    }
    tracing::info!(target: AUDIT_TARGET, event = "session_ended", user_id = caller.user_id, session_id = %id, client = client.address.as_deref());
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct SessionsEnded {
    /// `logged_out` after `POST /auth/logout-all`, `password_changed` after `POST /auth/password`.
    status: &'static str,
    sessions_ended: usize,
}

/// Ends every session of the caller and clears the refresh cookie
/// (`POST /auth/logout-all`).
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "Every session has ended", body = SessionsEnded))
)]
pub async fn logout_all(
    State(state): State<AppState>,
    client: ClientInfo,
    caller: AuthUser,
) -> Result<impl IntoResponse, ApiError> {
    let token = &caller.token;
    let ended = sessions::end_all_sessions(&state, caller.user_id).await?;
    // The cut-off is the current second and rejects only earlier tokens, so
    // the token of this request is revoked by id as well.
    sessions::revoke_token(&state, token).await?;
    tracing::info!(target: AUDIT_TARGET, event = "logout_all", user_id = caller.user_id, sessions_ended = ended, client = client.address.as_deref());
    let body = Json(SessionsEnded {
        status: "logged_out",
        sessions_ended: ended,
    });
    Ok((clearing_header(), body))
}

#[derive(Deserialize, ToSchema)]
pub struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Changes the caller's password and ends every other session (`POST /auth/password`).
#[utoipa::path(
    post,
    path = "/auth/password",
    tag = "auth",
    security(("bearer" = [])),
    request_body = PasswordChange,
    responses(
        (status = 200, description = "Password changed; the other sessions have ended", body = SessionsEnded),
        (status = 403, description = "`current_password` is wrong (`invalid_current_password`)"),
    )
)]
pub async fn change_password(
    State(state): State<AppState>,
    client: ClientInfo,
    caller: AuthUser,
    Json(request): Json<PasswordChange>,
) -> Result<Json<SessionsEnded>, ApiError> {
    let mut errors = Vec::new();
    if request.current_password.is_empty() {
        errors.push(FieldError::new("current_password", "is required"));
    }
    if let Err(error) = check_password("new_password", &request.new_password) {
        errors.push(error);
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }

    let stored =
        state
            .store
            .password_hash(caller.user_id)
            .await?
            .ok_or(ApiError::InvalidToken {
                detail: "the user of this token no longer exists",
            })?;
    let current = SecretString::from(request.current_password);
    let verification = state.hasher.verify(current, Some(stored)).await?;
    if verification == Verification::Mismatch {
        tracing::info!(target: AUDIT_TARGET, event = "password_change", result = "failure", reason = "wrong_current_password", user_id = caller.user_id, client = client.address.as_deref());
        return Err(ApiError::forbidden(
            "invalid_current_password",
            "current_password does not match the account's password",
        ));
    }

    // After the current password matched, so only the account holder learns why.
    let user = token_user(&state, caller.user_id).await?;
    let new_password = SecretString::from(request.new_password);
    require_strong_password(
        &state,
        "new_password",
        &new_password,
        &user.email,
        &user.display_name,
    )
    .await?;

    let hash = state.hasher.hash(new_password).await?;
    state.store.set_password_hash(caller.user_id, &hash).await?;
    let ended =
        sessions::end_other_sessions(&state, caller.user_id, caller.token.session_id).await?;
    tracing::info!(target: AUDIT_TARGET, event = "password_change", result = "success", user_id = caller.user_id, session_id = %caller.token.claims.sid, sessions_ended = ended, client = client.address.as_deref());
    Ok(Json(SessionsEnded {
        status: "password_changed",
        sessions_ended: ended,
    }))
}
