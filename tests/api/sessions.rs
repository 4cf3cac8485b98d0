//! Refresh token rotation, session listing, logout-all and password change.

use std::time::Duration;

use confab::auth::token::random_id;
use confab::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp, PASSWORD};

/// Logs `email` in with `password` and returns the whole response body.
pub async fn login_with(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/auth/login",
        &json!({ "email": email, "password": password }),
        None,
    )
    .await
}

/// Logs `email` in with the shared test password and returns the body.
pub async fn login(app: &TestApp, email: &str) -> Value {
    let response = login_with(app, email, PASSWORD).await;
    assert_eq!(response.status(), 200, "login of {email} failed");
    response.json().await.unwrap()
}

pub async fn refresh(app: &TestApp, refresh_token: &str) -> reqwest::Response {
    app.post_json(
        "/auth/refresh",
        &json!({ "refresh_token": refresh_token }),
        None,
    )
    .await
}

pub async fn delete(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .delete(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request failed")
}

pub fn text(body: &Value, field: &str) -> String {
    body[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing in {body}"))
        .to_owned()
}

async fn json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "unexpected status");
    response.json().await.unwrap()
}

async fn assert_token_works(app: &TestApp, token: &str) {
    let response = app.get("/auth/me", Some(token)).await;
    assert_eq!(response.status(), 200, "the access token was rejected");
}

async fn assert_token_rejected(app: &TestApp, token: &str) {
    assert_problem(app.get("/auth/me", Some(token)).await, 401, "invalid_token").await;
}

#[tokio::test]
async fn login_returns_refresh_token() {
    let app = spawn_app().await;
    let registered = app.register("ann@example.test").await;
    assert_eq!(text(&registered, "refresh_token").len(), 43);
    assert_eq!(registered["refresh_expires_in"], 14 * 24 * 3600);

    let logged_in = login(&app, "ann@example.test").await;
    assert_eq!(text(&logged_in, "refresh_token").len(), 43);
    assert_ne!(logged_in["session_id"], registered["session_id"]);
}

#[tokio::test]
async fn refresh_rotates_tokens() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let old_refresh = text(&first, "refresh_token");

    let second = json(refresh(&app, &old_refresh).await).await;
    let new_refresh = text(&second, "refresh_token");
    assert_ne!(new_refresh, old_refresh);
    assert_ne!(second["access_token"], first["access_token"]);
    assert_eq!(second["session_id"], first["session_id"]);
    assert_eq!(second["user"]["email"], "ann@example.test");
    assert_token_works(&app, &text(&second, "access_token")).await;

    let third = json(refresh(&app, &new_refresh).await).await;
    assert_ne!(text(&third, "refresh_token"), new_refresh);
    assert_ne!(text(&third, "refresh_token"), old_refresh);
}

#[tokio::test]
async fn reuse_within_grace_returns_same_successor() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let old_refresh = text(&first, "refresh_token");

    let once = json(refresh(&app, &old_refresh).await).await;
    let twice = json(refresh(&app, &old_refresh).await).await;
    assert_eq!(once["refresh_token"], twice["refresh_token"]);
    assert_ne!(once["access_token"], twice["access_token"]);
    assert_token_works(&app, &text(&twice, "access_token")).await;

    let sessions = json(
        app.get("/auth/sessions", Some(&text(&once, "access_token")))
            .await,
    )
    .await;
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1);
}

/// Rotates once, waits past the 1 s grace period and presents the old token again.
async fn assert_reuse_revokes(app: &TestApp, old_refresh: &str, successor: &Value) {
    let reused = refresh(app, old_refresh).await;
    assert_problem(reused, 401, "refresh_token_reused").await;

    let new_refresh = text(successor, "refresh_token");
    assert_problem(
        refresh(app, &new_refresh).await,
        401,
        "invalid_refresh_token",
    )
    .await;
    assert_token_rejected(app, &text(successor, "access_token")).await;
}

#[tokio::test]
async fn reuse_after_grace_revokes_session() {
    let app = spawn_app_with(|config| config.refresh_grace_period = Duration::from_secs(1)).await;
    let first = app.register("ann@example.test").await;
    let old_refresh = text(&first, "refresh_token");
    let successor = json(refresh(&app, &old_refresh).await).await;

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_reuse_revokes(&app, &old_refresh, &successor).await;
    assert_token_rejected(&app, &text(&first, "access_token")).await;
}

