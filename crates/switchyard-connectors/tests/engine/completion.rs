//! A stream counts as completed (what unified `related` fields wait for) only once a sync has
//! read it to the end: a sync that fails halfway leaves records but no completion.

use switchyard_connectors::sync::{self, SyncOptions, SyncTarget};
use switchyard_test_support::standin::Failure;

use crate::support::{Harness, connector_at};

#[tokio::test]
async fn only_a_sync_read_to_the_end_completes_its_stream() {
    let harness = Harness::start(250).await;
    let connector = connector_at("related/standin-related");
    let target = || SyncTarget {
        tenant: &harness.connection.tenant,
        connection: &harness.connection.connection,
        stream: "accounts",
    };
    let completed = || {
        harness.store.records.completed_at(
            &harness.connection.tenant,
            &harness.connection.connection,
            "accounts",
        )
    };
    // Each page stored on its own; after the first, the provider refuses the next request
    // (a 400 is not retried).
    let mut refused = false;
    let one_page_at_a_time = SyncOptions {
        flush_pages: 1,
        ..SyncOptions::default()
    };
    let error = sync::run_with(
        &connector,
        harness.cx(),
        &harness.store.records,
        target(),
        "run_first",
        one_page_at_a_time,
        |_| {
            if !std::mem::replace(&mut refused, true) {
                harness.standin.inject(Failure::new("/cursor/items", 400));
            }
        },
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "provider_error", "{error}");
    let stored = harness
        .store
        .records
        .records(
            &harness.connection.tenant,
            &harness.connection.connection,
            "accounts",
            None,
            1000,
        )
        .await
        .unwrap()
        .items;
    assert_eq!(stored.len(), 100, "the first page was stored");
    assert_eq!(completed().await.unwrap(), None);

    let counts = sync::run(
        &connector,
        harness.cx(),
        &harness.store.records,
        target(),
        "run_second",
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(counts.added, 150, "{counts:?}");
    assert!(completed().await.unwrap().is_some());
}
