use serde_json::json;

use crate::helpers::{assert_problem, spawn_app, PASSWORD};

#[tokio::test]
async fn register_login_me_logout() {
    let app = spawn_app().await;
    let body = app.register("Alice@Example.test").await;
    assert_eq!(body["user"]["email"], "alice@example.test");

    let login = app
        .post_json(
            "/auth/login",
            &json!({ "email": "alice@example.test", "password": PASSWORD }),
            None,
        )
        .await;
    assert_eq!(login.status(), 200);
    let token = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let me = app.get("/auth/me", Some(&token)).await;
    assert_eq!(me.status(), 200);

    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);

    let after = app.get("/auth/me", Some(&token)).await;
    assert_problem(after, 401, "invalid_token").await;
}
