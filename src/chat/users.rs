//! `GET /users`: finding people to talk to.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::handlers::single;
use super::validate::{check_search_query, page_limit, USER_SEARCH_PAGE};
use crate::auth::AuthUser;
use crate::http::error::ApiError;
use crate::http::extract::{Json, Query};
use crate::store::chats::UserSummary;
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// Display-name prefix or exact email, 1 to 254 characters after trimming.
    #[param(required = true, min_length = 1, max_length = 254)]
    query: Option<String>,
    /// Page size; 10 when absent, and values above 50 read as 50.
    #[param(minimum = 1)]
    limit: Option<i64>,
}

/// Matching users, ordered by display name.
#[derive(Serialize, ToSchema)]
pub struct UserList {
    items: Vec<UserSummary>,
}

/// Finds other users by display-name prefix or exact email; returns only
/// ids and display names, never emails.
#[utoipa::path(
    get,
    path = "/users",
    tag = "chat",
    security(("bearer" = [])),
    params(UserSearchQuery),
    responses((status = 200, description = "Matching users other than the caller", body = UserList))
)]
pub async fn search_users(
    State(state): State<AppState>,
    caller: AuthUser,
    Query(query): Query<UserSearchQuery>,
) -> Result<Json<UserList>, ApiError> {
    let raw = query
        .query
        .ok_or_else(|| ApiError::invalid_field("query", "is required"))?;
    let search = check_search_query(&raw).map_err(single)?;
    let limit = page_limit(query.limit, USER_SEARCH_PAGE).map_err(single)?;

    let items = state
        .store
        .search_users(
            &search.name_prefix,
            search.email.as_deref(),
            caller.user_id,
            limit,
        )
        .await?;
    Ok(Json(UserList { items }))
}
