//! Conversations, members, messages and user search over real HTTP.

use std::collections::HashSet;

use confab::auth::Role;
use confab::store::messages::NewMessage;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

/// Sends a request with an optional JSON body and bearer token.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request failed")
}

/// Sends a request and returns the JSON body after checking the status.
async fn call_ok(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    status: u16,
) -> Value {
    let response = call(app, method.clone(), path, token, body).await;
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "{method} {path} returned {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn create_group(app: &TestApp, token: &str, title: &str, member_ids: &[i64]) -> Value {
    let body = json!({ "kind": "group", "title": title, "member_ids": member_ids });
    call_ok(app, Method::POST, "/chats", token, Some(body), 201).await
}

async fn create_direct(app: &TestApp, token: &str, other: i64) -> Value {
    let body = json!({ "kind": "direct", "user_id": other });
    call_ok(app, Method::POST, "/chats", token, Some(body), 201).await
}

async fn send_message(app: &TestApp, token: &str, chat_id: i64, body: &str) -> Value {
    let path = format!("/chats/{chat_id}/messages");
    call_ok(
        app,
        Method::POST,
        &path,
        token,
        Some(json!({ "body": body })),
        201,
    )
    .await
}

/// Registers a user with a chosen display name; returns id and token.
async fn user_named(app: &TestApp, email: &str, display_name: &str) -> (i64, String) {
    let body = json!({ "email": email, "password": PASSWORD, "display_name": display_name });
    let response = app.post_json("/auth/register", &body, None).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["user"]["id"].as_i64().unwrap(),
        body["access_token"].as_str().unwrap().to_owned(),
    )
}

/// Makes `user_id` an administrator and logs in again for a token with that role.
async fn admin_token(app: &TestApp, user_id: i64, email: &str) -> String {
    let now = confab::store::now_millis();
    app.state
        .store
        .change_role(user_id, Role::Admin, confab::auth::unix_now(), now)
        .await
        .unwrap();
    let body = crate::sessions::login(app, email).await;
    body["access_token"].as_str().unwrap().to_owned()
}

fn ids(items: &Value) -> Vec<i64> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn non_member_gets_404_everywhere() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let (_, carol) = app.user("carol@example.test").await;
    let group = create_group(&app, &alice, "Team", &[bob_id]).await;
    let direct = create_direct(&app, &alice, bob_id).await;

    for chat in [&group, &direct] {
        let id = chat["id"].as_i64().unwrap();
        let message = send_message(&app, &alice, id, "secret").await;
        let message_id = message["id"].as_i64().unwrap();
        let requests = [
            (Method::GET, format!("/chats/{id}"), None),
            (
                Method::PATCH,
                format!("/chats/{id}"),
                Some(json!({ "title": "Mine" })),
            ),
            (
                Method::POST,
                format!("/chats/{id}/members"),
                Some(json!({ "user_id": bob_id })),
            ),
            (
                Method::DELETE,
                format!("/chats/{id}/members/{bob_id}"),
                None,
            ),
            (
                Method::POST,
                format!("/chats/{id}/messages"),
                Some(json!({ "body": "hi" })),
            ),
            (Method::GET, format!("/chats/{id}/messages"), None),
            (
                Method::PATCH,
                format!("/chats/{id}/messages/{message_id}"),
                Some(json!({ "body": "changed" })),
            ),
            (
                Method::DELETE,
                format!("/chats/{id}/messages/{message_id}"),
                None,
            ),
            (
                Method::POST,
                format!("/chats/{id}/read"),
                Some(json!({ "message_id": message_id })),
            ),
        ];
        for (method, path, body) in requests {
            let response = call(&app, method.clone(), &path, &carol, body).await;
            let problem = assert_problem(response, 404, "chat_not_found").await;
            // A missing chat reads exactly the same, so ids reveal nothing.
            let missing = path.replacen(&format!("/chats/{id}"), "/chats/999999", 1);
            let body = (method == Method::PATCH || method == Method::POST)
                .then(|| json!({ "title": "x", "user_id": bob_id, "body": "x", "message_id": 1 }));
            let response = call(&app, method, &missing, &carol, body).await;
            let other = assert_problem(response, 404, "chat_not_found").await;
            assert_eq!(problem["detail"], other["detail"]);
        }
    }

    let list = call_ok(&app, Method::GET, "/chats", &carol, None, 200).await;
    assert_eq!(list["items"], json!([]));
}

