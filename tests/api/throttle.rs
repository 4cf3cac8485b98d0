//! Login throttling, per-address limits, client addresses behind proxies
//! and password strength.

use std::time::Duration;

use confab::Config;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app_with, TestApp, TestRedis, PASSWORD};
use crate::proxy::{redirect_url, service_address, Proxy};

const WRONG: &str = "not the password at all";

/// Starts a server that believes `X-Forwarded-For` from 127.0.0.1, so each
/// test can speak from several client addresses.
async fn behind_proxy(customize: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_with(|config| {
        config.trusted_proxies = "127.0.0.1".parse().unwrap();
        customize(config);
    })
    .await
}

async fn login_from(app: &TestApp, email: &str, password: &str, client: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("request failed")
}

/// Fails `count` logins of `email` from `client`, checking each is a plain 401.
async fn fail_logins(app: &TestApp, email: &str, client: &str, count: usize) {
    for attempt in 1..=count {
        let response = login_from(app, email, WRONG, client).await;
        assert_eq!(
            response.status(),
            401,
            "attempt {attempt} for {email} from {client}"
        );
    }
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("429 without Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is not whole seconds")
}

async fn assert_throttled(response: reqwest::Response, code: &str) -> (u64, Value) {
    let seconds = retry_after(&response);
    let body = assert_problem(response, 429, code).await;
    (seconds, body)
}

#[tokio::test]
async fn sixth_failed_login_gets_429() {
    let app = behind_proxy(|_| {}).await;
    app.register("ann@example.test").await;
    fail_logins(&app, "ann@example.test", "198.51.100.1", 5).await;

    let response = login_from(&app, "ann@example.test", WRONG, "198.51.100.1").await;
    let (seconds, _) = assert_throttled(response, "too_many_attempts").await;
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");

    // The right password does not get through a lockout either.
    let response = login_from(&app, "ann@example.test", PASSWORD, "198.51.100.1").await;
    assert_throttled(response, "too_many_attempts").await;
}

#[tokio::test]
async fn other_account_and_address_unaffected() {
    let app = behind_proxy(|_| {}).await;
    app.register("ann@example.test").await;
    app.register("bob@example.test").await;
    fail_logins(&app, "ann@example.test", "198.51.100.1", 5).await;
    let locked = login_from(&app, "ann@example.test", WRONG, "198.51.100.1").await;
    assert_eq!(locked.status(), 429);

    let other_address = login_from(&app, "ann@example.test", PASSWORD, "198.51.100.2").await;
    assert_eq!(other_address.status(), 200);
    let other_account = login_from(&app, "bob@example.test", PASSWORD, "198.51.100.1").await;
    assert_eq!(other_account.status(), 200);
}

#[tokio::test]
async fn successful_login_resets_failures() {
    let app = behind_proxy(|_| {}).await;
    app.register("ann@example.test").await;
    fail_logins(&app, "ann@example.test", "198.51.100.1", 4).await;
    let success = login_from(&app, "ann@example.test", PASSWORD, "198.51.100.1").await;
    assert_eq!(success.status(), 200);

    // The count starts over: five more failures before the lockout.
    fail_logins(&app, "ann@example.test", "198.51.100.1", 5).await;
    let locked = login_from(&app, "ann@example.test", WRONG, "198.51.100.1").await;
    assert_eq!(locked.status(), 429);
}

