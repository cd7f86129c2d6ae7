//! The one SQL implementation of the store traits, instantiated for SQLite and PostgreSQL.
//!
//! The statements are written once in the dialect both engines accept (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); [`impl_sql_store!`] expands them for each pool type, so the two
//! backends cannot drift apart. A statement that truly differs between engines belongs in a
//! backend-specific method, not here.

use crate::{
    ApiKey, ApiKeyPrincipal, Database, DbTime, IdempotencyStart, StoreError, StoredResponse, Tenant,
};
use switchyard_core::{ApiKeyId, Role, TenantId};

type TenantRow = (String, String, Option<String>, DbTime, Option<DbTime>);
type ApiKeyRow = (
    String,
    String,
    String,
    String,
    String,
    DbTime,
    Option<DbTime>,
);
type IdempotencyRow = (String, Option<i32>, Option<String>, Option<Vec<u8>>);

const TENANT_COLUMNS: &str = "id, name, environment, created_at, deleted_at";
const API_KEY_COLUMNS: &str = "id, tenant_id, name, role, key_prefix, created_at, revoked_at";

fn tenant_from_row(
    (id, name, environment, created_at, deleted_at): TenantRow,
) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: id.parse().map_err(|e| StoreError::corrupt("tenants", e))?,
        name,
        environment,
        created_at: created_at.get(),
        deleted_at: deleted_at.map(DbTime::get),
    })
}

fn api_key_from_row(row: ApiKeyRow) -> Result<ApiKey, StoreError> {
    let (id, tenant_id, name, role, prefix, created_at, revoked_at) = row;
    Ok(ApiKey {
        id: id.parse().map_err(|e| StoreError::corrupt("api_keys", e))?,
        tenant_id: tenant_id
            .parse()
            .map_err(|e| StoreError::corrupt("api_keys", e))?,
        name,
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::corrupt("api_keys", e))?,
        prefix,
        created_at: created_at.get(),
        revoked_at: revoked_at.map(DbTime::get),
    })
}

fn principal_from_row(
    (key_id, tenant_id, role): (String, String, String),
) -> Result<ApiKeyPrincipal, StoreError> {
    Ok(ApiKeyPrincipal {
        key_id: key_id
            .parse::<ApiKeyId>()
            .map_err(|e| StoreError::corrupt("api_keys", e))?,
        tenant_id: tenant_id
            .parse::<TenantId>()
            .map_err(|e| StoreError::corrupt("api_keys", e))?,
        role: role
            .parse::<Role>()
            .map_err(|e| StoreError::corrupt("api_keys", e))?,
    })
}

fn idempotency_outcome(
    (stored_hash, status, content_type, body): IdempotencyRow,
    request_hash: &str,
) -> Result<IdempotencyStart, StoreError> {
    if stored_hash != request_hash {
        return Ok(IdempotencyStart::Mismatch);
    }
    let Some(status) = status else {
        return Ok(IdempotencyStart::InProgress);
    };
    let status = u16::try_from(status)
        .map_err(|_| StoreError::corrupt("idempotency_keys", "status out of range"))?;
    Ok(IdempotencyStart::Completed(StoredResponse {
        status,
        content_type,
        body: body.unwrap_or_default(),
    }))
}

