//! The session lifecycle: starting a session at login, rotating its refresh
//! token, and ending one session or all of a user's.
//!
//! Ending a session is recorded twice: durably in the database, which kills
//! its refresh tokens, and in the revocation list under its `sid` until its
//! last access token has expired. Ending all of a user's sessions also moves
//! the user's cut-off, which rejects every older access token without a list.

use std::collections::HashSet;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::USER_AGENT;
use axum::http::request::Parts;
use serde::Serialize;

use super::audit::AUDIT_TARGET;
use super::refresh;
use super::revocation::{RevocationList, RevocationUnavailable};
use super::token::{decode_token_id, encode_id, random_id, VerifiedToken};
use super::unix_now;
use crate::http::client_address::ClientAddress;
use crate::http::error::ApiError;
use crate::realtime::Hub;
use crate::store::sessions::{NewSession, Rotation};
use crate::store::{now_millis, Store, User};
use crate::AppState;

/// Maximum length of the user agent stored with a session, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 256;

/// The client starting or refreshing a session, as far as the server can tell.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub user_agent: Option<String>,
    /// Client address as computed by `http::client_address`: the peer, or
    /// the forwarded address when the peer is a trusted proxy.
    pub address: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let user_agent = parts.headers.get(USER_AGENT).map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .chars()
                .take(MAX_USER_AGENT_CHARS)
                .collect()
        });
        let address = parts
            .extensions
            .get::<ClientAddress>()
            .and_then(|ClientAddress(address)| *address)
            .map(|address| address.to_string());
        Ok(Self {
            user_agent,
            address,
        })
    }
}

/// Response body of a login, a registration or a refresh.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub user: User,
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
    /// Id of the session, as listed by `GET /auth/sessions`.
    pub session_id: String,
}

/// Starts a session for `user` and returns its first token pair.
pub async fn start(
    state: &AppState,
    user: User,
    client: &ClientInfo,
) -> Result<TokenResponse, ApiError> {
    let now = now_millis();
    let session_id = random_id();
    let encoded_id = encode_id(session_id);
    let refresh_token = refresh::generate();
    let refresh_ttl = state.settings.refresh_token_ttl;
    state
        .store
        .create_session(NewSession {
            id: &encoded_id,
            user_id: user.id,
            created_at: now,
            expires_at: now + refresh_ttl.as_millis() as i64,
            user_agent: client.user_agent.as_deref(),
            client_address: client.address.as_deref(),
            refresh_token_hash: &refresh::hash(&refresh_token),
        })
        .await?;
    token_response(state, user, session_id, refresh_token, refresh_ttl)
}

fn token_response(
    state: &AppState,
    user: User,
    session_id: u128,
    refresh_token: String,
    refresh_expires_in: Duration,
) -> Result<TokenResponse, ApiError> {
    let issued = state
        .tokens
        .issue(user.id, &user.email, user.role, session_id, unix_now())
        .map_err(|error| ApiError::Internal(error.into()))?;
    Ok(TokenResponse {
        user,
        access_token: issued.token,
        token_type: "bearer",
        expires_in: state.tokens.ttl().as_secs(),
        refresh_token,
        refresh_expires_in: refresh_expires_in.as_secs(),
        session_id: encode_id(session_id),
    })
}

fn invalid_refresh_token() -> ApiError {
    ApiError::Unauthorized {
        code: "invalid_refresh_token",
        detail: "refresh_token is invalid, expired or belongs to an ended session",
    }
}

