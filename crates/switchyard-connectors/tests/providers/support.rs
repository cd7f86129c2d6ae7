//! What the provider tests share: a built-in manifest read from its file, a token broker
//! allowed to reach the stand-ins on 127.0.0.1, and a record store with one stored
//! connection that syncs run into ([`Store`], shared with the engine tests).

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use switchyard_connectors::CallContext;
use switchyard_connectors::conformance::{Conformance, Records};
use switchyard_connectors::credentials::TokenBroker;
use switchyard_connectors::{ManifestConnector, manifest};
use switchyard_http::{GuardedClient, SsrfPolicy};

/// The built-in connector `providers/<name>.yaml`, read from the file the registry embeds.
pub fn builtin_connector(name: &str) -> ManifestConnector {
    let relative = format!("providers/{name}.yaml");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(&relative);
    let text = std::fs::read_to_string(&path).unwrap();
    let manifest = manifest::load(&text, &relative).unwrap_or_else(|e| panic!("{e}"));
    ManifestConnector::new(manifest).unwrap()
}

/// A conformance run of a built-in connector that expects, per stream, `expected`'s records
/// (what a complete read of the provider must hold).
pub fn conformance<'a>(
    connector: &'a ManifestConnector,
    cx: CallContext<'a>,
    expected: BTreeMap<String, Records>,
) -> Conformance<'a> {
    expected.into_iter().fold(
        Conformance::for_manifest(connector, cx),
        |kit, (stream, records)| kit.expect_records(&stream, records),
    )
}

/// A token broker whose client may call plain HTTP on 127.0.0.1, where the stand-ins listen.
pub fn local_broker() -> Arc<TokenBroker> {
    let policy = SsrfPolicy::strict()
        .with_allow_http(true)
        .with_allow_cidrs(["127.0.0.1/32".parse().unwrap()]);
    let client = GuardedClient::builder(policy)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Arc::new(TokenBroker::new(client))
}

#[path = "../common/store.rs"]
mod store;

pub use store::Store;
