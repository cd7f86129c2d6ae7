//! Switchyard's store of record: SQLite by default, PostgreSQL for scaled deployments.
//!
//! Other crates reach it through the traits below ([`Store`] and its parts), which both
//! backends implement with the same SQL ([`sql`]). A crate that owns tables of its own (the
//! vault, the job engine…) takes the [`Database`] handle and writes its own queries; every
//! table's migration lives in `migrations/{sqlite,postgres}` so one migrator applies them in
//! order.
//!
//! # Layout
//! - [`database`]: connecting, pool settings, migrations and the schema-version check.
//! - [`db_time`]: the one encoding of times on both engines ([`DbTime`]).
//! - [`model`]: the rows callers see (tenants, API keys, pages).
//! - [`tenants`], [`api_keys`], [`idempotency`], [`settings`]: one trait per table family.
//! - [`sql`]: the single SQL implementation, instantiated for SQLite and PostgreSQL.
//! - [`retention`]: batched purging of rows older than their data class's retention period.

pub mod api_keys;
pub mod database;
pub mod db_time;
mod dispatch;
pub mod error;
pub mod idempotency;
pub mod model;
pub mod retention;
pub mod settings;
mod sql;
pub mod tenants;
pub mod transaction;

use std::sync::Arc;

pub use api_keys::ApiKeyStore;
pub use database::{Backend, Database, DatabaseOptions};
pub use db_time::DbTime;
pub use error::StoreError;
pub use idempotency::{IdempotencyStart, IdempotencyStore, StoredResponse};
pub use model::{ApiKey, ApiKeyPrincipal, NewApiKey, NewTenant, Page, Tenant};
pub use settings::SettingsStore;
pub use sql::{PostgresStore, SqliteStore};
pub use tenants::TenantStore;
pub use transaction::{BackendTransaction, Transaction};

/// Everything the API needs from the store of record, as one object.
#[async_trait::async_trait]
pub trait Store: TenantStore + ApiKeyStore + IdempotencyStore + SettingsStore {
    /// The underlying pool, for crates that own tables of their own.
    fn database(&self) -> &Database;

    /// Checks that the database answers a trivial query.
    async fn ping(&self) -> Result<(), StoreError> {
        self.database().ping().await
    }
}

/// Wraps a connected, migrated database in the store implementation for its backend.
pub fn open(database: Database) -> Arc<dyn Store> {
    match database {
        Database::Sqlite(pool) => Arc::new(SqliteStore::new(pool)),
        Database::Postgres(pool) => Arc::new(PostgresStore::new(pool)),
    }
}
