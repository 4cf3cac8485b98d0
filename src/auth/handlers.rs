//! HTTP handlers for `/auth`. Each one parses, calls the rules in this
//! module's siblings, and shapes the response.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

use super::password::Verification;
use super::sessions::{self, ClientInfo};
use super::validate::{check_display_name, check_password, default_display_name, normalize_email};
use super::{unix_now, AuthUser, Role};
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{decode_json, has_content_type, read_body, Json};
use crate::store::users::CreateUserError;
use crate::store::{now_millis, NewUser, User};
use crate::AppState;

/// Tracing target of authentication events, so they can be routed to an audit log.
pub const AUDIT_TARGET: &str = "confab::audit";

#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    /// Stored lowercased; at most 254 characters.
    #[schema(format = "email")]
    email: String,
    /// 8 to 128 characters.
    password: String,
    /// 1 to 64 characters after trimming; defaults to the part of the email before `@`.
    #[serde(default)]
    display_name: Option<String>,
}

/// Statuses of `POST /auth/register` and its alias `POST /auth/signup`.
#[derive(IntoResponses)]
#[allow(
    dead_code,
    reason = "describes the responses for the OpenAPI document only"
)]
enum RegisterResponses {
    /// Account created and signed in.
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
    client: ClientInfo,
    Json(request): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<sessions::TokenResponse>), ApiError> {
    let mut errors = Vec::new();
    let email = normalize_email(&request.email)
        .map_err(|e| errors.push(e))
        .ok();
    let _ = check_password("password", &request.password).map_err(|e| errors.push(e));
    let display_name = match &request.display_name {
        Some(name) => check_display_name(name).map_err(|e| errors.push(e)).ok(),
        None => email.as_deref().map(default_display_name),
    };
    let (Some(email), Some(display_name), true) = (email, display_name, errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };

    let password_hash = state
        .hasher
        .hash(SecretString::from(request.password))
        .await?;
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

    tracing::info!(target: AUDIT_TARGET, event = "register", user_id = user.id);
    let response = sessions::start(&state, user, &client).await?;
    Ok((StatusCode::CREATED, Json(response)))
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
    client: ClientInfo,
    request: Json<RegisterRequest>,
) -> Result<(StatusCode, Json<sessions::TokenResponse>), ApiError> {
    register(state, client, request).await
}

/// Login credentials from JSON `{email, password}` or an OAuth2 password
/// grant form (`username`, `password`, optional `grant_type=password`).
pub struct LoginRequest {
    email: String,
    password: String,
    /// Name of the field that carried the email, for error messages.
    email_field: &'static str,
}

#[derive(Deserialize, ToSchema)]
struct JsonLogin {
    #[schema(format = "email")]
    email: String,
    password: String,
}

/// OAuth2 resource owner password grant (RFC 6749, section 4.3).
#[derive(Deserialize, ToSchema)]
struct FormLogin {
    /// The account's email.
    username: String,
    password: String,
    /// `password` when present.
    #[serde(default)]
    grant_type: Option<String>,
}

impl<S: Send + Sync> FromRequest<S> for LoginRequest {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_json = has_content_type(request.headers(), "application/json");
        let is_form = has_content_type(request.headers(), "application/x-www-form-urlencoded");
        if !is_json && !is_form {
            return Err(ApiError::UnsupportedMediaType {
                detail: "expected application/json or application/x-www-form-urlencoded".to_owned(),
            });
        }
        let body = read_body(request, state).await?;
        if is_json {
            let login: JsonLogin = decode_json(&body)?;
            return Ok(Self {
                email: login.email,
                password: login.password,
                email_field: "email",
            });
        }
        let form: FormLogin = serde_urlencoded::from_bytes(&body).map_err(|error| {
            let message = error.to_string();
            match message.split_once("missing field `") {
                Some((_, rest)) => {
                    ApiError::invalid_field(rest.trim_end_matches('`'), "is required")
                }
                None => ApiError::invalid_field("body", message),
            }
        })?;
        if form
            .grant_type
            .as_deref()
            .is_some_and(|grant| grant != "password")
        {
            return Err(ApiError::invalid_field(
                "grant_type",
                "only the `password` grant is supported",
            ));
        }
        Ok(Self {
            email: form.username,
            password: form.password,
            email_field: "username",
        })
    }
}