#[tokio::test]
async fn reuse_without_grace_revokes_session() {
    let app = spawn_app_with(|config| config.refresh_grace_period = Duration::ZERO).await;
    let first = app.register("ann@example.test").await;
    let old_refresh = text(&first, "refresh_token");
    let successor = json(refresh(&app, &old_refresh).await).await;

    assert_reuse_revokes(&app, &old_refresh, &successor).await;
}

#[tokio::test]
async fn reuse_after_restart_revokes_session() {
    let app = spawn_app_with(|config| config.refresh_grace_period = Duration::from_secs(1)).await;
    let first = app.register("ann@example.test").await;
    let old_refresh = text(&first, "refresh_token");
    let successor = json(refresh(&app, &old_refresh).await).await;

    let app = app.restart().await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_token_works(&app, &text(&successor, "access_token")).await;
    assert_reuse_revokes(&app, &old_refresh, &successor).await;

    // A session ended before a restart stays ended after it.
    let app = app.restart().await;
    assert_token_rejected(&app, &text(&successor, "access_token")).await;
}

#[tokio::test]
async fn concurrent_refreshes_share_one_successor() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let old_refresh = text(&first, "refresh_token");

    let attempts = (0..10).map(|_| refresh(&app, &old_refresh));
    let responses = futures_util::future::join_all(attempts).await;
    let mut successors = Vec::new();
    for response in responses {
        let body = json(response).await;
        successors.push(text(&body, "refresh_token"));
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "refreshes got different successors");

    // The one successor is live, and the session still has exactly one.
    let next = json(refresh(&app, &successors[0]).await).await;
    let sessions = json(
        app.get("/auth/sessions", Some(&text(&next, "access_token")))
            .await,
    )
    .await;
    assert_eq!(sessions["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn refresh_rejects_bad_input() {
    let app = spawn_app().await;

    let missing = app.post_json("/auth/refresh", &json!({}), None).await;
    let body = assert_problem(missing, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "refresh_token");

    let wrong_type = app
        .post_json("/auth/refresh", &json!({ "refresh_token": 7 }), None)
        .await;
    let body = assert_problem(wrong_type, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "refresh_token");

    let malformed = refresh(&app, "not-a-token").await;
    let body = assert_problem(malformed, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "refresh_token");

    let unknown = refresh(&app, &"A".repeat(43)).await;
    assert_problem(unknown, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn logout_ends_refresh_token() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let token = text(&first, "access_token");

    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);
    assert_token_rejected(&app, &token).await;
    let refreshed = refresh(&app, &text(&first, "refresh_token")).await;
    assert_problem(refreshed, 401, "invalid_refresh_token").await;
}

#[tokio::test]
async fn logout_all_rejects_old_tokens() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let second = login(&app, "ann@example.test").await;
    let caller = text(&first, "access_token");

    let response = app
        .post_json("/auth/logout-all", &json!({}), Some(&caller))
        .await;
    let body = json(response).await;
    assert_eq!(body["sessions_ended"], 2);

    assert_token_rejected(&app, &caller).await;
    assert_token_rejected(&app, &text(&second, "access_token")).await;
    for session in [&first, &second] {
        let refreshed = refresh(&app, &text(session, "refresh_token")).await;
        assert_problem(refreshed, 401, "invalid_refresh_token").await;
    }

    // The cut-off alone rejects a token of a session that was never listed.
    let user_id = first["user"]["id"].as_i64().unwrap();
    let earlier = confab::auth::unix_now() - 5;
    let stray = app
        .state
        .tokens
        .issue(
            user_id,
            "ann@example.test",
            Role::User,
            random_id(),
            earlier,
        )
        .unwrap();
    assert_token_rejected(&app, &stray.token).await;

    // Logging in again at once, within the cut-off's second, works.
    let again = login(&app, "ann@example.test").await;
    assert_token_works(&app, &text(&again, "access_token")).await;
    json(refresh(&app, &text(&again, "refresh_token")).await).await;
}

#[tokio::test]
async fn logout_all_survives_restart() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let old = login(&app, "ann@example.test").await;
    let response = app
        .post_json(
            "/auth/logout-all",
            &json!({}),
            Some(&text(&first, "access_token")),
        )
        .await;
    assert_eq!(response.status(), 200);

    let app = app.restart().await;
    let again = login(&app, "ann@example.test").await;
    assert_token_works(&app, &text(&again, "access_token")).await;
    assert_token_rejected(&app, &text(&old, "access_token")).await;
}