#[tokio::test]
async fn throttled_attempt_does_no_hashing() {
    let app = behind_proxy(|_| {}).await;
    app.register("ann@example.test").await;
    fail_logins(&app, "ann@example.test", "198.51.100.1", 5).await;
    fail_logins(&app, "nobody@example.test", "198.51.100.1", 5).await;

    let before = app.state.hasher.verifications();
    let known = login_from(&app, "ann@example.test", WRONG, "198.51.100.1").await;
    let (_, known) = assert_throttled(known, "too_many_attempts").await;
    let unknown = login_from(&app, "nobody@example.test", WRONG, "198.51.100.1").await;
    let (_, unknown) = assert_throttled(unknown, "too_many_attempts").await;
    assert_eq!(app.state.hasher.verifications(), before);

    // Nothing in the response tells a known account from an unknown one.
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn registration_limited_per_address() {
    let app = behind_proxy(|config| config.throttle.registrations_per_hour = 2).await;
    for email in ["a@example.test", "b@example.test"] {
        let response = register_from(&app, email, "198.51.100.1").await;
        assert_eq!(response.status(), 201, "{email}");
    }

    let refused = register_from(&app, "c@example.test", "198.51.100.1").await;
    let (seconds, _) = assert_throttled(refused, "rate_limited").await;
    assert!(
        seconds > 60,
        "Retry-After {seconds} is shorter than the hourly window's refill"
    );

    let elsewhere = register_from(&app, "c@example.test", "198.51.100.2").await;
    assert_eq!(elsewhere.status(), 201);
}

async fn register_from(app: &TestApp, email: &str, client: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/register"))
        .header("x-forwarded-for", client)
        .json(&json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .expect("request failed")
}

async fn me_from(app: &TestApp, client: &str) -> reqwest::Response {
    app.client
        .get(app.url("/auth/me"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("request failed")
}

#[tokio::test]
async fn auth_requests_limited_per_address() {
    let app = behind_proxy(|config| config.throttle.auth_requests_per_minute = 3).await;
    for _ in 0..3 {
        assert_eq!(me_from(&app, "198.51.100.1").await.status(), 401);
    }

    let refused = me_from(&app, "198.51.100.1").await;
    let (seconds, _) = assert_throttled(refused, "rate_limited").await;
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");

    assert_eq!(me_from(&app, "198.51.100.2").await.status(), 401);
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

#[tokio::test]
async fn forwarded_for_ignored_from_untrusted_peer() {
    let app = spawn_app_with(|_| {}).await;
    app.register("ann@example.test").await;
    // Each attempt claims another address, but 127.0.0.1 is not a trusted proxy.
    for attempt in 1..=5 {
        let client = format!("198.51.100.{attempt}");
        let response = login_from(&app, "ann@example.test", WRONG, &client).await;
        assert_eq!(response.status(), 401);
    }
    let response = login_from(&app, "ann@example.test", WRONG, "198.51.100.99").await;
    assert_throttled(response, "too_many_attempts").await;
}

#[tokio::test]
async fn forwarded_address_recorded_on_session() {
    let app = behind_proxy(|_| {}).await;
    app.register("ann@example.test").await;
    // The client forged the first entry; the proxy appended the real one.
    let response = login_from(
        &app,
        "ann@example.test",
        PASSWORD,
        "192.0.2.66, 198.51.100.7",
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();

    let sessions: Value = app
        .get("/auth/sessions", Some(token))
        .await
        .json()
        .await
        .unwrap();
    let current = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["current"] == true)
        .expect("no current session");
    assert_eq!(current["client_address"], "198.51.100.7");
}

#[tokio::test]
async fn weak_password_rejected_naming_field() {
    let app = spawn_app_with(|_| {}).await;
    let weak = app
        .post_json(
            "/auth/register",
            &json!({ "email": "ann@example.test", "password": "password1" }),
            None,
        )
        .await;
    let body = assert_problem(weak, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "password");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.starts_with("is too easy to guess"), "{message}");

    // The account's own details count against the password.
    let own_name = app
        .post_json(
            "/auth/register",
            &json!({ "email": "zephyrinus.quaglietta@example.test", "password": "zephyrinus.quaglietta" }),
            None,
        )
        .await;
    let body = assert_problem(own_name, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "password");

    let token = app.user("ann@example.test").await.1;
    let change = app
        .post_json(
            "/auth/password",
            &json!({ "current_password": PASSWORD, "new_password": "password1" }),
            Some(&token),
        )
        .await;
    let body = assert_problem(change, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "new_password");
}

fn redis_or_skip() -> Option<TestRedis> {
    let redis = TestRedis::new();
    if redis.is_none() {
        eprintln!("skipped: CONFAB_TEST_REDIS_URL is not set");
    }
    redis
}

async fn redis_instance(redis_url: &str, prefix: &str) -> TestApp {
    let redis_url = redis_url.to_owned();
    let prefix = prefix.to_owned();
    behind_proxy(move |config| {
        config.redis_url = Some(redis_url);
        config.redis_prefix = prefix;
        config.redis_timeout = Duration::from_millis(500);
        config.throttle.auth_requests_per_minute = 100;
    })
    .await
}

#[tokio::test]
async fn redis_counters_shared_between_instances() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let first = redis_instance(&redis.url, &redis.prefix).await;
    let second = redis_instance(&redis.url, &redis.prefix).await;

    // Each instance has its own database; the pair is counted whether or not the account exists.
    fail_logins(&first, "ann@example.test", "198.51.100.1", 3).await;
    fail_logins(&second, "ann@example.test", "198.51.100.1", 2).await;
    let response = login_from(&first, "ann@example.test", WRONG, "198.51.100.1").await;
    assert_throttled(response, "too_many_attempts").await;
    let response = login_from(&second, "ann@example.test", WRONG, "198.51.100.1").await;
    assert_throttled(response, "too_many_attempts").await;

    let elsewhere = login_from(&second, "ann@example.test", WRONG, "198.51.100.2").await;
    assert_eq!(elsewhere.status(), 401);
}

#[tokio::test]
async fn redis_outage_fails_closed() {
    let Some(redis) = redis_or_skip() else {
        return;
    };
    let proxy = Proxy::start(service_address(&redis.url)).await;
    let app = redis_instance(&redirect_url(&redis.url, proxy.address), &redis.prefix).await;
    app.register("ann@example.test").await;

    proxy.cut();
    let response = login_from(&app, "ann@example.test", PASSWORD, "198.51.100.1").await;
    assert_problem(response, 503, "throttle_unavailable").await;
}
