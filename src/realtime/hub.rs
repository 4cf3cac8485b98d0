//! The registry of open sockets on this instance and the fan-out of events
//! to them.
//!
//! Publishing never waits on a socket: each has a bounded queue, and a socket
//! whose queue is full is closed with 4008 so one slow client cannot grow
//! memory or hold up the others. No lock is held across an `.await`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use dashmap::DashMap;
use tokio::sync::{mpsc, watch};

use super::bus::{BusMessage, BusSender};

/// Close code for a token that was revoked or expired.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;
/// Close code for a client that does not read its events fast enough.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code when the server shuts down (RFC 6455 "going away").
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code for a socket beyond the user's maximum of open sockets.
pub const CLOSE_TOO_MANY_SOCKETS: u16 = 4029;

/// An event serialised once, shared by every socket it is sent to.
pub type Frame = Arc<str>;

/// Registry entry for one open socket.
struct SocketEntry {
    id: u64,
    token_id: u128,
    session_id: Option<u128>,
    /// `iat` of the socket's token, to close only sockets older than a cut-off.
    issued_at: i64,
    queue: mpsc::Sender<Frame>,
    close: watch::Sender<Option<u16>>,
}

impl SocketEntry {
    fn close(&self, code: u16) {
        // `send_if_modified` keeps the first close code: a later one must not replace it.
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(code);
                true
            } else {
                false
            }
        });
    }
}

/// Identity of a socket being registered.
#[derive(Clone, Copy, Debug)]
pub struct SocketIdentity {
    pub user_id: i64,
    pub token_id: u128,
    pub session_id: Option<u128>,
    pub issued_at: i64,
}

/// A user already has the maximum number of open sockets on this instance.
#[derive(Debug, thiserror::Error)]
#[error("at most {max} WebSockets may be open per user")]
pub struct TooManySockets {
    pub max: usize,
}

/// The receiving half a socket task reads from.
pub struct Subscription {
    pub events: mpsc::Receiver<Frame>,
    pub close: watch::Receiver<Option<u16>>,
    /// Removes the socket from the hub when dropped.
    pub guard: SubscriptionGuard,
}

/// Deregisters its socket on drop, however the socket task ends.
pub struct SubscriptionGuard {
    hub: Hub,
    user_id: i64,
    socket_id: u64,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.hub.remove(self.user_id, self.socket_id);
    }
}

/// Registry of this instance's sockets; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubInner>,
}

struct HubInner {
    /// Open sockets by user id.
    sockets: DashMap<i64, Vec<SocketEntry>>,
    next_id: AtomicU64,
    open: AtomicUsize,
    queue_capacity: usize,
    /// Open sockets one user may hold on this instance.
    max_sockets_per_user: usize,
    delivered: AtomicU64,
    closing: watch::Sender<bool>,
    /// Set when Redis connects the instances; everything local is also sent here.
    bus: OnceLock<BusSender>,
}

impl Hub {
    /// Creates a hub whose sockets each queue at most `queue_capacity`
    /// events, with at most `max_sockets_per_user` sockets per user.
    pub fn new(queue_capacity: usize, max_sockets_per_user: usize) -> Self {
        Self {
            inner: Arc::new(HubInner {
                sockets: DashMap::new(),
                next_id: AtomicU64::new(1),
                open: AtomicUsize::new(0),
                queue_capacity: queue_capacity.max(1),
                max_sockets_per_user: max_sockets_per_user.max(1),
                delivered: AtomicU64::new(0),
                closing: watch::Sender::new(false),
                bus: OnceLock::new(),
            }),
        }
    }

    /// Registers a socket and returns its queue, close signal and guard, or
    /// rejects it when the user already holds the maximum of open sockets.
    pub fn subscribe(&self, identity: SocketIdentity) -> Result<Subscription, TooManySockets> {
        let (queue, events) = mpsc::channel(self.inner.queue_capacity);
        let (close, close_rx) = watch::channel(None);
        let socket_id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let entry = SocketEntry {
            id: socket_id,
            token_id: identity.token_id,
            session_id: identity.session_id,
            issued_at: identity.issued_at,
            queue,
            close,
        };
        // A socket registered while shutting down is closed at once.
        if *self.inner.closing.borrow() {
            entry.close(CLOSE_GOING_AWAY);
        }
        // The count and the insert happen under one shard lock, so parallel
        // connects of one user cannot both take the last free place.
        let mut entries = self.inner.sockets.entry(identity.user_id).or_default();
        if entries.len() >= self.inner.max_sockets_per_user {
            return Err(TooManySockets {
                max: self.inner.max_sockets_per_user,
            });
        }
        entries.push(entry);
        drop(entries);
        self.inner.open.fetch_add(1, Ordering::Relaxed);
        Ok(Subscription {
            events,
            close: close_rx,
            guard: SubscriptionGuard {
                hub: self.clone(),
                user_id: identity.user_id,
                socket_id,
            },
        })
    }

