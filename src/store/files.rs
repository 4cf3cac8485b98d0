//! The files of an embedded installation: the data folder, the SQLite
//! database and the lock that keeps a second server off that database.
//!
//! The folder and the database contain password hashes and messages, so
//! Confab creates them readable by their owner only. SQLite creates the
//! `-wal` and `-shm` files with the database file's mode.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read as _, Seek as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;

use anyhow::Context as _;

/// Mode of a data folder Confab creates.
const DATA_DIR_MODE: u32 = 0o700;
/// Mode of a database or lock file Confab creates.
const PRIVATE_FILE_MODE: u32 = 0o600;
/// Name of the server lock file in the data folder.
const SERVER_LOCK_FILE: &str = "confab.lock";

/// Creates the data folder, and any missing parent, with mode 0700. An
/// existing folder keeps its mode, so an operator's choice stands.
pub fn create_data_dir(path: &Path) -> anyhow::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DATA_DIR_MODE)
        .create(path)
        .with_context(|| format!("failed to create the data folder {}", path.display()))
}

/// Creates the SQLite database file with mode 0600 when it does not exist,
/// before SQLite would create it with the default mode (usually 0644).
pub fn create_database_file(path: &Path) -> anyhow::Result<()> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path);
    match created {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(error) => {
            Err(error).with_context(|| format!("failed to create the database {}", path.display()))
        }
    }
}

/// An exclusive lock on the data folder, held while a server runs on an
/// SQLite database; dropping it, or the process ending, releases it.
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
}

/// Takes the server lock of `data_dir` without waiting, and records this
/// process id in it for the error a second server reports.
///
/// Only `serve` takes this lock: `confab user` and `confab migrate` run
/// beside a server and rely on SQLite's own locking.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<ServerLock> {
    let path = data_dir.join(SERVER_LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE_MODE)
        .open(&path)
        .with_context(|| format!("failed to open {}", path.display()))?;

    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            anyhow::bail!(
                "another Confab server ({}) is already running on the data folder {}; \
                 stop it first, or give this server its own data folder \
                 (--data-dir or CONFAB_DATA_DIR), because two servers on one SQLite \
                 database do not see each other's logouts and events",
                holder_description(&mut file, &path),
                data_dir.display()
            );
        }
        Err(std::fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("failed to lock {}", path.display()));
        }
    }

    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .with_context(|| format!("failed to write {}", path.display()))?;
    Ok(ServerLock { _file: file })
}

/// Describes the lock holder by the process id it wrote, if readable.
fn holder_description(file: &mut File, path: &Path) -> String {
    let mut contents = String::new();
    let pid = file
        .read_to_string(&mut contents)
        .ok()
        .and_then(|_| contents.trim().parse::<u32>().ok());
    match pid {
        Some(pid) => format!("process {pid}, holding {}", path.display()),
        None => format!("holding {}", path.display()),
    }
}
