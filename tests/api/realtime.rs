use std::time::Duration;

use futures_util::SinkExt as _;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{spawn_app, spawn_app_with};
use crate::ws::{
    assert_silent, close_code, connect, connect_anonymous, next_event, next_event_of, send_json,
    WAIT,
};

#[tokio::test]
async fn header_auth_sends_ready() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("ann@example.test").await;
    let mut socket = connect(&app, &token).await;
    send_json(&mut socket, &json!({ "type": "nonsense" })).await;
    let error = next_event(&mut socket).await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["seq"], 2, "ready is 1, so the error is 2");
    assert!(user_id > 0);
}

#[tokio::test]
async fn first_frame_auth_sends_ready() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("ann@example.test").await;
    let mut socket = connect_anonymous(&app).await;
    send_json(&mut socket, &json!({ "type": "auth", "token": token })).await;
    let ready = next_event(&mut socket).await;
    assert_eq!(ready["type"], "ready");
    assert_eq!(ready["user_id"], user_id);
    assert_eq!(ready["seq"], 1);
}

#[tokio::test]
async fn missing_auth_frame_closes_4401() {
    let app = spawn_app_with(|config| config.ws_auth_timeout = Duration::from_millis(300)).await;
    let mut socket = connect_anonymous(&app).await;
    assert_eq!(close_code(&mut socket, WAIT).await, 4401);
}

#[tokio::test]
async fn invalid_auth_frames_close_4401() {
    let app = spawn_app().await;
    let frames = [
        json!({ "type": "auth", "token": "garbage" }),
        json!({ "type": "typing", "chat_id": 1 }),
        json!({ "token": "x" }),
    ];
    for frame in frames {
        let mut socket = connect_anonymous(&app).await;
        send_json(&mut socket, &frame).await;
        assert_eq!(close_code(&mut socket, WAIT).await, 4401, "frame {frame}");
    }
}

#[tokio::test]
async fn invalid_header_token_is_rejected() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/ws"))
        .header("authorization", "Bearer not-a-token")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn plain_get_is_rejected() {
    let app = spawn_app().await;
    let response = app.get("/ws", None).await;
    crate::helpers::assert_problem(response, 400, "websocket_upgrade_required").await;
}

#[tokio::test]
async fn malformed_frames_keep_socket_open() {
    let app = spawn_app().await;
    let (_, token) = app.user("ann@example.test").await;
    let mut socket = connect(&app, &token).await;

    socket.send(Message::text("{not json")).await.unwrap();
    assert_eq!(next_event(&mut socket).await["code"], "invalid_frame");
    socket.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next_event(&mut socket).await["code"], "unsupported_frame");
    send_json(&mut socket, &json!({ "type": "typing", "chat_id": "x" })).await;
    assert_eq!(next_event(&mut socket).await["code"], "invalid_frame");
    send_json(&mut socket, &json!({ "type": "typing", "chat_id": 999 })).await;
    assert_eq!(next_event(&mut socket).await["code"], "chat_not_found");

    // The socket is still open: a repeated auth frame gets an error event.
    send_json(&mut socket, &json!({ "type": "auth", "token": token })).await;
    let answer = next_event(&mut socket).await;
    assert_eq!(answer["code"], "already_authenticated");
    assert_eq!(answer["seq"], 6);
}

