//! Layers that wrap every route: request ids, tracing, security headers,
//! CORS, the body limit and the panic guard.

use std::any::Any;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
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
use crate::config::CorsPolicy;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Content-Security-Policy for API responses: they are data, never documents.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Wraps the router in every cross-cutting layer. Order matters: the layer
/// added last sees the request first.
pub fn apply(
    router: Router,
    cors: &CorsPolicy,
    max_body_bytes: usize,
    trusted_proxies: TrustedProxies,
) -> Router {
    let router = router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panic_response))
        // Inside the trace layer, so the address lands on the request span.
        .layer(axum::middleware::from_fn_with_state(
            trusted_proxies,
            record_client_address,
        ));
    // CORS responds to preflight requests itself, so it sits inside the
    // header layers and preflight responses get the security headers too.
    let router = match cors_layer(cors) {
        Some(layer) => router.layer(layer),
        None => router,
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
        let router = apply(
            Router::new().route("/panic", get(panicking)),
            &CorsPolicy::Disabled,
            64 * 1024,
            TrustedProxies::default(),
        );

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
