//! Each pagination style and incremental mode: a first sync equals the stand-in's data, a
//! second sees only what changed, deletions are caught where the mode can see them.

use std::time::Duration;

use switchyard_test_support::standin::Item;

use crate::support::{Harness, connector};

/// Items in the stand-in: several pages of 100, the last one short.
const ITEMS: u64 = 250;

/// A change to make between runs: one item updated, one added, one deleted.
fn change(harness: &Harness) {
    harness.standin.advance(Duration::from_secs(60));
    let mut item = harness.standin.get("u00007").unwrap();
    item.name = "Renamed Seven".into();
    harness.standin.upsert(item);
    harness
        .standin
        .upsert(Item::new("u90000", "Newcomer", "new@example.test"));
    harness.standin.delete("u00100").unwrap();
}

async fn full_then_changed(name: &str, sees_deletions: bool) {
    let harness = Harness::start(ITEMS).await;
    let connector = connector(name);
    let first = harness.sync(&connector).await;
    assert_eq!(first.added, ITEMS, "{name}: first run adds every item");
    assert!(first.pages >= 3, "{name}: {} pages", first.pages);
    harness.assert_in_sync(&format!("{name}, first run")).await;

    change(&harness);
    let second = harness.sync(&connector).await;
    assert_eq!(second.added, 1, "{name}: the newcomer");
    assert_eq!(second.updated, 1, "{name}: the renamed one");
    if sees_deletions {
        assert_eq!(second.deleted, 1, "{name}: the deleted one");
        harness.assert_in_sync(&format!("{name}, second run")).await;
    } else {
        // An update-time read cannot see a deletion: the record stays until a full read.
        assert_eq!(second.deleted, 0);
        assert_eq!(harness.stored().await.len(), harness.expected().len() + 1);
    }
}

#[tokio::test]
async fn link_header_with_etags() {
    full_then_changed("standin-link", true).await;
}

#[tokio::test]
async fn cursor_updated_since() {
    full_then_changed("standin-cursor", false).await;
}

#[tokio::test]
async fn next_url_full_refresh() {
    full_then_changed("standin-next", true).await;
}

#[tokio::test]
async fn offset_full_refresh() {
    full_then_changed("standin-offset", true).await;
}

#[tokio::test]
async fn page_numbers_full_refresh() {
    full_then_changed("standin-page", true).await;
}

#[tokio::test]
async fn graphql_relay_full_refresh() {
    full_then_changed("standin-graphql", true).await;
}

#[tokio::test]
async fn delta_links() {
    full_then_changed("standin-delta", true).await;
}

#[tokio::test]
async fn unchanged_etag_pages_are_304s_and_keep_their_records() {
    let harness = Harness::start(ITEMS).await;
    let connector = connector("standin-link");
    let first = harness.sync(&connector).await;
    let second = harness.sync(&connector).await;
    assert_eq!(second.not_modified, first.pages, "every page answered 304");
    assert_eq!((second.added, second.updated, second.deleted), (0, 0, 0));
    harness.assert_in_sync("after an all-304 run").await;
    let conditional = harness
        .standin
        .requests()
        .into_iter()
        .filter(|r| r.status == 304)
        .count() as u64;
    assert_eq!(conditional, first.pages);
}

#[tokio::test]
async fn updated_since_asks_from_the_cursor_minus_the_lookback() {
    let harness = Harness::start(ITEMS).await;
    let connector = connector("standin-cursor");
    harness.sync(&connector).await;
    harness.standin.clear_requests();
    let newest = harness
        .standin
        .items()
        .iter()
        .map(|i| i.updated_at)
        .max()
        .unwrap();
    harness.sync(&connector).await;
    let asked = harness.standin.requests();
    let query = asked[0].query.clone().unwrap_or_default();
    let since = newest - time::Duration::seconds(2);
    let expected = since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    assert!(
        pairs.contains(&("updated_since".into(), expected.clone())),
        "asked {query}, wanted updated_since={expected}"
    );
}

