use crate::helpers::{assert_problem, spawn_app, spawn_app_with};
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
