//! Graceful shutdown: messages sent while the server stops and starts again
//! are either stored once or retried until they are, never lost or doubled.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::spawn_app;

const SENDERS: usize = 4;

/// What the sending tasks share with the test.
#[derive(Default)]
struct Progress {
    /// Base URL of the running server; it stays the same across the restart.
    base_url: RwLock<String>,
    /// Sends acknowledged with 201 or 200, by `client_id`, with the message id.
    acknowledged: Mutex<HashMap<String, (u16, i64)>>,
    count: AtomicUsize,
    stop: AtomicBool,
}

/// Sends messages one after another, retrying each with the same
/// `client_id` until the server acknowledges it.
async fn send_continuously(progress: Arc<Progress>, sender: usize, chat_id: i64, token: String) {
    let client = reqwest::Client::new();
    let mut sequence = 0;
    while !progress.stop.load(Ordering::Relaxed) {
        sequence += 1;
        let client_id = format!("sender{sender}-{sequence}");
        let body = json!({ "body": format!("message {client_id}"), "client_id": client_id });
        loop {
            let url = format!(
                "{}/chats/{chat_id}/messages",
                progress.base_url.read().unwrap()
            );
            let sent = client
                .post(url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await;
            let response = match sent {
                Ok(response) if matches!(response.status().as_u16(), 200 | 201) => response,
                // Refused, reset or 503 while the server stops: not acknowledged, so retry.
                Ok(_) | Err(_) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            let Ok(message) = response.json::<Value>().await else {
                continue;
            };
            let id = message["id"].as_i64().unwrap();
            let previous = progress
                .acknowledged
                .lock()
                .unwrap()
                .insert(client_id.clone(), (status, id));
            assert!(previous.is_none(), "{client_id} acknowledged twice");
            progress.count.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
}

async fn wait_for_count(progress: &Progress, at_least: usize) {
    while progress.count.load(Ordering::Relaxed) < at_least {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reads the whole history of a chat, oldest first.
async fn history(app: &crate::helpers::TestApp, chat_id: i64, token: &str) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = app
            .get(
                &format!("/chats/{chat_id}/messages?after={after}&limit=200"),
                Some(token),
            )
            .await
            .json()
            .await
            .unwrap();
        let page_items = page["items"].as_array().unwrap().clone();
        if let Some(last) = page_items.last() {
            after = last["id"].as_i64().unwrap();
        }
        items.extend(page_items);
        if page["has_more"] != true {
            return items;
        }
    }
}

#[tokio::test]
async fn restart_loses_and_doubles_nothing() {
    let mut app = spawn_app().await;
    let (_, ann) = app.user("ann@example.test").await;
    let (bob_id, _) = app.user("bob@example.test").await;
    let chat: Value = app
        .post_json(
            "/chats",
            &json!({ "kind": "direct", "user_id": bob_id }),
            Some(&ann),
        )
        .await
        .json()
        .await
        .unwrap();
    let chat_id = chat["id"].as_i64().unwrap();

    // The restarted server binds the same port, so senders keep their URL.
    app.config.addr = app.address;
    let progress = Arc::new(Progress::default());
    *progress.base_url.write().unwrap() = app.url("");
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            tokio::spawn(send_continuously(
                progress.clone(),
                sender,
                chat_id,
                ann.clone(),
            ))
        })
        .collect();

    wait_for_count(&progress, 40).await;
    let app = app.restart().await;
    let after_restart = progress.count.load(Ordering::Relaxed);
    wait_for_count(&progress, after_restart + 40).await;
    progress.stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.expect("a sending task panicked");
    }

    let acknowledged = progress.acknowledged.lock().unwrap().clone();
    let stored = history(&app, chat_id, &ann).await;
    let stored_ids: HashSet<i64> = stored.iter().map(|m| m["id"].as_i64().unwrap()).collect();
    let mut stored_client_ids = HashSet::new();
    for message in &stored {
        let client_id = message["client_id"].as_str().unwrap().to_owned();
        assert!(
            stored_client_ids.insert(client_id.clone()),
            "{client_id} is stored twice"
        );
        assert!(
            acknowledged.contains_key(&client_id),
            "{client_id} is stored but was never acknowledged"
        );
    }
    for (client_id, (status, id)) in &acknowledged {
        assert!(
            stored_ids.contains(id),
            "{client_id} got {status} with id {id} but is not in the history"
        );
    }
    assert_eq!(stored.len(), acknowledged.len());
    let created = acknowledged
        .values()
        .filter(|(status, _)| *status == 201)
        .count();
    assert!(created > 0, "no send was answered with 201");
}
