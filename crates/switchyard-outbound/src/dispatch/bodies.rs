//! Response bodies of attempts, in the blob store (kind `delivery-response`), sealed with the
//! tenant's data key when a vault is given.

use std::sync::Arc;

use bytes::Bytes;
use switchyard_blob::{BlobKey, BlobStore};
use switchyard_core::TenantId;
use switchyard_vault::Vault;
use time::OffsetDateTime;

use crate::error::{OutboundError, Result};

pub const BLOB_KIND: &str = "delivery-response";

/// Where attempts' response bodies go. Without one, bodies are not kept (their length is).
#[derive(Clone, Debug)]
pub struct ResponseBodies {
    store: BlobStore,
    vault: Option<Arc<Vault>>,
}

impl ResponseBodies {
    /// `vault`: seal each body with the tenant's data key (production); `None` stores plain
    /// bytes (tests, or a blob store that is itself trusted).
    pub fn new(store: BlobStore, vault: Option<Arc<Vault>>) -> Self {
        Self { store, vault }
    }

    pub(crate) async fn put(
        &self,
        tenant: &str,
        id: &str,
        at: OffsetDateTime,
        body: &[u8],
    ) -> Result<String> {
        let key = BlobKey::new(tenant, BLOB_KIND, at, id)?;
        let text = key.to_string();
        let bytes = match &self.vault {
            Some(vault) => Bytes::from(vault.encrypt_blob(tenant, text.as_bytes(), body).await?),
            None => Bytes::copy_from_slice(body),
        };
        self.store.put(&key, bytes).await?;
        Ok(text)
    }

    /// Rewrites the body under `key` sealed with the tenant's active data key, unless data key
    /// `target` sealed it already (or it is gone, or bodies are kept plain); `true` when it
    /// was rewritten. The key is the AAD, so the body stays where it is.
    ///
    /// # Errors
    /// On a blob store or vault failure; [`OutboundError::Corrupt`] for a key of another
    /// tenant or kind.
    pub(crate) async fn reseal(&self, tenant: TenantId, key: &str, target: u32) -> Result<bool> {
        let Some(vault) = &self.vault else {
            return Ok(false);
        };
        let tenant = tenant.to_string();
        let parsed: BlobKey = key.parse()?;
        if parsed.tenant() != tenant || parsed.kind() != BLOB_KIND {
            return Err(OutboundError::corrupt(
                "webhook_delivery_attempts",
                "a response body key outside its tenant",
            ));
        }
        // At most 64 KiB: reading the whole body to look at its header costs little.
        let sealed = match self.store.get(&parsed).await {
            Ok(sealed) => sealed,
            // Purged by retention before its row: nothing left to move.
            Err(switchyard_blob::BlobError::NotFound { .. }) => return Ok(false),
            Err(error) => return Err(error.into()),
        };
        if Vault::blob_data_key_version(&sealed)? == target {
            return Ok(false);
        }
        let resealed = vault
            .reencrypt_blob(&tenant, key.as_bytes(), &sealed)
            .await?;
        self.store.put(&parsed, Bytes::from(resealed)).await?;
        Ok(true)
    }

    /// The stored body of an attempt (its `response_body_key`), for the tenant that owns it.
    ///
    /// # Errors
    /// [`OutboundError::NotFound`] for another tenant's key or a purged body.
    pub async fn get(&self, tenant: TenantId, key: &str) -> Result<Vec<u8>> {
        let tenant = tenant.to_string();
        let parsed: BlobKey = key.parse().map_err(|_| OutboundError::NotFound {
            what: "response body",
        })?;
        if parsed.tenant() != tenant || parsed.kind() != BLOB_KIND {
            return Err(OutboundError::NotFound {
                what: "response body",
            });
        }
        let bytes = self
            .store
            .get(&parsed)
            .await
            .map_err(|_| OutboundError::NotFound {
                what: "response body",
            })?;
        match &self.vault {
            Some(vault) => Ok(vault
                .decrypt_blob(&tenant, key.as_bytes(), &bytes)
                .await?
                .to_vec()),
            None => Ok(bytes.to_vec()),
        }
    }
}
