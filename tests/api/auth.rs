//! The `/auth` endpoints: success paths and every documented error.

use std::time::{Duration, Instant};

use confab::auth::password::PasswordHasher;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, spawn_app_with, TestApp, PASSWORD};

async fn login_json(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    app.post_json(
        "/auth/login",
        &json!({ "email": email, "password": password }),
        None,
    )
    .await
}

async fn login_form(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .form(form)
        .send()
        .await
        .expect("request failed")
}

fn access_token(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

/// Returns the names of the fields a 422 problem lists.
fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["field"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn register_login_me_logout() {
    let app = spawn_app().await;
    let body = app.register("Alice@Example.test").await;
    assert_eq!(body["user"]["email"], "alice@example.test");

    let login = login_json(&app, "alice@example.test", PASSWORD).await;
    assert_eq!(login.status(), 200);
    let token = access_token(&login.json().await.unwrap());

    let me = app.get("/auth/me", Some(&token)).await;
    assert_eq!(me.status(), 200);

    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);

    let after = app.get("/auth/me", Some(&token)).await;
    assert_problem(after, 401, "invalid_token").await;
}

#[tokio::test]
async fn register_returns_user_and_token() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": "  Bob@Example.TEST ", "password": PASSWORD, "display_name": " Bob B. " }),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert!(body["access_token"].is_string());

    let user = &body["user"];
    assert!(user["id"].as_i64().unwrap() > 0);
    assert_eq!(user["email"], "bob@example.test");
    assert_eq!(user["display_name"], "Bob B.");
    assert_eq!(user["role"], "user");
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(user.get("password_hash").is_none());
}

#[tokio::test]
async fn signup_is_an_alias_of_register() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/auth/signup",
            &json!({ "email": "carol@example.test", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["display_name"], "carol");
}

#[tokio::test]
async fn register_normalizes_email_to_one_account() {
    let app = spawn_app().await;
    app.register("Alice@Example.test").await;

    for variant in ["alice@example.test", " ALICE@EXAMPLE.TEST "] {
        let response = app
            .post_json(
                "/auth/register",
                &json!({ "email": variant, "password": PASSWORD }),
                None,
            )
            .await;
        assert_problem(response, 409, "email_taken").await;
    }

    // "é" as e + combining accent and as one code point is one address after NFC.
    app.register("Re\u{301}mi@example.test").await;
    let response = app
        .post_json(
            "/auth/signup",
            &json!({ "email": "R\u{e9}mi@example.test", "password": PASSWORD }),
            None,
        )
        .await;
    assert_problem(response, 409, "email_taken").await;

    let login = login_json(&app, "ALICE@example.TEST", PASSWORD).await;
    assert_eq!(login.status(), 200);
}

#[tokio::test]
async fn register_lists_every_invalid_field() {
    let app = spawn_app().await;
    let response = app
        .post_json(
            "/auth/register",
            &json!({ "email": "not-an-email", "password": "short", "display_name": "a\u{7}b" }),
            None,
        )
        .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(
        error_fields(&problem),
        ["email", "password", "display_name"]
    );
    for error in problem["errors"].as_array().unwrap() {
        assert!(!error["message"].as_str().unwrap().is_empty());
    }
}

#[tokio::test]
async fn register_checks_lengths_in_characters() {
    let app = spawn_app_with(|config| {
        // The bounds are checked with repeated characters, which no strength estimate accepts.
        config.min_password_score = 0;
    })
    .await;
    let long_name = "x".repeat(65);
    let cases = [
        (
            "password",
            json!({ "email": "a@example.test", "password": "ééééééé" }),
        ),
        (
            "password",
            json!({ "email": "a@example.test", "password": "a".repeat(129) }),
        ),
        (
            "display_name",
            json!({ "email": "a@example.test", "password": PASSWORD, "display_name": "" }),
        ),
        (
            "display_name",
            json!({ "email": "a@example.test", "password": PASSWORD, "display_name": "   " }),
        ),
        (
            "display_name",
            json!({ "email": "a@example.test", "password": PASSWORD, "display_name": long_name }),
        ),
        ("email", json!({ "email": "", "password": PASSWORD })),
        (
            "email",
            json!({ "email": "Name <a@example.test>", "password": PASSWORD }),
        ),
        (
            "email",
            json!({ "email": format!("{}@example.test", "a".repeat(250)), "password": PASSWORD }),
        ),
    ];
    for (field, body) in cases {
        let response = app.post_json("/auth/register", &body, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "body {body}");
    }

    // The bounds themselves are accepted: 8 and 128 characters, a 64-character name.
    let ok = [
        json!({ "email": "eight@example.test", "password": "éééééééé" }),
        json!({ "email": "long@example.test", "password": "é".repeat(128), "display_name": "ü".repeat(64) }),
    ];
    for body in ok {
        let response = app.post_json("/auth/register", &body, None).await;
        assert_eq!(response.status(), 201, "body {body}");
    }
}

