//! AES-256-GCM key wrapping under a locally held KEK (key file or environment).

use aes_gcm::Aes256Gcm;
use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::{KeyEncryptionKey, WrapContext, WrappedKey, ensure_same_kek};
use crate::{
    crypto::{self, Aad, KeyBytes},
    error::{Result, VaultError},
};

/// A KEK whose bytes are in this process.
pub struct LocalKek {
    id: String,
    cipher: Aes256Gcm,
}

impl LocalKek {
    /// `scheme` is `file` or `env`; the id appends a hash prefix of the key, so two different
    /// keys never share an id and the id reveals nothing usable about the key.
    pub fn new(scheme: &str, key: &KeyBytes) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"switchyard-vault/kek-id/v1\0");
        hasher.update(key.expose());
        let digest = hasher.finalize();
        Self {
            id: format!("{scheme}:{}", hex::encode(&digest[..8])),
            cipher: key.cipher(),
        }
    }

    fn aad(&self, context: &WrapContext<'_>) -> Aad {
        let mut aad = Aad::new("switchyard-vault/kek-wrap/v1");
        aad.field(self.id.as_bytes())
            .field(context.tenant.as_bytes())
            .field(context.purpose.as_str().as_bytes())
            .number(context.version);
        aad
    }
}

impl std::fmt::Debug for LocalKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKek").field("id", &self.id).finish()
    }
}

#[async_trait]
impl KeyEncryptionKey for LocalKek {
    fn kek_id(&self) -> &str {
        &self.id
    }

    async fn wrap(&self, key: &KeyBytes, context: &WrapContext<'_>) -> Result<WrappedKey> {
        let bytes = crypto::seal(&self.cipher, self.aad(context).bytes(), key.expose())?;
        Ok(WrappedKey {
            kek_id: self.id.clone(),
            bytes,
        })
    }

    async fn unwrap(&self, wrapped: &WrappedKey, context: &WrapContext<'_>) -> Result<KeyBytes> {
        ensure_same_kek(self, wrapped)?;
        let plain = crypto::open(
            &self.cipher,
            self.aad(context).bytes(),
            &wrapped.bytes,
            "wrapped key",
        )
        .map_err(|error| match error {
            VaultError::DecryptionFailed => VaultError::KekUnwrapFailed {
                kek_id: self.id.clone(),
            },
            other => other,
        })?;
        KeyBytes::from_slice(&plain).ok_or(VaultError::Malformed {
            what: "unwrapped key length",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kek::KeyPurpose;

    fn context(tenant: &str) -> WrapContext<'_> {
        WrapContext {
            tenant,
            purpose: KeyPurpose::DataKey,
            version: 1,
        }
    }

    #[tokio::test]
    async fn wrap_round_trip_and_binding() {
        let kek = LocalKek::new("env", &KeyBytes::generate());
        let dek = KeyBytes::generate();
        let wrapped = kek.wrap(&dek, &context("t1")).await.unwrap();
        let back = kek.unwrap(&wrapped, &context("t1")).await.unwrap();
        assert_eq!(back.expose(), dek.expose());
        // Moved to another tenant's row: refuses.
        assert!(matches!(
            kek.unwrap(&wrapped, &context("t2")).await,
            Err(VaultError::KekUnwrapFailed { .. })
        ));
    }

    #[tokio::test]
    async fn wrong_kek_is_a_typed_error() {
        let right = LocalKek::new("file", &KeyBytes::generate());
        let wrong = LocalKek::new("file", &KeyBytes::generate());
        assert_ne!(right.kek_id(), wrong.kek_id());
        let wrapped = right
            .wrap(&KeyBytes::generate(), &context("t1"))
            .await
            .unwrap();
        let error = wrong.unwrap(&wrapped, &context("t1")).await.unwrap_err();
        assert!(matches!(error, VaultError::KekMismatch { .. }), "{error:?}");
        // Same id but different bytes (forged id): authentication still catches it.
        let forged = WrappedKey {
            kek_id: wrong.kek_id().to_owned(),
            bytes: wrapped.bytes.clone(),
        };
        assert!(matches!(
            wrong.unwrap(&forged, &context("t1")).await,
            Err(VaultError::KekUnwrapFailed { .. })
        ));
    }

    #[test]
    fn id_is_stable_and_debug_hides_key() {
        let key = KeyBytes::from_slice(&[9_u8; 32]).unwrap();
        let a = LocalKek::new("file", &key);
        let b = LocalKek::new("file", &key);
        assert_eq!(a.kek_id(), b.kek_id());
        assert!(a.kek_id().starts_with("file:"));
        assert_eq!(a.kek_id().len(), "file:".len() + 16);
        assert!(!format!("{a:?}").contains("0909"));
    }
}
