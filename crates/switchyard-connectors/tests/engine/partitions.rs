//! Partitioned streams: per config value and per record of a parent stream, and a parent
//! with ETags revalidated rather than listed again.

use std::collections::BTreeMap;

use serde_json::json;
use switchyard_connectors::Connector;
use switchyard_test_support::standin::Item;

use crate::support::{Harness, connector_at};

#[tokio::test]
async fn a_stream_is_read_once_per_config_value() {
    let mut harness = Harness::start(120).await;
    harness.connection.config = json!({"base_url": harness.standin.url(), "page_sizes": [50, 100]});
    let connector = connector_at("partitions/standin-partitions");
    let counts = harness.sync_stream(&connector, "by_page_size").await;
    // 120 items in pages of 50 (3 pages) then of 100 (2 pages); the second pass changes nothing.
    assert_eq!(counts.pages, 5, "{counts:?}");
    assert_eq!((counts.added, counts.unchanged), (120, 120), "{counts:?}");
    let sizes: Vec<String> = harness
        .standin
        .requests()
        .into_iter()
        .filter_map(|r| r.query)
        .filter(|q| q.contains("per_page"))
        .collect();
    assert!(
        sizes.iter().any(|q| q.contains("per_page=50"))
            && sizes.iter().any(|q| q.contains("per_page=100")),
        "{sizes:?}"
    );
}

#[tokio::test]
async fn a_stream_is_read_once_per_parent_record() {
    let mut harness = Harness::start(7).await;
    harness.connection.config = json!({"base_url": harness.standin.url(), "page_sizes": []});
    let connector = connector_at("partitions/standin-partitions");
    let counts = harness.sync_stream(&connector, "firsts").await;
    assert_eq!(counts.pages, 7, "{counts:?}");
    let asked: Vec<String> = harness
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.path == "/offset/items")
        .filter_map(|r| r.query)
        .collect();
    assert_eq!(asked.len(), 7);
    for n in 1..=7 {
        assert!(
            asked
                .iter()
                .any(|q| q.contains(&format!("for_user=u{n:05}"))),
            "{asked:?}"
        );
    }
}

#[tokio::test]
async fn no_partitions_means_nothing_to_read() {
    let mut harness = Harness::start(10).await;
    harness.connection.config = json!({"base_url": harness.standin.url(), "page_sizes": []});
    let connector = connector_at("partitions/standin-partitions");
    let counts = harness.sync_stream(&connector, "by_page_size").await;
    assert_eq!((counts.pages, counts.added), (1, 0), "{counts:?}");
    assert!(
        harness
            .standin
            .requests()
            .iter()
            .all(|r| r.path != "/link/items")
    );
}

/// Users in the stand-in for the ETag-parent tests: two parent pages (100 and 20).
const PARENT_USERS: u64 = 120;

/// The parent's requests (`/link/items`) since the last clear: `(If-None-Match sent, status)`.
fn parent_requests(harness: &Harness) -> Vec<(bool, u16)> {
    harness
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.path == "/link/items")
        .map(|r| (r.headers.contains_key("if-none-match"), r.status))
        .collect()
}

/// Each partition request's `(for_user, named)` query values, in the order asked.
fn partition_queries(harness: &Harness) -> Vec<(String, String)> {
    harness
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.path == "/offset/items")
        .map(|r| {
            let pairs: BTreeMap<String, String> =
                url::form_urlencoded::parse(r.query.unwrap_or_default().as_bytes())
                    .into_owned()
                    .collect();
            (pairs["for_user"].clone(), pairs["named"].clone())
        })
        .collect()
}

/// What each partition must have asked: every user's id and name, as the stand-in has them.
fn expected_queries(harness: &Harness) -> Vec<(String, String)> {
    harness
        .standin
        .items()
        .into_iter()
        .map(|item| (item.id, item.name))
        .collect()
}

async fn etag_parent_harness() -> Harness {
    let mut harness = Harness::start(PARENT_USERS).await;
    harness.connection.config = json!({"base_url": harness.standin.url(), "page_sizes": []});
    harness
}

#[tokio::test]
async fn an_unchanged_etag_parent_is_revalidated_with_304s_and_its_partitions_reused() {
    let harness = etag_parent_harness().await;
    let connector = connector_at("partitions/standin-partitions");
    let first = harness.sync_stream(&connector, "per_linked_user").await;
    assert_eq!((first.pages, first.added), (120, 120), "{first:?}");
    assert_eq!(
        parent_requests(&harness),
        [(false, 200), (false, 200)],
        "a first read lists the parent plainly"
    );

    harness.standin.clear_requests();
    let second = harness.sync_stream(&connector, "per_linked_user").await;
    assert_eq!(
        parent_requests(&harness),
        [(true, 304), (true, 304)],
        "every parent page is asked with If-None-Match and is unchanged"
    );
    assert_eq!(
        (second.pages, second.added, second.unchanged, second.deleted),
        (120, 0, 120, 0),
        "{second:?}"
    );
    // The reused partitions carry the parent record's fields the request reads.
    assert_eq!(partition_queries(&harness), expected_queries(&harness));
    let stored = harness.store.stored("per_linked_user").await;
    assert_eq!(stored.len(), 120);
    assert_eq!(stored["u00120/u00001"]["for_user"], "u00120");
}

