//! `POST /auth/login`: credentials, the login throttle, the audit trail
//! and metrics of each attempt.

use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{FromRequest, Request, State};
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;

use super::audit::AUDIT_TARGET;
use super::password::Verification;
use super::refresh_cookie::WithRefreshCookie;
use super::sessions::{self, ClientInfo};
use super::unix_now;
use super::validate::normalize_email;
use crate::http::client_address::ClientAddress;
use crate::http::error::{ApiError, FieldError};
use crate::http::extract::{decode_json, has_content_type, read_body};
use crate::store::now_millis;
use crate::telemetry::metrics::{FAILED_LOGINS, LOGIN_ATTEMPTS, RATE_LIMITED};
use crate::throttle::{LoginStart, UNKNOWN_ADDRESS};
use crate::AppState;

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

impl LoginRequest {
    /// Checks the credentials' shape and returns the normalised email.
    pub fn validate(&self) -> Result<String, ApiError> {
        let email = normalize_email(&self.email).map_err(|mut error| {
            error.field = self.email_field.to_owned();
            ApiError::Validation(vec![error])
        })?;
        if self.password.is_empty() {
            return Err(ApiError::Validation(vec![FieldError::new(
                "password",
                "is required",
            )]));
        }
        Ok(email)
    }
}

/// Signs a user in (`POST /auth/login`).
///
/// The throttle is consulted before the password is hashed, so a locked-out
/// pair costs no Argon2 work, and its response is the same whether or not the
/// account exists.
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
        (status = 429, description = "Too many failed logins for this account and address (`too_many_attempts`)"),
        (status = 503, description = "The database or the throttle store is unreachable; retry"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    client_info: ClientInfo,
    request: LoginRequest,
) -> Result<WithRefreshCookie, ApiError> {
    let email = request.validate()?;

    let attempt = Attempt {
        state: &state,
        email: &email,
        address: address.unwrap_or(UNKNOWN_ADDRESS),
    };
    let lockout_ms = match state
        .throttle
        .begin_login(&email, attempt.address, now_millis())
        .await?
    {
        LoginStart::Locked { retry_ms } => return Err(attempt.throttled(retry_ms)),
        LoginStart::Allowed { lockout_ms, .. } => lockout_ms,
    };

    let found = state.store.user_by_email(&email).await?;
    let stored_hash = found.as_ref().map(|user| user.password_hash.clone());
    let password = SecretString::from(request.password);
    let verification = state.hasher.verify(password.clone(), stored_hash).await?;

    // Known for a wrong password, absent for an unknown email.
    let user_id = found.as_ref().map(|found| found.user.id);
    let Some(found) = found.filter(|_| verification != Verification::Mismatch) else {
        attempt.failed(user_id, lockout_ms);
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
        metrics::counter!(LOGIN_ATTEMPTS, "result" => "disabled").increment(1);
        tracing::info!(target: AUDIT_TARGET, event = "login", result = "disabled", user_id = user.id, client = %attempt.address);
        return Err(sessions::account_disabled());
    }

    state.throttle.clear_login(&email, attempt.address).await?;
    if verification == Verification::MatchNeedsRehash {
        rehash(&state, user.id, password).await;
    }
    let user_id = user.id;
    let response = sessions::start(&state, user, &client_info).await?;
    metrics::counter!(LOGIN_ATTEMPTS, "result" => "success").increment(1);
    tracing::info!(target: AUDIT_TARGET, event = "login", result = "success", user_id, session_id = %response.session_id, client = %attempt.address);
    Ok(WithRefreshCookie(response))
}

/// One login attempt's account and address, for its metrics and audit lines.
struct Attempt<'a> {
    state: &'a AppState,
    email: &'a str,
    address: IpAddr,
}

impl Attempt<'_> {
    /// Returns whether a line for `event` of this pair goes to the audit log
    /// now, with the count of lines held back since the last one.
    fn admit(&self, event: &str) -> Option<u64> {
        let key = format!("{event}:{}:{}", self.email, self.address);
        self.state.audit_repeats.admit(&key, now_millis())
    }

    /// Counts and logs a wrong password or an unknown account. `lockout_ms`
    /// is the lockout this attempt started, which now remains in force.
    fn failed(&self, user_id: Option<i64>, lockout_ms: Option<u64>) {
        let reason = if user_id.is_some() {
            "wrong_password"
        } else {
            "unknown_account"
        };
        metrics::counter!(LOGIN_ATTEMPTS, "result" => reason).increment(1);
        metrics::counter!(FAILED_LOGINS).increment(1);
        self.state.failed_logins.record(unix_now());
        if let Some(repeated) = self.admit("login_failure") {
            tracing::info!(target: AUDIT_TARGET, event = "login", result = "failure", reason, user_id, client = %self.address, repeated);
        }
        if let Some(lockout_ms) = lockout_ms {
            // One line per lockout: each lockout takes a further failure to start.
            tracing::warn!(target: AUDIT_TARGET, event = "login_locked", reason, user_id, client = %self.address, lockout_secs = lockout_ms.div_ceil(1000));
        }
    }

    /// Counts and logs an attempt refused by the lockout, and builds its 429.
    fn throttled(&self, retry_ms: u64) -> ApiError {
        metrics::counter!(LOGIN_ATTEMPTS, "result" => "throttled").increment(1);
        metrics::counter!(RATE_LIMITED, "limit" => "login").increment(1);
        if let Some(repeated) = self.admit("login_throttled") {
            // No user id: looking the account up would tell a timing observer whether it exists.
            tracing::info!(target: AUDIT_TARGET, event = "login", result = "throttled", client = %self.address, repeated);
        }
        ApiError::TooManyRequests {
            code: "too_many_attempts",
            detail: "too many failed logins for this account from this address; retry after the time in Retry-After"
                .to_owned(),
            retry_after: Some(Duration::from_millis(retry_ms)),
        }
    }
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