#[tokio::test]
async fn every_endpoint_requires_a_token() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/users?query=a"),
        (Method::GET, "/chats"),
        (Method::POST, "/chats"),
        (Method::GET, "/chats/1"),
        (Method::PATCH, "/chats/1"),
        (Method::POST, "/chats/1/members"),
        (Method::DELETE, "/chats/1/members/2"),
        (Method::GET, "/chats/1/messages"),
        (Method::POST, "/chats/1/messages"),
        (Method::PATCH, "/chats/1/messages/1"),
        (Method::DELETE, "/chats/1/messages/1"),
        (Method::POST, "/chats/1/read"),
    ] {
        let method_again = method.clone();
        let response = app
            .client
            .request(method, app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_problem(response, 401, "missing_token").await;
        let response = call(&app, method_again, path, "not-a-token", None).await;
        assert_eq!(response.status(), 401, "{path}");
    }
}

#[tokio::test]
async fn direct_chat_is_created_once() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;

    let created = create_direct(&app, &alice, bob_id).await;
    assert_eq!(created["kind"], "direct");
    assert!(created["title"].is_null());
    assert_eq!(created["unread_count"], 0);
    assert!(created["last_message"].is_null());
    let member_ids: HashSet<i64> = created["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|member| member["user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(member_ids, HashSet::from([alice_id, bob_id]));
    assert_eq!(created["members"][0]["role"], "member");
    assert_eq!(created["members"][0]["last_read_message_id"], 0);

    let again = json!({ "kind": "direct", "user_id": bob_id });
    let found = call_ok(&app, Method::POST, "/chats", &alice, Some(again), 200).await;
    assert_eq!(found["id"], created["id"]);
    let reverse = json!({ "kind": "direct", "user_id": alice_id });
    let found = call_ok(&app, Method::POST, "/chats", &bob, Some(reverse), 200).await;
    assert_eq!(found["id"], created["id"]);
}

#[tokio::test]
async fn direct_chat_race_creates_one() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;

    let mut requests = Vec::new();
    for round in 0..10 {
        let (token, other) = if round % 2 == 0 {
            (alice.clone(), bob_id)
        } else {
            (bob.clone(), alice_id)
        };
        let body = json!({ "kind": "direct", "user_id": other });
        let request = app
            .client
            .post(app.url("/chats"))
            .bearer_auth(token)
            .json(&body);
        requests.push(tokio::spawn(request.send()));
    }
    let mut chat_ids = HashSet::new();
    let mut created = 0;
    for request in requests {
        let response = request.await.unwrap().unwrap();
        let status = response.status().as_u16();
        assert!(status == 200 || status == 201, "status {status}");
        created += usize::from(status == 201);
        let body: Value = response.json().await.unwrap();
        chat_ids.insert(body["id"].as_i64().unwrap());
    }
    assert_eq!(chat_ids.len(), 1);
    assert_eq!(created, 1);
}

#[tokio::test]
async fn create_chat_rejects_bad_input() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;

    let cases = [
        (json!({ "kind": "direct", "user_id": alice_id }), "user_id"),
        (json!({ "kind": "direct", "user_id": 999_999 }), "user_id"),
        (json!({ "kind": "direct", "user_id": -4 }), "user_id"),
        (json!({ "kind": "direct", "user_id": 0 }), "user_id"),
        (json!({ "kind": "direct", "user_id": "2" }), "user_id"),
        (json!({ "kind": "direct", "user_id": 1e30 }), "user_id"),
        (
            json!({ "kind": "direct", "user_id": 18_446_744_073_709_551_615u64 }),
            "user_id",
        ),
        (json!({ "kind": "direct" }), "user_id"),
        (json!({ "kind": "channel" }), "kind"),
        (json!({ "user_id": bob_id }), "kind"),
        (json!({ "kind": "group", "member_ids": [bob_id] }), "title"),
        (json!({ "kind": "group", "title": "  " }), "title"),
        (
            json!({ "kind": "group", "title": "x".repeat(101) }),
            "title",
        ),
        (json!({ "kind": "group", "title": "a\u{0}b" }), "title"),
        (
            json!({ "kind": "group", "title": "T", "member_ids": [bob_id, 999_999] }),
            "member_ids",
        ),
        (
            json!({ "kind": "group", "title": "T", "member_ids": [bob_id, -1] }),
            "member_ids[1]",
        ),
        (
            json!({ "kind": "group", "title": "T", "member_ids": "1,2" }),
            "member_ids",
        ),
        (
            json!({ "kind": "group", "title": "T", "member_ids": [1.5] }),
            "member_ids[0]",
        ),
    ];
    for (body, field) in cases {
        let response = call(&app, Method::POST, "/chats", &alice, Some(body.clone())).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let too_many: Vec<i64> = (2..=1001).collect();
    let body = json!({ "kind": "group", "title": "Big", "member_ids": too_many });
    let response = call(&app, Method::POST, "/chats", &alice, Some(body)).await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "member_ids");
}