    /// Returns whether `user_id` already has the maximum number of open sockets.
    pub fn user_at_socket_limit(&self, user_id: i64) -> bool {
        self.inner
            .sockets
            .get(&user_id)
            .is_some_and(|entries| entries.len() >= self.inner.max_sockets_per_user)
    }

    fn remove(&self, user_id: i64, socket_id: u64) {
        let removed = match self.inner.sockets.get_mut(&user_id) {
            Some(mut entries) => {
                let before = entries.len();
                entries.retain(|entry| entry.id != socket_id);
                entries.len() < before
            }
            None => false,
        };
        // The emptiness check runs under the shard lock, so a socket the same
        // user registers concurrently is never dropped with the slot.
        self.inner
            .sockets
            .remove_if(&user_id, |_, entries| entries.is_empty());
        if removed {
            self.inner.open.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Connects this hub to the other instances. Only the first call counts.
    pub fn attach_bus(&self, bus: BusSender) {
        let _ = self.inner.bus.set(bus);
    }

    fn broadcast(&self, message: impl FnOnce() -> BusMessage) {
        if let Some(bus) = self.inner.bus.get() {
            bus.send(message());
        }
    }

    /// Applies a message from another instance to this instance's sockets only.
    pub fn apply_remote(&self, message: BusMessage) {
        match message {
            BusMessage::Deliver { recipients, frame } => {
                self.deliver_local(&recipients, Arc::from(frame))
            }
            BusMessage::RevokeToken { token_id } => {
                if let Ok(token_id) = u128::from_str_radix(&token_id, 16) {
                    self.close_matching(CLOSE_UNAUTHORIZED, |entry| entry.token_id == token_id);
                }
            }
            BusMessage::RevokeSession { session_id } => {
                if let Ok(session_id) = u128::from_str_radix(&session_id, 16) {
                    self.close_matching(CLOSE_UNAUTHORIZED, |entry| {
                        entry.session_id == Some(session_id)
                    });
                }
            }
            BusMessage::CloseUser { user_id } => self.close_user_local(user_id, i64::MAX),
            BusMessage::CloseUserBefore { user_id, cutoff } => {
                self.close_user_local(user_id, cutoff)
            }
        }
    }

    /// Serialises `event` once and delivers it to every open socket of each
    /// recipient, on this instance and, through the bus, on the others.
    /// Never waits: a socket whose queue is full is closed with 4008, and its
    /// client catches up over REST.
    pub fn publish<E: serde::Serialize>(&self, recipients: &[i64], event: &E) {
        let json = match serde_json::to_string(event) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(%error, "failed to serialise an event");
                return;
            }
        };
        self.broadcast(|| BusMessage::Deliver {
            recipients: recipients.to_vec(),
            frame: json.clone(),
        });
        self.deliver_local(recipients, Arc::from(json));
    }

