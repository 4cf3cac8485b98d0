//! Prometheus metrics, served on their own address (`CONFAB_METRICS_ADDR`)
//! so they are never public by accident.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::Context as _;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::{store, AppState};

/// Counter of HTTP requests by method, matched route and status.
pub const HTTP_REQUESTS: &str = "confab_http_requests_total";
/// Histogram of request durations in seconds by method and matched route.
pub const HTTP_DURATION: &str = "confab_http_request_duration_seconds";
/// Counter of login attempts by `result` (`success`, `wrong_password`,
/// `unknown_account`, `disabled`, `throttled`).
pub const LOGIN_ATTEMPTS: &str = "confab_login_attempts_total";
/// Counter of failed logins (wrong password or unknown email).
pub const FAILED_LOGINS: &str = "confab_failed_logins_total";
/// Gauge of entries in the revocation list, refreshed at each scrape.
pub const REVOKED_TOKENS: &str = "confab_revoked_tokens";
/// Gauge of open WebSockets on this instance.
pub const OPEN_SOCKETS: &str = "confab_websockets_open";
/// Gauge of sessions neither ended nor expired, over every instance, refreshed at each scrape.
pub const ACTIVE_SESSIONS: &str = "confab_active_sessions";
/// Counter of requests refused with 429, by `limit` (`login`, `auth`, `register`).
pub const RATE_LIMITED: &str = "confab_rate_limited_total";
/// Counter of messages stored; a repeated `client_id` stores nothing and is not counted.
pub const MESSAGES_STORED: &str = "confab_messages_stored_total";
/// Counter of events queued to sockets on this instance.
pub const EVENTS_DELIVERED: &str = "confab_events_delivered_total";

/// Request-duration buckets in seconds: 0.5 ms to 10 s.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process-wide recorder once and returns its handle. Later
/// calls (several servers in one test process) share the first recorder.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), DURATION_BUCKETS)
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                // Fails only if another recorder was installed first; ours then stays unused.
                let _ = metrics::set_global_recorder(recorder);
                handle
            }
            Err(error) => {
                tracing::error!(%error, "invalid metric buckets; using the defaults");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// Middleware that counts each request and records its duration.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(HTTP_DURATION, "method" => method.clone(), "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// Binds the metrics listener, so a bad address fails at start.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen for metrics on {address} (CONFAB_METRICS_ADDR)"))
}

/// Serves `GET /metrics` on `listener` until the returned task is aborted.
pub fn serve(listener: TcpListener, state: AppState) -> JoinHandle<()> {
    let bound = listener.local_addr().ok();
    let router = Router::new()
        .route("/metrics", get(render))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "metrics server failed");
        }
    });
    if let Some(bound) = bound {
        tracing::info!(address = %bound, "serving metrics on http://{bound}/metrics");
    }
    task
}

/// Refreshes the gauges that are read from state, then renders every metric.
async fn render(
    State(state): State<AppState>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    if let Ok(count) = state.revocations.count().await {
        metrics::gauge!(REVOKED_TOKENS).set(count as f64);
    }
    // The count comes from the database, so every instance reports the same
    // total. A failed query leaves the last value, like the revoked count.
    match state.store.count_active_sessions(store::now_millis()).await {
        Ok(count) => metrics::gauge!(ACTIVE_SESSIONS).set(count as f64),
        Err(error) => tracing::warn!(%error, "active session count failed"),
    }
    metrics::gauge!(OPEN_SOCKETS).set(state.realtime.open_sockets() as f64);
    metrics::counter!(EVENTS_DELIVERED).absolute(state.realtime.delivered_events());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        recorder().render(),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_counter() {
        let handle = super::recorder();
        metrics::counter!("confab_test_total").increment(1);
        let text = handle.render();
        assert!(text.contains("confab_test_total"), "{text:?}");
    }
}
