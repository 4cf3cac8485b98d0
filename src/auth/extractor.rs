//! The one extractor that authenticates a request, so no protected handler
//! can skip a check: header and scheme, signature and claims, revocation of
//! the token and of its session, and the user's cut-off.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::HeaderMap;

use super::revocation::RevocationUnavailable;
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

/// Verifies a raw token, in this order: signature and claims, `jti`
/// revoked, `sid` revoked, and `iat` before the user's cut-off. A revocation
/// list that cannot be reached rejects the token (fails closed).
pub async fn authenticate(state: &AppState, token: &str) -> Result<AuthUser, ApiError> {
    let now = unix_now();
    let verified = state.tokens.verify(token, now).map_err(|error| {
        tracing::debug!(reason = %error, "token rejected");
        ApiError::InvalidToken {
            detail: "the access token is invalid or expired",
        }
    })?;

    let status = state
        .revocations
        .token_status(
            verified.token_id,
            verified.session_id,
            verified.user_id,
            now,
        )
        .await
        .map_err(unavailable)?;
    if status.token_revoked {
        return Err(ApiError::InvalidToken {
            detail: "the access token has been revoked",
        });
    }
    if status.session_revoked {
        return Err(ApiError::InvalidToken {
            detail: "the session of this access token has ended",
        });
    }

    // Cut-offs have a resolution of one second, so a token issued in the
    // second of the cut-off passes, which lets "log out everywhere, then log
    // in again at once" work. Logout-all therefore also revokes the caller's
    // token and the ended sessions by id.
    if status
        .user_cutoff
        .is_some_and(|cutoff| verified.claims.iat < cutoff)
    {
        return Err(ApiError::InvalidToken {
            detail: "the access token was issued before the user's sessions were ended",
        });
    }
    Ok(AuthUser {
        user_id: verified.user_id,
        token: verified,
    })
}

fn unavailable(error: RevocationUnavailable) -> ApiError {
    tracing::warn!(%error, "revocation check failed; rejecting token");
    ApiError::Unavailable {
        code: "revocation_unavailable",
        detail: "tokens cannot be checked right now; retry shortly".to_owned(),
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token_from_headers(&parts.headers)?.ok_or(ApiError::MissingToken)?;
        authenticate(state, token).await
    }
}
