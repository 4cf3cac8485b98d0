//! Behaviour shared by every route: error format, limits, headers and CORS.

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, PASSWORD};

/// Asserts the security headers every response must carry.
fn assert_security_headers(response: &reqwest::Response, case: &str) {
    let headers = response.headers();
    let expected = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
    ];
    for (name, value) in expected {
        assert_eq!(
            headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{case}: header {name}"
        );
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), 200);
    assert_security_headers(&response, "healthz");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn unknown_route_is_problem_404() {
    let app = spawn_app().await;
    let response = app.get("/no/such/route", None).await;
    assert_security_headers(&response, "404");
    assert_problem(response, 404, "route_not_found").await;
}

#[tokio::test]
async fn wrong_method_is_problem_405() {
    let app = spawn_app().await;
    let get_login = app.get("/auth/login", None).await;
    assert_security_headers(&get_login, "405");
    assert_problem(get_login, 405, "method_not_allowed").await;

    let post_me = app.post_json("/auth/me", &json!({}), None).await;
    assert_problem(post_me, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn unparsable_json_is_problem_400() {
    let app = spawn_app().await;
    for body in ["{\"email\": ", "not json", "", "{} trailing", "\u{0}"] {
        let response = app
            .client
            .post(app.url("/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "body {body:?}");
        assert_problem(response, 400, "invalid_json").await;
    }
}

#[tokio::test]
async fn invalid_utf8_json_is_problem_400() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b'{', b'"', 0xff, 0xfe, b'"', b'}'])
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "invalid_json").await;
}

#[tokio::test]
async fn wrong_media_type_is_problem_415() {
    let app = spawn_app().await;
    let body = json!({ "email": "a@example.test", "password": PASSWORD }).to_string();
    for (path, content_type) in [
        ("/auth/register", Some("text/plain")),
        ("/auth/register", None),
        ("/auth/register", Some("application/x-www-form-urlencoded")),
        ("/auth/login", Some("text/plain")),
        ("/auth/login", None),
        ("/auth/login", Some("multipart/form-data; boundary=x")),
    ] {
        let mut request = app.client.post(app.url(path)).body(body.clone());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "{path} with {content_type:?}");
        assert_problem(response, 415, "unsupported_media_type").await;
    }
}

#[tokio::test]
async fn json_with_charset_is_accepted() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json; charset=utf-8")
        .body(json!({ "email": "charset@example.test", "password": PASSWORD }).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn body_over_64_kib_is_problem_413() {
    let app = spawn_app().await;
    let padding = "x".repeat(64 * 1024);
    let json_body = json!({ "email": "a@example.test", "password": PASSWORD, "padding": padding });
    let register = app.post_json("/auth/register", &json_body, None).await;
    assert_security_headers(&register, "413");
    assert_problem(register, 413, "payload_too_large").await;

    let login = app.post_json("/auth/login", &json_body, None).await;
    assert_problem(login, 413, "payload_too_large").await;

    let form = app
        .client
        .post(app.url("/auth/login"))
        .form(&[("username", "a@example.test"), ("password", &padding)])
        .send()
        .await
        .unwrap();
    assert_problem(form, 413, "payload_too_large").await;
}

#[tokio::test]
async fn chunked_body_over_limit_is_problem_413() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    // Without Content-Length the limit can only be enforced while reading.
    let app = spawn_app().await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = "POST /auth/register HTTP/1.1\r\nHost: localhost\r\n\
                Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
    for _ in 0..80 {
        if stream.write_all(chunk.as_bytes()).await.is_err() {
            break; // The server may respond and close before the whole body is sent.
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;

    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
}

#[tokio::test]
async fn body_limit_is_configurable() {
    let app = spawn_app_with(|config| config.max_body_bytes = 2048).await;
    let body =
        json!({ "email": "a@example.test", "password": PASSWORD, "padding": "x".repeat(2048) });
    let response = app.post_json("/auth/register", &body, None).await;
    assert_problem(response, 413, "payload_too_large").await;
}

#[tokio::test]
async fn problem_has_all_members() {
    let app = spawn_app().await;
    let response = app.get("/auth/me", None).await;
    let problem = assert_problem(response, 401, "missing_token").await;
    assert_eq!(problem["type"], "urn:confab:problem:missing_token");
    assert_eq!(problem["title"], "Unauthorized");
}

#[tokio::test]
async fn responses_carry_security_headers() {
    let app = spawn_app().await;
    let (_, token) = app.user("headers@example.test").await;
    let cases = [
        ("me", app.get("/auth/me", Some(&token)).await),
        ("401", app.get("/auth/me", None).await),
        (
            "422",
            app.post_json("/auth/register", &json!({ "email": "x" }), None)
                .await,
        ),
    ];
    for (case, response) in &cases {
        assert_security_headers(response, case);
        assert_eq!(response.headers()["cache-control"], "no-store", "{case}");
    }
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://chat.example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

async fn preflight(app: &crate::helpers::TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(reqwest::Method::OPTIONS, app.url("/auth/me"))
        .header("origin", origin)
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_preflight_allows_listed_origin() {
    let app = spawn_app_with(|config| {
        config.cors_origins = Some("https://chat.example.test, http://localhost:3000".to_owned());
    })
    .await;
    let response = preflight(&app, "http://localhost:3000").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_security_headers(&response, "preflight");
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    assert!(allowed.contains("content-type"), "{allowed}");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(
        methods.contains("GET") && methods.contains("POST"),
        "{methods}"
    );

    let other = preflight(&app, "https://evil.example.test").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let (_, token) = app.user("cors@example.test").await;
    let actual = app
        .client
        .get(app.url("/auth/me"))
        .header("origin", "https://chat.example.test")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(actual.status(), 200);
    assert_eq!(
        actual.headers()["access-control-allow-origin"],
        "https://chat.example.test"
    );
}

#[tokio::test]
async fn cors_wildcard_gives_no_credentials() {
    let app = spawn_app_with(|config| config.cors_origins = Some("*".to_owned())).await;
    let response = preflight(&app, "https://anywhere.example.test").await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("access-control-allow-credentials").is_none());
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
}

#[tokio::test]
async fn slow_request_is_problem_503() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let app = spawn_app_with(|config| {
        config.request_timeout = std::time::Duration::from_millis(200);
    })
    .await;
    // The body never arrives in full, so the handler waits until the timeout.
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let request = format!(
        "POST /auth/register HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"email\":",
        app.address
    );
    stream.write_all(request.as_bytes()).await.unwrap();

    let mut response = Vec::new();
    let mut buffer = [0u8; 4096];
    // Reads until the whole problem body is in; the connection stays open.
    while !response.ends_with(b"}") {
        let read = stream.read(&mut buffer).await.unwrap();
        assert!(read > 0, "connection closed without a response");
        response.extend_from_slice(&buffer[..read]);
    }
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(
        head.contains("content-type: application/problem+json"),
        "{head}"
    );
    assert!(head.contains("retry-after: 1"), "{head}");
    let problem: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["code"], "request_timeout");
    assert_eq!(problem["status"], 503);
}

#[tokio::test]
async fn fast_request_is_not_timed_out() {
    let app = spawn_app_with(|config| {
        config.request_timeout = std::time::Duration::from_secs(30);
    })
    .await;
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status(), 200);
}