#[tokio::test]
async fn a_changed_parent_page_is_read_again_and_its_new_partition_appears() {
    let harness = etag_parent_harness().await;
    let connector = connector_at("partitions/standin-partitions");
    harness.sync_stream(&connector, "per_linked_user").await;

    // A user joins at the end: only the second parent page changes.
    harness
        .standin
        .upsert(Item::new("u90000", "Newcomer", "new@example.test"));
    harness.standin.clear_requests();
    let counts = harness.sync_stream(&connector, "per_linked_user").await;
    assert_eq!(
        parent_requests(&harness),
        [(true, 304), (true, 200)],
        "the unchanged first page is reused, the changed second one read"
    );
    assert_eq!((counts.added, counts.deleted), (1, 0), "{counts:?}");
    assert_eq!(partition_queries(&harness), expected_queries(&harness));
    let stored = harness.store.stored("per_linked_user").await;
    assert_eq!(stored.len(), 121);
    assert_eq!(stored["u90000/u00001"]["for_user"], "u90000");

    // A user on the first page is renamed and another leaves: both pages change.
    let mut renamed = harness.standin.get("u00007").unwrap();
    renamed.name = "Renamed Seven".into();
    harness.standin.upsert(renamed);
    harness.standin.delete("u00050").unwrap();
    harness.standin.clear_requests();
    let counts = harness.sync_stream(&connector, "per_linked_user").await;
    assert_eq!(parent_requests(&harness), [(true, 200), (true, 200)]);
    assert_eq!((counts.added, counts.deleted), (0, 1), "{counts:?}");
    let queries = partition_queries(&harness);
    assert!(queries.contains(&("u00007".into(), "Renamed Seven".into())));
    assert_eq!(queries, expected_queries(&harness));
    assert!(
        !harness
            .store
            .stored("per_linked_user")
            .await
            .contains_key("u00050/u00001")
    );
}

#[tokio::test]
async fn a_read_resumed_from_a_checkpoint_without_the_parent_list_completes() {
    let harness = etag_parent_harness().await;
    let connector = connector_at("partitions/standin-partitions");
    // The first page of a read, its checkpoint as the code before parent ETags wrote it: no
    // `progress.parent`.
    let first = connector
        .collect(harness.cx(), "per_linked_user", None)
        .await
        .unwrap();
    let mut checkpoint = first.checkpoint;
    let progress = checkpoint["progress"].as_object_mut().unwrap();
    assert!(progress.contains_key("parent"), "{progress:?}");
    progress.remove("parent");
    assert_eq!(checkpoint["progress"]["partition"], 1);

    harness.standin.clear_requests();
    let mut keys = first
        .records
        .iter()
        .map(|r| r.primary_key.clone())
        .collect::<Vec<_>>();
    loop {
        let page = connector
            .collect(harness.cx(), "per_linked_user", Some(&checkpoint))
            .await
            .unwrap();
        keys.extend(page.records.iter().map(|r| r.primary_key.clone()));
        checkpoint = page.checkpoint;
        if page.done {
            break;
        }
    }
    assert!(
        parent_requests(&harness).is_empty(),
        "a resumed read keeps its partitions"
    );
    assert_eq!(keys.len(), 120);
    assert_eq!(
        partition_queries(&harness),
        expected_queries(&harness)[1..],
        "it goes on at the second partition"
    );
    assert!(
        checkpoint.get("parent").is_none(),
        "no parent list to keep: {checkpoint}"
    );

    // The next read lists the parent plainly and keeps it; the one after revalidates it.
    let next = connector
        .collect(harness.cx(), "per_linked_user", Some(&checkpoint))
        .await
        .unwrap();
    assert_eq!(parent_requests(&harness), [(false, 200), (false, 200)]);
    assert!(next.checkpoint["progress"]["parent"].is_object());
}

#[tokio::test]
async fn a_kept_parent_list_holds_only_the_record_fields_the_request_reads() {
    let harness = etag_parent_harness().await;
    let connector = connector_at("partitions/standin-partitions");
    let mut checkpoint = None;
    loop {
        let page = connector
            .collect(harness.cx(), "per_linked_user", checkpoint.as_ref())
            .await
            .unwrap();
        let done = page.done;
        checkpoint = Some(page.checkpoint);
        if done {
            break;
        }
    }
    let checkpoint = checkpoint.unwrap();
    let parent = &checkpoint["parent"];
    assert_eq!(parent["source"]["record_fields"], json!(["name"]));
    let pages = parent["pages"].as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(|p| p["etag"].is_string()), "{pages:?}");
    assert_eq!(pages[0]["count"], 100);
    let partitions = parent["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 120);
    assert_eq!(
        partitions[0],
        json!({"value": "u00001", "record": {"name": "User 1"}})
    );
}
