//! The revocation list: token and session ids that were revoked before their
//! tokens expired, and per-user cut-off times.
//!
//! An entry only needs to live until the tokens it covers would have expired
//! anyway, so each carries that expiry and a purge forgets it afterwards.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;
use dashmap::DashMap;

/// A revocation backend could not be reached. Callers must treat the token
/// as unusable (fail closed).
#[derive(Debug, thiserror::Error)]
#[error("revocation list unavailable: {0}")]
pub struct RevocationUnavailable(pub String);

/// Storage for revoked ids and user cut-offs. Times are seconds since the
/// Unix epoch. Token ids (`jti`) and session ids (`sid`) share one key space
/// because both are 128 random bits, so a collision has probability 2^-128.
#[async_trait]
pub trait RevocationList: Send + Sync + 'static {
    /// Revokes `token_id` until `expires_at`, the expiry of its token.
    async fn revoke(&self, token_id: u128, expires_at: i64) -> Result<(), RevocationUnavailable>;

    /// Returns whether `token_id` is revoked at `now`.
    async fn is_revoked(&self, token_id: u128, now: i64) -> Result<bool, RevocationUnavailable>;

    /// Forgets every entry that expired at or before `now`; returns how many.
    async fn purge_expired(&self, now: i64) -> Result<usize, RevocationUnavailable>;

    /// Returns the number of revoked ids currently held (cut-offs not included).
    async fn count(&self) -> Result<usize, RevocationUnavailable>;

    /// Rejects every access token of `user_id` issued before `cutoff`, until
    /// `expires_at`, when the last such token has expired. A cut-off never
    /// moves back: an earlier `cutoff` than the stored one is ignored.
    async fn set_user_cutoff(
        &self,
        user_id: i64,
        cutoff: i64,
        expires_at: i64,
    ) -> Result<(), RevocationUnavailable>;

    /// Returns the cut-off of `user_id`: tokens with an `iat` before it are rejected.
    async fn user_cutoff(&self, user_id: i64) -> Result<Option<i64>, RevocationUnavailable>;

    /// Looks up everything one request needs at once; a remote backend
    /// overrides this to answer in a single round trip.
    async fn token_status(
        &self,
        token_id: u128,
        session_id: u128,
        user_id: i64,
        now: i64,
    ) -> Result<TokenStatus, RevocationUnavailable> {
        Ok(TokenStatus {
            token_revoked: self.is_revoked(token_id, now).await?,
            session_revoked: self.is_revoked(session_id, now).await?,
            user_cutoff: self.user_cutoff(user_id).await?,
        })
    }
}

/// Revocation state of one access token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenStatus {
    pub token_revoked: bool,
    pub session_revoked: bool,
    pub user_cutoff: Option<i64>,
}

/// A user's cut-off and the time after which it no longer matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cutoff {
    cutoff: i64,
    expires_at: i64,
}

/// Entries the purge removes per lock acquisition, so lookups and logouts
/// never wait behind one long purge.
const PURGE_BATCH: usize = 4096;

/// In-process revocation list for single-instance deployments.
///
/// Lookups read only the sharded map, so they never contend with the purge
/// for one lock. The ordered expiry index lets a purge visit only the entries
/// that have expired instead of scanning every entry.
#[derive(Default)]
pub struct MemoryRevocationList {
    /// Token id to expiry.
    entries: DashMap<u128, i64>,
    /// (expiry, token id), ordered so the oldest entries come first.
    expiries: Mutex<BTreeSet<(i64, u128)>>,
    /// User id to cut-off. At most one entry per user, so the purge scans it
    /// whole instead of keeping an expiry index.
    cutoffs: DashMap<i64, Cutoff>,
}

impl MemoryRevocationList {
    pub fn new() -> Self {
        Self::default()
    }

    /// Synchronous core of [`RevocationList::revoke`], also used by benchmarks.
    pub fn insert(&self, token_id: u128, expires_at: i64) {
        let previous = self.entries.insert(token_id, expires_at);
        let mut expiries = self.lock_expiries();
        if let Some(previous) = previous {
            expiries.remove(&(previous, token_id));
        }
        expiries.insert((expires_at, token_id));
    }

    /// Synchronous core of [`RevocationList::is_revoked`].
    pub fn contains(&self, token_id: u128, now: i64) -> bool {
        self.entries
            .get(&token_id)
            .is_some_and(|expires_at| *expires_at > now)
    }

    /// Synchronous core of [`RevocationList::set_user_cutoff`].
    pub fn insert_cutoff(&self, user_id: i64, cutoff: i64, expires_at: i64) {
        let new = Cutoff { cutoff, expires_at };
        self.cutoffs
            .entry(user_id)
            .and_modify(|current| {
                if cutoff >= current.cutoff {
                    *current = Cutoff {
                        cutoff,
                        expires_at: expires_at.max(current.expires_at),
                    };
                }
            })
            .or_insert(new);
    }

    /// Synchronous core of [`RevocationList::user_cutoff`].
    pub fn cutoff(&self, user_id: i64) -> Option<i64> {
        self.cutoffs.get(&user_id).map(|entry| entry.cutoff)
    }