/// Exchanges a refresh token for a new access token and refresh token.
///
/// Exactly one of several concurrent exchanges of one token performs the
/// rotation. The others, and any repeat within the grace period, get the
/// same successor, derived again from the presented token. A repeat after
/// the grace period means two parties hold the token, so the session ends.
pub async fn rotate(
    state: &AppState,
    presented: &str,
    client: &ClientInfo,
) -> Result<TokenResponse, ApiError> {
    let now = now_millis();
    let presented_hash = refresh::hash(presented);
    let record = state
        .store
        .refresh_record(&presented_hash)
        .await?
        .filter(|record| record.expires_at > now)
        .ok_or_else(invalid_refresh_token)?;
    let account = state
        .store
        .account(record.user_id)
        .await?
        .ok_or_else(invalid_refresh_token)?;
    // Before the session check: disabling ends every session, and the client
    // should learn why its token stopped working.
    if account.is_disabled() {
        return Err(account_disabled());
    }
    if record.session_ended_at.is_some() {
        return Err(invalid_refresh_token());
    }
    let session_id = decode_token_id(&record.session_id)
        .ok_or_else(|| anyhow::anyhow!("stored session id is not a token id"))?;

    let successor = state.refresh_key.successor(presented);
    let refresh_ttl = state.settings.refresh_token_ttl;
    let rotated_at = match record.rotated_at {
        Some(rotated_at) => rotated_at,
        None => {
            let rotation = Rotation {
                old_hash: &presented_hash,
                new_hash: &refresh::hash(&successor),
                session_id: &record.session_id,
                now,
                expires_at: now + refresh_ttl.as_millis() as i64,
            };
            if state.store.rotate_refresh_token(rotation).await? {
                tracing::info!(target: AUDIT_TARGET, event = "refresh", user_id = account.user.id, session_id = %record.session_id, client = client.address.as_deref());
                return token_response(state, account.user, session_id, successor, refresh_ttl);
            }
            // Another request rotated this token first, or the session ended meanwhile.
            let record = state.store.refresh_record(&presented_hash).await?;
            record
                .and_then(|record| record.rotated_at)
                .ok_or_else(invalid_refresh_token)?
        }
    };

    let grace = state.settings.refresh_grace_period.as_millis() as i64;
    let since_rotation = now - rotated_at;
    if grace > 0 && since_rotation <= grace {
        let remaining = Duration::from_millis(
            (rotated_at + refresh_ttl.as_millis() as i64 - now).max(0) as u64,
        );
        return token_response(state, account.user, session_id, successor, remaining);
    }

    tracing::warn!(
        target: AUDIT_TARGET,
        event = "refresh_token_reused",
        user_id = account.user.id,
        since_rotation_ms = since_rotation,
        session_id = %record.session_id,
        client = client.address.as_deref(),
        "a rotated refresh token was presented again; ending its session"
    );
    end_session(state, session_id, None).await?;
    Err(ApiError::Unauthorized {
        code: "refresh_token_reused",
        detail: "refresh_token was already exchanged; the session has been ended",
    })
}

/// Builds the 403 for a disabled account, shared by login and refresh.
pub fn account_disabled() -> ApiError {
    ApiError::forbidden("account_disabled", "this account has been disabled")
}

/// Ends one session: durably, then in the revocation list, then on open
/// sockets. `owner` restricts it to that user's sessions. Returns whether
/// this call ended it.
pub async fn end_session(
    state: &AppState,
    session_id: u128,
    owner: Option<i64>,
) -> Result<bool, ApiError> {
    let ended = state
        .store
        .end_session(&encode_id(session_id), owner, now_millis())
        .await?;
    if ended {
        revoke_sessions(state, &[session_id]).await?;
    }
    Ok(ended)
}

/// Ends every session of `user_id` and rejects all their earlier access
/// tokens through the cut-off; used by logout-all, disabling and role changes.
/// Returns the number of sessions ended.
pub async fn end_all_sessions(state: &AppState, user_id: i64) -> Result<usize, ApiError> {
    let cutoff = unix_now();
    let ended = state
        .store
        .cut_off_user(user_id, cutoff, now_millis())
        .await?;
    apply_cutoff(state, user_id, cutoff, &ended).await?;
    Ok(ended.len())
}

/// Applies a cut-off already stored in the database to this instance: the
/// revocation list, the ended sessions' ids and the user's open sockets.
pub async fn apply_cutoff(
    state: &AppState,
    user_id: i64,
    cutoff: i64,
    ended_sessions: &[String],
) -> Result<(), ApiError> {
    state
        .revocations
        .set_user_cutoff(user_id, cutoff, state.tokens.last_valid_second(cutoff))
        .await
        .map_err(revocation_failed)?;
    // The cut-off misses tokens issued within its own second, for example by
    // a refresh that raced with this call; revoking the sessions covers them.
    let ids: Vec<u128> = ended_sessions
        .iter()
        .filter_map(|id| decode_token_id(id))
        .collect();
    revoke_sessions(state, &ids).await?;
    state.realtime.close_user_before(user_id, cutoff);
    Ok(())
}

