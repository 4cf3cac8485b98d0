//! HTTP handlers for `/auth`. Each one parses, calls the rules in this
//! module's siblings, and shapes the response.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use super::audit::AUDIT_TARGET;
use super::refresh_cookie::{clearing_header, WithRefreshCookie};
use super::sessions::{self, ClientInfo};
use super::strength::require_strong_password;
use super::validate::{check_display_name, check_password, default_display_name, normalize_email};
use super::{unix_now, AuthUser, Role};
use crate::http::client_address::ClientAddress;
use crate::http::error::ApiError;
use crate::http::extract::Json;
use crate::store::users::CreateUserError;
use crate::store::{now_millis, NewUser, User};
use crate::throttle::Limit;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Stored lowercased; at most 254 characters.
    #[schema(format = "email")]
    email: String,
    /// 8 to 128 characters, and not too easy to guess.
    password: String,
    /// 1 to 64 characters after trimming; defaults to the part of the email before `@`.
    #[serde(default)]
    display_name: Option<String>,
}

/// The normalised fields of a valid registration.
pub struct Registration {
    pub email: String,
    pub display_name: String,
}

impl RegisterRequest {
    /// Checks every field and reports all invalid ones at once.
    pub fn validate(&self) -> Result<Registration, ApiError> {
        let mut errors = Vec::new();
        let email = normalize_email(&self.email)
            .map_err(|e| errors.push(e))
            .ok();
        let _ = check_password("password", &self.password).map_err(|e| errors.push(e));
        let display_name = match &self.display_name {
            Some(name) => check_display_name(name).map_err(|e| errors.push(e)).ok(),
            None => email.as_deref().map(default_display_name),
        };
        match (email, display_name, errors.is_empty()) {
            (Some(email), Some(display_name), true) => Ok(Registration {
                email,
                display_name,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Statuses of `POST /auth/register` and its alias `POST /auth/signup`.
#[derive(IntoResponses)]
#[allow(
    dead_code,
    reason = "describes the responses for the OpenAPI document only"
)]
enum RegisterResponses {
    /// Account created and signed in; the refresh token is also set as the
    /// `HttpOnly` `confab_refresh` cookie.
    #[response(status = 201)]
    Created(sessions::TokenResponse),
    /// An account with this email exists (`email_taken`).
    #[response(status = 409)]
    EmailTaken,
    /// The database is unreachable; retry.
    #[response(status = 503)]
    Unavailable,
}

/// Creates an account and signs it in (`POST /auth/register`, `/auth/signup`).
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    request_body = RegisterRequest,
    responses(RegisterResponses)
)]
pub async fn register(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> Result<(StatusCode, WithRefreshCookie), ApiError> {
    if let Err(error) = state.throttle.hit(Limit::Registration, address).await {
        if matches!(error, ApiError::TooManyRequests { .. }) {
            super::audit::rate_limited(&state, Limit::Registration, address);
        }
        return Err(error);
    }

    let Registration {
        email,
        display_name,
    } = request.validate()?;
    let password = SecretString::from(request.password);
    require_strong_password(&state, "password", &password, &email, &display_name).await?;

    let password_hash = state.hasher.hash(password).await?;
    let user = state
        .store
        .create_user(NewUser {
            email: &email,
            display_name: &display_name,
            password_hash: &password_hash,
            role: Role::User,
            created_at: now_millis(),
        })
        .await
        .map_err(|error| match error {
            CreateUserError::EmailTaken => {
                ApiError::conflict("email_taken", "an account with this email already exists")
            }
            CreateUserError::Database(error) => error.into(),
        })?;

    let user_id = user.id;
    let response = sessions::start(&state, user, &client).await?;
    tracing::info!(target: AUDIT_TARGET, event = "register", user_id, session_id = %response.session_id, client = client.address.as_deref());
    Ok((StatusCode::CREATED, WithRefreshCookie(response)))
}

/// Creates an account and signs it in; the same as `POST /auth/register`.
#[utoipa::path(
    post,
    path = "/auth/signup",
    tag = "auth",
    request_body = RegisterRequest,
    responses(RegisterResponses)
)]
pub async fn signup(
    state: State<AppState>,
    address: ClientAddress,
    client: ClientInfo,
    request: Json<RegisterRequest>,
) -> Result<(StatusCode, WithRefreshCookie), ApiError> {
    register(state, address, client, request).await
}

#[derive(Serialize, ToSchema)]
pub struct LogoutResponse {
    /// Always `logged_out`.
    pub status: &'static str,
}

/// Ends the session of the presented token, which revokes its access and
/// refresh tokens, and clears the refresh cookie (`POST /auth/logout`).
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The session has ended", body = LogoutResponse))
)]
pub async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    caller: AuthUser,
) -> Result<impl IntoResponse, ApiError> {
    let token = &caller.token;
    // Revoking the token itself as well keeps it rejected even if the
    // session row was already ended and purged by another path.
    sessions::revoke_token(&state, token).await?;
    sessions::end_session(&state, token.session_id, Some(caller.user_id)).await?;
    state.realtime.token_revoked(token.token_id);
    tracing::info!(target: AUDIT_TARGET, event = "logout", user_id = caller.user_id, session_id = %token.claims.sid, client = client.address.as_deref());

    // Logout is a natural moment to drop entries whose tokens have expired anyway.
    match state.revocations.purge_expired(unix_now()).await {
        Ok(purged) if purged > 0 => tracing::debug!(purged, "purged expired revocations"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "revocation purge failed"),
    }
    let body = Json(LogoutResponse {
        status: "logged_out",
    });
    Ok((clearing_header(), body))
}

/// Returns the caller as stored now (`GET /auth/me`).
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's account", body = User))
)]
pub async fn me(State(state): State<AppState>, caller: AuthUser) -> Result<Json<User>, ApiError> {
    Ok(Json(token_user(&state, caller.user_id).await?))
}

/// Loads the user a valid token names; a 401 when the account was deleted since.
pub(super) async fn token_user(state: &AppState, user_id: i64) -> Result<User, ApiError> {
    state
        .store
        .user_by_id(user_id)
        .await?
        .ok_or(ApiError::InvalidToken {
            detail: "the user of this token no longer exists",
        })
}