#[tokio::test]
async fn group_creator_is_owner() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;

    let group = create_group(&app, &alice, "  Team  ", &[bob_id, bob_id, alice_id]).await;
    assert_eq!(group["kind"], "group");
    assert_eq!(group["title"], "Team");
    let members = group["members"].as_array().unwrap();
    assert_eq!(members.len(), 2);
    let owner = members.iter().find(|m| m["user_id"] == alice_id).unwrap();
    assert_eq!(owner["role"], "owner");
    assert_eq!(owner["display_name"], "alice");
    assert!(owner["joined_at"].as_str().unwrap().ends_with('Z'));
    let member = members.iter().find(|m| m["user_id"] == bob_id).unwrap();
    assert_eq!(member["role"], "member");

    let path = format!("/chats/{}", group["id"]);
    let seen_by_bob = call_ok(&app, Method::GET, &path, &bob, None, 200).await;
    assert_eq!(seen_by_bob["id"], group["id"]);
    assert_eq!(seen_by_bob["members"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn rename_is_for_group_owner() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let group = create_group(&app, &alice, "Team", &[bob_id]).await;
    let direct = create_direct(&app, &alice, bob_id).await;
    let path = format!("/chats/{}", group["id"]);

    let renamed = call_ok(
        &app,
        Method::PATCH,
        &path,
        &alice,
        Some(json!({ "title": " New name " })),
        200,
    )
    .await;
    assert_eq!(renamed["title"], "New name");

    let response = call(
        &app,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({ "title": "Bob's" })),
    )
    .await;
    assert_problem(response, 403, "not_owner").await;

    let response = call(
        &app,
        Method::PATCH,
        &path,
        &alice,
        Some(json!({ "title": "" })),
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "title");

    let response = call(
        &app,
        Method::PATCH,
        &path,
        &alice,
        Some(json!({ "title": 5 })),
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "title");

    let direct_path = format!("/chats/{}", direct["id"]);
    let body = Some(json!({ "title": "Ours" }));
    let response = call(&app, Method::PATCH, &direct_path, &alice, body).await;
    assert_problem(response, 409, "direct_chat").await;
}

