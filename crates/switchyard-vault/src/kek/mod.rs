//! Key-encryption keys (KEKs): the root of the key hierarchy. A KEK never encrypts data; it
//! only wraps the tenants' data keys and fingerprint keys, so replacing it re-wraps a few
//! hundred bytes per tenant and never touches a secret.
//!
//! - [`file`]: a local key file (the zero-setup default).
//! - [`env`]: a key supplied in an environment variable or configuration value.
//! - [`aws_kms`]: AWS KMS; the key never leaves KMS.
//! - [`local`]: the AES-256-GCM wrapping shared by the two local providers.
//!
//! Every wrapped key records the [`KeyEncryptionKey::kek_id`] that wrapped it, so the vault can
//! tell "wrong KEK configured" apart from "corrupt data" and refuse to start instead of
//! producing garbage. Wrapping binds the tenant, purpose and version of the wrapped key (as
//! AES-GCM associated data locally, as an encryption context in KMS), so a wrapped key copied
//! to another tenant's row does not unwrap.

pub mod aws_kms;
pub mod env;
pub mod file;
pub mod local;

use std::{fmt, path::PathBuf, sync::Arc};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::{
    crypto::KeyBytes,
    error::{Result, VaultError},
    storage::VaultStorage,
};

pub use aws_kms::{AwsKmsConfig, AwsKmsKek, StaticCredentials};
pub use env::EnvKek;
pub use file::FileKek;
pub use local::LocalKek;

/// What a wrapped key is for; part of what the wrapping authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyPurpose {
    /// A tenant data key (AES-256-GCM).
    DataKey,
    /// A tenant fingerprint key (HMAC-SHA256).
    FingerprintKey,
}

impl KeyPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPurpose::DataKey => "dek",
            KeyPurpose::FingerprintKey => "fingerprint",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "dek" => Some(KeyPurpose::DataKey),
            "fingerprint" => Some(KeyPurpose::FingerprintKey),
            _ => None,
        }
    }
}

/// Which key is being wrapped: bound into the wrapping so it cannot be moved.
#[derive(Debug, Clone, Copy)]
pub struct WrapContext<'a> {
    pub tenant: &'a str,
    pub purpose: KeyPurpose,
    pub version: u32,
}

/// A key as stored: the ciphertext and the id of the KEK that produced it.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub kek_id: String,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Wrapped bytes are not secret, but they are noise in logs.
        f.debug_struct("WrappedKey")
            .field("kek_id", &self.kek_id)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// A key-encryption key provider.
#[async_trait]
pub trait KeyEncryptionKey: Send + Sync + fmt::Debug {
    /// Stable identifier of this exact key (never the key itself), recorded with everything it
    /// wraps: `file:<hash prefix>`, `env:<hash prefix>`, `aws-kms:<key ARN>`.
    fn kek_id(&self) -> &str;

    /// Wraps `key` for `context`.
    async fn wrap(&self, key: &KeyBytes, context: &WrapContext<'_>) -> Result<WrappedKey>;

    /// Unwraps a key this KEK wrapped for the same `context`.
    ///
    /// # Errors
    /// [`VaultError::KekMismatch`] when another KEK wrapped it, [`VaultError::KekUnwrapFailed`]
    /// when it does not authenticate.
    async fn unwrap(&self, wrapped: &WrappedKey, context: &WrapContext<'_>) -> Result<KeyBytes>;

    /// A fresh random key and its wrapping. KMS overrides this with `GenerateDataKey`.
    async fn generate(&self, context: &WrapContext<'_>) -> Result<(KeyBytes, WrappedKey)> {
        let key = KeyBytes::generate();
        let wrapped = self.wrap(&key, context).await?;
        Ok((key, wrapped))
    }
}

/// Checks that `wrapped` came from `kek` before trying to unwrap it.
pub(crate) fn ensure_same_kek(kek: &dyn KeyEncryptionKey, wrapped: &WrappedKey) -> Result<()> {
    if wrapped.kek_id == kek.kek_id() {
        Ok(())
    } else {
        Err(VaultError::KekMismatch {
            configured: kek.kek_id().to_owned(),
            missing: wrapped.kek_id.clone(),
        })
    }
}

/// How to obtain the KEK, as configuration describes it.
#[derive(Debug, Clone)]
pub enum KekConfig {
    /// A local key file (created with mode 0600 on first start of an empty vault).
    KeyFile { path: PathBuf },
    /// Base64 of 32 random bytes, typically read from `SWITCHYARD_*` configuration.
    Env { key_base64: SecretString },
    /// A KMS key.
    AwsKms(AwsKmsConfig),
}

impl KekConfig {
    /// Loads (or, for an empty vault's key file, creates) the KEK.
    ///
    /// Fails closed: a missing key file is created only when `storage` holds no wrapped key at
    /// all; otherwise [`VaultError::KeyFileMissing`].
    pub async fn load(&self, storage: &dyn VaultStorage) -> Result<Arc<dyn KeyEncryptionKey>> {
        match self {
            KekConfig::KeyFile { path } => match FileKek::load(path)? {
                Some(kek) => Ok(Arc::new(kek)),
                None => {
                    let in_use = storage.kek_ids_in_use_admin().await?;
                    if !in_use.is_empty() {
                        return Err(VaultError::KeyFileMissing {
                            path: path.clone(),
                            stored_kek_ids: in_use.join(", "),
                        });
                    }
                    Ok(Arc::new(FileKek::load_or_create(path)?))
                }
            },
            KekConfig::Env { key_base64 } => Ok(Arc::new(EnvKek::from_base64(key_base64)?)),
            KekConfig::AwsKms(config) => Ok(Arc::new(AwsKmsKek::connect(config).await?)),
        }
    }
}

/// The KEKs a vault can unwrap with: the primary wraps everything new; previous ones are kept
/// only to read keys not yet re-wrapped during a KEK rotation.
#[derive(Debug, Clone)]
pub(crate) struct KeyRing {
    pub(crate) primary: Arc<dyn KeyEncryptionKey>,
    pub(crate) previous: Vec<Arc<dyn KeyEncryptionKey>>,
}

impl KeyRing {
    pub(crate) fn find(&self, kek_id: &str) -> Option<&Arc<dyn KeyEncryptionKey>> {
        std::iter::once(&self.primary)
            .chain(self.previous.iter())
            .find(|kek| kek.kek_id() == kek_id)
    }

    pub(crate) fn ids(&self) -> Vec<String> {
        std::iter::once(&self.primary)
            .chain(self.previous.iter())
            .map(|kek| kek.kek_id().to_owned())
            .collect()
    }
}
