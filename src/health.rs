//! `GET /healthz` and `GET /readyz`, the probes of process managers and load
//! balancers.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::http::extract::Json;
use crate::AppState;

/// Body of `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// Body of `GET /readyz`, with either status.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when the database and, when configured, Redis answer.
    #[schema(pattern = "^(ready|not_ready)$")]
    status: &'static str,
    /// `ok` or `unavailable`.
    #[schema(pattern = "^(ok|unavailable)$")]
    database: &'static str,
    /// `ok`, `unavailable`, or `not_configured` when the server runs without Redis.
    #[schema(pattern = "^(ok|unavailable|not_configured)$")]
    redis: &'static str,
}

/// Reports that the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Reports whether the database and, when configured, Redis answer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Every backing service answers", body = Readiness),
        (status = 503, description = "A backing service does not answer", body = Readiness),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let database = state.store.ping().await.is_ok();
    let redis = match &state.redis {
        Some(connection) => {
            let mut connection = connection.clone();
            Some(
                redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok(),
            )
        }
        None => None,
    };
    let ready = database && redis != Some(false);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database: if database { "ok" } else { "unavailable" },
        redis: match redis {
            Some(true) => "ok",
            Some(false) => "unavailable",
            None => "not_configured",
        },
    };
    (status, Json(body))
}