    /// Synchronous core of [`RevocationList::purge_expired`], which runs the
    /// same batches but yields to the async runtime between them. Returns the
    /// number of revoked ids removed (cut-offs are removed but not counted).
    pub fn purge(&self, now: i64) -> usize {
        self.cutoffs.retain(|_, entry| entry.expires_at > now);
        let mut removed = 0;
        loop {
            let (batch_removed, more) = self.purge_batch(now);
            removed += batch_removed;
            if !more {
                return removed;
            }
        }
    }

    /// Removes up to [`PURGE_BATCH`] expired entries. Returns how many were
    /// removed and whether expired entries may remain.
    fn purge_batch(&self, now: i64) -> (usize, bool) {
        let batch: Vec<(i64, u128)> = {
            let mut expiries = self.lock_expiries();
            let mut batch = Vec::with_capacity(PURGE_BATCH);
            while batch.len() < PURGE_BATCH {
                match expiries.first() {
                    Some(&(expires_at, _)) if expires_at <= now => {
                        if let Some(entry) = expiries.pop_first() {
                            batch.push(entry);
                        }
                    }
                    _ => break,
                }
            }
            batch
        };
        let more = batch.len() == PURGE_BATCH;
        let mut removed = 0;
        for (expires_at, token_id) in batch {
            // A concurrent re-revocation may have moved the expiry later; keep that entry.
            if self
                .entries
                .remove_if(&token_id, |_, current| *current == expires_at)
                .is_some()
            {
                removed += 1;
            }
        }
        (removed, more)
    }

    /// Returns the number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn lock_expiries(&self) -> std::sync::MutexGuard<'_, BTreeSet<(i64, u128)>> {
        // A panic while holding this lock cannot leave the set inconsistent
        // with itself, so a poisoned lock is still safe to use.
        self.expiries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke(&self, token_id: u128, expires_at: i64) -> Result<(), RevocationUnavailable> {
        self.insert(token_id, expires_at);
        Ok(())
    }

    async fn is_revoked(&self, token_id: u128, now: i64) -> Result<bool, RevocationUnavailable> {
        Ok(self.contains(token_id, now))
    }

    async fn purge_expired(&self, now: i64) -> Result<usize, RevocationUnavailable> {
        self.cutoffs.retain(|_, entry| entry.expires_at > now);
        // A million expired entries took about 150 ms to remove in
        // benches/auth.rs. Yielding after each batch keeps an async worker free.
        let mut removed = 0;
        loop {
            let (batch_removed, more) = self.purge_batch(now);
            removed += batch_removed;
            if !more {
                return Ok(removed);
            }
            tokio::task::yield_now().await;
        }
    }

    async fn count(&self) -> Result<usize, RevocationUnavailable> {
        Ok(self.len())
    }

    async fn set_user_cutoff(
        &self,
        user_id: i64,
        cutoff: i64,
        expires_at: i64,
    ) -> Result<(), RevocationUnavailable> {
        self.insert_cutoff(user_id, cutoff, expires_at);
        Ok(())
    }

    async fn user_cutoff(&self, user_id: i64) -> Result<Option<i64>, RevocationUnavailable> {
        Ok(self.cutoff(user_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_until_expiry() {
        let list = MemoryRevocationList::new();
        list.insert(1, 100);
        assert!(list.contains(1, 99));
        assert!(!list.contains(1, 100));
        assert!(!list.contains(2, 50));
    }

    #[test]
    fn purge_removes_only_expired() {
        let list = MemoryRevocationList::new();
        for id in 0..10_000u128 {
            list.insert(id, if id % 2 == 0 { 10 } else { 1_000 });
        }
        assert_eq!(list.purge(10), 5_000);
        assert_eq!(list.len(), 5_000);
        assert!(list.contains(1, 10));
        assert!(!list.contains(0, 5));
    }

    #[tokio::test]
    async fn async_purge_matches_sync_purge() {
        let list = MemoryRevocationList::new();
        let count = 3 * PURGE_BATCH as u128 + 7;
        for id in 0..count {
            list.insert(id, if id % 3 == 0 { 1_000 } else { 10 });
        }
        let expired = (0..count).filter(|id| id % 3 != 0).count();
        assert_eq!(list.purge_expired(10).await.unwrap(), expired);
        assert_eq!(list.count().await.unwrap(), count as usize - expired);
        assert_eq!(list.purge_expired(10).await.unwrap(), 0);
    }

    #[test]
    fn re_revocation_moves_expiry() {
        let list = MemoryRevocationList::new();
        list.insert(7, 10);
        list.insert(7, 20);
        assert_eq!(list.purge(15), 0);
        assert!(list.contains(7, 15));
        assert_eq!(list.purge(20), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn cutoff_only_moves_forward() {
        let list = MemoryRevocationList::new();
        list.insert_cutoff(1, 100, 200);
        list.insert_cutoff(1, 90, 300);
        assert_eq!(list.cutoff(1), Some(100));
        list.insert_cutoff(1, 150, 250);
        assert_eq!(list.cutoff(1), Some(150));
        assert_eq!(list.cutoff(2), None);
    }

    #[test]
    fn purge_forgets_expired_cutoffs() {
        let list = MemoryRevocationList::new();
        list.insert_cutoff(1, 100, 200);
        list.insert_cutoff(2, 100, 400);
        list.purge(200);
        assert_eq!(list.cutoff(1), None);
        assert_eq!(list.cutoff(2), Some(100));
    }
}
