//! Chat events over real WebSockets: which members receive each event.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};
use crate::ws::{assert_silent, connect, next_event, next_event_of, send_json};

/// Quiet period after which a socket is taken to have received nothing.
const QUIET: Duration = Duration::from_millis(300);

async fn post(app: &TestApp, path: &str, token: &str, body: Value, status: u16) -> Value {
    let response = app.post_json(path, &body, Some(token)).await;
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "POST {path} returned {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn send(app: &TestApp, token: &str, chat_id: i64, body: &str) -> Value {
    let path = format!("/chats/{chat_id}/messages");
    post(app, &path, token, json!({ "body": body }), 201).await
}

/// Opens a direct chat from `token`'s user to `other` and returns its id.
async fn open_direct(app: &TestApp, token: &str, other: i64) -> i64 {
    let body = json!({ "kind": "direct", "user_id": other });
    let chat = post(app, "/chats", token, body, 201).await;
    chat["id"].as_i64().unwrap()
}

async fn history_after(app: &TestApp, token: &str, chat_id: i64, after: i64) -> Vec<Value> {
    let path = format!("/chats/{chat_id}/messages?after={after}&limit=200");
    let response = app.get(&path, Some(token)).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn two_users_chat_live() {
    let app = spawn_app().await;
    let (ann, ann_token) = app.user("ann@example.test").await;
    let (bob, bob_token) = app.user("bob@example.test").await;
    let mut ann_socket = connect(&app, &ann_token).await;
    let mut bob_socket = connect(&app, &bob_token).await;

    let chat_id = open_direct(&app, &ann_token, bob).await;
    let created = next_event_of(&mut bob_socket, "chat.created").await;
    assert_eq!(created["chat"]["id"], chat_id);

    let sent = send(&app, &ann_token, chat_id, "Hi Bob").await;
    for socket in [&mut ann_socket, &mut bob_socket] {
        let event = next_event_of(socket, "message.created").await;
        assert_eq!(event["chat_id"], chat_id);
        assert_eq!(
            event["message"], sent,
            "the event carries the stored message"
        );
    }

    let reply = send(&app, &bob_token, chat_id, "Hi Ann").await;
    let event = next_event_of(&mut ann_socket, "message.created").await;
    assert_eq!(event["message"]["id"], reply["id"]);
    assert_eq!(event["message"]["sender_id"], bob);
    assert_eq!(event["message"]["body"], "Hi Ann");

    let path = format!("/chats/{chat_id}/messages/{}", sent["id"]);
    let edited = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&ann_token)
        .json(&json!({ "body": "Hi Bob!" }))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let event = next_event_of(&mut bob_socket, "message.updated").await;
    assert_eq!(event["message"]["body"], "Hi Bob!");
    assert!(event["message"]["edited_at"].is_string());

    let deleted = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&ann_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let event = next_event_of(&mut bob_socket, "message.deleted").await;
    assert_eq!(event["message"]["id"], sent["id"]);
    assert!(event["message"]["body"].is_null());

    let read_path = format!("/chats/{chat_id}/read");
    let read = app
        .post_json(
            &read_path,
            &json!({ "message_id": reply["id"] }),
            Some(&ann_token),
        )
        .await;
    assert!(read.status().is_success());
    let event = next_event_of(&mut bob_socket, "read.updated").await;
    assert_eq!(event["user_id"], ann);
    assert_eq!(event["message_id"], reply["id"]);
}

#[tokio::test]
async fn sequence_numbers_count_up_per_socket() {
    let app = spawn_app().await;
    let (_, ann_token) = app.user("ann@example.test").await;
    let (bob, _) = app.user("bob@example.test").await;
    let chat_id = open_direct(&app, &ann_token, bob).await;
    let mut socket = connect(&app, &ann_token).await;

    let mut last = None;
    for n in 0..5 {
        send(&app, &ann_token, chat_id, &format!("message {n}")).await;
        let event = next_event_of(&mut socket, "message.created").await;
        let seq = event["seq"].as_u64().expect("every event carries seq");
        if let Some(last) = last {
            assert_eq!(seq, last + 1, "no gap without a missed event");
        }
        last = Some(seq);
    }
}

