//! [`VaultStorage`] over SQLite and PostgreSQL.
//!
//! The statements are written once in the dialect both engines accept (`$n` placeholders,
//! partial unique indexes) and expanded per pool type by [`impl_sql_storage!`]; the only
//! difference is PostgreSQL's `FOR SHARE` on the data-key check, which SQLite does not need
//! because it serialises writers. Tables: `vault_tenant_keys`, `vault_secrets`
//! (`switchyard-store/migrations/*/0002_vault.sql`).

use std::sync::Arc;

use async_trait::async_trait;
use switchyard_store::DbTime;
use time::OffsetDateTime;

use super::{
    InsertOutcome, KeyState, RetireOutcome, SecretRecord, SecretTransition, ShredCounts,
    TenantKeyRecord, VaultStorage,
};
use crate::{
    error::{Result, VaultError},
    kek::{KeyPurpose, WrappedKey},
    secret::VersionState,
};

/// Picks the implementation for a connected (and migrated) store database.
pub fn storage_for(database: &switchyard_store::Database) -> Arc<dyn VaultStorage> {
    match database {
        switchyard_store::Database::Sqlite(pool) => Arc::new(SqliteVaultStorage::new(pool.clone())),
        switchyard_store::Database::Postgres(pool) => {
            Arc::new(PostgresVaultStorage::new(pool.clone()))
        }
    }
}

type KeyRow = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<Vec<u8>>,
    DbTime,
    DbTime,
);
type SecretRow = (
    String,
    String,
    i64,
    String,
    i64,
    Option<Vec<u8>>,
    String,
    DbTime,
    DbTime,
);

const KEY_COLUMNS: &str =
    "tenant_id, purpose, version, state, kek_id, wrapped_key, created_at, state_changed_at";
const SECRET_COLUMNS: &str =
    "tenant_id, name, version, state, dek_version, ciphertext, fingerprint, created_at, updated_at";

fn db(error: sqlx::Error) -> VaultError {
    VaultError::storage(error)
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn version_from_db(value: i64) -> Result<u32> {
    u32::try_from(value).map_err(|_| VaultError::corrupt(format!("version {value} out of range")))
}

fn key_from_row(row: KeyRow) -> Result<TenantKeyRecord> {
    let (tenant_id, purpose, version, state, kek_id, wrapped, created_at, state_changed_at) = row;
    let wrapped = match (kek_id, wrapped) {
        (Some(kek_id), Some(bytes)) => Some(WrappedKey { kek_id, bytes }),
        (None, None) => None,
        _ => return Err(VaultError::corrupt("tenant key with half a wrapping")),
    };
    Ok(TenantKeyRecord {
        purpose: KeyPurpose::parse(&purpose)
            .ok_or_else(|| VaultError::corrupt(format!("unknown key purpose `{purpose}`")))?,
        version: version_from_db(version)?,
        state: KeyState::parse(&state)
            .ok_or_else(|| VaultError::corrupt(format!("unknown key state `{state}`")))?,
        tenant_id,
        wrapped,
        created_at: created_at.get(),
        state_changed_at: state_changed_at.get(),
    })
}

fn secret_from_row(row: SecretRow) -> Result<SecretRecord> {
    let (tenant_id, name, version, state, dek_version, ciphertext, fingerprint, created, updated) =
        row;
    Ok(SecretRecord {
        version: version_from_db(version)?,
        state: VersionState::parse(&state)
            .ok_or_else(|| VaultError::corrupt(format!("unknown secret state `{state}`")))?,
        dek_version: version_from_db(dek_version)?,
        tenant_id,
        name,
        ciphertext,
        fingerprint,
        created_at: created.get(),
        updated_at: updated.get(),
    })
}

fn transition_sql(transition: &SecretTransition) -> &'static str {
    if transition.to == VersionState::Destroyed {
        "UPDATE vault_secrets SET state = $1, ciphertext = NULL, updated_at = $2 \
         WHERE tenant_id = $3 AND name = $4 AND version = $5 AND state = $6"
    } else {
        "UPDATE vault_secrets SET state = $1, updated_at = $2 \
         WHERE tenant_id = $3 AND name = $4 AND version = $5 AND state = $6"
    }
}