#[tokio::test]
async fn password_change_ends_other_sessions() {
    let app = spawn_app().await;
    let current = app.register("ann@example.test").await;
    let other = login(&app, "ann@example.test").await;
    let token = text(&current, "access_token");
    let new_password = "a completely different passphrase";

    let response = app
        .post_json(
            "/auth/password",
            &json!({ "current_password": PASSWORD, "new_password": new_password }),
            Some(&token),
        )
        .await;
    assert_eq!(json(response).await["sessions_ended"], 1);

    assert_token_works(&app, &token).await;
    json(refresh(&app, &text(&current, "refresh_token")).await).await;
    assert_token_rejected(&app, &text(&other, "access_token")).await;
    let refreshed = refresh(&app, &text(&other, "refresh_token")).await;
    assert_problem(refreshed, 401, "invalid_refresh_token").await;

    let old_login = login_with(&app, "ann@example.test", PASSWORD).await;
    assert_problem(old_login, 401, "invalid_credentials").await;
    let new_login = login_with(&app, "ann@example.test", new_password).await;
    assert_eq!(new_login.status(), 200);
}

#[tokio::test]
async fn password_change_checks_input() {
    let app = spawn_app().await;
    let (_, token) = app.user("ann@example.test").await;

    let wrong = app
        .post_json(
            "/auth/password",
            &json!({ "current_password": "not the password", "new_password": "long enough pass" }),
            Some(&token),
        )
        .await;
    assert_problem(wrong, 403, "invalid_current_password").await;

    let short = app
        .post_json(
            "/auth/password",
            &json!({ "current_password": PASSWORD, "new_password": "short" }),
            Some(&token),
        )
        .await;
    let body = assert_problem(short, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "new_password");

    let missing = app
        .post_json(
            "/auth/password",
            &json!({ "new_password": "x" }),
            Some(&token),
        )
        .await;
    let body = assert_problem(missing, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "current_password");

    let anonymous = app
        .post_json(
            "/auth/password",
            &json!({ "current_password": PASSWORD, "new_password": "long enough pass" }),
            None,
        )
        .await;
    assert_problem(anonymous, 401, "missing_token").await;
}

#[tokio::test]
async fn sessions_are_listed_and_ended() {
    let app = spawn_app().await;
    let first = app.register("ann@example.test").await;
    let response = app
        .client
        .post(app.url("/auth/login"))
        .header("user-agent", "test-browser/1.0")
        .json(&json!({ "email": "ann@example.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let second = json(response).await;
    let token = text(&first, "access_token");

    let list = json(app.get("/auth/sessions", Some(&token)).await).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let other = items
        .iter()
        .find(|item| item["id"] == second["session_id"])
        .expect("the second session is listed");
    assert_eq!(other["current"], false);
    assert_eq!(other["user_agent"], "test-browser/1.0");
    assert_eq!(other["client_address"], "127.0.0.1");
    assert!(other["created_at"].is_string());
    assert!(other["last_used_at"].is_string());
    let mine = items
        .iter()
        .find(|item| item["id"] == first["session_id"])
        .unwrap();
    assert_eq!(mine["current"], true);

    let path = format!("/auth/sessions/{}", text(&second, "session_id"));
    assert_eq!(delete(&app, &path, &token).await.status(), 204);
    assert_token_rejected(&app, &text(&second, "access_token")).await;
    assert_problem(delete(&app, &path, &token).await, 404, "session_not_found").await;

    let list = json(app.get("/auth/sessions", Some(&token)).await).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn session_delete_checks_owner_and_id() {
    let app = spawn_app().await;
    let ann = app.register("ann@example.test").await;
    let bob = app.register("bob@example.test").await;
    let bob_token = text(&bob, "access_token");

    let path = format!("/auth/sessions/{}", text(&ann, "session_id"));
    assert_problem(
        delete(&app, &path, &bob_token).await,
        404,
        "session_not_found",
    )
    .await;
    assert_token_works(&app, &text(&ann, "access_token")).await;

    let malformed = delete(&app, "/auth/sessions/not-an-id", &bob_token).await;
    let body = assert_problem(malformed, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "id");
}
