//! The `/admin` API and the `confab user` commands.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use confab::auth::Role;
use serde_json::{json, Value};

use crate::helpers::{
    assert_problem, spawn_app, spawn_app_with, start, test_config, TestApp, PASSWORD,
};
use crate::sessions::{delete, login, login_with, refresh, text};
use crate::ws::{close_code, connect};

/// Registers `email`, makes it an administrator through the store and logs
/// in again, returning the new login's body.
async fn admin(app: &TestApp, email: &str) -> Value {
    let (id, _) = app.user(email).await;
    let now = confab::store::now_millis();
    app.state
        .store
        .change_role(id, Role::Admin, confab::auth::unix_now(), now)
        .await
        .unwrap();
    let body = login(app, email).await;
    assert_eq!(body["user"]["role"], "admin");
    body
}

async fn patch_json(app: &TestApp, path: &str, body: &Value, token: &str) -> reqwest::Response {
    app.client
        .patch(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request failed")
}

async fn ok_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "unexpected status");
    response.json().await.unwrap()
}

/// Runs the `confab` binary with `args`, writing `stdin` to it, and returns its output.
fn run_confab(args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(args)
        .env("CONFAB_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("failed to start confab");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn admin_endpoints_reject_non_admins() {
    let app = spawn_app().await;
    let (other_id, token) = app.user("ann@example.test").await;
    let user_path = format!("/admin/users/{other_id}");

    let responses = [
        ("list", app.get("/admin/users", Some(&token)).await),
        ("security", app.get("/admin/security", Some(&token)).await),
        (
            "disable",
            app.post_json(&format!("{user_path}/disable"), &json!({}), Some(&token))
                .await,
        ),
        (
            "enable",
            app.post_json(&format!("{user_path}/enable"), &json!({}), Some(&token))
                .await,
        ),
        (
            "role",
            patch_json(&app, &user_path, &json!({ "role": "admin" }), &token).await,
        ),
    ];
    for (name, response) in responses {
        assert_eq!(
            response.status(),
            403,
            "{name} answered {}",
            response.status()
        );
        assert_problem(response, 403, "admin_required").await;
    }
    assert_problem(app.get("/admin/users", None).await, 401, "missing_token").await;
}

#[tokio::test]
async fn user_list_rejects_control_characters() {
    let app = spawn_app().await;
    let token = text(&admin(&app, "root@example.test").await, "access_token");

    // PostgreSQL text cannot hold a NUL byte: the query must be rejected before the store.
    let response = app.get("/admin/users?query=a%00b", Some(&token)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "query");
}

#[tokio::test]
async fn user_list_folds_unicode_case() {
    let app = spawn_app().await;
    let token = text(&admin(&app, "root@example.test").await, "access_token");
    for (email, display_name) in [
        ("ivan@example.test", "Иван"),
        ("eclair@example.test", "ÉCLAIR"),
    ] {
        let body = json!({ "email": email, "password": PASSWORD, "display_name": display_name });
        let response = app.post_json("/auth/register", &body, None).await;
        assert_eq!(response.status(), 201);
    }

    for (query, expected) in [
        ("Ив", "ivan@example.test"),
        ("иван", "ivan@example.test"),
        ("É", "eclair@example.test"),
        ("é", "eclair@example.test"),
    ] {
        let found = ok_json(
            app.get(&format!("/admin/users?query={query}"), Some(&token))
                .await,
        )
        .await;
        let emails: Vec<String> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| text(item, "email"))
            .collect();
        assert_eq!(emails, vec![expected], "{query}");
    }
}

#[tokio::test]
async fn users_are_paged_and_searched() {
    let app = spawn_app().await;
    let token = text(&admin(&app, "root@example.test").await, "access_token");
    for name in ["ann", "bob", "cat", "dan"] {
        app.register(&format!("{name}@example.test")).await;
    }

    let mut emails = Vec::new();
    let mut path = "/admin/users?limit=2".to_owned();
    loop {
        let page = ok_json(app.get(&path, Some(&token)).await).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        emails.extend(items.iter().map(|item| text(item, "email")));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/users?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(emails.len(), 5);
    assert_eq!(emails[0], "root@example.test");

    let found = ok_json(app.get("/admin/users?query=BOB", Some(&token)).await).await;
    let items = found["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["email"], "bob@example.test");
    assert_eq!(items[0]["disabled"], false);
    assert_eq!(items[0]["role"], "user");
    assert!(found["next_cursor"].is_null());

    let wildcard = ok_json(app.get("/admin/users?query=%25", Some(&token)).await).await;
    assert_eq!(wildcard["items"].as_array().unwrap().len(), 0);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("cursor=-1", "cursor"),
    ] {
        let response = app
            .get(&format!("/admin/users?{query}"), Some(&token))
            .await;
        let body = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], field, "for {query}");
    }
}