/// Signs a user in (`POST /auth/login`).
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    request_body(content(
        (JsonLogin = "application/json"),
        (FormLogin = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Signed in", body = sessions::TokenResponse),
        (status = 401, description = "Unknown email or wrong password (`invalid_credentials`)"),
        (status = 403, description = "The account is disabled (`account_disabled`)"),
        (status = 503, description = "The database is unreachable; retry"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    client_info: ClientInfo,
    request: LoginRequest,
) -> Result<Json<sessions::TokenResponse>, ApiError> {
    let email = normalize_email(&request.email).map_err(|mut error| {
        error.field = request.email_field.to_owned();
        ApiError::Validation(vec![error])
    })?;
    if request.password.is_empty() {
        return Err(ApiError::Validation(vec![FieldError::new(
            "password",
            "is required",
        )]));
    }

    let found = state.store.user_by_email(&email).await?;
    let stored_hash = found.as_ref().map(|user| user.password_hash.clone());
    let password = SecretString::from(request.password);
    let verification = state.hasher.verify(password.clone(), stored_hash).await?;

    // Known for a wrong password, absent for an unknown email (the field is then omitted).
    let user_id = found.as_ref().map(|found| found.user.id);
    let Some(found) = found.filter(|_| verification != Verification::Mismatch) else {
        tracing::info!(target: AUDIT_TARGET, event = "login", result = "failure", user_id, client = %client.ip());
        state.failed_logins.record(unix_now());
        return Err(ApiError::InvalidCredentials);
    };
    let user = found.user;
    // Checked only after the password matched, so a guesser learns nothing from it.
    let disabled = state
        .store
        .account(user.id)
        .await?
        .is_none_or(|account| account.is_disabled());
    if disabled {
        tracing::info!(target: AUDIT_TARGET, event = "login", result = "disabled", user_id = user.id, client = %client.ip());
        return Err(sessions::account_disabled());
    }
    tracing::info!(target: AUDIT_TARGET, event = "login", result = "success", user_id = user.id, client = %client.ip());

    if verification == Verification::MatchNeedsRehash {
        rehash(&state, user.id, password).await;
    }
    Ok(Json(sessions::start(&state, user, &client_info).await?))
}

/// Re-hashes a password at the configured cost. A failure only delays the
/// upgrade to the next login, so it is logged and not returned.
async fn rehash(state: &AppState, user_id: i64, password: SecretString) {
    let result = match state.hasher.hash(password).await {
        Ok(hash) => state
            .store
            .set_password_hash(user_id, &hash)
            .await
            .map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => tracing::info!(user_id, "password re-hashed at the configured cost"),
        Err(error) => tracing::warn!(user_id, error = ?error, "password re-hash failed"),
    }
}

#[derive(Serialize, ToSchema)]
pub struct LogoutResponse {
    /// Always `logged_out`.
    pub status: &'static str,
}

/// Ends the session of the presented token, which revokes its access and
/// refresh tokens (`POST /auth/logout`).
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The session has ended", body = LogoutResponse))
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: AuthUser,
) -> Result<Json<LogoutResponse>, ApiError> {
    let token = &caller.token;
    // Revoking the token itself as well keeps it rejected even if the
    // session row was already ended and purged by another path.
    state
        .revocations
        .revoke(
            token.token_id,
            state.tokens.last_valid_second(token.claims.iat),
        )
        .await
        .map_err(sessions::revocation_failed)?;
    sessions::end_session(&state, token.session_id, Some(caller.user_id)).await?;
    state.realtime.token_revoked(token.token_id);
    tracing::info!(target: AUDIT_TARGET, event = "logout", user_id = caller.user_id);

    // Logout is a natural moment to drop entries whose tokens have expired anyway.
    match state.revocations.purge_expired(unix_now()).await {
        Ok(purged) if purged > 0 => tracing::debug!(purged, "purged expired revocations"),
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, "revocation purge failed"),
    }
    Ok(Json(LogoutResponse {
        status: "logged_out",
    }))
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
    let user = state
        .store
        .user_by_id(caller.user_id)
        .await?
        .ok_or(ApiError::InvalidToken {
            detail: "the user of this token no longer exists",
        })?;
    Ok(Json(user))
}
