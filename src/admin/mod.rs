//! Administration: the `/admin` API and the `confab user` commands.

pub mod cli;
mod handlers;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_users))
        .routes(routes!(handlers::update_user))
        .routes(routes!(handlers::disable_user))
        .routes(routes!(handlers::enable_user))
        .routes(routes!(handlers::security))
}
