//! Fuzz targets for Confab, shared by the libFuzzer binaries in
//! `fuzz_targets/` and the stable runner in `tests/stable.rs`. A target
//! passes an input when it returns; any panic is a bug.

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest as _, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use confab::auth::token::{decode_token_id, TokenService};
use confab::auth::{LoginRequest, RegisterRequest};
use confab::chat::{CreateChatRequest, SendRequest};
use confab::http::extract::Json;

/// Fixed verification time, so a result never depends on the clock.
const NOW: i64 = 1_700_000_000;

fn token_service() -> &'static TokenService {
    static SERVICE: OnceLock<TokenService> = OnceLock::new();
    SERVICE.get_or_init(|| {
        TokenService::new(
            b"fuzzing-secret-that-is-at-least-32-bytes",
            "confab",
            "confab-api",
            Duration::from_secs(1800),
            Duration::from_secs(60),
        )
    })
}

/// Feeds `data` to the token verifier, to the `jti` decoder, and as an
/// `Authorization` header value to the bearer token parser.
pub fn token_parse(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = token_service().verify(&text, NOW);
    let _ = decode_token_id(&text);

    let mut prefixed = b"Bearer ".to_vec();
    prefixed.extend_from_slice(data);
    for value in [data, prefixed.as_slice()] {
        let Ok(value) = HeaderValue::from_bytes(value) else {
            continue;
        };
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        if let Ok(Some(token)) = confab::auth::extractor::bearer_token_from_headers(&headers) {
            let _ = token_service().verify(token, NOW);
        }
    }
}

/// Decodes `data` as the body of register, login (JSON and form), message
/// send and chat create through the server's own extractors, then runs
/// each request type's validation.
pub fn request_decode(data: &[u8]) {
    let runtime = runtime();
    runtime.block_on(async {
        if let Ok(Json(request)) =
            Json::<RegisterRequest>::from_request(request(data, "application/json"), &()).await
        {
            let _ = request.validate();
        }
        for media_type in ["application/json", "application/x-www-form-urlencoded"] {
            if let Ok(login) = LoginRequest::from_request(request(data, media_type), &()).await {
                let _ = login.validate();
            }
        }
        if let Ok(Json(message)) =
            Json::<SendRequest>::from_request(request(data, "application/json"), &()).await
        {
            let _ = message.validate();
        }
        if let Ok(Json(chat)) =
            Json::<CreateChatRequest>::from_request(request(data, "application/json"), &()).await
        {
            let _ = chat.validate(1);
        }
    });
}

fn request(body: &[u8], media_type: &'static str) -> Request {
    Request::builder()
        .method("POST")
        .uri("/")
        .header(CONTENT_TYPE, media_type)
        .body(Body::from(body.to_vec()))
        .expect("a request with a static header is valid")
}

/// Returns a single-threaded runtime for the async extractors, one per
/// fuzzing thread.
fn runtime() -> &'static tokio::runtime::Runtime {
    thread_local! {
        static RUNTIME: &'static tokio::runtime::Runtime = Box::leak(Box::new(
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("failed to build a runtime"),
        ));
    }
    RUNTIME.with(|runtime| *runtime)
}
