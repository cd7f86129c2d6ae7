//! A record store with one stored connection, that syncs run into and tests read back:
//! shared by the engine and provider test binaries (each includes this file by `#[path]`).

use serde_json::Value;
use switchyard_connectors::conformance::Records;
use switchyard_connectors::store::{ConnectionStore, NewConnection, RecordStore};
use switchyard_connectors::sync::{self, SyncCounts, SyncError, SyncTarget};
use switchyard_connectors::{CallContext, ConnectionContext, Connector};
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{CredentialSource, InMemoryBackend, ProviderClient};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::TestDatabase;

/// A migrated SQLite record store with one stored connection, for syncs.
pub struct Store {
    pub records: RecordStore,
    pub tenant: TenantId,
    pub connection: ConnectionId,
    _database: TestDatabase,
}

impl Store {
    /// A fresh store holding a connection to `provider`.
    pub async fn start(provider: &str) -> Self {
        let database = TestDatabase::sqlite();
        let pool = Database::connect(database.url(), &DatabaseOptions::default())
            .await
            .unwrap();
        pool.migrate().await.unwrap();
        // Records belong to a stored connection.
        let tenant = TenantId::generate();
        let connection = ConnectionStore::new(pool.clone())
            .create(NewConnection::new(tenant, provider, "test"))
            .await
            .unwrap();
        Self {
            records: RecordStore::new(pool),
            tenant,
            connection: connection.id,
            _database: database,
        }
    }

    /// The stored connection's context with `config` and `base_url`.
    pub fn context(&self, config: Value, base_url: Option<String>) -> ConnectionContext {
        ConnectionContext {
            tenant: self.tenant,
            connection: self.connection,
            config,
            base_url,
            auth_mode: None,
        }
    }

    /// Syncs `stream` to its end into the store, calling through `calls` as `connection`.
    pub async fn sync<C: CredentialSource + 'static>(
        &self,
        connector: &dyn Connector,
        calls: &ProviderClient<InMemoryBackend, C>,
        connection: &ConnectionContext,
        stream: &str,
    ) -> Result<SyncCounts, SyncError> {
        let target = SyncTarget {
            tenant: &self.tenant,
            connection: &self.connection,
            stream,
        };
        let cx = CallContext { calls, connection };
        sync::run(connector, cx, &self.records, target, "run_test", |_| {}).await
    }

    /// The live records of `stream` by primary key.
    pub async fn stored(&self, stream: &str) -> Records {
        let mut all = Records::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .records
                .records(
                    &self.tenant,
                    &self.connection,
                    stream,
                    after.as_deref(),
                    500,
                )
                .await
                .unwrap();
            for record in page.items {
                all.insert(record.primary_key, record.data);
            }
            match page.next_after {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    }
}
