//! Storage behind one pool that speaks SQLite or PostgreSQL.
//!
//! Queries are written once in the SQL both engines accept (`$1` parameters,
//! `RETURNING`, `ON CONFLICT`) and run through sqlx's `Any` driver. The
//! migrations differ per engine, and the few steps that must differ branch on
//! [`Store::backend`]. Times are stored as Unix milliseconds.

pub mod accounts;
pub mod chats;
pub mod files;
pub mod message_writer;
pub mod messages;
pub mod redis;
pub mod sessions;
pub mod users;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

use message_writer::MessageWriter;
pub use users::{NewUser, User, UserWithHash};

/// The database engine behind a URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the engine from the URL scheme.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite:// or postgres://")
        }
    }
}

/// Connection pool settings.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// PostgreSQL cancels statements running longer than this.
    pub statement_timeout: Duration,
}

/// Handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// File locked while migrating a SQLite database.
    migration_lock: Option<PathBuf>,
    /// Batches message inserts into shared commits; SQLite only.
    message_writer: Option<MessageWriter>,
}

impl Store {
    /// Connects and applies pending migrations.
    pub async fn connect(url: &str, settings: &PoolSettings) -> anyhow::Result<Self> {
        let store = Self::connect_without_migrating(url, settings).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema.
    pub async fn connect_without_migrating(
        url: &str,
        settings: &PoolSettings,
    ) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        // Only where sqlx would create it, so a URL without `mode=rwc` still
        // fails on a missing database instead of opening an empty one.
        if let Some(file) = sqlite_file(url).filter(|_| url.contains("mode=rwc")) {
            files::create_database_file(&file)?;
        }
        let options: AnyConnectOptions = url.parse().context("DATABASE_URL is not a valid URL")?;
        let statement_timeout_ms = settings.statement_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Postgres {
                        connection
                            .execute(
                                format!("SET statement_timeout = {statement_timeout_ms}").as_str(),
                            )
                            .await?;
                    }
                    if backend == Backend::Sqlite {
                        // WAL lets readers proceed during a write; FULL makes every
                        // commit durable before it returns, so an acknowledged
                        // message survives a crash or power loss. `secure_delete`
                        // zeroes freed bytes, so an erased message body does not
                        // stay readable in the database file.
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                                 PRAGMA secure_delete = ON;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("failed to connect to the database")?;
        let migration_lock = match backend {
            Backend::Sqlite => sqlite_file(url).map(|file| {
                let mut name = file.into_os_string();
                name.push(".migrate-lock");
                PathBuf::from(name)
            }),
            Backend::Postgres => None,
        };
        let message_writer =
            (backend == Backend::Sqlite).then(|| MessageWriter::start(pool.clone()));
        Ok(Self {
            pool,
            backend,
            migration_lock,
            message_writer,
        })
    }

    /// Applies pending migrations, each exactly once even when several
    /// processes start at once. sqlx serialises PostgreSQL runs with an
    /// advisory lock. It takes no lock on SQLite, so two processes would both
    /// see a migration as pending, and a file lock beside the database
    /// serialises them instead.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        let _lock = match &self.migration_lock {
            Some(path) => Some(lock_file(path.clone()).await?),
            None => None,
        };
        migrator
            .run(&self.pool)
            .await
            .context("failed to apply database migrations")?;
        self.backfill_folded_names()
            .await
            .context("failed to fill folded display names")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn message_writer(&self) -> Option<&MessageWriter> {
        self.message_writer.as_ref()
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    /// Closes every connection; used on shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Returns the database file of a SQLite URL, or `None` for an in-memory one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    Some(PathBuf::from(path))
}

/// Waits for an exclusive lock on `path`, creating the file if needed. The
/// lock is released when the returned file is dropped, also if the process
/// dies, because the operating system drops it with the descriptor.
async fn lock_file(path: PathBuf) -> anyhow::Result<std::fs::File> {
    // Locking blocks until the other holder finishes, so it runs off the
    // async workers.
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        file.lock()
            .with_context(|| format!("failed to lock {}", path.display()))?;
        Ok(file)
    })
    .await
    .context("the migration lock task failed")?
}

/// Returns whether an error is a unique-constraint violation.
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Returns the current time in Unix milliseconds.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats Unix milliseconds as an RFC 3339 timestamp in UTC.
pub fn format_millis(millis: i64) -> String {
    let time = std::time::UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_reads_path_forms() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/data/confab.db?mode=rwc"),
            Some(PathBuf::from("/tmp/data/confab.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:confab.db"),
            Some(PathBuf::from("confab.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://localhost/test"), None);
    }
}
