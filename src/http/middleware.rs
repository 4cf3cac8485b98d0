//! Layers that wrap every route: request ids, tracing, security headers,
//! HSTS, CORS, the body limit, the request timeout and the panic guard.

use std::any::Any;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::client_address::{record_client_address, TrustedProxies};
use super::error::{problem_response, ApiError};
use super::tls::HSTS;
use crate::config::{Config, ConfigError, CorsPolicy};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Content-Security-Policy for API responses: they are data, never documents.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Settings of the cross-cutting layers.
#[derive(Clone, Debug)]
pub struct LayerSettings {
    pub cors: CorsPolicy,
    pub max_body_bytes: usize,
    /// Longest time a handler may take before the request is answered with 503.
    pub request_timeout: Duration,
    /// Whether clients reach Confab over HTTPS, directly or through a proxy,
    /// so responses carry `Strict-Transport-Security`.
    pub https: bool,
    /// Proxies whose `X-Forwarded-For` decides the client address.
    pub trusted_proxies: TrustedProxies,
}

impl LayerSettings {
    /// Takes the layer settings from the configuration.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            cors: config.cors_policy()?,
            max_body_bytes: config.max_body_bytes,
            request_timeout: config.request_timeout,
            https: config.tls_cert.is_some() || config.behind_tls_proxy,
            trusted_proxies: config.trusted_proxies.clone(),
        })
    }
}

/// Wraps the router in every cross-cutting layer. Order matters: the layer
/// added last sees the request first.
pub fn apply(router: Router, settings: &LayerSettings) -> Router {
    let router = router
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(axum::middleware::from_fn_with_state(
            settings.request_timeout,
            limit_duration,
        ))
        // Inside the trace layer, so the address lands on the request span.
        .layer(axum::middleware::from_fn_with_state(
            settings.trusted_proxies.clone(),
            record_client_address,
        ));
    // CORS responds to preflight requests itself, so it sits inside the
    // header layers and preflight responses get the security headers too.
    let router = match cors_layer(&settings.cors) {
        Some(layer) => router.layer(layer),
        None => router,
    };
    let router = if settings.https {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HSTS,
        ))
    } else {
        router
    };
    with_security_headers(router)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_response(record_response),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

fn with_security_headers(router: Router) -> Router {
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // API responses carry tokens and private messages: no cache may keep them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // `if_not_present`, so routes that serve documents can set a policy of their own.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CSP),
        ))
}

/// Answers a request whose handler runs longer than `timeout` with a 503
/// problem, instead of leaving the client waiting on a silent connection.
/// WebSocket upgrades are exempt because the socket outlives the handshake.
async fn limit_duration(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    if is_websocket_upgrade(&request) {
        return next.run(request).await;
    }
    // NOTE: the limit covers the time until the response head is ready; a
    // slow client reading a large body is not cut off by it.
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
            let mut response = problem_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the server did not finish this request within {}; retry later",
                    humantime::format_duration(timeout)
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

fn is_websocket_upgrade(request: &Request) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
}

fn cors_layer(policy: &CorsPolicy) -> Option<CorsLayer> {
    let base = || {
        CorsLayer::new()
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600))
    };
    match policy {
        CorsPolicy::Disabled => None,
        // A wildcard and credentials together would let any site act as the user.
        CorsPolicy::AnyOrigin => Some(base().allow_origin(AllowOrigin::any())),
        CorsPolicy::Origins(origins) => {
            let values = origins
                .iter()
                .filter_map(|origin| HeaderValue::from_str(origin).ok());
            Some(
                base()
                    .allow_origin(AllowOrigin::list(values))
                    .allow_credentials(true),
            )
        }
    }
}

/// Opens the request span with the matched route, never the raw URI, whose
/// query string could carry a credential.
fn make_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        request_id,
        client = tracing::field::Empty,
        status = tracing::field::Empty,
    )
}

fn record_response(response: &Response, latency: Duration, span: &Span) {
    span.record("status", response.status().as_u16());
    tracing::debug!(latency_ms = latency.as_secs_f64() * 1000.0, "response sent");
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    tracing::error!(panic = %message, "handler panicked");
    problem_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "the server failed to handle this request".to_owned(),
    )
}

/// Answers unknown routes.
pub async fn not_found() -> ApiError {
    ApiError::not_found("route_not_found", "no route matches this path")
}

/// Answers known routes called with the wrong method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn panic_becomes_problem_500() {
        async fn panicking() -> &'static str {
            panic!("handler bug")
        }
        let settings = LayerSettings {
            cors: CorsPolicy::Disabled,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            https: false,
            trusted_proxies: TrustedProxies::default(),
        };
        let router = apply(Router::new().route("/panic", get(panicking)), &settings);

        let request = Request::builder()
            .uri("/panic")
            .body(Body::empty())
            .unwrap();
        let response = router.oneshot(request).await.unwrap();

        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let headers = response.headers();
        assert_eq!(
            headers[header::CONTENT_TYPE],
            crate::http::error::PROBLEM_JSON
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], API_CSP);
        assert!(headers.contains_key(REQUEST_ID));

        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem["status"], 500);
        assert_eq!(problem["code"], "internal_error");
        assert_eq!(problem["title"], "Internal Server Error");
        assert!(problem["type"].is_string());
        // The panic message is for the log, never for the client.
        assert!(!problem["detail"].as_str().unwrap().contains("handler bug"));
    }
}
