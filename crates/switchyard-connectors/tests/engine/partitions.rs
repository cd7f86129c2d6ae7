//! Partitioned streams: per config value and per record of a parent stream.

use serde_json::json;

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
