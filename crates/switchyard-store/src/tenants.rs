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
    /// there is no such undeleted tenant.
    async fn mark_tenant_deleted(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Removes tenants deleted before `deleted_before`, with their API keys and idempotency
    /// records, and returns their ids so other owners can purge their own rows. Platform-wide
    /// by nature: it runs on behalf of no tenant.
    async fn purge_deleted_tenants(
        &self,
        deleted_before: time::OffsetDateTime,
    ) -> Result<Vec<TenantId>, StoreError>;
}