#[tokio::test]
async fn owner_manages_members() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let (carol_id, carol) = app.user("carol@example.test").await;
    let (dave_id, _) = app.user("dave@example.test").await;
    let group = create_group(&app, &alice, "Team", &[bob_id]).await;
    let id = group["id"].as_i64().unwrap();
    let members = format!("/chats/{id}/members");

    let added = call_ok(
        &app,
        Method::POST,
        &members,
        &alice,
        Some(json!({ "user_id": carol_id })),
        201,
    )
    .await;
    assert_eq!(added["members"].as_array().unwrap().len(), 3);
    call_ok(
        &app,
        Method::GET,
        &format!("/chats/{id}"),
        &carol,
        None,
        200,
    )
    .await;

    let body = Some(json!({ "user_id": carol_id }));
    let response = call(&app, Method::POST, &members, &alice, body).await;
    assert_problem(response, 409, "already_member").await;

    let body = Some(json!({ "user_id": dave_id }));
    let response = call(&app, Method::POST, &members, &bob, body).await;
    assert_problem(response, 403, "not_owner").await;

    for (user_id, field) in [
        (json!(999_999), "user_id"),
        (json!(-1), "user_id"),
        (json!("x"), "user_id"),
    ] {
        let body = Some(json!({ "user_id": user_id }));
        let response = call(&app, Method::POST, &members, &alice, body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field);
    }

    // A member may remove only themself.
    let response = call(
        &app,
        Method::DELETE,
        &format!("{members}/{carol_id}"),
        &bob,
        None,
    )
    .await;
    assert_problem(response, 403, "not_owner").await;
    let response = call(
        &app,
        Method::DELETE,
        &format!("{members}/{bob_id}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    let response = call(&app, Method::GET, &format!("/chats/{id}"), &bob, None).await;
    assert_problem(response, 404, "chat_not_found").await;

    // The owner removes anyone.
    let response = call(
        &app,
        Method::DELETE,
        &format!("{members}/{carol_id}"),
        &alice,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    let response = call(
        &app,
        Method::GET,
        &format!("/chats/{id}/messages"),
        &carol,
        None,
    )
    .await;
    assert_problem(response, 404, "chat_not_found").await;

    let response = call(
        &app,
        Method::DELETE,
        &format!("{members}/{dave_id}"),
        &alice,
        None,
    )
    .await;
    assert_problem(response, 404, "member_not_found").await;
    let response = call(
        &app,
        Method::DELETE,
        &format!("{members}/abc"),
        &alice,
        None,
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "user_id");
    let response = call(&app, Method::DELETE, &format!("{members}/-3"), &alice, None).await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn owner_leaving_promotes_a_member() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let group = create_group(&app, &alice, "Team", &[bob_id]).await;
    let id = group["id"].as_i64().unwrap();

    let path = format!("/chats/{id}/members/{alice_id}");
    let response = call(&app, Method::DELETE, &path, &alice, None).await;
    assert_eq!(response.status(), 204);

    let chat = call_ok(&app, Method::GET, &format!("/chats/{id}"), &bob, None, 200).await;
    assert_eq!(chat["members"].as_array().unwrap().len(), 1);
    assert_eq!(chat["members"][0]["role"], "owner");
    call_ok(
        &app,
        Method::PATCH,
        &format!("/chats/{id}"),
        &bob,
        Some(json!({ "title": "Bob's now" })),
        200,
    )
    .await;

    // The last member leaving deletes the chat.
    let response = call(
        &app,
        Method::DELETE,
        &format!("/chats/{id}/members/{bob_id}"),
        &bob,
        None,
    )
    .await;
    assert_eq!(response.status(), 204);
    let response = call(&app, Method::GET, &format!("/chats/{id}"), &bob, None).await;
    assert_problem(response, 404, "chat_not_found").await;
}

#[tokio::test]
async fn direct_members_are_fixed() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let (carol_id, _) = app.user("carol@example.test").await;
    let direct = create_direct(&app, &alice, bob_id).await;
    let id = direct["id"].as_i64().unwrap();

    let body = Some(json!({ "user_id": carol_id }));
    let response = call(
        &app,
        Method::POST,
        &format!("/chats/{id}/members"),
        &alice,
        body,
    )
    .await;
    assert_problem(response, 409, "direct_chat").await;
    for target in [alice_id, bob_id] {
        let path = format!("/chats/{id}/members/{target}");
        let response = call(&app, Method::DELETE, &path, &alice, None).await;
        assert_problem(response, 409, "direct_chat").await;
    }
}

#[tokio::test]
async fn send_returns_the_stored_message() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let id = chat["id"].as_i64().unwrap();

    let message = send_message(&app, &alice, id, "  hello Bob\n").await;
    assert_eq!(message["chat_id"], id);
    assert_eq!(message["sender_id"], alice_id);
    assert_eq!(message["body"], "hello Bob");
    assert!(message["client_id"].is_null());
    assert!(message["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(message["edited_at"].is_null());
    assert!(message["deleted_at"].is_null());

    let page = call_ok(
        &app,
        Method::GET,
        &format!("/chats/{id}/messages"),
        &bob,
        None,
        200,
    )
    .await;
    assert_eq!(page["items"], json!([message]));
    assert_eq!(page["has_more"], false);

    let longest = "é".repeat(4000);
    let stored = send_message(&app, &bob, id, &longest).await;
    assert_eq!(stored["body"], longest.as_str());
}

#[tokio::test]
async fn markup_is_stored_verbatim() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let id = chat["id"].as_i64().unwrap();

    let bodies = [
        "<script>alert('x')</script>",
        "<img src=x onerror=alert(1)>",
        "<b>bold</b> & \"quotes\" </textarea>",
        "{\"json\": [1, 2]} \\ \u{2028} 😀",
    ];
    for body in bodies {
        let sent = send_message(&app, &alice, id, body).await;
        assert_eq!(sent["body"], body);
    }
    let response = call(
        &app,
        Method::GET,
        &format!("/chats/{id}/messages"),
        &bob,
        None,
    )
    .await;
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let page: Value = response.json().await.unwrap();
    let stored: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["body"].as_str().unwrap())
        .collect();
    assert_eq!(stored, bodies);
}

#[tokio::test]
async fn invalid_messages_are_422() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let path = format!("/chats/{}/messages", chat["id"]);

    let cases = [
        (json!({ "body": "" }), "body"),
        (json!({ "body": " \n\t " }), "body"),
        (json!({ "body": "x".repeat(4001) }), "body"),
        (json!({ "body": "nul \u{0} byte" }), "body"),
        (json!({ "body": 42 }), "body"),
        (json!({ "body": null }), "body"),
        (json!({}), "body"),
        (json!({ "body": "ok", "client_id": "" }), "client_id"),
        (json!({ "body": "ok", "client_id": 7 }), "client_id"),
        (
            json!({ "body": "ok", "client_id": "c".repeat(129) }),
            "client_id",
        ),
    ];
    for (body, field) in cases {
        let response = call(&app, Method::POST, &path, &alice, Some(body.clone())).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }

    let response = call(&app, Method::POST, &path, &alice, Some(json!([1, 2]))).await;
    assert_problem(response, 422, "validation_failed").await;

    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body("{\"body\": ")
        .send()
        .await
        .unwrap();
    assert_problem(response, 400, "invalid_json").await;

    let page = call_ok(&app, Method::GET, &path, &alice, None, 200).await;
    assert_eq!(page["items"], json!([]));
}