#[tokio::test]
async fn disabled_user_is_locked_out() {
    let app = spawn_app().await;
    let root = admin(&app, "root@example.test").await;
    let token = text(&root, "access_token");
    let ann = app.register("ann@example.test").await;
    let ann_id = ann["user"]["id"].as_i64().unwrap();
    let mut socket = crate::ws::connect(&app, &text(&ann, "access_token")).await;

    let disabled = app
        .post_json(
            &format!("/admin/users/{ann_id}/disable"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(ok_json(disabled).await["disabled"], true);
    let code = crate::ws::close_code(&mut socket, std::time::Duration::from_secs(2)).await;
    assert_eq!(code, 4401, "a disabled user's sockets close at once");

    let me = app.get("/auth/me", Some(&text(&ann, "access_token"))).await;
    assert_problem(me, 401, "invalid_token").await;
    let refreshed = refresh(&app, &text(&ann, "refresh_token")).await;
    assert_problem(refreshed, 403, "account_disabled").await;
    let login = login_with(&app, "ann@example.test", PASSWORD).await;
    assert_problem(login, 403, "account_disabled").await;
    // A wrong password reveals nothing about the account's state.
    let guess = login_with(&app, "ann@example.test", "wrong password").await;
    assert_problem(guess, 401, "invalid_credentials").await;

    let enabled = app
        .post_json(
            &format!("/admin/users/{ann_id}/enable"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_eq!(ok_json(enabled).await["disabled"], false);
    let login = login_with(&app, "ann@example.test", PASSWORD).await;
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn disable_checks_target() {
    let app = spawn_app().await;
    let root = admin(&app, "root@example.test").await;
    let token = text(&root, "access_token");
    let root_id = root["user"]["id"].as_i64().unwrap();

    let own = app
        .post_json(
            &format!("/admin/users/{root_id}/disable"),
            &json!({}),
            Some(&token),
        )
        .await;
    assert_problem(own, 409, "cannot_disable_self").await;
    for action in ["disable", "enable"] {
        let unknown = app
            .post_json(
                &format!("/admin/users/999999/{action}"),
                &json!({}),
                Some(&token),
            )
            .await;
        assert_problem(unknown, 404, "user_not_found").await;
    }
    let malformed = app
        .post_json("/admin/users/abc/disable", &json!({}), Some(&token))
        .await;
    let body = assert_problem(malformed, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "id");
}

#[tokio::test]
async fn admin_ids_must_be_positive() {
    let app = spawn_app().await;
    let token = text(&admin(&app, "root@example.test").await, "access_token");

    for id in ["0", "-1"] {
        for action in ["disable", "enable"] {
            let path = format!("/admin/users/{id}/{action}");
            let response = app.post_json(&path, &json!({}), Some(&token)).await;
            let body = assert_problem(response, 422, "validation_failed").await;
            assert_eq!(body["errors"][0]["field"], "id", "{path}");
        }
        let path = format!("/admin/users/{id}");
        let response = patch_json(&app, &path, &json!({ "role": "admin" }), &token).await;
        let body = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(body["errors"][0]["field"], "id", "{path}");
    }
}

#[tokio::test]
async fn role_change_ends_sessions() {
    let app = spawn_app().await;
    let root = admin(&app, "root@example.test").await;
    let token = text(&root, "access_token");
    let ann = app.register("ann@example.test").await;
    let ann_id = ann["user"]["id"].as_i64().unwrap();
    let path = format!("/admin/users/{ann_id}");

    let changed = patch_json(&app, &path, &json!({ "role": "admin" }), &token).await;
    assert_eq!(ok_json(changed).await["role"], "admin");
    let me = app.get("/auth/me", Some(&text(&ann, "access_token"))).await;
    assert_problem(me, 401, "invalid_token").await;
    let refreshed = refresh(&app, &text(&ann, "refresh_token")).await;
    assert_problem(refreshed, 401, "invalid_refresh_token").await;
    assert_eq!(
        login(&app, "ann@example.test").await["user"]["role"],
        "admin"
    );

    let invalid = patch_json(&app, &path, &json!({ "role": "owner" }), &token).await;
    let body = assert_problem(invalid, 422, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "role");
    let root_path = format!("/admin/users/{}", root["user"]["id"]);
    let own = patch_json(&app, &root_path, &json!({ "role": "user" }), &token).await;
    assert_problem(own, 409, "cannot_change_own_role").await;
    let unknown = patch_json(
        &app,
        "/admin/users/999999",
        &json!({ "role": "user" }),
        &token,
    )
    .await;
    assert_problem(unknown, 404, "user_not_found").await;
}

#[tokio::test]
async fn security_overview_counts() {
    let app = spawn_app().await;
    let root = admin(&app, "root@example.test").await;
    let token = text(&root, "access_token");
    let ann = app.register("ann@example.test").await;
    login_with(&app, "ann@example.test", "wrong password").await;
    login_with(&app, "nobody@example.test", "wrong password").await;
    let logout = app
        .post_json(
            "/auth/logout",
            &json!({}),
            Some(&text(&ann, "access_token")),
        )
        .await;
    assert_eq!(logout.status(), 200);

    let overview = ok_json(app.get("/admin/security", Some(&token)).await).await;
    assert_eq!(overview["failed_logins_last_hour"], 2);
    // The first root session was ended by the role change, ann's by logout.
    assert_eq!(overview["active_sessions"], 1);
    assert!(overview["revoked_tokens"].as_u64().unwrap() >= 2);
    assert_eq!(overview["open_sockets"], 0);

    let path = format!("/auth/sessions/{}", text(&root, "session_id"));
    assert_eq!(delete(&app, &path, &token).await.status(), 204);
}

#[tokio::test]
async fn cli_creates_first_admin() {
    let data_dir = tempfile::tempdir().unwrap();
    let dir = data_dir.path().to_str().unwrap();
    let created = run_confab(
        &[
            "user",
            "create",
            "--email",
            "Root@Example.test",
            "--role",
            "admin",
            "--data-dir",
            dir,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(created.status.success(), "{created:?}");
    assert!(String::from_utf8_lossy(&created.stdout).contains("root@example.test"));

    let twice = run_confab(
        &[
            "user",
            "create",
            "--email",
            "root@example.test",
            "--data-dir",
            dir,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));

    let short = run_confab(
        &[
            "user",
            "create",
            "--email",
            "ann@example.test",
            "--data-dir",
            dir,
        ],
        "short\n",
    );
    assert!(!short.status.success());

    let app = start(test_config(data_dir.path())).await;
    let root = login(&app, "root@example.test").await;
    assert_eq!(root["user"]["role"], "admin");
    let overview = app
        .get("/admin/security", Some(&text(&root, "access_token")))
        .await;
    assert_eq!(overview.status(), 200);
}

#[tokio::test]
async fn cli_role_change_reaches_running_server() {
    let app = spawn_app_with(|config| {
        config.revocation_sync_interval = Duration::from_millis(200);
    })
    .await;
    let ann = app.register("ann@example.test").await;
    let mut socket = connect(&app, &text(&ann, "access_token")).await;

    let dir = app.config.storage.data_dir.to_str().unwrap().to_owned();
    let mut args = vec![
        "user",
        "set-role",
        "--email",
        "ann@example.test",
        "--role",
        "admin",
        "--data-dir",
        &dir,
    ];
    // The command must reach the server's database, PostgreSQL included.
    let database_url = app.config.storage.database_url.clone();
    if let Some(url) = &database_url {
        args.extend(["--database-url", url]);
    }
    let changed = run_confab(&args, "");
    assert!(changed.status.success(), "{changed:?}");
    assert!(String::from_utf8_lossy(&changed.stdout).contains("ended 1 session"));

    // The revocation sync, not a message from the command, closes the socket.
    // The sync loads the cut-off and the ended session before it closes
    // sockets, so the token is already rejected once the socket is closed.
    assert_eq!(close_code(&mut socket, Duration::from_secs(5)).await, 4401);
    let me = app.get("/auth/me", Some(&text(&ann, "access_token"))).await;
    assert_problem(me, 401, "invalid_token").await;
    assert_eq!(
        login(&app, "ann@example.test").await["user"]["role"],
        "admin"
    );
}
