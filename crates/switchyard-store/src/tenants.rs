//! Tenants.

use switchyard_core::TenantId;

use crate::{NewTenant, Page, StoreError, Tenant};

/// The `tenants` table. Listing all tenants is a platform-admin operation by nature.
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync {
    async fn create_tenant(&self, tenant: NewTenant) -> Result<Tenant, StoreError>;

    async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError>;

    /// Tenants ordered by id (creation order), `limit` at most, after `after` if given.
    async fn list_all_tenants(
        &self,
        after: Option<TenantId>,
        limit: u32,
    ) -> Result<Page<Tenant, TenantId>, StoreError>;
}