#[tokio::test]
async fn invalid_ids_are_422() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    for (method, path, field) in [
        (Method::GET, "/chats/abc", "chat_id"),
        (Method::GET, "/chats/-1", "chat_id"),
        (Method::GET, "/chats/0", "chat_id"),
        (Method::GET, "/chats/99999999999999999999", "chat_id"),
        (Method::GET, "/chats/1.5/messages", "chat_id"),
        (Method::PATCH, "/chats/x/messages/1", "chat_id"),
        (Method::DELETE, "/chats/-2/messages/1", "chat_id"),
        (Method::DELETE, "/chats/1/members/nope", "user_id"),
    ] {
        let body = (method == Method::PATCH).then(|| json!({ "body": "x" }));
        let response = call(&app, method, path, &alice, body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{path}");
    }
}

#[tokio::test]
async fn repeated_client_id_returns_original() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let path = format!("/chats/{}/messages", chat["id"]);

    let first_body = json!({ "body": "once", "client_id": "c-1" });
    let first = call_ok(&app, Method::POST, &path, &alice, Some(first_body), 201).await;
    assert_eq!(first["client_id"], "c-1");
    let retry_body = json!({ "body": "changed on retry", "client_id": "c-1" });
    let retry = call_ok(&app, Method::POST, &path, &alice, Some(retry_body), 200).await;
    assert_eq!(retry, first);

    // The same client id from another sender is another message.
    let bob_body = json!({ "body": "mine", "client_id": "c-1" });
    let other = call_ok(&app, Method::POST, &path, &bob, Some(bob_body), 201).await;
    assert_ne!(other["id"], first["id"]);

    let page = call_ok(&app, Method::GET, &path, &alice, None, 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_sends_store_one_message() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let path = format!("/chats/{}/messages", chat["id"]);

    let mut sends = Vec::new();
    for attempt in 0..20 {
        let body = json!({ "body": format!("attempt {attempt}"), "client_id": "same" });
        let request = app
            .client
            .post(app.url(&path))
            .bearer_auth(&alice)
            .json(&body);
        sends.push(tokio::spawn(request.send()));
    }
    let mut message_ids = HashSet::new();
    let mut created = 0;
    for send in sends {
        let response = send.await.unwrap().unwrap();
        let status = response.status().as_u16();
        assert!(status == 200 || status == 201, "status {status}");
        created += usize::from(status == 201);
        let message: Value = response.json().await.unwrap();
        message_ids.insert(message["id"].as_i64().unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(message_ids.len(), 1);

    let page = call_ok(&app, Method::GET, &path, &alice, None, 200).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn paging_yields_each_message_once() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let chat_id = chat["id"].as_i64().unwrap();

    // Timestamps that repeat and run backwards, so only ids can order pages.
    let base = 1_800_000_000_000_i64;
    for index in 0..1000_i64 {
        let body = format!("message {index}");
        app.state
            .store
            .create_message(NewMessage {
                chat_id,
                sender_id: alice_id,
                body: &body,
                client_id: None,
                created_at: base - (index % 7) * 1000,
            })
            .await
            .unwrap();
    }
    let path = format!("/chats/{chat_id}/messages");

    let mut forward: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let page_path = format!("{path}?after={after}&limit=37");
        let page = call_ok(&app, Method::GET, &page_path, &alice, None, 200).await;
        let page_ids = ids(&page["items"]);
        assert!(page_ids.windows(2).all(|pair| pair[0] < pair[1]));
        forward.extend(&page_ids);
        if page["has_more"] == false {
            break;
        }
        after = *page_ids.last().unwrap();
    }
    assert_eq!(forward.len(), 1000);
    assert_eq!(forward.iter().collect::<HashSet<_>>().len(), 1000);
    assert!(forward.windows(2).all(|pair| pair[0] < pair[1]));

    let mut backward: Vec<i64> = Vec::new();
    let mut page_path = format!("{path}?limit=41");
    loop {
        let page = call_ok(&app, Method::GET, &page_path, &alice, None, 200).await;
        let page_ids = ids(&page["items"]);
        assert!(page_ids.windows(2).all(|pair| pair[0] < pair[1]));
        backward.splice(0..0, page_ids.iter().copied());
        if page["has_more"] == false {
            break;
        }
        page_path = format!("{path}?limit=41&before={}", page_ids[0]);
    }
    assert_eq!(backward, forward);

    let default_page = call_ok(&app, Method::GET, &path, &alice, None, 200).await;
    assert_eq!(ids(&default_page["items"]), forward[950..].to_vec());
    let capped = call_ok(
        &app,
        Method::GET,
        &format!("{path}?limit=5000"),
        &alice,
        None,
        200,
    )
    .await;
    assert_eq!(capped["items"].as_array().unwrap().len(), 200);
    let between = format!("{path}?after={}&before={}", forward[10], forward[14]);
    let window = call_ok(&app, Method::GET, &between, &alice, None, 200).await;
    assert_eq!(ids(&window["items"]), forward[11..14].to_vec());
}

#[tokio::test]
async fn bad_query_numbers_are_422() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let path = format!("/chats/{}/messages", chat["id"]);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("before=-1", "before"),
        ("before=x", "before"),
        ("after=-5", "after"),
        ("after=1e3", "after"),
        ("after=18446744073709551616", "after"),
    ] {
        let response = call(&app, Method::GET, &format!("{path}?{query}"), &alice, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    for (query, field) in [
        ("limit=-2", "limit"),
        ("limit=ten", "limit"),
        ("cursor=%%%", "cursor"),
        ("cursor=bm90LWEtY3Vyc29y", "cursor"),
    ] {
        let response = call(&app, Method::GET, &format!("/chats?{query}"), &alice, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    let response = call(&app, Method::GET, "/users?query=a&limit=-1", &alice, None).await;
    assert_problem(response, 422, "validation_failed").await;
}

#[tokio::test]
async fn edit_is_for_the_sender() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let group = create_group(&app, &alice, "Team", &[bob_id]).await;
    let other = create_group(&app, &alice, "Other", &[]).await;
    let id = group["id"].as_i64().unwrap();
    let message = send_message(&app, &bob, id, "tpyo").await;
    let path = format!("/chats/{id}/messages/{}", message["id"]);

    let edited = call_ok(
        &app,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({ "body": " typo " })),
        200,
    )
    .await;
    assert_eq!(edited["body"], "typo");
    assert_eq!(edited["id"], message["id"]);
    assert!(edited["edited_at"].is_string());

    // Not even the owner may edit another member's message.
    let response = call(
        &app,
        Method::PATCH,
        &path,
        &alice,
        Some(json!({ "body": "mine" })),
    )
    .await;
    assert_problem(response, 403, "not_sender").await;

    let response = call(
        &app,
        Method::PATCH,
        &path,
        &bob,
        Some(json!({ "body": "" })),
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "body");

    let missing = format!("/chats/{id}/messages/999999");
    let response = call(
        &app,
        Method::PATCH,
        &missing,
        &bob,
        Some(json!({ "body": "x" })),
    )
    .await;
    assert_problem(response, 404, "message_not_found").await;
    let wrong_chat = format!("/chats/{}/messages/{}", other["id"], message["id"]);
    let response = call(
        &app,
        Method::PATCH,
        &wrong_chat,
        &alice,
        Some(json!({ "body": "x" })),
    )
    .await;
    assert_problem(response, 404, "message_not_found").await;
    let negative = format!("/chats/{id}/messages/-1");
    let response = call(
        &app,
        Method::PATCH,
        &negative,
        &bob,
        Some(json!({ "body": "x" })),
    )
    .await;
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "message_id");
}

