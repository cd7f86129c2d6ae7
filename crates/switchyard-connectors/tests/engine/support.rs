//! A connector, a provider call stack that reaches the stand-in, and a record store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_connectors::store::{ConnectionStore, NewConnection, RecordStore};
use switchyard_connectors::sync::{self, SyncCounts, SyncTarget};
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, manifest,
};
use switchyard_core::TenantId;
use switchyard_http::{InMemoryBackend, ProviderClient};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::TestDatabase;
use switchyard_test_support::standin::{BearerToken, StandIn, StandInOptions, provider_client};

pub const TOKEN: &str = "standin-test-token";

pub type Calls = ProviderClient<InMemoryBackend, BearerToken>;

pub fn calls() -> Calls {
    provider_client(BearerToken(TOKEN.to_owned()))
}

pub fn manifest_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/manifests")
        .join(format!("{name}.yaml"))
}

pub fn connector(name: &str) -> ManifestConnector {
    connector_at(name)
}

/// A manifest under `tests/manifests/` by its relative path without `.yaml`.
pub fn connector_at(name: &str) -> ManifestConnector {
    let path = manifest_path(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest =
        manifest::load(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    ManifestConnector::new(manifest).unwrap()
}

/// Everything one test needs.
pub struct Harness {
    pub standin: StandIn,
    pub calls: Calls,
    pub connection: ConnectionContext,
    pub records: RecordStore,
    pub _database: TestDatabase,
}

impl Harness {
    pub async fn start(items: u64) -> Self {
        let standin = StandIn::start(StandInOptions {
            token: Some(TOKEN.into()),
            rate_limit: None,
            ..Default::default()
        })
        .await
        .unwrap();
        standin.seed(items);
        let database = TestDatabase::sqlite();
        let pool = Database::connect(database.url(), &DatabaseOptions::default())
            .await
            .unwrap();
        pool.migrate().await.unwrap();
        // Records belong to a stored connection.
        let tenant = TenantId::generate();
        let connection = ConnectionStore::new(pool.clone())
            .create(NewConnection::new(tenant, "standin", "test"))
            .await
            .unwrap();
        Self {
            connection: ConnectionContext {
                tenant,
                connection: connection.id,
                config: json!({"base_url": standin.url(), "installation_id": "42"}),
                base_url: None,
            },
            standin,
            calls: calls(),
            records: RecordStore::new(pool),
            _database: database,
        }
    }

    pub fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }

    pub async fn sync(&self, connector: &dyn Connector) -> SyncCounts {
        sync::run(
            connector,
            self.cx(),
            &self.records,
            self.target(),
            "run_test",
            |_| {},
        )
        .await
        .unwrap()
    }

    pub async fn sync_stream(&self, connector: &dyn Connector, stream: &str) -> SyncCounts {
        let target = SyncTarget {
            tenant: &self.connection.tenant,
            connection: &self.connection.connection,
            stream,
        };
        sync::run(
            connector,
            self.cx(),
            &self.records,
            target,
            "run_test",
            |_| {},
        )
        .await
        .unwrap()
    }

    pub fn target(&self) -> SyncTarget<'_> {
        SyncTarget {
            tenant: &self.connection.tenant,
            connection: &self.connection.connection,
            stream: "users",
        }
    }

    /// The live records by primary key.
    pub async fn stored(&self) -> BTreeMap<String, Value> {
        let mut all = BTreeMap::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .records
                .records(
                    &self.connection.tenant,
                    &self.connection.connection,
                    "users",
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

    /// The stand-in's data set, as a complete sync must have stored it.
    pub fn expected(&self) -> BTreeMap<String, Value> {
        self.standin
            .items()
            .into_iter()
            .map(|item| (item.id.clone(), serde_json::to_value(&item).unwrap()))
            .collect()
    }

    pub async fn assert_in_sync(&self, what: &str) {
        let stored = self.stored().await;
        let expected = self.expected();
        assert_eq!(stored.len(), expected.len(), "{what}: record count");
        assert!(
            stored == expected,
            "{what}: the stored records differ from the stand-in's"
        );
    }
}
