//! Argon2id password hashing on a bounded blocking pool.
//!
//! A hash takes tens of milliseconds of CPU and 19 MiB of memory, so it never
//! runs on the async workers, and a semaphore caps how many run at once: a
//! storm of logins queues here instead of starving every other request.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

/// Result of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    /// The password matches and the stored hash already uses the configured cost.
    Match,
    /// The password matches but the stored hash is weaker than configured.
    MatchNeedsRehash,
}

/// Hashes and verifies passwords with the configured Argon2id cost.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// Hash of a random password, verified against when the user does not
    /// exist, so unknown and known emails take the same time.
    dummy_hash: Arc<str>,
    /// Verifications run so far, the dummy ones included; tests read it to
    /// check that an unknown email costs a full verification.
    verifications: Arc<std::sync::atomic::AtomicU64>,
}

impl PasswordHasher {
    /// Builds the hasher and computes its dummy hash (on a blocking thread).
    pub async fn new(
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
        concurrency: usize,
    ) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|error| anyhow::anyhow!("invalid Argon2 parameters: {error}"))?;
        let mut hasher = Self {
            params,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            dummy_hash: Arc::from(""),
            verifications: Arc::default(),
        };
        let random = SaltString::generate(&mut OsRng);
        let dummy = hasher
            .hash(SecretString::from(random.as_str().to_owned()))
            .await?;
        hasher.dummy_hash = Arc::from(dummy);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes a password into a PHC string that records its parameters.
    pub async fn hash(&self, password: SecretString) -> anyhow::Result<String> {
        let argon2 = self.argon2();
        self.run_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.expose_secret().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|error| anyhow::anyhow!("hashing failed: {error}"))
        })
        .await
    }

    /// Verifies a password against a stored PHC hash, or against the dummy
    /// hash when `stored` is `None`, which always yields a mismatch.
    pub async fn verify(
        &self,
        password: SecretString,
        stored: Option<String>,
    ) -> anyhow::Result<Verification> {
        let user_exists = stored.is_some();
        self.verifications
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let argon2 = self.argon2();
        let wanted = self.params.clone();
        let verification = self
            .run_blocking(move || {
                let parsed = PasswordHash::new(&stored)
                    .map_err(|error| anyhow::anyhow!("stored hash is not a PHC string: {error}"))?;
                if argon2
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_err()
                {
                    return Ok(Verification::Mismatch);
                }
                if is_weaker(&parsed, &wanted) {
                    Ok(Verification::MatchNeedsRehash)
                } else {
                    Ok(Verification::Match)
                }
            })
            .await?;
        if user_exists {
            Ok(verification)
        } else {
            Ok(Verification::Mismatch)
        }
    }

    /// Returns how many verifications have run, the dummy ones included.
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn run_blocking<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        F: FnOnce() -> anyhow::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hashing pool closed")?;
        tokio::task::spawn_blocking(work)
            .await
            .context("password hashing task failed")?
    }
}

/// Returns whether a stored hash uses another algorithm or a lower cost than `wanted`.
fn is_weaker(stored: &PasswordHash<'_>, wanted: &Params) -> bool {
    if stored.algorithm != argon2::ARGON2ID_IDENT {
        return true;
    }
    let Ok(params) = Params::try_from(stored) else {
        return true;
    };
    params.m_cost() < wanted.m_cost()
        || params.t_cost() < wanted.t_cost()
        || params.p_cost() < wanted.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = PasswordHasher::new(19 * 1024, 2, 1, 1).await.unwrap();
        let hash = hasher.hash(secret("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));

        let right = hasher.verify(secret("correct horse"), Some(hash.clone()));
        assert_eq!(right.await.unwrap(), Verification::Match);
        let wrong = hasher.verify(secret("wrong horse"), Some(hash));
        assert_eq!(wrong.await.unwrap(), Verification::Mismatch);
    }

    #[tokio::test]
    async fn weaker_hash_needs_rehash() {
        let weak = PasswordHasher::new(8 * 1024, 1, 1, 1).await.unwrap();
        let strong = PasswordHasher::new(19 * 1024, 2, 1, 1).await.unwrap();
        let hash = weak.hash(secret("correct horse")).await.unwrap();
        let verification = strong.verify(secret("correct horse"), Some(hash));
        assert_eq!(verification.await.unwrap(), Verification::MatchNeedsRehash);
    }

    #[tokio::test]
    async fn unknown_user_never_matches() {
        let hasher = PasswordHasher::new(19 * 1024, 2, 1, 1).await.unwrap();
        let verification = hasher.verify(secret("anything at all"), None);
        assert_eq!(verification.await.unwrap(), Verification::Mismatch);
    }
}