#[tokio::test]
async fn deleted_message_is_a_tombstone() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let id = chat["id"].as_i64().unwrap();
    let message = send_message(&app, &alice, id, "regrettable").await;
    let kept = send_message(&app, &bob, id, "kept").await;
    let path = format!("/chats/{id}/messages/{}", message["id"]);

    let response = call(&app, Method::DELETE, &path, &bob, None).await;
    assert_problem(response, 403, "not_sender").await;
    let response = call(&app, Method::DELETE, &path, &alice, None).await;
    assert_eq!(response.status(), 204);
    let response = call(&app, Method::DELETE, &path, &alice, None).await;
    assert_eq!(response.status(), 204);

    let page = call_ok(
        &app,
        Method::GET,
        &format!("/chats/{id}/messages"),
        &bob,
        None,
        200,
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], message["id"]);
    assert!(items[0]["body"].is_null());
    assert!(items[0]["deleted_at"].is_string());
    assert_eq!(items[1], kept);

    let response = call(
        &app,
        Method::PATCH,
        &path,
        &alice,
        Some(json!({ "body": "back" })),
    )
    .await;
    assert_problem(response, 409, "message_deleted").await;
}

#[tokio::test]
async fn owner_and_admin_may_delete() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let (carol_id, carol) = app.user("carol@example.test").await;
    let (admin_id, _) = app.user("admin@example.test").await;
    let admin = admin_token(&app, admin_id, "admin@example.test").await;
    let group = create_group(&app, &alice, "Team", &[bob_id, carol_id]).await;
    let id = group["id"].as_i64().unwrap();
    let first = send_message(&app, &bob, id, "one").await;
    let second = send_message(&app, &bob, id, "two").await;

    let path = format!("/chats/{id}/messages/{}", first["id"]);
    let response = call(&app, Method::DELETE, &path, &carol, None).await;
    assert_problem(response, 403, "not_sender").await;
    let response = call(&app, Method::DELETE, &path, &alice, None).await;
    assert_eq!(response.status(), 204);

    // An admin moderates without being a member, but still cannot read.
    let path = format!("/chats/{id}/messages/{}", second["id"]);
    let response = call(&app, Method::DELETE, &path, &admin, None).await;
    assert_eq!(response.status(), 204);
    let response = call(
        &app,
        Method::GET,
        &format!("/chats/{id}/messages"),
        &admin,
        None,
    )
    .await;
    assert_problem(response, 404, "chat_not_found").await;

    let page = call_ok(
        &app,
        Method::GET,
        &format!("/chats/{id}/messages"),
        &bob,
        None,
        200,
    )
    .await;
    assert!(page["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|item| item["body"].is_null()));
}

#[tokio::test]
async fn deleted_body_leaves_the_database() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let id = chat["id"].as_i64().unwrap();
    let marker = "erase-me-7f3a9c2e41";
    let message = send_message(&app, &alice, id, marker).await;
    send_message(&app, &alice, id, "padding after the marker").await;

    let path = format!("/chats/{id}/messages/{}", message["id"]);
    let response = call(&app, Method::DELETE, &path, &alice, None).await;
    assert_eq!(response.status(), 204);

    let data_dir = app.config.storage.data_dir.clone();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let file = entry.unwrap().path();
        let bytes = std::fs::read(&file).unwrap();
        let found = bytes
            .windows(marker.len())
            .any(|window| window == marker.as_bytes());
        assert!(!found, "the deleted body is still in {}", file.display());
    }
}

