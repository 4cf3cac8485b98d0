//! Several instances sharing PostgreSQL and Redis, and their behaviour when
//! either service stops answering. These tests need CONFAB_TEST_DATABASE_URL
//! and, except where one runs without Redis, CONFAB_TEST_REDIS_URL, and skip,
//! saying so, without them.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{assert_problem, spawn_app_with, TestApp, TestRedis, TestSchema};
use crate::proxy::{redirect_url, service_address, Proxy};
use crate::ws::{close_code, connect, next_event_of};

fn redis_or_skip() -> Option<TestRedis> {
    let redis = TestRedis::new();
    if redis.is_none() {
        eprintln!("skipped: CONFAB_TEST_REDIS_URL is not set");
    }
    redis
}

async fn schema_or_skip() -> Option<TestSchema> {
    let schema = TestSchema::create().await;
    if schema.is_none() {
        eprintln!("skipped: CONFAB_TEST_DATABASE_URL is not set");
    }
    schema
}

/// Starts an instance on the shared schema and Redis prefix.
async fn instance(schema: &TestSchema, redis: &TestRedis, redis_url: &str) -> TestApp {
    let database_url = schema.url.clone();
    let redis_url = redis_url.to_owned();
    let prefix = redis.prefix.clone();
    spawn_app_with(move |config| {
        config.storage.database_url = Some(database_url);
        config.redis_url = Some(redis_url);
        config.redis_prefix = prefix;
        config.redis_timeout = Duration::from_millis(500);
        config.storage.db_acquire_timeout = Duration::from_secs(1);
    })
    .await
}

#[tokio::test]
async fn logout_on_one_instance_is_honoured_by_another() {
    let (Some(schema), Some(redis)) = (schema_or_skip().await, redis_or_skip()) else {
        return;
    };
    let first = instance(&schema, &redis, &redis.url).await;
    let second = instance(&schema, &redis, &redis.url).await;

    let (_, token) = first.user("ann@example.test").await;
    assert_eq!(second.get("/auth/me", Some(&token)).await.status(), 200);
    let mut socket = connect(&second, &token).await;

    let logout = first
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);
    assert_eq!(close_code(&mut socket, Duration::from_secs(1)).await, 4401);
    let me = second.get("/auth/me", Some(&token)).await;
    assert_problem(me, 401, "invalid_token").await;
}

#[tokio::test]
async fn logout_without_redis_closes_socket_on_another() {
    let Some(schema) = schema_or_skip().await else {
        return;
    };
    let instance = || {
        let database_url = schema.url.clone();
        spawn_app_with(move |config| {
            config.storage.database_url = Some(database_url);
            // CONFAB_TEST_BACKEND=postgres would otherwise add Redis.
            config.redis_url = None;
            config.revocation_sync_interval = Duration::from_millis(200);
        })
    };
    let first = instance().await;
    let second = instance().await;
    let (_, token) = first.user("ann@example.test").await;
    let mut socket = connect(&second, &token).await;

    let logout = first
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);
    // Without Redis only the second instance's revocation sync learns of
    // the ended session, and it closes the socket as well.
    assert_eq!(close_code(&mut socket, Duration::from_secs(5)).await, 4401);
    let me = second.get("/auth/me", Some(&token)).await;
    assert_problem(me, 401, "invalid_token").await;
}

#[tokio::test]
async fn event_published_on_one_instance_reaches_another() {
    let (Some(schema), Some(redis)) = (schema_or_skip().await, redis_or_skip()) else {
        return;
    };
    let first = instance(&schema, &redis, &redis.url).await;
    let second = instance(&schema, &redis, &redis.url).await;
    let (ann_id, ann_token) = first.user("ann@example.test").await;
    let mut socket = connect(&second, &ann_token).await;

    first
        .state
        .realtime
        .publish(&[ann_id], &json!({ "type": "test", "n": 7 }));
    let event = next_event_of(&mut socket, "test").await;
    assert_eq!(event["n"], 7);
}

