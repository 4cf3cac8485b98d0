//! Administration: the `/admin` API and the `confab user` commands.

pub mod cli;
mod handlers;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

use crate::auth::{AuthUser, Role};
use crate::http::error::ApiError;
use crate::AppState;

/// An authenticated administrator. The role comes from the token: changing a
/// role ends the user's sessions, so no valid token carries a stale role.
#[derive(Clone, Debug)]
pub struct RequireAdmin(pub AuthUser);

impl FromRequestParts<AppState> for RequireAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = AuthUser::from_request_parts(parts, state).await?;
        if caller.token.claims.role != Role::Admin {
            return Err(ApiError::forbidden(
                "admin_required",
                "this endpoint is for administrators only",
            ));
        }
        Ok(Self(caller))
    }
}

/// Routes under `/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(handlers::list_users))
        .route(
            "/admin/users/{id}",
            axum::routing::patch(handlers::update_user),
        )
        .route("/admin/users/{id}/disable", post(handlers::disable_user))
        .route("/admin/users/{id}/enable", post(handlers::enable_user))
        .route("/admin/security", get(handlers::security))
}