/// Ends every session of `user_id` except `keep`; used by the password change.
pub async fn end_other_sessions(
    state: &AppState,
    user_id: i64,
    keep: u128,
) -> Result<usize, ApiError> {
    let ended = state
        .store
        .end_user_sessions(user_id, Some(&encode_id(keep)), now_millis())
        .await?;
    let ids: Vec<u128> = ended.iter().filter_map(|id| decode_token_id(id)).collect();
    // Ending the sessions closes their sockets; the caller's own stay open.
    revoke_sessions(state, &ids).await?;
    Ok(ended.len())
}

/// Puts session ids into the revocation list until their last access token
/// expires, and closes their sockets.
async fn revoke_sessions(state: &AppState, session_ids: &[u128]) -> Result<(), ApiError> {
    let until = state.tokens.last_valid_second(unix_now());
    for &session_id in session_ids {
        state
            .revocations
            .revoke(session_id, until)
            .await
            .map_err(revocation_failed)?;
        state.realtime.session_revoked(session_id);
    }
    Ok(())
}

/// Revokes one access token by id until the last second it could be valid.
/// Logout and logout-all both need it, because a session cut-off of whole
/// seconds does not cover a token issued in the same second.
pub async fn revoke_token(state: &AppState, token: &VerifiedToken) -> Result<(), ApiError> {
    state
        .revocations
        .revoke(
            token.token_id,
            state.tokens.last_valid_second(token.claims.iat),
        )
        .await
        .map_err(revocation_failed)
}

/// Builds the 503 for a revocation list that cannot be written. The
/// database already contains the change, so a retry completes it.
pub fn revocation_failed(error: RevocationUnavailable) -> ApiError {
    tracing::warn!(%error, "revocation list update failed");
    ApiError::Unavailable {
        code: "revocation_unavailable",
        detail: "the change was saved but could not be applied to tokens yet; retry shortly"
            .to_owned(),
    }
}

/// Loads into `revocations` the cut-offs and ended sessions recorded in the
/// database since `since` (seconds), which may be too old to matter: the
/// entries expire with the last access token they cover. Also closes the
/// matching sockets in `hub`, because a change made by `confab user` or by
/// another instance without Redis reaches this instance only here.
pub async fn load_revocations(
    store: &Store,
    revocations: &dyn RevocationList,
    tokens: &super::token::TokenService,
    hub: &Hub,
    since: i64,
) -> anyhow::Result<usize> {
    let mut loaded = 0;
    for user in store.cutoffs_since(since).await? {
        let expires_at = tokens.last_valid_second(user.token_cutoff);
        revocations
            .set_user_cutoff(user.id, user.token_cutoff, expires_at)
            .await?;
        hub.close_user_local(user.id, user.token_cutoff);
        loaded += 1;
    }
    let mut ended = HashSet::new();
    for session in store.sessions_ended_since(since * 1000).await? {
        let Some(session_id) = decode_token_id(&session.id) else {
            continue;
        };
        let expires_at = tokens.last_valid_second(session.ended_at.div_euclid(1000));
        revocations.revoke(session_id, expires_at).await?;
        ended.insert(session_id);
        loaded += 1;
    }
    // Each run reloads the last minute, so most of these sockets are
    // already closed; closing them again changes nothing.
    hub.close_sessions_local(&ended);
    Ok(loaded)
}

/// Returns the earliest second whose cut-offs and ended sessions can still
/// reject a valid access token.
pub fn revocation_horizon(tokens: &super::token::TokenService, now: i64) -> i64 {
    now - tokens.ttl().as_secs() as i64 - tokens.leeway().as_secs() as i64
}

/// Reloads cut-offs and ended sessions from the database on an interval, so
/// changes made by `confab user` or by another instance take effect here,
/// and deletes expired sessions.
pub fn spawn_revocation_sync(state: AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    // Rows written by a transaction that committed late can carry a time
    // slightly before the previous run; looking back this far catches them.
    const OVERLAP_SECS: i64 = 60;

    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut since = unix_now() - OVERLAP_SECS;
        loop {
            ticker.tick().await;
            let started = unix_now();
            let horizon = revocation_horizon(&state.tokens, started);
            let revocations = state.revocations.as_ref();
            let result = load_revocations(
                &state.store,
                revocations,
                &state.tokens,
                &state.realtime,
                since.max(horizon),
            )
            .await;
            match result {
                Ok(_) => since = started - OVERLAP_SECS,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "revocation sync failed")
                }
            }
            match state.store.purge_expired_sessions(now_millis()).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "deleted expired sessions"),
                Err(error) => tracing::warn!(%error, "expired session purge failed"),
            }
        }
    })
}