#[tokio::test]
async fn typing_reaches_the_other_members_only() {
    let app = spawn_app().await;
    let (ann, ann_token) = app.user("ann@example.test").await;
    let (bob, bob_token) = app.user("bob@example.test").await;
    let (_, eve_token) = app.user("eve@example.test").await;
    let chat_id = open_direct(&app, &ann_token, bob).await;
    let mut ann_socket = connect(&app, &ann_token).await;
    let mut bob_socket = connect(&app, &bob_token).await;
    let mut eve_socket = connect(&app, &eve_token).await;

    send_json(
        &mut ann_socket,
        &json!({ "type": "typing", "chat_id": chat_id }),
    )
    .await;
    let typing = next_event_of(&mut bob_socket, "typing").await;
    assert_eq!(typing["chat_id"], chat_id);
    assert_eq!(typing["user_id"], ann);
    assert_silent(&mut ann_socket, QUIET).await;
    assert_silent(&mut eve_socket, QUIET).await;

    // A non-member's notice is rejected and reaches no one. The socket stays open.
    send_json(
        &mut eve_socket,
        &json!({ "type": "typing", "chat_id": chat_id }),
    )
    .await;
    let error = next_event(&mut eve_socket).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "chat_not_found");
    assert_silent(&mut bob_socket, QUIET).await;
    let history = history_after(&app, &ann_token, chat_id, 0).await;
    assert!(history.is_empty(), "typing notices are not stored");
}

#[tokio::test]
async fn removed_member_receives_nothing_more() {
    let app = spawn_app().await;
    let (_, owner_token) = app.user("owner@example.test").await;
    let (kim, kim_token) = app.user("kim@example.test").await;
    let (lee, lee_token) = app.user("lee@example.test").await;
    let group = post(
        &app,
        "/chats",
        &owner_token,
        json!({ "kind": "group", "title": "Team", "member_ids": [kim, lee] }),
        201,
    )
    .await;
    let chat_id = group["id"].as_i64().unwrap();
    let mut kim_socket = connect(&app, &kim_token).await;
    let mut lee_socket = connect(&app, &lee_token).await;

    send(&app, &owner_token, chat_id, "before").await;
    next_event_of(&mut kim_socket, "message.created").await;
    next_event_of(&mut lee_socket, "message.created").await;

    let path = format!("/chats/{chat_id}/members/{kim}");
    let removed = app
        .client
        .delete(app.url(&path))
        .bearer_auth(&owner_token)
        .send()
        .await
        .unwrap();
    assert_eq!(removed.status(), 204);
    let notice = next_event_of(&mut kim_socket, "member.removed").await;
    assert_eq!(notice["user_id"], kim);

    send(&app, &owner_token, chat_id, "after").await;
    let event = next_event_of(&mut lee_socket, "message.created").await;
    assert_eq!(event["message"]["body"], "after");
    assert_silent(&mut kim_socket, QUIET).await;

    send_json(
        &mut kim_socket,
        &json!({ "type": "typing", "chat_id": chat_id }),
    )
    .await;
    let error = next_event(&mut kim_socket).await;
    assert_eq!(error["code"], "chat_not_found");
    assert_silent(&mut lee_socket, QUIET).await;
}

#[tokio::test]
async fn added_member_receives_chat_events() {
    let app = spawn_app().await;
    let (_, owner_token) = app.user("owner@example.test").await;
    let (kim, kim_token) = app.user("kim@example.test").await;
    let group = post(
        &app,
        "/chats",
        &owner_token,
        json!({ "kind": "group", "title": "Team", "member_ids": [] }),
        201,
    )
    .await;
    let chat_id = group["id"].as_i64().unwrap();
    let mut kim_socket = connect(&app, &kim_token).await;

    let path = format!("/chats/{chat_id}/members");
    post(&app, &path, &owner_token, json!({ "user_id": kim }), 201).await;
    let created = next_event_of(&mut kim_socket, "chat.created").await;
    assert_eq!(created["chat"]["id"], chat_id);
    send(&app, &owner_token, chat_id, "welcome").await;
    let event = next_event_of(&mut kim_socket, "message.created").await;
    assert_eq!(event["message"]["body"], "welcome");
}

#[tokio::test]
async fn reconnect_catches_up_over_rest() {
    let app = spawn_app().await;
    let (_, ann_token) = app.user("ann@example.test").await;
    let (bob, bob_token) = app.user("bob@example.test").await;
    let chat_id = open_direct(&app, &ann_token, bob).await;

    let mut bob_socket = connect(&app, &bob_token).await;
    send(&app, &ann_token, chat_id, "seen live").await;
    let seen = next_event_of(&mut bob_socket, "message.created").await;
    let last_seen = seen["message"]["id"].as_i64().unwrap();
    drop(bob_socket);

    let mut missed = Vec::new();
    for n in 0..5 {
        missed.push(send(&app, &ann_token, chat_id, &format!("missed {n}")).await);
    }

    let mut bob_socket = connect(&app, &bob_token).await;
    let caught_up = history_after(&app, &bob_token, chat_id, last_seen).await;
    assert_eq!(caught_up, missed, "every missed message, in order, once");
    let live = send(&app, &ann_token, chat_id, "live again").await;
    let event = next_event_of(&mut bob_socket, "message.created").await;
    assert_eq!(event["message"]["id"], live["id"]);
}