#[tokio::test]
async fn read_marker_only_moves_forward() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let id = chat["id"].as_i64().unwrap();
    let first = send_message(&app, &alice, id, "one").await;
    let second = send_message(&app, &alice, id, "two").await;
    let third = send_message(&app, &alice, id, "three").await;
    send_message(&app, &bob, id, "bob's own message is never unread for bob").await;

    let chat = call_ok(&app, Method::GET, &format!("/chats/{id}"), &bob, None, 200).await;
    assert_eq!(chat["unread_count"], 3);
    let chat = call_ok(
        &app,
        Method::GET,
        &format!("/chats/{id}"),
        &alice,
        None,
        200,
    )
    .await;
    assert_eq!(chat["unread_count"], 1);

    let read = format!("/chats/{id}/read");
    let state = call_ok(
        &app,
        Method::POST,
        &read,
        &bob,
        Some(json!({ "message_id": second["id"] })),
        200,
    )
    .await;
    assert_eq!(state["last_read_message_id"], second["id"]);
    assert_eq!(state["user_id"], bob_id);
    let state = call_ok(
        &app,
        Method::POST,
        &read,
        &bob,
        Some(json!({ "message_id": first["id"] })),
        200,
    )
    .await;
    assert_eq!(state["last_read_message_id"], second["id"]);

    let chat = call_ok(&app, Method::GET, &format!("/chats/{id}"), &bob, None, 200).await;
    assert_eq!(chat["unread_count"], 1);
    let bob_member = chat["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["user_id"] == bob_id)
        .unwrap();
    assert_eq!(bob_member["last_read_message_id"], second["id"]);

    // Deleted messages are not unread.
    let path = format!("/chats/{id}/messages/{}", third["id"]);
    call(&app, Method::DELETE, &path, &alice, None).await;
    let chat = call_ok(&app, Method::GET, &format!("/chats/{id}"), &bob, None, 200).await;
    assert_eq!(chat["unread_count"], 0);
    let _ = alice_id;

    for message_id in [json!(999_999), json!(0), json!(-1), json!("1")] {
        let body = Some(json!({ "message_id": message_id }));
        let response = call(&app, Method::POST, &read, &bob, body).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "message_id");
    }
}

