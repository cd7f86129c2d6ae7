//! The local key file: 32 random bytes, stored base64-encoded with mode 0600. The KEK id and
//! the wrapping bind the provider, so moving the same bytes to the `env` provider is a KEK
//! rotation (`switchyard vault rotate-kek`), not a configuration change.

use std::{
    fs,
    io::{self, Write},
    path::Path,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use zeroize::Zeroizing;

use super::LocalKek;
use crate::{
    crypto::KeyBytes,
    error::{Result, VaultError},
};

/// Constructors for a [`LocalKek`] held in a file.
#[derive(Debug)]
pub struct FileKek;

impl FileKek {
    /// Reads the key file, or `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<LocalKek>> {
        let contents = match fs::read(path) {
            Ok(contents) => Zeroizing::new(contents),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(VaultError::KeyFileIo {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        warn_if_readable_by_others(path);
        let invalid = |reason| VaultError::KeyFileInvalid {
            path: path.to_owned(),
            reason,
        };
        let text = std::str::from_utf8(&contents).map_err(|_| invalid("not base64 text"))?;
        let decoded = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| invalid("not base64 text"))?,
        );
        let key = KeyBytes::from_slice(&decoded).ok_or(invalid("not a 32-byte key"))?;
        Ok(Some(LocalKek::new("file", &key)))
    }

    /// Reads the key file, creating it with a fresh random key when missing.
    ///
    /// Only [`crate::KekConfig::load`] (which first checks the vault holds no wrapped key) and
    /// callers with the same guarantee should use this: a new key over existing data would make
    /// it unreadable.
    pub fn load_or_create(path: &Path) -> Result<LocalKek> {
        if let Some(kek) = Self::load(path)? {
            return Ok(kek);
        }
        let key = KeyBytes::generate();
        match write_new(path, &key) {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    "created a new local master key file; production deployments should use a KMS \
                     (e.g. AWS KMS) for the key-encryption key and keep this file backed up: \
                     losing it makes every stored secret unreadable"
                );
                Ok(LocalKek::new("file", &key))
            }
            // Another process created it between our read and our create: use theirs.
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Self::load(path)?
                .ok_or_else(|| VaultError::KeyFileIo {
                    path: path.to_owned(),
                    source: error,
                }),
            Err(source) => Err(VaultError::KeyFileIo {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

fn write_new(path: &Path, key: &KeyBytes) -> io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut options = fs::OpenOptions::new();
    // create_new: never overwrite a key that appeared concurrently.
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let encoded = Zeroizing::new(STANDARD.encode(key.expose()));
    file.write_all(encoded.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = fs::metadata(path)
            && metadata.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                mode = format!("{:o}", metadata.permissions().mode() & 0o777),
                "the master key file is accessible to other users; restrict it to mode 0600"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kek::KeyEncryptionKey;

    #[test]
    fn creates_with_0600_and_reloads_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/master.key");
        assert!(FileKek::load(&path).unwrap().is_none());
        let created = FileKek::load_or_create(&path).unwrap();
        let loaded = FileKek::load(&path).unwrap().unwrap();
        assert_eq!(created.kek_id(), loaded.kek_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        fs::write(&path, "not base64 !!").unwrap();
        assert!(matches!(
            FileKek::load(&path),
            Err(VaultError::KeyFileInvalid { .. })
        ));
        fs::write(&path, STANDARD.encode([1_u8; 16])).unwrap();
        assert!(matches!(
            FileKek::load(&path),
            Err(VaultError::KeyFileInvalid { .. })
        ));
    }
}