    /// Delivers an already serialised event (a JSON object) to this instance's sockets.
    pub fn deliver_local(&self, recipients: &[i64], frame: Frame) {
        let mut delivered = 0;
        for user_id in recipients {
            let Some(entries) = self.inner.sockets.get(user_id) else {
                continue;
            };
            // A closing socket stays registered until its close frame is
            // out; it gets no more events, and is not reported slow again.
            for entry in entries
                .iter()
                .filter(|entry| entry.close.borrow().is_none())
            {
                match entry.queue.try_send(frame.clone()) {
                    Ok(()) => delivered += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::info!(user_id, socket_id = entry.id, "socket too slow; closing");
                        entry.close(CLOSE_TOO_SLOW);
                    }
                    // The socket task has ended and its guard is about to remove it.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        self.inner.delivered.fetch_add(delivered, Ordering::Relaxed);
    }

    /// Closes every socket authenticated with this token id (after logout).
    pub fn token_revoked(&self, token_id: u128) {
        self.broadcast(|| BusMessage::RevokeToken {
            token_id: format!("{token_id:x}"),
        });
        self.close_matching(CLOSE_UNAUTHORIZED, |entry| entry.token_id == token_id);
    }

    /// Closes every socket of a session that has ended.
    pub fn session_revoked(&self, session_id: u128) {
        self.broadcast(|| BusMessage::RevokeSession {
            session_id: format!("{session_id:x}"),
        });
        self.close_matching(CLOSE_UNAUTHORIZED, |entry| {
            entry.session_id == Some(session_id)
        });
    }

    /// Closes every socket of a user, for example when the account is disabled.
    pub fn close_user(&self, user_id: i64) {
        self.broadcast(|| BusMessage::CloseUser { user_id });
        self.close_user_local(user_id, i64::MAX);
    }

    /// Closes a user's sockets whose tokens were issued before `cutoff` (seconds).
    pub fn close_user_before(&self, user_id: i64, cutoff: i64) {
        self.broadcast(|| BusMessage::CloseUserBefore { user_id, cutoff });
        self.close_user_local(user_id, cutoff);
    }

    /// Closes this instance's sockets of the given ended sessions in one
    /// scan, without telling the other instances; each of them finds the
    /// same sessions in its own revocation sync.
    pub fn close_sessions_local(&self, session_ids: &HashSet<u128>) {
        if session_ids.is_empty() {
            return;
        }
        self.close_matching(CLOSE_UNAUTHORIZED, |entry| {
            entry
                .session_id
                .is_some_and(|session_id| session_ids.contains(&session_id))
        });
    }

    /// Closes this instance's sockets of `user_id` whose tokens were issued
    /// before `cutoff` (seconds), without telling the other instances.
    pub fn close_user_local(&self, user_id: i64, cutoff: i64) {
        if let Some(entries) = self.inner.sockets.get(&user_id) {
            entries
                .iter()
                .filter(|entry| entry.issued_at < cutoff)
                .for_each(|entry| entry.close(CLOSE_UNAUTHORIZED));
        }
    }

    /// Visits every socket. Logouts are rare next to messages, so a scan
    /// here is cheaper than keeping a second index up to date on every connect.
    fn close_matching(&self, code: u16, matches: impl Fn(&SocketEntry) -> bool) {
        for entries in self.inner.sockets.iter() {
            entries
                .iter()
                .filter(|entry| matches(entry))
                .for_each(|entry| entry.close(code));
        }
    }

    /// Closes every socket with 1001 and refuses new ones, for shutdown.
    pub fn close_all(&self) {
        self.inner.closing.send_replace(true);
        self.close_matching(CLOSE_GOING_AWAY, |_| true);
    }

    /// Returns the number of open sockets on this instance.
    pub fn open_sockets(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Returns the number of events queued to sockets since start.
    pub fn delivered_events(&self) -> u64 {
        self.inner.delivered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(user_id: i64, token_id: u128) -> SocketIdentity {
        SocketIdentity {
            user_id,
            token_id,
            session_id: None,
            issued_at: 100,
        }
    }

    #[tokio::test]
    async fn delivers_to_recipients_only() {
        let hub = Hub::new(8, 4);
        let mut alice = hub.subscribe(identity(1, 10)).unwrap();
        let mut bob = hub.subscribe(identity(2, 20)).unwrap();
        hub.publish(&[1], &serde_json::json!({ "type": "ping" }));
        assert_eq!(&*alice.events.recv().await.unwrap(), r#"{"type":"ping"}"#);
        assert!(bob.events.try_recv().is_err());
    }

    #[tokio::test]
    async fn full_queue_closes_socket() {
        let hub = Hub::new(2, 4);
        let slow = hub.subscribe(identity(1, 10)).unwrap();
        for _ in 0..3 {
            hub.deliver_local(&[1], Arc::from("{}"));
        }
        assert_eq!(*slow.close.borrow(), Some(CLOSE_TOO_SLOW));
    }

    #[tokio::test]
    async fn closing_socket_gets_no_events() {
        let hub = Hub::new(2, 4);
        let mut closing = hub.subscribe(identity(1, 10)).unwrap();
        hub.close_user(1);
        hub.deliver_local(&[1], Arc::from("{}"));
        assert!(closing.events.try_recv().is_err());
        assert_eq!(*closing.close.borrow(), Some(CLOSE_UNAUTHORIZED));
    }

    #[tokio::test]
    async fn revocation_closes_only_that_token() {
        let hub = Hub::new(2, 4);
        let first = hub.subscribe(identity(1, 10)).unwrap();
        let second = hub.subscribe(identity(1, 11)).unwrap();
        hub.token_revoked(10);
        assert_eq!(*first.close.borrow(), Some(CLOSE_UNAUTHORIZED));
        assert_eq!(*second.close.borrow(), None);
    }

    #[tokio::test]
    async fn socket_limit_is_per_user() {
        let hub = Hub::new(2, 2);
        let first = hub.subscribe(identity(1, 10)).unwrap();
        let _second = hub.subscribe(identity(1, 11)).unwrap();
        assert!(hub.user_at_socket_limit(1));
        assert!(hub.subscribe(identity(1, 12)).is_err());
        assert!(
            hub.subscribe(identity(2, 20)).is_ok(),
            "another user is not limited"
        );

        drop(first);
        assert!(!hub.user_at_socket_limit(1));
        assert!(
            hub.subscribe(identity(1, 13)).is_ok(),
            "a closed socket frees its place"
        );
    }

    #[tokio::test]
    async fn guard_deregisters_socket() {
        let hub = Hub::new(2, 4);
        let subscription = hub.subscribe(identity(1, 10)).unwrap();
        assert_eq!(hub.open_sockets(), 1);
        drop(subscription);
        assert_eq!(hub.open_sockets(), 0);
        hub.deliver_local(&[1], Arc::from("{}"));
    }
}
