//! The platform admin token: configured, or generated on first start.
//!
//! Only its hash is stored, in the database's platform settings, so every process sharing the
//! database agrees on it. A generated token is written once to `<data_dir>/admin-token` with
//! mode 0600; its path is logged, the token never is.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use switchyard_store::{Store, StoreError};

use crate::credentials;

/// The platform setting holding the hex SHA-256 of the admin token.
pub const ADMIN_TOKEN_HASH_SETTING: &str = "admin_token_hash";
/// File name of a generated admin token inside the data directory.
pub const ADMIN_TOKEN_FILE: &str = "admin-token";

/// Why the admin token could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("cannot write the admin token file `{path}`")]
    WriteFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the admin token in force came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminTokenSource {
    /// `admin_token` in the configuration (or `SWITCHYARD_ADMIN_TOKEN`).
    Configured,
    /// Generated now and written to this file.
    Generated(PathBuf),
    /// Set up by an earlier start; the file, if it is still there.
    Existing(Option<PathBuf>),
}

/// Makes sure an admin token exists: the configured one replaces any earlier one; without
/// one, the first start generates it.
///
/// # Errors
/// When the store fails or the token file cannot be written.
pub async fn ensure_admin_token(
    store: &dyn Store,
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> Result<AdminTokenSource, AdminTokenError> {
    if let Some(token) = configured {
        store
            .put_setting(ADMIN_TOKEN_HASH_SETTING, &credentials::hash_secret(token))
            .await?;
        return Ok(AdminTokenSource::Configured);
    }
    let path = data_dir.join(ADMIN_TOKEN_FILE);
    if store.get_setting(ADMIN_TOKEN_HASH_SETTING).await?.is_some() {
        let file = std::fs::metadata(&path).is_ok().then_some(path);
        return Ok(AdminTokenSource::Existing(file));
    }
    let token = credentials::generate_admin_token();
    write_private_file(&path, token.expose_secret()).map_err(|source| {
        AdminTokenError::WriteFile {
            path: path.clone(),
            source,
        }
    })?;
    let hash = credentials::hash_secret(&token);
    if store
        .insert_setting_if_absent(ADMIN_TOKEN_HASH_SETTING, &hash)
        .await?
    {
        Ok(AdminTokenSource::Generated(path))
    } else {
        // Another process sharing the database initialised it first; our token is not valid.
        let _ = std::fs::remove_file(&path);
        Ok(AdminTokenSource::Existing(None))
    }
}

/// Whether `token` is the platform admin token.
///
/// # Errors
/// When the store fails.
pub async fn is_admin_token(store: &dyn Store, token: &str) -> Result<bool, StoreError> {
    let Some(expected) = store.get_setting(ADMIN_TOKEN_HASH_SETTING).await? else {
        return Ok(false);
    };
    let presented = credentials::hash_credential(token);
    Ok(presented.as_bytes().ct_eq(expected.as_bytes()).into())
}

/// Writes `contents` to a file only its owner can read, replacing an older file.
fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // `mode` applies only when the file is created; tighten an existing one too.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }
}