#[tokio::test]
async fn message_posted_on_one_instance_arrives_on_another() {
    let (Some(schema), Some(redis)) = (schema_or_skip().await, redis_or_skip()) else {
        return;
    };
    let first = instance(&schema, &redis, &redis.url).await;
    let second = instance(&schema, &redis, &redis.url).await;
    let (_, ann_token) = first.user("ann@example.test").await;
    let (bob_id, bob_token) = second.user("bob@example.test").await;
    let mut bob_socket = connect(&second, &bob_token).await;

    let chat = first
        .post_json(
            "/chats",
            &json!({ "kind": "direct", "user_id": bob_id }),
            Some(&ann_token),
        )
        .await;
    assert_eq!(chat.status(), 201);
    let chat_id = chat.json::<serde_json::Value>().await.unwrap()["id"].clone();
    let created = next_event_of(&mut bob_socket, "chat.created").await;
    assert_eq!(created["chat"]["id"], chat_id);

    let sent = first
        .post_json(
            &format!("/chats/{chat_id}/messages"),
            &json!({ "body": "across instances" }),
            Some(&ann_token),
        )
        .await;
    assert_eq!(sent.status(), 201);
    let sent: serde_json::Value = sent.json().await.unwrap();
    let event = next_event_of(&mut bob_socket, "message.created").await;
    assert_eq!(event["message"], sent);
}

#[tokio::test]
async fn lost_redis_fails_closed_then_recovers() {
    let (Some(schema), Some(redis)) = (schema_or_skip().await, redis_or_skip()) else {
        return;
    };
    let proxy = Proxy::start(service_address(&redis.url)).await;
    let proxied = redirect_url(&redis.url, proxy.address);
    let app = instance(&schema, &redis, &proxied).await;
    let (_, token) = app.user("ann@example.test").await;
    assert_eq!(app.get("/auth/me", Some(&token)).await.status(), 200);

    proxy.cut();
    // Outside /auth, the token check is the first thing that needs Redis.
    let chats = app.get("/chats", Some(&token)).await;
    assert_problem(chats, 503, "revocation_unavailable").await;
    // Under /auth, the per-address request limit is checked first and also
    // fails closed.
    let me = app.get("/auth/me", Some(&token)).await;
    assert_problem(me, 503, "throttle_unavailable").await;
    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_problem(logout, 503, "throttle_unavailable").await;
    assert_eq!(app.get("/readyz", None).await.status(), 503);

    proxy.restore();
    let recovered = wait_for_status(&app, "/auth/me", &token, 200).await;
    assert!(
        recovered,
        "the instance did not recover after Redis returned"
    );
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

#[tokio::test]
async fn lost_database_answers_503_then_recovers() {
    let Some(schema) = schema_or_skip().await else {
        return;
    };
    let admin_url = std::env::var("CONFAB_TEST_DATABASE_URL").unwrap();
    let proxy = Proxy::start(service_address(&admin_url)).await;
    let proxied = redirect_url(&schema.url, proxy.address);
    let app = spawn_app_with(move |config| {
        config.storage.database_url = Some(proxied);
        config.storage.db_acquire_timeout = Duration::from_secs(1);
    })
    .await;
    let (_, token) = app.user("ann@example.test").await;

    proxy.cut();
    let me = app.get("/auth/me", Some(&token)).await;
    assert_problem(me, 503, "database_unavailable").await;
    assert_eq!(app.get("/readyz", None).await.status(), 503);

    proxy.restore();
    let recovered = wait_for_status(&app, "/auth/me", &token, 200).await;
    assert!(
        recovered,
        "the instance did not recover after the database returned"
    );
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

/// Polls `path` until it answers `status`, for at most five seconds.
async fn wait_for_status(app: &TestApp, path: &str, token: &str, status: u16) -> bool {
    for _ in 0..50 {
        if app.get(path, Some(token)).await.status() == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}