#[tokio::test]
async fn register_names_missing_and_mistyped_fields() {
    let app = spawn_app().await;
    let cases = [
        ("email", json!({ "password": PASSWORD })),
        ("password", json!({ "email": "a@example.test" })),
        (
            "password",
            json!({ "email": "a@example.test", "password": 12345678 }),
        ),
        (
            "display_name",
            json!({ "email": "a@example.test", "password": PASSWORD, "display_name": 7 }),
        ),
        ("body", json!("a@example.test")),
    ];
    for (field, body) in cases {
        let response = app.post_json("/auth/register", &body, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "body {body}");
    }
}

#[tokio::test]
async fn password_is_stored_as_argon2id() {
    let app = spawn_app().await;
    app.register("hash@example.test").await;
    let stored = app
        .state
        .store
        .user_by_email("hash@example.test")
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "unexpected hash parameters"
    );
}

#[tokio::test]
async fn login_accepts_oauth2_password_form() {
    let app = spawn_app().await;
    app.register("form@example.test").await;

    for form in [
        vec![("username", "form@example.test"), ("password", PASSWORD)],
        vec![
            ("grant_type", "password"),
            ("username", "Form@Example.test"),
            ("password", PASSWORD),
        ],
    ] {
        let response = login_form(&app, &form).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "bearer");
        assert_eq!(body["expires_in"], 1800);
        assert_eq!(body["user"]["email"], "form@example.test");
        let me = app.get("/auth/me", Some(&access_token(&body))).await;
        assert_eq!(me.status(), 200);
    }
}

#[tokio::test]
async fn login_form_errors_name_the_field() {
    let app = spawn_app().await;
    let cases: [(&str, &[(&str, &str)]); 4] = [
        ("username", &[("password", PASSWORD)]),
        ("password", &[("username", "a@example.test")]),
        (
            "grant_type",
            &[
                ("grant_type", "client_credentials"),
                ("username", "a@example.test"),
                ("password", PASSWORD),
            ],
        ),
        (
            "username",
            &[("username", "not-an-email"), ("password", PASSWORD)],
        ),
    ];
    for (field, form) in cases {
        let problem = assert_problem(login_form(&app, form).await, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "form {form:?}");
    }
}

#[tokio::test]
async fn login_json_errors_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        ("email", json!({ "password": PASSWORD })),
        ("password", json!({ "email": "a@example.test" })),
        (
            "password",
            json!({ "email": "a@example.test", "password": "" }),
        ),
        ("email", json!({ "email": "nope", "password": PASSWORD })),
        (
            "email",
            json!({ "email": ["a@example.test"], "password": PASSWORD }),
        ),
    ];
    for (field, body) in cases {
        let response = app.post_json("/auth/login", &body, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "body {body}");
    }
}

