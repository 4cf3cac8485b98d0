use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, PASSWORD};
use crate::ws::connect;

#[tokio::test]
async fn metrics_are_off_by_default() {
    let app = spawn_app().await;
    assert!(app.metrics_address.is_none());
    assert_problem(app.get("/metrics", None).await, 404, "route_not_found").await;
}

#[tokio::test]
async fn metrics_count_requests_and_sockets() {
    let app =
        spawn_app_with(|config| config.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await;
    let (_, token) = app.user("ann@example.test").await;
    let _socket = connect(&app, &token).await;
    assert_eq!(app.get("/healthz", None).await.status(), 200);

    let address = app.metrics_address.expect("metrics address");
    let response = app
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("confab_http_requests_total{"), "{text}");
    assert!(text.contains(r#"route="/healthz""#));
    assert!(text.contains("confab_http_request_duration_seconds_bucket"));
    assert!(text.contains("confab_websockets_open"));
    assert!(text.contains("confab_revoked_tokens"));
    assert!(text.contains("confab_active_sessions"));
}

#[tokio::test]
async fn readyz_reports_database() {
    let app = spawn_app().await;
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    let redis = if app.config.redis_url.is_some() {
        "ok"
    } else {
        "not_configured"
    };
    assert_eq!(body["redis"], redis);
}

#[tokio::test]
async fn metrics_count_logins_messages_and_limits() {
    let app = spawn_app_with(|config| {
        config.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        config.throttle.login_max_failures = 1;
    })
    .await;
    let (_, token) = app.user("ann@example.test").await;
    assert_eq!(login(&app, PASSWORD).await.status(), 200);
    assert_eq!(login(&app, "not the password at all").await.status(), 401);
    assert_eq!(login(&app, "not the password at all").await.status(), 429);
    let unknown = app
        .post_json(
            "/auth/login",
            &json!({ "email": "nobody@example.test", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(unknown.status(), 401);
    let chat = app
        .post_json(
            "/chats",
            &json!({ "kind": "group", "title": "metrics", "member_ids": [] }),
            Some(&token),
        )
        .await;
    assert_eq!(chat.status(), 201);
    let chat: serde_json::Value = chat.json().await.unwrap();
    let path = format!("/chats/{}/messages", chat["id"]);
    let sent = app
        .post_json(&path, &json!({ "body": "hello" }), Some(&token))
        .await;
    assert_eq!(sent.status(), 201);

    let address = app.metrics_address.expect("metrics address");
    let text = app
        .client
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for expected in [
        r#"confab_login_attempts_total{result="success"}"#,
        r#"confab_login_attempts_total{result="wrong_password"}"#,
        r#"confab_login_attempts_total{result="throttled"}"#,
        r#"confab_login_attempts_total{result="unknown_account"}"#,
        "confab_failed_logins_total",
        "confab_messages_stored_total",
        r#"confab_rate_limited_total{limit="login"}"#,
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
}

async fn login(app: &crate::helpers::TestApp, password: &str) -> reqwest::Response {
    app.post_json(
        "/auth/login",
        &json!({ "email": "ann@example.test", "password": password }),
        None,
    )
    .await
}
