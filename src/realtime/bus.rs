//! Cross-instance delivery through Redis pub/sub.
//!
//! Every instance delivers its own events to its own sockets at once, and
//! also publishes them on one channel; the other instances deliver them to
//! theirs. Socket-closing orders (logout, disabled accounts) travel the same
//! way. Pub/sub is fire-and-forget: an instance that misses an event while
//! disconnected leaves its clients to catch up over REST, as after any drop.

use std::time::Duration;

use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::hub::Hub;
use crate::store::redis::RedisSettings;

/// Messages queued for publishing before new ones are dropped (and counted).
const OUTBOX_CAPACITY: usize = 16 * 1024;
/// Wait before reconnecting after the subscription fails.
const RECONNECT_DELAY: Duration = Duration::from_millis(250);

/// What one instance tells the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BusMessage {
    /// An event (a JSON object as text) for these users' sockets.
    Deliver { recipients: Vec<i64>, frame: String },
    /// Close sockets authenticated with this token id (hex).
    RevokeToken { token_id: String },
    /// Close sockets of this session (hex).
    RevokeSession { session_id: String },
    /// Close every socket of this user.
    CloseUser { user_id: i64 },
    /// Close this user's sockets whose tokens were issued before `cutoff`.
    CloseUserBefore { user_id: i64, cutoff: i64 },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// Sender's instance id, so an instance ignores its own messages.
    origin: String,
    #[serde(flatten)]
    message: BusMessage,
}

/// Sending half handed to the hub.
#[derive(Clone)]
pub struct BusSender {
    outbox: mpsc::Sender<BusMessage>,
}

impl BusSender {
    /// Queues a message for the other instances without waiting.
    pub fn send(&self, message: BusMessage) {
        if self.outbox.try_send(message).is_err() {
            tracing::warn!("event bus outbox full or closed; dropping a cross-instance message");
        }
    }
}

/// Starts the publisher and subscriber tasks and returns the sender for the hub.
pub async fn start(
    settings: RedisSettings,
    hub: Hub,
) -> anyhow::Result<(BusSender, Vec<JoinHandle<()>>)> {
    let origin = format!("{:032x}", rand::random::<u128>());
    let channel = settings.key("events");
    let connection = settings.connect().await?;
    let (outbox, queued) = mpsc::channel(OUTBOX_CAPACITY);

    let publisher = tokio::spawn(publish_loop(
        connection,
        channel.clone(),
        origin.clone(),
        queued,
    ));
    let subscriber = tokio::spawn(subscribe_loop(settings, channel, origin, hub));
    Ok((BusSender { outbox }, vec![publisher, subscriber]))
}

async fn publish_loop(
    mut connection: redis::aio::ConnectionManager,
    channel: String,
    origin: String,
    mut queued: mpsc::Receiver<BusMessage>,
) {
    while let Some(message) = queued.recv().await {
        let envelope = Envelope {
            origin: origin.clone(),
            message,
        };
        let Ok(payload) = serde_json::to_string(&envelope) else {
            continue;
        };
        let published = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(payload)
            .query_async::<i64>(&mut connection)
            .await;
        if let Err(error) = published {
            // The connection manager reconnects on the next command.
            tracing::warn!(%error, "failed to publish to the event bus");
        }
    }
}

async fn subscribe_loop(settings: RedisSettings, channel: String, origin: String, hub: Hub) {
    loop {
        match subscribe_once(&settings, &channel, &origin, &hub).await {
            Ok(()) => tracing::warn!("event bus subscription ended; reconnecting"),
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "event bus subscription failed; reconnecting")
            }
        }
        tokio::time::sleep(RECONNECT_DELAY).await;
    }
}

async fn subscribe_once(
    settings: &RedisSettings,
    channel: &str,
    origin: &str,
    hub: &Hub,
) -> anyhow::Result<()> {
    let client = settings.client()?;
    let mut pubsub = tokio::time::timeout(settings.timeout, client.get_async_pubsub()).await??;
    tokio::time::timeout(settings.timeout, pubsub.subscribe(channel)).await??;
    tracing::info!("subscribed to the event bus");
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let Ok(payload) = message.get_payload::<String>() else {
            continue;
        };
        match serde_json::from_str::<Envelope>(&payload) {
            Ok(envelope) if envelope.origin == origin => {}
            Ok(envelope) => hub.apply_remote(envelope.message),
            Err(error) => tracing::warn!(%error, "ignoring a malformed event bus message"),
        }
    }
    Ok(())
}