#[tokio::test]
async fn login_rejects_unknown_email_and_wrong_password_alike() {
    let app = spawn_app().await;
    app.register("dave@example.test").await;

    let wrong = assert_problem(
        login_json(&app, "dave@example.test", "wrong password").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = assert_problem(
        login_json(&app, "nobody@example.test", PASSWORD).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(wrong, unknown, "the two failures must be indistinguishable");
}

#[tokio::test]
async fn unknown_email_runs_a_verification() {
    let app = spawn_app().await;
    app.register("timing@example.test").await;

    // Both failures cost one Argon2id verification, so their timing does not
    // reveal which emails are registered.
    for email in ["timing@example.test", "unknown@example.test"] {
        let before = app.state.hasher.verifications();
        let response = login_json(&app, email, "wrong password").await;
        assert_problem(response, 401, "invalid_credentials").await;
        assert_eq!(app.state.hasher.verifications(), before + 1, "{email}");
    }
}

#[tokio::test]
async fn login_rehashes_weaker_hash() {
    let app = spawn_app().await;
    let (id, _) = app.user("rehash@example.test").await;
    let weak = PasswordHasher::new(8 * 1024, 1, 1, 1).await.unwrap();
    let weak_hash = weak
        .hash(SecretString::from(PASSWORD.to_owned()))
        .await
        .unwrap();
    assert!(weak_hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
    app.state
        .store
        .set_password_hash(id, &weak_hash)
        .await
        .unwrap();

    let response = login_json(&app, "rehash@example.test", PASSWORD).await;
    assert_eq!(response.status(), 200);

    let stored = app
        .state
        .store
        .user_by_email("rehash@example.test")
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert_ne!(stored, weak_hash);
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "hash was not upgraded to the configured cost"
    );
    let again = login_json(&app, "rehash@example.test", PASSWORD).await;
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn login_keeps_hash_at_configured_cost() {
    let app = spawn_app().await;
    app.register("keep@example.test").await;
    let hash_of = || async {
        app.state
            .store
            .user_by_email("keep@example.test")
            .await
            .unwrap()
            .unwrap()
            .password_hash
    };
    let before = hash_of().await;
    let response = login_json(&app, "keep@example.test", PASSWORD).await;
    assert_eq!(response.status(), 200);
    assert_eq!(hash_of().await, before);
}

#[tokio::test]
async fn logout_twice_is_rejected() {
    let app = spawn_app().await;
    let (_, token) = app.user("erin@example.test").await;

    let first = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let body: Value = first.json().await.unwrap();
    assert_eq!(body, json!({ "status": "logged_out" }));

    let second = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(
        second.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_problem(second, 401, "invalid_token").await;
}

#[tokio::test]
async fn logout_revokes_only_that_token() {
    let app = spawn_app().await;
    let (_, first) = app.user("frank@example.test").await;
    let second = access_token(
        &login_json(&app, "frank@example.test", PASSWORD)
            .await
            .json()
            .await
            .unwrap(),
    );

    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&first))
        .await;
    assert_eq!(logout.status(), 200);
    assert_eq!(app.get("/auth/me", Some(&second)).await.status(), 200);
    // Logout revokes the token's id and its session's id.
    assert_eq!(app.state.revocations.count().await.unwrap(), 2);
}

#[tokio::test]
async fn logout_without_token_is_rejected() {
    let app = spawn_app().await;
    let response = app.post_json("/auth/logout", &json!({}), None).await;
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_problem(response, 401, "missing_token").await;
}

#[tokio::test]
async fn me_returns_user_as_stored_now() {
    let app = spawn_app().await;
    let (id, token) = app.user("grace@example.test").await;
    sqlx::query("UPDATE users SET display_name = $1 WHERE id = $2")
        .bind("Grace H.")
        .bind(id)
        .execute(app.state.store.pool())
        .await
        .unwrap();

    let response = app.get("/auth/me", Some(&token)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["id"], id);
    assert_eq!(user["email"], "grace@example.test");
    assert_eq!(user["display_name"], "Grace H.");
    assert_eq!(user["role"], "user");
    assert!(user["created_at"].is_string());
    assert_eq!(
        user.as_object().unwrap().len(),
        5,
        "unexpected fields in {user}"
    );
}

#[tokio::test]
async fn me_for_deleted_user_is_rejected() {
    let app = spawn_app().await;
    let (id, token) = app.user("heidi@example.test").await;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(app.state.store.pool())
        .await
        .unwrap();

    let response = app.get("/auth/me", Some(&token)).await;
    assert_eq!(
        response.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    assert_problem(response, 401, "invalid_token").await;
}

#[tokio::test]
async fn revoked_entries_expire_with_their_token() {
    let app = spawn_app_with(|config| {
        config.access_token_ttl = Duration::from_secs(1);
        config.revocation_purge_interval = Duration::from_secs(3600);
    })
    .await;
    let (_, first) = app.user("ivan@example.test").await;
    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&first))
        .await;
    assert_eq!(logout.status(), 200);
    // The token's id and its session's id.
    assert_eq!(app.state.revocations.count().await.unwrap(), 2);

    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(
        app.get("/auth/me", Some(&first)).await,
        401,
        "invalid_token",
    )
    .await;

    // A logout purges entries whose tokens have expired, keeping only its own two.
    let (_, second) = app.user("judy@example.test").await;
    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&second))
        .await;
    assert_eq!(logout.status(), 200);
    assert_eq!(app.state.revocations.count().await.unwrap(), 2);
}

#[tokio::test]
async fn background_purge_removes_expired_entries() {
    let app = spawn_app_with(|config| {
        config.access_token_ttl = Duration::from_secs(1);
        config.revocation_purge_interval = Duration::from_millis(200);
    })
    .await;
    let (_, token) = app.user("ken@example.test").await;
    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.revocations.count().await.unwrap() > 0 {
        assert!(Instant::now() < deadline, "expired entry was never purged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let app = spawn_app_with(|config| config.access_token_ttl = Duration::from_secs(1)).await;
    let (_, token) = app.user("leo@example.test").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(
        app.get("/auth/me", Some(&token)).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn clock_leeway_accepts_recently_expired_token() {
    let app = spawn_app_with(|config| {
        config.access_token_ttl = Duration::from_secs(1);
        config.clock_leeway = Duration::from_secs(30);
    })
    .await;
    let (_, token) = app.user("mia@example.test").await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(app.get("/auth/me", Some(&token)).await.status(), 200);
}

#[tokio::test]
async fn issuer_and_audience_are_configurable() {
    let app = spawn_app_with(|config| {
        config.jwt_issuer = "chat.example.test".to_owned();
        config.jwt_audience = "chat-clients".to_owned();
    })
    .await;
    let (_, token) = app.user("nia@example.test").await;
    assert_eq!(app.get("/auth/me", Some(&token)).await.status(), 200);

    // A token from a server with the default issuer and the same key is not accepted.
    let other = spawn_app().await;
    let (_, foreign) = other.user("nia@example.test").await;
    assert_problem(
        app.get("/auth/me", Some(&foreign)).await,
        401,
        "invalid_token",
    )
    .await;
}
