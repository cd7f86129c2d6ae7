//! A connector, a provider call stack that reaches the stand-in, and a record store.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_connectors::sync::{SyncCounts, SyncTarget};
use switchyard_connectors::{
    CallContext, ConnectionContext, Connector, ManifestConnector, manifest,
};
use switchyard_http::{InMemoryBackend, ProviderClient};
use switchyard_test_support::standin::{BearerToken, StandIn, StandInOptions, provider_client};

#[path = "../common/store.rs"]
mod store;

pub use store::Store;

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
    pub store: Store,
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
        let store = Store::start("standin").await;
        Self {
            connection: store.context(
                json!({"base_url": standin.url(), "installation_id": "42"}),
                None,
            ),
            standin,
            calls: calls(),
            store,
        }
    }

    pub fn cx(&self) -> CallContext<'_> {
        CallContext {
            calls: &self.calls,
            connection: &self.connection,
        }
    }

    pub async fn sync(&self, connector: &dyn Connector) -> SyncCounts {
        self.sync_stream(connector, "users").await
    }

    pub async fn sync_stream(&self, connector: &dyn Connector, stream: &str) -> SyncCounts {
        self.store
            .sync(connector, &self.calls, &self.connection, stream)
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

    /// The live `users` records by primary key.
    pub async fn stored(&self) -> BTreeMap<String, Value> {
        self.store.stored("users").await
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
