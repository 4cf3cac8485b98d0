//! Accounts, access tokens and sessions: registration, login, refresh,
//! logout and the extractor that guards every protected route.

pub mod audit;
pub mod extractor;
pub mod failed_logins;
mod handlers;
mod login;
pub mod password;
pub mod redis_revocation;
pub mod refresh;
pub mod refresh_cookie;
pub mod revocation;
pub mod secret;
mod session_handlers;
pub mod sessions;
pub mod strength;
pub mod token;
pub mod validate;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use audit::AUDIT_TARGET;
pub use extractor::AuthUser;
pub use handlers::{RegisterRequest, Registration};
pub use login::LoginRequest;

use crate::AppState;

/// A user's role, carried in the `role` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value {
            "user" => Ok(Self::User),
            "admin" => Ok(Self::Admin),
            other => Err(format!(
                "unknown role {other:?}; expected `user` or `admin`"
            )),
        }
    }
}

/// Returns the current time in seconds since the Unix epoch, the unit of JWT claims.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Routes under `/auth`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::register))
        .routes(routes!(handlers::signup))
        .routes(routes!(login::login))
        .routes(routes!(handlers::logout))
        .routes(routes!(handlers::me))
        .routes(routes!(session_handlers::refresh))
        .routes(routes!(session_handlers::logout_all))
        .routes(routes!(session_handlers::change_password))
        .routes(routes!(session_handlers::list_sessions))
        .routes(routes!(session_handlers::delete_session))
}