macro_rules! impl_sql_store {
    ($(#[$meta:meta])* $store:ident, $pool:ty, $variant:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $store {
            pool: $pool,
            database: Database,
        }

        impl $store {
            pub fn new(pool: $pool) -> Self {
                let database = Database::$variant(pool.clone());
                Self { pool, database }
            }
        }

        #[async_trait::async_trait]
        impl crate::Store for $store {
            fn database(&self) -> &Database {
                &self.database
            }
        }

        #[async_trait::async_trait]
        impl crate::TenantStore for $store {
            async fn create_tenant(&self, tenant: crate::NewTenant) -> Result<Tenant, StoreError> {
                let row: TenantRow = sqlx::query_as(&format!(
                    "INSERT INTO tenants (id, name, environment, created_at) VALUES ($1, $2, $3, $4) \
                     RETURNING {TENANT_COLUMNS}"
                ))
                .bind(TenantId::generate().to_string())
                .bind(tenant.name)
                .bind(tenant.environment)
                .bind(DbTime::now())
                .fetch_one(&self.pool)
                .await?;
                tenant_from_row(row)
            }

            async fn get_tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
                let row: Option<TenantRow> = sqlx::query_as(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE id = $1 AND deleted_at IS NULL"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(tenant_from_row).transpose()
            }

            async fn list_all_tenants(
                &self,
                after: Option<TenantId>,
                limit: u32,
            ) -> Result<crate::Page<Tenant, TenantId>, StoreError> {
                let rows: Vec<TenantRow> = sqlx::query_as(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants \
                     WHERE deleted_at IS NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
                ))
                .bind(after.map(|id| id.to_string()))
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
                let tenants = rows
                    .into_iter()
                    .map(tenant_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(crate::Page::from_overfetch(tenants, limit, |t| t.id))
            }

            async fn mark_tenant_deleted(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
                let now = DbTime::now();
                let mut transaction = self.pool.begin().await?;
                let row: Option<TenantRow> = sqlx::query_as(&format!(
                    "UPDATE tenants SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL \
                     RETURNING {TENANT_COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(now)
                .fetch_optional(&mut *transaction)
                .await?;
                if row.is_none() {
                    return Ok(None);
                }
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = $2 WHERE tenant_id = $1 AND revoked_at IS NULL",
                )
                .bind(id.to_string())
                .bind(now)
                .execute(&mut *transaction)
                .await?;
                transaction.commit().await?;
                row.map(tenant_from_row).transpose()
            }
        }

        #[async_trait::async_trait]
        impl crate::ApiKeyStore for $store {
            async fn create_api_key(&self, key: crate::NewApiKey) -> Result<ApiKey, StoreError> {
                let row: ApiKeyRow = sqlx::query_as(&format!(
                    "INSERT INTO api_keys (id, tenant_id, name, role, key_hash, key_prefix, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {API_KEY_COLUMNS}"
                ))
                .bind(ApiKeyId::generate().to_string())
                .bind(key.tenant_id.to_string())
                .bind(key.name)
                .bind(key.role.as_str())
                .bind(key.key_hash)
                .bind(key.prefix)
                .bind(DbTime::now())
                .fetch_one(&self.pool)
                .await?;
                api_key_from_row(row)
            }

            async fn list_api_keys(
                &self,
                tenant: TenantId,
                after: Option<ApiKeyId>,
                limit: u32,
            ) -> Result<crate::Page<ApiKey, ApiKeyId>, StoreError> {
                let rows: Vec<ApiKeyRow> = sqlx::query_as(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys \
                     WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
                ))
                .bind(tenant.to_string())
                .bind(after.map(|id| id.to_string()))
                .bind(i64::from(limit) + 1)
                .fetch_all(&self.pool)
                .await?;
                let keys = rows
                    .into_iter()
                    .map(api_key_from_row)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(crate::Page::from_overfetch(keys, limit, |k| k.id))
            }

            async fn get_api_key(
                &self,
                tenant: TenantId,
                id: ApiKeyId,
            ) -> Result<Option<ApiKey>, StoreError> {
                let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
                    "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE tenant_id = $1 AND id = $2"
                ))
                .bind(tenant.to_string())
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                row.map(api_key_from_row).transpose()
            }

            async fn revoke_api_key(
                &self,
                tenant: TenantId,
                id: ApiKeyId,
            ) -> Result<Option<ApiKey>, StoreError> {
                let row: Option<ApiKeyRow> = sqlx::query_as(&format!(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
                     WHERE tenant_id = $1 AND id = $2 RETURNING {API_KEY_COLUMNS}"
                ))
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(DbTime::now())
                .fetch_optional(&self.pool)
                .await?;
                row.map(api_key_from_row).transpose()
            }

            async fn find_active_key_by_hash(
                &self,
                key_hash: &str,
            ) -> Result<Option<ApiKeyPrincipal>, StoreError> {
                let row: Option<(String, String, String)> = sqlx::query_as(
                    "SELECT id, tenant_id, role FROM api_keys \
                     WHERE key_hash = $1 AND revoked_at IS NULL",
                )
                .bind(key_hash)
                .fetch_optional(&self.pool)
                .await?;
                row.map(principal_from_row).transpose()
            }
        }

        #[async_trait::async_trait]
        impl crate::IdempotencyStore for $store {
            async fn claim_idempotency_key(
                &self,
                scope: &str,
                key: &str,
                request_hash: &str,
                ttl: time::Duration,
            ) -> Result<IdempotencyStart, StoreError> {
                let now = DbTime::now();
                // Forget an expired record first so the key can be claimed afresh.
                sqlx::query(
                    "DELETE FROM idempotency_keys \
                     WHERE scope = $1 AND idempotency_key = $2 AND created_at < $3",
                )
                .bind(scope)
                .bind(key)
                .bind(DbTime::new(now.get() - ttl))
                .execute(&self.pool)
                .await?;
                // The primary key makes the claim atomic: of two racing requests one inserts.
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (scope, idempotency_key, request_hash, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(scope)
                .bind(key)
                .bind(request_hash)
                .bind(now)
                .execute(&self.pool)
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok(IdempotencyStart::Claimed);
                }
                let row: Option<IdempotencyRow> = sqlx::query_as(
                    "SELECT request_hash, status_code, content_type, response_body \
                     FROM idempotency_keys WHERE scope = $1 AND idempotency_key = $2",
                )
                .bind(scope)
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
                match row {
                    Some(row) => idempotency_outcome(row, request_hash),
                    // Released between our insert and select: the other request gave up.
                    None => Ok(IdempotencyStart::InProgress),
                }
            }

            async fn complete_idempotency_key(
                &self,
                scope: &str,
                key: &str,
                response: &StoredResponse,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "UPDATE idempotency_keys SET status_code = $3, content_type = $4, response_body = $5 \
                     WHERE scope = $1 AND idempotency_key = $2",
                )
                .bind(scope)
                .bind(key)
                .bind(i32::from(response.status))
                .bind(response.content_type.as_deref())
                .bind(response.body.as_slice())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "DELETE FROM idempotency_keys \
                     WHERE scope = $1 AND idempotency_key = $2 AND status_code IS NULL",
                )
                .bind(scope)
                .bind(key)
                .execute(&self.pool)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl crate::SettingsStore for $store {
            async fn get_setting(&self, name: &str) -> Result<Option<String>, StoreError> {
                let value: Option<(String,)> =
                    sqlx::query_as("SELECT value FROM platform_settings WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(value.map(|(value,)| value))
            }

            async fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO platform_settings (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn insert_setting_if_absent(
                &self,
                name: &str,
                value: &str,
            ) -> Result<bool, StoreError> {
                let inserted = sqlx::query(
                    "INSERT INTO platform_settings (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(value)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }
        }
    };
}

impl_sql_store!(
    /// The store on SQLite, the zero-setup default.
    SqliteStore,
    sqlx::SqlitePool,
    Sqlite
);
impl_sql_store!(
    /// The store on PostgreSQL, for several processes sharing one database.
    PostgresStore,
    sqlx::PgPool,
    Postgres
);
