//! Loading the JWT signing key: from `CONFAB_JWT_SECRET`, or generated once
//! into the data folder for development.

use std::fs;
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};

use crate::config::MIN_SECRET_BYTES;

/// File name of the generated key inside the data folder.
pub const SECRET_FILE: &str = "jwt-secret";

/// Returns the signing key: the configured secret, or the key stored in
/// `data_dir`, generating it (32 bytes from the OS RNG, mode 0600) on first use.
pub fn load_or_generate(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> anyhow::Result<SecretBox<Vec<u8>>> {
    if let Some(secret) = configured {
        return Ok(SecretBox::new(Box::new(
            secret.expose_secret().as_bytes().to_vec(),
        )));
    }
    let path = data_dir.join(SECRET_FILE);
    match fs::read(&path) {
        Ok(bytes) => {
            if bytes.len() < MIN_SECRET_BYTES {
                anyhow::bail!(
                    "{} holds {} bytes; a JWT secret must be at least {MIN_SECRET_BYTES} bytes \
                     (delete the file to generate a new one)",
                    path.display(),
                    bytes.len()
                );
            }
            tracing::warn!(
                file = %path.display(),
                "CONFAB_JWT_SECRET is unset; using the generated secret from this file"
            );
            Ok(SecretBox::new(Box::new(bytes)))
        }
        Err(error) if error.kind() == ErrorKind::NotFound => generate(&path),
        Err(error) => Err(error).with_context(|| format!("failed to read {}", path.display())),
    }
}

fn generate(path: &Path) -> anyhow::Result<SecretBox<Vec<u8>>> {
    let mut bytes = vec![0u8; MIN_SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    // `create_new` so two instances starting at once cannot overwrite each
    // other's key; the loser reads the winner's file instead.
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    let mut file = match file {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            return load_or_generate(None, path.parent().unwrap_or(Path::new(".")));
        }
        Err(error) => {
            return Err(error).with_context(|| format!("failed to create {}", path.display()))
        }
    };
    file.write_all(&bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("failed to write {}", path.display()))?;
    tracing::warn!(
        file = %path.display(),
        "CONFAB_JWT_SECRET is unset; generated a new secret into this file (set the variable in production)"
    );
    Ok(SecretBox::new(Box::new(bytes)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn generated_secret_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(None, dir.path()).unwrap();
        let second = load_or_generate(None, dir.path()).unwrap();
        assert_eq!(first.expose_secret(), second.expose_secret());
        assert_eq!(first.expose_secret().len(), MIN_SECRET_BYTES);

        let mode = fs::metadata(dir.path().join(SECRET_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn short_stored_secret_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(SECRET_FILE), b"short").unwrap();
        let error = load_or_generate(None, dir.path()).unwrap_err();
        assert!(error.to_string().contains("at least 32 bytes"));
    }
}
