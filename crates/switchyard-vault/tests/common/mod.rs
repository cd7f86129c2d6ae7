//! Shared fixture: a migrated database (SQLite file or fresh PostgreSQL database) with the
//! vault's SQL storage on it, plus helpers to open vaults with different KEKs.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{path::PathBuf, sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::SecretString;
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{BackendFixture, TestBackend, TestDatabase};
use switchyard_vault::{KekConfig, Vault, VaultOptions, VaultStorage, storage_for};

pub struct VaultFixture {
    pub database: Database,
    pub storage: Arc<dyn VaultStorage>,
    // Last: dropped after the pool above (PostgreSQL databases are dropped WITH (FORCE)).
    pub test_db: TestDatabase,
}

impl BackendFixture for VaultFixture {
    async fn start(backend: TestBackend) -> Option<Self> {
        let test_db = TestDatabase::create(backend).await?;
        let database = Database::connect(test_db.url(), &DatabaseOptions::default())
            .await
            .expect("connect to the test database");
        database.migrate().await.expect("migrate the test database");
        let storage = storage_for(&database);
        Some(Self {
            database,
            storage,
            test_db,
        })
    }
}

/// Options with caching off, so tests see storage changes at once unless they test caching.
pub fn uncached() -> VaultOptions {
    VaultOptions {
        cache_ttl: Duration::ZERO,
        ..VaultOptions::default()
    }
}

pub fn env_key(byte: u8) -> KekConfig {
    KekConfig::Env {
        key_base64: SecretString::from(STANDARD.encode([byte; 32])),
    }
}

impl VaultFixture {
    pub fn key_path(&self) -> PathBuf {
        self.test_db.path("master.key")
    }

    pub fn key_file(&self) -> KekConfig {
        KekConfig::KeyFile {
            path: self.key_path(),
        }
    }

    pub async fn open(&self, kek: &KekConfig, options: VaultOptions) -> Vault {
        Vault::open(Arc::clone(&self.storage), kek, options)
            .await
            .expect("open the vault")
    }

    /// A vault on the default key file, uncached.
    pub async fn vault(&self) -> Vault {
        self.open(&self.key_file(), uncached()).await
    }

    /// Runs raw SQL (tests that tamper with rows the way an attacker with database access could).
    pub async fn exec(&self, sql: &str) -> u64 {
        match &self.database {
            Database::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
            Database::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .unwrap()
                .rows_affected(),
        }
    }

    /// Every live secret ciphertext, in key order.
    pub async fn secret_ciphertexts(&self) -> Vec<Vec<u8>> {
        let sql = "SELECT ciphertext FROM vault_secrets WHERE ciphertext IS NOT NULL \
                   ORDER BY tenant_id, name, version";
        let rows: Vec<(Vec<u8>,)> = match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
        };
        rows.into_iter().map(|(ct,)| ct).collect()
    }

    /// All stored bytes of the vault tables, to check no plaintext ever reaches them.
    pub async fn dump(&self) -> Vec<u8> {
        let sql = "SELECT COALESCE(ciphertext, X'00'), fingerprint, name FROM vault_secrets";
        let sql_pg =
            "SELECT COALESCE(ciphertext, '\\x00'::bytea), fingerprint, name FROM vault_secrets";
        let rows: Vec<(Vec<u8>, String, String)> = match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_as(sql_pg).fetch_all(pool).await.unwrap(),
        };
        let keys_sql = "SELECT wrapped_key FROM vault_tenant_keys WHERE wrapped_key IS NOT NULL";
        let keys: Vec<(Vec<u8>,)> = match &self.database {
            Database::Sqlite(pool) => sqlx::query_as(keys_sql).fetch_all(pool).await.unwrap(),
            Database::Postgres(pool) => sqlx::query_as(keys_sql).fetch_all(pool).await.unwrap(),
        };
        let mut out = Vec::new();
        for (ct, fp, name) in rows {
            out.extend(ct);
            out.extend(fp.into_bytes());
            out.extend(name.into_bytes());
        }
        for (k,) in keys {
            out.extend(k);
        }
        out
    }
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
