//! The `confab_refresh` cookie: its attributes, refresh through it, rotation,
//! clearing on logout and the same-origin rule for refreshes that rely on it.

use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp};
use crate::sessions::{login, refresh, text};

const COOKIE: &str = "confab_refresh";

/// Returns the one `Set-Cookie` header for the refresh cookie.
fn refresh_cookie(headers: &HeaderMap) -> String {
    let cookies: Vec<&str> = headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .filter(|value| value.starts_with(&format!("{COOKIE}=")))
        .collect();
    assert_eq!(cookies.len(), 1, "refresh cookies: {cookies:?}");
    cookies[0].to_owned()
}

/// Splits a `Set-Cookie` value into its value and its attributes.
fn parse(set_cookie: &str) -> (String, Vec<String>) {
    let mut parts = set_cookie.split(';').map(str::trim);
    let value = parts
        .next()
        .unwrap()
        .strip_prefix(&format!("{COOKIE}="))
        .unwrap()
        .to_owned();
    (value, parts.map(str::to_owned).collect())
}

fn assert_attributes(attributes: &[String], max_age: u64) {
    for expected in [
        "HttpOnly".to_owned(),
        "Secure".to_owned(),
        "SameSite=Strict".to_owned(),
        "Path=/auth".to_owned(),
        format!("Max-Age={max_age}"),
    ] {
        assert!(
            attributes.contains(&expected),
            "{expected} missing in {attributes:?}"
        );
    }
}

/// Sends `POST /auth/refresh` with the cookie and the browser headers of a
/// page on `origin`, and an empty JSON object as the body.
async fn refresh_by_cookie(app: &TestApp, token: &str, origin: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("{COOKIE}={token}"))
        .header("origin", origin)
        .json(&json!({}))
        .send()
        .await
        .expect("request failed")
}

fn own_origin(app: &TestApp) -> String {
    format!("http://{}", app.address)
}

#[tokio::test]
async fn register_login_refresh_set_cookie() {
    let app = spawn_app().await;
    let ttl = app.config.refresh_token_ttl.as_secs();

    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": "ann@example.test", "password": crate::helpers::PASSWORD }),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let (value, attributes) = parse(&refresh_cookie(response.headers()));
    assert_attributes(&attributes, ttl);
    let body: Value = response.json().await.unwrap();
    assert_eq!(value, text(&body, "refresh_token"));

    let response =
        crate::sessions::login_with(&app, "ann@example.test", crate::helpers::PASSWORD).await;
    assert_eq!(response.status(), 200);
    let (value, attributes) = parse(&refresh_cookie(response.headers()));
    assert_attributes(&attributes, ttl);
    let body: Value = response.json().await.unwrap();
    assert_eq!(value, text(&body, "refresh_token"));

    // JSON clients keep getting the token in the body and may ignore the cookie.
    let response = refresh(&app, &value).await;
    assert_eq!(response.status(), 200);
    let (rotated, attributes) = parse(&refresh_cookie(response.headers()));
    assert_attributes(&attributes, ttl);
    let body: Value = response.json().await.unwrap();
    assert_eq!(rotated, text(&body, "refresh_token"));
    assert_ne!(rotated, value);
}

#[tokio::test]
async fn refresh_by_cookie_rotates() {
    let app =
        spawn_app_with(|config| config.refresh_grace_period = std::time::Duration::ZERO).await;
    let session = app.register("ann@example.test").await;
    let first = text(&session, "refresh_token");

    let response = refresh_by_cookie(&app, &first, &own_origin(&app)).await;
    assert_eq!(response.status(), 200);
    let (second, _) = parse(&refresh_cookie(response.headers()));
    let body: Value = response.json().await.unwrap();
    assert_eq!(second, text(&body, "refresh_token"));
    assert_ne!(second, first);
    assert_eq!(body["session_id"], session["session_id"]);
    let me = app
        .get("/auth/me", Some(&text(&body, "access_token")))
        .await;
    assert_eq!(me.status(), 200);

    // With no grace period, the rotated-away cookie is a reuse that ends the session.
    let reused = refresh_by_cookie(&app, &first, &own_origin(&app)).await;
    assert_problem(reused, 401, "refresh_token_reused").await;
    let ended = refresh_by_cookie(&app, &second, &own_origin(&app)).await;
    assert_problem(ended, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn refresh_by_cookie_accepts_empty_body() {
    let app = spawn_app().await;
    let session = app.register("ann@example.test").await;
    let token = text(&session, "refresh_token");

    // A bare POST without a body or a Content-Type, as a browser may send it.
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("other=1; {COOKIE}={token}"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (rotated, _) = parse(&refresh_cookie(response.headers()));
    assert_ne!(rotated, token);
}

#[tokio::test]
async fn body_token_wins_over_cookie() {
    let app = spawn_app().await;
    let ann = text(&app.register("ann@example.test").await, "refresh_token");
    let bob = text(&app.register("bob@example.test").await, "refresh_token");

    // No Origin header: the cookie is ignored, so the same-origin rule does not apply.
    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("{COOKIE}={bob}"))
        .json(&json!({ "refresh_token": ann }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["email"], "ann@example.test");
}

#[tokio::test]
async fn refresh_without_token_names_field() {
    let app = spawn_app().await;
    let response = app.post_json("/auth/refresh", &json!({}), None).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "refresh_token");

    let response = refresh_by_cookie(&app, "not-a-token", &own_origin(&app)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], COOKIE);

    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("content-type", "text/plain")
        .body("token")
        .send()
        .await
        .unwrap();
    assert_problem(response, 415, "unsupported_media_type").await;
}

#[tokio::test]
async fn cross_origin_refresh_rejected() {
    let app = spawn_app().await;
    let token = text(&app.register("ann@example.test").await, "refresh_token");
    let cookie = format!("{COOKIE}={token}");

    let foreign: [&[(&str, &str)]; 4] = [
        &[("origin", "https://evil.example")],
        &[
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        &[("origin", "null")],
        // Neither header: not a browser, which should send the token in the body.
        &[],
    ];
    for headers in foreign {
        let mut request = app
            .client
            .post(app.url("/auth/refresh"))
            .header("cookie", &cookie)
            .json(&json!({}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let problem = assert_problem(response, 403, "cross_origin_refresh").await;
        assert!(
            !problem["detail"].as_str().unwrap().contains(&token),
            "the token is echoed in the error"
        );
    }

    // None of the rejected requests used up the token.
    let response = refresh_by_cookie(&app, &token, &own_origin(&app)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cors_origin_may_refresh_by_cookie() {
    let app = spawn_app_with(|config| {
        config.cors_origins = Some("https://chat.example.test".to_owned());
    })
    .await;
    let token = text(&app.register("ann@example.test").await, "refresh_token");

    let response = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("{COOKIE}={token}"))
        .header("origin", "https://chat.example.test")
        .header("sec-fetch-site", "same-site")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn logout_clears_cookie() {
    let app = spawn_app().await;
    app.register("ann@example.test").await;
    for path in ["/auth/logout", "/auth/logout-all"] {
        let session = login(&app, "ann@example.test").await;
        let response = app
            .post_json(path, &json!({}), Some(&text(&session, "access_token")))
            .await;
        assert_eq!(response.status(), 200, "{path}");
        let (value, attributes) = parse(&refresh_cookie(response.headers()));
        assert_eq!(value, "", "{path}");
        assert_attributes(&attributes, 0);

        let response =
            refresh_by_cookie(&app, &text(&session, "refresh_token"), &own_origin(&app)).await;
        assert_problem(response, 401, "invalid_refresh_token").await;
    }
}
