//! The one extractor that authenticates a request, so no protected handler
//! can skip a check: header and scheme, signature and claims, revocation.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::token::VerifiedToken;
use super::unix_now;
use crate::http::error::ApiError;
use crate::AppState;

/// An authenticated caller. Extracting it performs every token check.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user_id: i64,
    pub token: VerifiedToken,
}

/// Returns the token of an `Authorization: Bearer` header. The scheme is
/// case-insensitive (RFC 7235); `Ok(None)` means no header at all.
pub fn bearer_token_from_headers(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let malformed = || ApiError::InvalidToken {
        detail: "the Authorization header must be `Bearer <token>`",
    };
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(malformed());
    }
    Ok(Some(token))
}

/// Verifies a raw token: signature, claims, then the revocation list. A
/// revocation list that cannot be reached rejects the token (fails closed).
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let now = unix_now();
    let verified = state.tokens.verify(token, now).map_err(|error| {
        tracing::debug!(reason = %error, "token rejected");
        ApiError::InvalidToken {
            detail: "the access token is invalid or expired",
        }
    })?;
    let revoked = state
        .revocations
        .is_revoked(verified.token_id, now)
        .await
        .map_err(|error| {
            tracing::warn!(%error, "revocation check failed; rejecting token");
            ApiError::Unavailable {
                code: "revocation_unavailable",
                detail: "tokens cannot be checked right now; retry shortly".to_owned(),
            }
        })?;
    if revoked {
        return Err(ApiError::InvalidToken {
            detail: "the access token has been revoked",
        });
    }
    Ok(AuthUser {
        user_id: verified.user_id,
        token: verified,
    })
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token_from_headers(&parts.headers)?.ok_or(ApiError::MissingToken)?;
        authenticate(state, token).await
    }
}