#[tokio::test]
async fn chat_list_orders_by_activity() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let mut chat_ids = Vec::new();
    for index in 0..5 {
        let group = create_group(&app, &alice, &format!("Group {index}"), &[bob_id]).await;
        chat_ids.push(group["id"].as_i64().unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    // Group 1 becomes the most recently active.
    let latest = send_message(&app, &bob, chat_ids[1], "bump").await;

    let mut listed = Vec::new();
    let mut path = "/chats?limit=2".to_owned();
    loop {
        let page = call_ok(&app, Method::GET, &path, &alice, None, 200).await;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        listed.extend(ids(&page["items"]));
        if listed.len() == 1 {
            assert_eq!(items[0]["last_message"], latest);
            assert_eq!(items[0]["unread_count"], 1);
        }
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        path = format!("/chats?limit=2&cursor={cursor}");
    }
    let expected = vec![
        chat_ids[1],
        chat_ids[4],
        chat_ids[3],
        chat_ids[2],
        chat_ids[0],
    ];
    assert_eq!(listed, expected);
}

#[tokio::test]
async fn user_search_folds_unicode_case() {
    let app = spawn_app().await;
    let (_, alice) = user_named(&app, "alice@example.test", "Alice").await;
    let (ivan_id, _) = user_named(&app, "ivan@example.test", "Иван").await;
    let (eclair_id, _) = user_named(&app, "eclair@example.test", "ÉCLAIR").await;

    for (query, expected) in [
        ("Ив", ivan_id),
        ("иван", ivan_id),
        ("É", eclair_id),
        ("é", eclair_id),
    ] {
        let found = call_ok(
            &app,
            Method::GET,
            &format!("/users?query={query}"),
            &alice,
            None,
            200,
        )
        .await;
        assert_eq!(ids(&found["items"]), vec![expected], "{query}");
    }
}

#[tokio::test]
async fn user_search_finds_by_name_or_email() {
    let app = spawn_app().await;
    let (_, alice) = user_named(&app, "alice@example.test", "Alice").await;
    let (bob_id, _) = user_named(&app, "bob@example.test", "Bobby Tables").await;
    let (bea_id, _) = user_named(&app, "bea@example.test", "Bea").await;
    user_named(&app, "zed@example.test", "Zed").await;

    let found = call_ok(&app, Method::GET, "/users?query=b", &alice, None, 200).await;
    assert_eq!(ids(&found["items"]), vec![bea_id, bob_id]);
    assert_eq!(
        found["items"][0],
        json!({ "id": bea_id, "display_name": "Bea" })
    );

    let found = call_ok(
        &app,
        Method::GET,
        "/users?query=BOB%40Example.test",
        &alice,
        None,
        200,
    )
    .await;
    assert_eq!(ids(&found["items"]), vec![bob_id]);

    // A partial email matches nothing, and wildcards are literal.
    for query in ["bob%40example", "%25", "_"] {
        let found = call_ok(
            &app,
            Method::GET,
            &format!("/users?query={query}"),
            &alice,
            None,
            200,
        )
        .await;
        assert_eq!(found["items"], json!([]), "{query}");
    }

    let found = call_ok(&app, Method::GET, "/users?query=Al", &alice, None, 200).await;
    assert_eq!(found["items"], json!([]), "the caller is not listed");
    let found = call_ok(
        &app,
        Method::GET,
        "/users?query=b&limit=1",
        &alice,
        None,
        200,
    )
    .await;
    assert_eq!(ids(&found["items"]), vec![bea_id]);

    for query in ["", "?query=", "?query=%20%20"] {
        let response = call(&app, Method::GET, &format!("/users{query}"), &alice, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "query");
    }
}

#[tokio::test]
async fn user_search_rejects_control_characters() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;

    // PostgreSQL text cannot hold a NUL byte: the query must be rejected before the store.
    for query in ["a%00b", "a%07b"] {
        let path = format!("/users?query={query}");
        let response = call(&app, Method::GET, &path, &alice, None).await;
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "query", "{query}");
    }
}

#[tokio::test]
async fn live_reader_never_skips_a_message() {
    let app = spawn_app().await;
    let (_, alice) = app.user("alice@example.test").await;
    let (bob_id, bob) = app.user("bob@example.test").await;
    let chat = create_direct(&app, &alice, bob_id).await;
    let path = format!("/chats/{}/messages", chat["id"]);

    // Writers send concurrently while a reader follows with `after=`; a
    // message that committed behind the reader's position would be lost.
    let mut writers = Vec::new();
    for writer in 0..4 {
        let token = if writer % 2 == 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        let client = app.client.clone();
        let url = app.url(&path);
        writers.push(tokio::spawn(async move {
            for index in 0..30 {
                let body = json!({ "body": format!("writer {writer} message {index}") });
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await;
                assert_eq!(response.unwrap().status(), 201);
            }
        }));
    }

    let mut seen: Vec<i64> = Vec::new();
    let mut after = 0;
    let mut writers_done = false;
    loop {
        let page_path = format!("{path}?after={after}&limit=200");
        let page = call_ok(&app, Method::GET, &page_path, &alice, None, 200).await;
        let page_ids = ids(&page["items"]);
        if let Some(last) = page_ids.last() {
            after = *last;
        }
        seen.extend(page_ids);
        if writers_done {
            break;
        }
        writers_done = writers.iter().all(|writer| writer.is_finished());
    }
    for writer in writers {
        writer.await.unwrap();
    }

    assert_eq!(seen.len(), 120);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 120);
}