#[tokio::test]
async fn an_expired_delta_token_starts_a_full_read_that_catches_deletions() {
    let harness = Harness::start(ITEMS).await;
    let connector = connector("standin-delta");
    harness.sync(&connector).await;
    harness.standin.delete("u00003").unwrap();
    harness.standin.expire_delta_tokens();
    let counts = harness.sync(&connector).await;
    assert_eq!(counts.deleted, 1);
    harness.assert_in_sync("after a resync").await;
    assert!(harness.standin.requests().iter().any(|r| r.status == 410));
}

#[tokio::test]
async fn a_sync_stopped_after_any_page_resumes_without_loss_or_duplicates() {
    for stop_after in [1u64, 2] {
        let harness = Harness::start(ITEMS).await;
        let connector = connector("standin-next");
        // Stop the run from inside, as a killed process would: after `stop_after` stored pages.
        let target = harness.target();
        let stopped = tokio::time::timeout(Duration::from_secs(30), async {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            // Each page stored on its own, so the stop can come between any two.
            let every_page = switchyard_connectors::sync::SyncOptions {
                flush_pages: 1,
                flush_records: usize::MAX,
                flush_after: Duration::from_secs(3600),
            };
            let run = switchyard_connectors::sync::run_with(
                &connector,
                harness.cx(),
                &harness.store.records,
                target,
                // The resumed run below is the same run (a job retried after its worker
                // died): it holds the same lease.
                "run_test",
                every_page,
                move |counts| {
                    let _ = tx.send(counts.pages);
                },
            );
            tokio::pin!(run);
            loop {
                tokio::select! {
                    biased;
                    Some(pages) = rx.recv() => if pages >= stop_after { break },
                    result = &mut run => panic!("finished before being stopped: {result:?}"),
                }
            }
        })
        .await;
        assert!(stopped.is_ok());
        // Whole pages only: a page is stored with its checkpoint or not at all.
        let partial = harness.stored().await.len() as u64;
        assert!(
            partial >= stop_after * 100 && partial.is_multiple_of(100) && partial < ITEMS,
            "{partial} stored"
        );
        harness.standin.clear_requests();
        let resumed = harness.sync(&connector).await;
        assert_eq!(resumed.added, ITEMS - partial, "the rest, once");
        assert_eq!(resumed.pages, 3 - partial / 100);
        let first = harness
            .standin
            .requests()
            .first()
            .unwrap()
            .query
            .clone()
            .unwrap_or_default();
        assert!(
            first.contains("cursor="),
            "resumed at the saved page, not the first: {first}"
        );
        harness.assert_in_sync("after resuming").await;
        let changes = harness
            .store
            .records
            .changes(
                &harness.connection.tenant,
                &harness.connection.connection,
                "users",
                None,
                10_000,
            )
            .await
            .unwrap();
        assert_eq!(
            changes.items.len() as u64,
            ITEMS,
            "one `added` change per record"
        );
        assert!(
            changes
                .items
                .iter()
                .all(|c| c.kind == switchyard_connectors::store::ChangeKind::Added)
        );
    }
}

#[tokio::test]
async fn a_second_sync_of_a_stream_waits_for_the_first() {
    let harness = Harness::start(10).await;
    let connector = connector("standin-next");
    let target = harness.target();
    assert!(
        harness
            .store
            .records
            .acquire_sync_lease(
                target.tenant,
                target.connection,
                target.stream,
                "run_other",
                switchyard_connectors::sync::LEASE
            )
            .await
            .unwrap()
    );
    let error = switchyard_connectors::sync::run(
        &connector,
        harness.cx(),
        &harness.store.records,
        harness.target(),
        "run_test",
        |_| {},
    )
    .await
    .unwrap_err();
    assert_eq!(error.code(), "sync_in_progress");
    assert!(harness.standin.requests().is_empty(), "nothing was read");
}
