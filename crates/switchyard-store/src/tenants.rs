//! Tenants.

use switchyard_core::TenantId;

use crate::{NewTenant, Page, StoreError, Tenant};

/// The `tenants` table. Listing all tenants is a platform-admin operation by nature.
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, tenant: NewTenant) -> Result<Tenant, StoreError>;

    /// The tenant, unless it does not exist or was deleted.
    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Undeleted tenants ordered by id (creation order), `limit` at most, after `after`.
    async fn list_all_tenants(
        &self,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Page<Tenant, TenantId>, StoreError>;

    /// Marks the tenant deleted and revokes all its API keys, in one transaction. `None` when
    /// there is no such undeleted tenant. The row is purged later by the `deleted_tenants`
    /// retention class ([`crate::retention`]).
    async fn mark_tenant_deleted(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;
}