#[tokio::test]
async fn logout_closes_socket_4401() {
    let app = spawn_app().await;
    let (_, token) = app.user("ann@example.test").await;
    let mut socket = connect(&app, &token).await;
    let logout = app
        .post_json("/auth/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(logout.status(), 200);
    assert_eq!(close_code(&mut socket, Duration::from_secs(1)).await, 4401);
}

#[tokio::test]
async fn logout_leaves_other_tokens_open() {
    let app = spawn_app().await;
    let (_, first) = app.user("ann@example.test").await;
    let login = app
        .post_json(
            "/auth/login",
            &json!({ "email": "ann@example.test", "password": crate::helpers::PASSWORD }),
            None,
        )
        .await;
    let second = login.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut kept = connect(&app, &second).await;
    let mut closed = connect(&app, &first).await;

    app.post_json("/auth/logout", &json!({}), Some(&first))
        .await;
    assert_eq!(close_code(&mut closed, Duration::from_secs(1)).await, 4401);
    send_json(&mut kept, &json!({ "type": "ping?" })).await;
    assert_eq!(next_event(&mut kept).await["type"], "error");
}

#[tokio::test]
async fn token_expiry_closes_4401() {
    let app = spawn_app_with(|config| config.access_token_ttl = Duration::from_secs(2)).await;
    let (_, token) = app.user("ann@example.test").await;
    let mut socket = connect(&app, &token).await;
    assert_eq!(close_code(&mut socket, Duration::from_secs(4)).await, 4401);
}

#[tokio::test]
async fn slow_consumer_closes_4008() {
    let app = spawn_app_with(|config| config.ws_queue_capacity = 16).await;
    let (slow_id, slow_token) = app.user("slow@example.test").await;
    let (fast_id, fast_token) = app.user("fast@example.test").await;
    let mut slow = connect(&app, &slow_token).await;
    let mut fast = connect(&app, &fast_token).await;

    // Large events fill the kernel's socket buffers quickly (a few MB on
    // loopback), and the slow client reads nothing until they are all sent.
    // It must then start reading at once: the server waits only a few
    // seconds for a close frame to get through before it drops the socket.
    let padding = "x".repeat(16 * 1024);
    let total = 800;
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < total {
            let event = next_event(&mut fast).await;
            if event["type"] == "test" {
                received += 1;
            }
        }
        received
    });
    for index in 0..total {
        let event = json!({ "type": "test", "index": index, "padding": padding });
        app.state.realtime.publish(&[slow_id, fast_id], &event);
        // Give the fast reader's task a chance to drain its queue.
        if index % 4 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    assert_eq!(close_code(&mut slow, Duration::from_secs(10)).await, 4008);
    assert_eq!(
        reader.await.unwrap(),
        total,
        "the fast consumer missed events"
    );
}

#[tokio::test]
async fn shutdown_closes_1001() {
    let app = spawn_app().await;
    let (_, token) = app.user("ann@example.test").await;
    let mut socket = connect(&app, &token).await;
    let stopping = tokio::spawn(app.stop());
    assert_eq!(close_code(&mut socket, WAIT).await, 1001);
    drop(socket);
    stopping.await.unwrap();
}

#[tokio::test]
async fn oversized_frame_closes_1009() {
    let app = spawn_app().await;
    let (_, token) = app.user("ann@example.test").await;
    let mut socket = connect(&app, &token).await;
    let huge = "x".repeat(app.config.max_body_bytes + 1);
    // The server may close before the whole frame is written.
    let _ = socket.send(Message::text(huge)).await;
    assert_eq!(close_code(&mut socket, WAIT).await, 1009);
}

#[tokio::test]
async fn events_reach_every_socket_of_user() {
    let app = spawn_app().await;
    let (user_id, token) = app.user("ann@example.test").await;
    let mut first = connect(&app, &token).await;
    let mut second = connect(&app, &token).await;
    app.state
        .realtime
        .publish(&[user_id], &json!({ "type": "test", "n": 1 }));
    for socket in [&mut first, &mut second] {
        let event = next_event_of(socket, "test").await;
        assert_eq!(event["n"], 1);
        assert_eq!(event["seq"], 2);
    }
}

#[tokio::test]
async fn events_skip_other_users() {
    let app = spawn_app().await;
    let (ann_id, ann_token) = app.user("ann@example.test").await;
    let (_, bob_token) = app.user("bob@example.test").await;
    let mut ann = connect(&app, &ann_token).await;
    let mut bob = connect(&app, &bob_token).await;
    app.state
        .realtime
        .publish(&[ann_id], &json!({ "type": "test" }));
    assert_eq!(next_event(&mut ann).await["type"], "test");
    assert_silent(&mut bob, Duration::from_millis(300)).await;
}