macro_rules! impl_sql_storage {
    ($(#[$meta:meta])* $name:ident, $pool:ty, $db:ty, $lock:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $name {
            pool: $pool,
        }

        impl $name {
            pub fn new(pool: $pool) -> Self {
                Self { pool }
            }

            /// Applies transitions inside `tx`; `false` when one did not match.
            async fn apply_transitions(
                tx: &mut sqlx::Transaction<'_, $db>,
                tenant: &str,
                name: &str,
                transitions: &[SecretTransition],
                now: OffsetDateTime,
            ) -> Result<bool> {
                for transition in transitions {
                    let done = sqlx::query(transition_sql(transition))
                        .bind(transition.to.as_str())
                        .bind(DbTime::new(now))
                        .bind(tenant)
                        .bind(name)
                        .bind(i64::from(transition.version))
                        .bind(transition.from.as_str())
                        .execute(&mut **tx)
                        .await
                        .map_err(db)?;
                    if done.rows_affected() != 1 {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
        }

        #[async_trait]
        impl VaultStorage for $name {
            async fn tenant_keys(&self, tenant: &str) -> Result<Vec<TenantKeyRecord>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM vault_tenant_keys WHERE tenant_id = $1 \
                     ORDER BY purpose, version"
                );
                let rows: Vec<KeyRow> = sqlx::query_as(&sql)
                    .bind(tenant)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(key_from_row).collect()
            }

            async fn tenant_key(
                &self,
                tenant: &str,
                purpose: KeyPurpose,
                version: u32,
            ) -> Result<Option<TenantKeyRecord>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM vault_tenant_keys \
                     WHERE tenant_id = $1 AND purpose = $2 AND version = $3"
                );
                let row: Option<KeyRow> = sqlx::query_as(&sql)
                    .bind(tenant)
                    .bind(purpose.as_str())
                    .bind(i64::from(version))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.map(key_from_row).transpose()
            }

            async fn insert_tenant_key(
                &self,
                key: &TenantKeyRecord,
                demote: Option<u32>,
            ) -> Result<InsertOutcome> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                // Demote first: the partial unique index allows one active key per purpose.
                if let Some(old) = demote {
                    let done = sqlx::query(
                        "UPDATE vault_tenant_keys SET state = 'decrypt_only', state_changed_at = $1 \
                         WHERE tenant_id = $2 AND purpose = $3 AND version = $4 AND state = 'active'",
                    )
                    .bind(DbTime::new(key.created_at))
                    .bind(&key.tenant_id)
                    .bind(key.purpose.as_str())
                    .bind(i64::from(old))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
                    if done.rows_affected() != 1 {
                        return Ok(InsertOutcome::Conflict);
                    }
                }
                let (kek_id, wrapped) = match &key.wrapped {
                    Some(w) => (Some(w.kek_id.as_str()), Some(w.bytes.as_slice())),
                    None => (None, None),
                };
                let sql = format!(
                    "INSERT INTO vault_tenant_keys ({KEY_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                );
                let inserted = sqlx::query(&sql)
                    .bind(&key.tenant_id)
                    .bind(key.purpose.as_str())
                    .bind(i64::from(key.version))
                    .bind(key.state.as_str())
                    .bind(kek_id)
                    .bind(wrapped)
                    .bind(DbTime::new(key.created_at))
                    .bind(DbTime::new(key.state_changed_at))
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(error) if is_unique_violation(&error) => return Ok(InsertOutcome::Conflict),
                    Err(error) => return Err(db(error)),
                }
                tx.commit().await.map_err(db)?;
                Ok(InsertOutcome::Inserted)
            }

            async fn retire_data_key(
                &self,
                tenant: &str,
                version: u32,
                now: OffsetDateTime,
            ) -> Result<RetireOutcome> {
                // One statement, so a secret written under this key cannot slip in between the
                // check and the erasure (writers need the key active, and it is not).
                let done = sqlx::query(
                    "UPDATE vault_tenant_keys \
                     SET state = 'retired', kek_id = NULL, wrapped_key = NULL, state_changed_at = $3 \
                     WHERE tenant_id = $1 AND purpose = 'dek' AND version = $2 \
                       AND state = 'decrypt_only' \
                       AND NOT EXISTS (SELECT 1 FROM vault_secrets s WHERE s.tenant_id = $1 \
                                       AND s.dek_version = $2 AND s.ciphertext IS NOT NULL)",
                )
                .bind(tenant)
                .bind(i64::from(version))
                .bind(DbTime::new(now))
                .execute(&self.pool)
                .await
                .map_err(db)?;
                if done.rows_affected() == 1 {
                    return Ok(RetireOutcome::Retired);
                }
                let state = self
                    .tenant_key(tenant, KeyPurpose::DataKey, version)
                    .await?
                    .map(|key| key.state);
                if state != Some(KeyState::DecryptOnly) {
                    return Ok(RetireOutcome::NotDecryptOnly { state });
                }
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM vault_secrets WHERE tenant_id = $1 AND dek_version = $2 \
                     AND ciphertext IS NOT NULL",
                )
                .bind(tenant)
                .bind(i64::from(version))
                .fetch_one(&self.pool)
                .await
                .map_err(db)?;
                Ok(RetireOutcome::InUse {
                    secrets: u64::try_from(count).unwrap_or(0),
                })
            }

            async fn shred_tenant(&self, tenant: &str, now: OffsetDateTime) -> Result<ShredCounts> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                let keys = sqlx::query(
                    "UPDATE vault_tenant_keys \
                     SET state = 'destroyed', kek_id = NULL, wrapped_key = NULL, state_changed_at = $2 \
                     WHERE tenant_id = $1 AND state <> 'destroyed'",
                )
                .bind(tenant)
                .bind(DbTime::new(now))
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                // A tenant shredded before it ever had a key still gets a tombstone, so that a
                // later write cannot quietly start it afresh.
                sqlx::query(
                    "INSERT INTO vault_tenant_keys \
                     (tenant_id, purpose, version, state, kek_id, wrapped_key, created_at, state_changed_at) \
                     SELECT $1, 'dek', 1, 'destroyed', NULL, NULL, $2, $2 \
                     WHERE NOT EXISTS (SELECT 1 FROM vault_tenant_keys WHERE tenant_id = $1)",
                )
                .bind(tenant)
                .bind(DbTime::new(now))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
                let secret_versions = sqlx::query(
                    "UPDATE vault_secrets SET state = 'destroyed', ciphertext = NULL, updated_at = $2 \
                     WHERE tenant_id = $1 AND state <> 'destroyed'",
                )
                .bind(tenant)
                .bind(DbTime::new(now))
                .execute(&mut *tx)
                .await
                .map_err(db)?
                .rows_affected();
                tx.commit().await.map_err(db)?;
                Ok(ShredCounts {
                    keys,
                    secret_versions,
                })
            }

            async fn kek_ids_in_use_admin(&self) -> Result<Vec<String>> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT DISTINCT kek_id FROM vault_tenant_keys \
                     WHERE wrapped_key IS NOT NULL AND kek_id IS NOT NULL ORDER BY kek_id",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            async fn sample_key_wrapped_by_admin(
                &self,
                kek_id: &str,
            ) -> Result<Option<TenantKeyRecord>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM vault_tenant_keys \
                     WHERE kek_id = $1 AND wrapped_key IS NOT NULL LIMIT 1"
                );
                let row: Option<KeyRow> = sqlx::query_as(&sql)
                    .bind(kek_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.map(key_from_row).transpose()
            }

            async fn keys_not_wrapped_by_admin(
                &self,
                kek_id: &str,
                limit: u32,
            ) -> Result<Vec<TenantKeyRecord>> {
                let sql = format!(
                    "SELECT {KEY_COLUMNS} FROM vault_tenant_keys \
                     WHERE wrapped_key IS NOT NULL AND kek_id <> $1 \
                     ORDER BY tenant_id, purpose, version LIMIT $2"
                );
                let rows: Vec<KeyRow> = sqlx::query_as(&sql)
                    .bind(kek_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(key_from_row).collect()
            }

            async fn rewrap_tenant_key(
                &self,
                tenant: &str,
                purpose: KeyPurpose,
                version: u32,
                old: &WrappedKey,
                new: &WrappedKey,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE vault_tenant_keys SET kek_id = $1, wrapped_key = $2 \
                     WHERE tenant_id = $3 AND purpose = $4 AND version = $5 \
                       AND kek_id = $6 AND wrapped_key = $7",
                )
                .bind(&new.kek_id)
                .bind(new.bytes.as_slice())
                .bind(tenant)
                .bind(purpose.as_str())
                .bind(i64::from(version))
                .bind(&old.kek_id)
                .bind(old.bytes.as_slice())
                .execute(&self.pool)
                .await
                .map_err(db)?;
                Ok(done.rows_affected() == 1)
            }

            async fn secret_versions(&self, tenant: &str, name: &str) -> Result<Vec<SecretRecord>> {
                let sql = format!(
                    "SELECT {SECRET_COLUMNS} FROM vault_secrets \
                     WHERE tenant_id = $1 AND name = $2 ORDER BY version"
                );
                let rows: Vec<SecretRow> = sqlx::query_as(&sql)
                    .bind(tenant)
                    .bind(name)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(secret_from_row).collect()
            }

            async fn secret_version(
                &self,
                tenant: &str,
                name: &str,
                version: u32,
            ) -> Result<Option<SecretRecord>> {
                let sql = format!(
                    "SELECT {SECRET_COLUMNS} FROM vault_secrets \
                     WHERE tenant_id = $1 AND name = $2 AND version = $3"
                );
                let row: Option<SecretRow> = sqlx::query_as(&sql)
                    .bind(tenant)
                    .bind(name)
                    .bind(i64::from(version))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(db)?;
                row.map(secret_from_row).transpose()
            }

            async fn insert_secret_version(
                &self,
                record: &SecretRecord,
                transitions: &[SecretTransition],
            ) -> Result<InsertOutcome> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                // Transitions first: they demote the current version that the partial unique
                // index would otherwise find alongside the new one. Writing first also takes
                // SQLite's write lock up front instead of upgrading a read lock later.
                if !Self::apply_transitions(
                    &mut tx,
                    &record.tenant_id,
                    &record.name,
                    transitions,
                    record.created_at,
                )
                .await?
                {
                    return Ok(InsertOutcome::Conflict);
                }
                let sql = format!(
                    "INSERT INTO vault_secrets ({SECRET_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                );
                let inserted = sqlx::query(&sql)
                    .bind(&record.tenant_id)
                    .bind(&record.name)
                    .bind(i64::from(record.version))
                    .bind(record.state.as_str())
                    .bind(i64::from(record.dek_version))
                    .bind(record.ciphertext.as_deref())
                    .bind(&record.fingerprint)
                    .bind(DbTime::new(record.created_at))
                    .bind(DbTime::new(record.updated_at))
                    .execute(&mut *tx)
                    .await;
                match inserted {
                    Ok(_) => {}
                    Err(error) if is_unique_violation(&error) => return Ok(InsertOutcome::Conflict),
                    Err(error) => return Err(db(error)),
                }
                // The data key must still be active when we commit; on PostgreSQL the share
                // lock makes a concurrent rotation wait for us (and then re-encrypt this row)
                // or makes us see its demotion.
                let state: Option<(String,)> = sqlx::query_as(concat!(
                    "SELECT state FROM vault_tenant_keys \
                     WHERE tenant_id = $1 AND purpose = 'dek' AND version = $2",
                    $lock
                ))
                .bind(&record.tenant_id)
                .bind(i64::from(record.dek_version))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db)?;
                if state.as_ref().map(|(s,)| s.as_str()) != Some(KeyState::Active.as_str()) {
                    return Ok(InsertOutcome::DataKeyNotActive);
                }
                tx.commit().await.map_err(db)?;
                Ok(InsertOutcome::Inserted)
            }

            async fn transition_secret_versions(
                &self,
                tenant: &str,
                name: &str,
                transitions: &[SecretTransition],
                now: OffsetDateTime,
            ) -> Result<bool> {
                let mut tx = self.pool.begin().await.map_err(db)?;
                if !Self::apply_transitions(&mut tx, tenant, name, transitions, now).await? {
                    return Ok(false);
                }
                tx.commit().await.map_err(db)?;
                Ok(true)
            }

            async fn secrets_not_on_data_key(
                &self,
                tenant: &str,
                dek_version: u32,
                limit: u32,
            ) -> Result<Vec<SecretRecord>> {
                let sql = format!(
                    "SELECT {SECRET_COLUMNS} FROM vault_secrets \
                     WHERE tenant_id = $1 AND ciphertext IS NOT NULL AND dek_version <> $2 \
                     ORDER BY name, version LIMIT $3"
                );
                let rows: Vec<SecretRow> = sqlx::query_as(&sql)
                    .bind(tenant)
                    .bind(i64::from(dek_version))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db)?;
                rows.into_iter().map(secret_from_row).collect()
            }

            async fn reencrypt_secret(
                &self,
                tenant: &str,
                name: &str,
                version: u32,
                old_dek: u32,
                new_dek: u32,
                ciphertext: &[u8],
                now: OffsetDateTime,
            ) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE vault_secrets SET dek_version = $1, ciphertext = $2, updated_at = $3 \
                     WHERE tenant_id = $4 AND name = $5 AND version = $6 AND dek_version = $7 \
                       AND ciphertext IS NOT NULL",
                )
                .bind(i64::from(new_dek))
                .bind(ciphertext)
                .bind(DbTime::new(now))
                .bind(tenant)
                .bind(name)
                .bind(i64::from(version))
                .bind(i64::from(old_dek))
                .execute(&self.pool)
                .await
                .map_err(db)?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

impl_sql_storage!(
    /// Vault storage on SQLite (the embedded default).
    SqliteVaultStorage,
    sqlx::SqlitePool,
    sqlx::Sqlite,
    ""
);
impl_sql_storage!(
    /// Vault storage on PostgreSQL (scaled deployments).
    PostgresVaultStorage,
    sqlx::PgPool,
    sqlx::Postgres,
    " FOR SHARE"
);
