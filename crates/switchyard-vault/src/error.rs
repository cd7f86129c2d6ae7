//! The vault's one error type.
//!
//! Every variant carries only identifiers (tenant ids, secret names, versions, KEK ids, file
//! paths) and never key material or plaintext, so errors can be logged and returned as-is.

use std::{path::PathBuf, time::Duration};

/// Why a vault operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The key file is missing but wrapped keys exist: creating a new key would orphan them.
    #[error(
        "key file {path} is missing but the vault holds keys wrapped by `{stored_kek_ids}`; \
         restore the key file (a new key is never generated over existing data)"
    )]
    KeyFileMissing {
        path: PathBuf,
        stored_kek_ids: String,
    },

    /// The key file exists but is not a 32-byte key.
    #[error("key file {path} is invalid: {reason}")]
    KeyFileInvalid { path: PathBuf, reason: &'static str },

    /// Reading or creating the key file failed.
    #[error("cannot access key file {path}")]
    KeyFileIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The environment-supplied key is absent or not base64 of 32 bytes.
    #[error("environment-supplied key is invalid: {reason}")]
    EnvKeyInvalid { reason: &'static str },

    /// Keys in storage are wrapped by KEKs that the configured key ring does not hold.
    #[error(
        "the configured key-encryption key `{configured}` does not match the one that wrapped the \
         stored keys (`{missing}`); configure the original key (or list it as a previous key)"
    )]
    KekMismatch { configured: String, missing: String },

    /// A wrapped key names this KEK but does not authenticate under it (wrong or corrupt key).
    #[error(
        "key-encryption key `{kek_id}` could not unwrap a stored key (wrong key or corrupt data)"
    )]
    KekUnwrapFailed { kek_id: String },

    /// AWS KMS refused or could not be reached.
    #[error("AWS KMS {operation} failed for key `{key_id}`: {message}")]
    Kms {
        operation: &'static str,
        key_id: String,
        message: String,
    },

    /// The KEK configuration is incomplete or contradictory.
    #[error("invalid key-encryption key configuration: {reason}")]
    KekConfig { reason: String },

    /// A ciphertext did not authenticate: tampered, moved to another tenant, name or version,
    /// or encrypted under another data key.
    #[error("decryption failed: the ciphertext does not authenticate for this tenant and context")]
    DecryptionFailed,

    /// Encryption itself failed (only possible for absurd input sizes).
    #[error("encryption failed")]
    EncryptionFailed,

    /// A ciphertext or wrapped key is structurally invalid (truncated, unknown format).
    #[error("malformed {what}")]
    Malformed { what: &'static str },

    /// No such secret (or version).
    #[error("secret `{name}` (version {version:?}) not found for tenant `{tenant}`")]
    SecretNotFound {
        tenant: String,
        name: String,
        version: Option<u32>,
    },

    /// The version existed but was destroyed (confirmed rotation, rollback, delete or shred).
    #[error("secret `{name}` version {version} of tenant `{tenant}` was destroyed")]
    SecretDestroyed {
        tenant: String,
        name: String,
        version: u32,
    },

    /// A rotation of this secret awaits `confirm` or `rollback`.
    #[error(
        "secret `{name}` of tenant `{tenant}` has an unconfirmed rotation to version {pending}; \
         confirm or roll it back first"
    )]
    RotationPending {
        tenant: String,
        name: String,
        pending: u32,
    },

    /// `confirm`/`rollback` named a version that is not the pending current one.
    #[error("secret `{name}` of tenant `{tenant}`: {reason}")]
    InvalidTransition {
        tenant: String,
        name: String,
        reason: &'static str,
    },

    /// The tenant's keys were destroyed by crypto-shredding.
    #[error("tenant `{tenant}` was crypto-shredded; its data is unrecoverable")]
    TenantShredded { tenant: String },

    /// The tenant has no data key with this version.
    #[error("tenant `{tenant}` has no data key version {version}")]
    DekNotFound { tenant: String, version: u32 },

    /// The data key was retired after re-encryption; data still under it is unreadable.
    #[error("data key version {version} of tenant `{tenant}` is retired")]
    DekRetired { tenant: String, version: u32 },

    /// The data key cannot be retired yet.
    #[error("data key version {version} of tenant `{tenant}` cannot be retired: {reason}")]
    DekRetireRefused {
        tenant: String,
        version: u32,
        reason: String,
    },

    /// The data key can be retired only once every process's cache has dropped it.
    #[error(
        "data key version {version} of tenant `{tenant}` was rotated out too recently; \
         retry in {retry_after:?} so no process still encrypts with it"
    )]
    DekRetireTooEarly {
        tenant: String,
        version: u32,
        retry_after: Duration,
    },

    /// A tenant id or secret name is empty, too long or has control characters.
    #[error("invalid {what}: {reason}")]
    InvalidIdentifier {
        what: &'static str,
        reason: &'static str,
    },

    /// Another writer changed the same rows; the operation was retried and still conflicted.
    #[error("concurrent modification of {what}; retry")]
    Conflict { what: &'static str },

    /// The storage backend failed.
    #[error("vault storage error")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A row read from storage is inconsistent.
    #[error("corrupt vault row: {reason}")]
    Corrupt { reason: String },
}

impl VaultError {
    /// A short, stable name of the failure, safe for audit entries and metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::KeyFileMissing { .. } => "key_file_missing",
            VaultError::KeyFileInvalid { .. } => "key_file_invalid",
            VaultError::KeyFileIo { .. } => "key_file_io",
            VaultError::EnvKeyInvalid { .. } => "env_key_invalid",
            VaultError::KekMismatch { .. } => "kek_mismatch",
            VaultError::KekUnwrapFailed { .. } => "kek_unwrap_failed",
            VaultError::Kms { .. } => "kms",
            VaultError::KekConfig { .. } => "kek_config",
            VaultError::DecryptionFailed => "decryption_failed",
            VaultError::EncryptionFailed => "encryption_failed",
            VaultError::Malformed { .. } => "malformed",
            VaultError::SecretNotFound { .. } => "secret_not_found",
            VaultError::SecretDestroyed { .. } => "secret_destroyed",
            VaultError::RotationPending { .. } => "rotation_pending",
            VaultError::InvalidTransition { .. } => "invalid_transition",
            VaultError::TenantShredded { .. } => "tenant_shredded",
            VaultError::DekNotFound { .. } => "dek_not_found",
            VaultError::DekRetired { .. } => "dek_retired",
            VaultError::DekRetireRefused { .. } => "dek_retire_refused",
            VaultError::DekRetireTooEarly { .. } => "dek_retire_too_early",
            VaultError::InvalidIdentifier { .. } => "invalid_identifier",
            VaultError::Conflict { .. } => "conflict",
            VaultError::Storage(_) => "storage",
            VaultError::Corrupt { .. } => "corrupt",
        }
    }

    /// Wraps a backend error.
    pub fn storage(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        VaultError::Storage(Box::new(error))
    }

    pub(crate) fn corrupt(reason: impl Into<String>) -> Self {
        VaultError::Corrupt {
            reason: reason.into(),
        }
    }
}

/// Shorthand used throughout the crate.
pub type Result<T, E = VaultError> = std::result::Result<T, E>;
