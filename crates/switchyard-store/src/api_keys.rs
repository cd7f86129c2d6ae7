//! Tenant API keys.

use switchyard_core::{ApiKeyId, TenantId};

use crate::{ApiKey, ApiKeyPrincipal, NewApiKey, Page, StoreError};

/// The `api_keys` table. Every method but [`ApiKeyStore::find_active_key_by_hash`] is
/// scoped to one tenant; that one resolves which tenant a presented key belongs to.
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKey, StoreError>;

    async fn list_api_keys(
        &self,
        tenant: TenantId,
        after: Option<ApiKeyId>,
        limit: u32,
    ) -> Result<Page<ApiKey, ApiKeyId>, StoreError>;

    async fn get_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// Marks the key revoked (once; revoking again keeps the first time). `None` when the
    /// tenant has no such key.
    async fn revoke_api_key(
        &self,
        tenant: TenantId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// The principal of the unrevoked key with this hash, if any.
    async fn find_active_key_by_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ApiKeyPrincipal>, StoreError>;
}
