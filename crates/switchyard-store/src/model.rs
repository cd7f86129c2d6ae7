//! Rows as callers see them.

use switchyard_core::{ApiKeyId, Role, TenantId};
use time::OffsetDateTime;

/// A customer of the platform; everything else belongs to exactly one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// A free label such as `live` or `sandbox`.
    pub environment: Option<String>,
    pub created_at: OffsetDateTime,
    /// Set once the tenant is deleted; its rows are purged after the retention window.
    pub deleted_at: Option<OffsetDateTime>,
}

/// What it takes to create a tenant.
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub name: String,
    pub environment: Option<String>,
}

/// A tenant API key's metadata. The key itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// The first characters of the key, so a person can tell keys apart.
    pub prefix: String,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

/// What it takes to store a new API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// Hex SHA-256 of the whole key.
    pub key_hash: String,
    pub prefix: String,
}

/// Who an active API key speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    pub role: Role,
}

/// One page of a list ordered by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, Id> {
    pub items: Vec<T>,
    /// The id to continue after, when more items follow.
    pub next_after: Option<Id>,
}

impl<T, Id> Page<T, Id> {
    /// A page from a query that fetched `limit + 1` rows: the extra row only says that a
    /// next page exists, and the page continues after the last item kept.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, id_of: impl Fn(&T) -> Id) -> Self {
        let limit = limit as usize;
        let next_after = if items.len() > limit {
            items.truncate(limit);
            items.last().map(id_of)
        } else {
            None
        };
        Self { items, next_after }
    }
}

/// The current time as stored: UTC, truncated to microseconds (PostgreSQL's precision), so a
/// value reads back equal to what was written on both backends.
pub fn now_for_storage() -> OffsetDateTime {
    crate::DbTime::now().get()
}
