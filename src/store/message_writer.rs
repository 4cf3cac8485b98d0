//! Group commit for new messages on SQLite.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every
//! commit waits for an fsync, so one transaction per message caps the send
//! rate at the disk's fsync rate. Here one task owns message inserts: it
//! takes every send that is waiting, inserts them all in one transaction and
//! answers each request only after that transaction commits. A send is still
//! durable before its `201`, and since one task assigns ids in queue order,
//! ids commit in increasing order and `after=` paging never skips one.

use std::collections::HashMap;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::messages::{insert_message, touch_chat, Message, NewMessage};

/// Most messages committed in one transaction. Larger batches gain little
/// once the fsync is shared, and they delay the first sender of the batch.
const MAX_BATCH: usize = 512;

/// Sends waiting for the writer; a full queue makes senders wait their turn.
const QUEUE_CAPACITY: usize = 4096;

type Outcome = Result<(Message, bool), sqlx::Error>;

/// A send waiting for the writer, with owned fields so it can cross tasks.
struct PendingMessage {
    chat_id: i64,
    sender_id: i64,
    body: String,
    client_id: Option<String>,
    created_at: i64,
    reply: oneshot::Sender<Outcome>,
}

impl PendingMessage {
    fn as_new(&self) -> NewMessage<'_> {
        NewMessage {
            chat_id: self.chat_id,
            sender_id: self.sender_id,
            body: &self.body,
            client_id: self.client_id.as_deref(),
            created_at: self.created_at,
        }
    }
}

/// Handle to the task that inserts messages; cheap to clone.
#[derive(Clone, Debug)]
pub struct MessageWriter {
    queue: mpsc::Sender<PendingMessage>,
}

impl MessageWriter {
    /// Starts the writer task on the current Tokio runtime. It ends when the
    /// last handle is dropped.
    pub fn start(pool: AnyPool) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(pool, pending));
        Self { queue }
    }

    /// Queues a message and waits until the batch that contains it commits.
    /// Returns what [`Store::create_message`](super::Store::create_message)
    /// returns.
    pub async fn create(&self, new: &NewMessage<'_>) -> Outcome {
        let (reply, outcome) = oneshot::channel();
        let pending = PendingMessage {
            chat_id: new.chat_id,
            sender_id: new.sender_id,
            body: new.body.to_owned(),
            client_id: new.client_id.map(str::to_owned),
            created_at: new.created_at,
            reply,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        // The writer drops the reply only when its runtime shuts down.
        outcome.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

/// Takes whatever is queued, up to [`MAX_BATCH`], and commits it as one batch.
async fn run(pool: AnyPool, mut pending: mpsc::Receiver<PendingMessage>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let outcomes = match insert_batch(&pool, &batch).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::error!(%error, messages = batch.len(), "failed to commit a batch of messages");
                batch.iter().map(|_| Err(copy_error(&error))).collect()
            }
        };
        for (message, outcome) in batch.drain(..).zip(outcomes) {
            // A sender that gave up waiting has dropped its receiver; its
            // message is stored all the same, as a retry with the same
            // `client_id` will find.
            let _ = message.reply.send(outcome);
        }
    }
}

/// Inserts a batch in one transaction and returns one outcome per message.
/// A message that breaks a constraint (its chat was deleted meanwhile, for
/// example) fails alone, because SQLite undoes only the failed statement.
/// Any other error may have rolled back the whole transaction, so it fails
/// the batch. An `Err` means nothing was stored.
async fn insert_batch(
    pool: &AnyPool,
    batch: &[PendingMessage],
) -> Result<Vec<Outcome>, sqlx::Error> {
    let mut transaction = pool.begin().await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    // Latest send time per chat, so each chat's row is updated once.
    let mut activity: HashMap<i64, i64> = HashMap::new();
    for message in batch {
        let outcome = insert_message(&mut transaction, &message.as_new()).await;
        if let Err(error) = &outcome {
            if !is_constraint_violation(error) {
                return Err(copy_error(error));
            }
        }
        if matches!(outcome, Ok((_, true))) {
            let latest = activity.entry(message.chat_id).or_insert(i64::MIN);
            *latest = (*latest).max(message.created_at);
        }
        outcomes.push(outcome);
    }
    for (chat_id, at) in activity {
        touch_chat(&mut transaction, chat_id, at).await?;
    }
    transaction.commit().await?;
    Ok(outcomes)
}

fn is_constraint_violation(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database) = error else {
        return false;
    };
    !matches!(database.kind(), sqlx::error::ErrorKind::Other)
}

/// Gives each message of a failed batch its own copy of the error, keeping
/// the kinds that the HTTP layer answers with 503 rather than 500.
fn copy_error(error: &sqlx::Error) -> sqlx::Error {
    match error {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        sqlx::Error::Io(io) => sqlx::Error::Io(std::io::Error::new(io.kind(), io.to_string())),
        other => sqlx::Error::Protocol(format!("the batch of messages was not stored: {other}")),
    }
}
