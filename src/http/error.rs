//! The one error type every handler returns, rendered as RFC 9457
//! `application/problem+json`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid input field and why it was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// How a request failed. Each variant fixes its status code; `code` strings
/// are stable so clients can branch on them.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or query could not be parsed at all.
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },

    /// 401 without credentials; answered with `WWW-Authenticate: Bearer`.
    #[error("missing bearer token")]
    MissingToken,

    /// 401 with a token that failed a check; `WWW-Authenticate` names `invalid_token`.
    #[error("{detail}")]
    InvalidToken { detail: &'static str },

    /// 401 for a credential other than the access token, such as a refresh
    /// token, that failed a check. `code` names the check.
    #[error("{detail}")]
    Unauthorized {
        code: &'static str,
        detail: &'static str,
    },

    /// 401 for a login with an unknown email or a wrong password.
    #[error("invalid email or password")]
    InvalidCredentials,

    /// 403: authenticated, but not allowed to do this.
    #[error("{detail}")]
    Forbidden { code: &'static str, detail: String },

    /// 404: no such resource, or one the caller may not see.
    #[error("{detail}")]
    NotFound { code: &'static str, detail: String },

    /// 405: the route exists but not with this method.
    #[error("method not allowed")]
    MethodNotAllowed,

    /// 409: the request conflicts with stored state.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },

    /// 413: the body is larger than the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,

    /// 415: the body is not in a supported media type.
    #[error("{detail}")]
    UnsupportedMediaType { detail: String },

    /// 422: the request parsed but some fields are invalid.
    #[error("validation failed")]
    Validation(Vec<FieldError>),

    /// 429: the caller exceeded a rate limit or a limit on open resources.
    /// With `retry_after`, the response carries `Retry-After` in whole
    /// seconds.
    #[error("{detail}")]
    TooManyRequests {
        code: &'static str,
        detail: String,
        retry_after: Option<std::time::Duration>,
    },

    /// 503: a backing service is unreachable; the request may be retried.
    #[error("{detail}")]
    Unavailable { code: &'static str, detail: String },

    /// 500: anything unexpected. The cause is logged once and never sent to the client.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// Builds a 422 for a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn not_found(code: &'static str, detail: impl Into<String>) -> Self {
        Self::NotFound {
            code,
            detail: detail.into(),
        }
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            detail: detail.into(),
        }
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
        }
    }

    /// Returns the HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::MissingToken
            | Self::InvalidToken { .. }
            | Self::Unauthorized { .. }
            | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Forbidden { code, .. }
            | Self::NotFound { code, .. }
            | Self::Conflict { code, .. }
            | Self::Unavailable { code, .. }
            | Self::TooManyRequests { code, .. }
            | Self::Unauthorized { code, .. } => code,
            Self::MissingToken => "missing_token",
            Self::InvalidToken { .. } => "invalid_token",
            Self::InvalidCredentials => "invalid_credentials",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Validation(errors) => errors
                .iter()
                .map(|error| format!("{}: {}", error.field, error.message))
                .collect::<Vec<_>>()
                .join("; "),
            // The cause may contain SQL, paths or driver text: it goes to the log, not the client.
            Self::Internal(_) => "the server failed to handle this request".to_owned(),
            other => other.to_string(),
        }
    }
}

/// Body of every error response.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `urn:confab:problem:` followed by `code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Reason phrase of `status`.
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable machine-readable error code, such as `validation_failed`.
    pub code: &'static str,
    /// Every invalid field; present only with `code` `validation_failed`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Renders a problem+json response; used by the error type and by middleware
/// that has no `ApiError` at hand.
pub fn problem_response(status: StatusCode, code: &'static str, detail: String) -> Response {
    problem_with_errors(status, code, detail, Vec::new())
}

fn problem_with_errors(
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
) -> Response {
    let problem = Problem {
        kind: format!("urn:confab:problem:{code}"),
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
        code,
        errors,
    };
    let body = serde_json::to_vec(&problem).unwrap_or_default();
    let mut response = (status, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let code = self.code();
        let detail = self.detail();

        match &self {
            // Logged once here, inside the request span, so the request id ties it to the request.
            Self::Internal(cause) => tracing::error!(error = ?cause, "request failed"),
            Self::Unavailable { .. } => tracing::warn!(code, "backing service unavailable"),
            _ => tracing::debug!(code, status = status.as_u16(), "request rejected"),
        }

        let challenge = match &self {
            Self::MissingToken | Self::Unauthorized { .. } => Some("Bearer"),
            Self::InvalidToken { .. } => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        // Rounded up, so a client that waits this long is never refused again for it.
        let retry_after = match &self {
            Self::TooManyRequests {
                retry_after: Some(wait),
                ..
            } => Some(wait.as_millis().div_ceil(1000).max(1)),
            _ => None,
        };
        let errors = match self {
            Self::Validation(errors) => errors,
            _ => Vec::new(),
        };

        let mut response = problem_with_errors(status, code, detail, errors);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds as u64));
        }
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::Unavailable {
                    code: "database_unavailable",
                    detail: "the database is unreachable; retry shortly".to_owned(),
                }
            }
            other => Self::Internal(other.into()),
        }
    }
}
