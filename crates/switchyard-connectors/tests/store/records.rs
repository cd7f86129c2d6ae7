//! Page writes: counts, content hashes, the change stream, checkpoints, atomicity, the
//! full-refresh sweep, tenant isolation and concurrent writers.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchyard_connectors::store::{ChangeKind, RecordChange, StoreError, StoredRecord};
use switchyard_core::{ConnectionId, RunId, TenantId};
use switchyard_test_support::backend_tests;

use crate::support::{Fixture, counts, page, record};

const STREAM: &str = "repos";

impl Fixture {
    /// Every change of the stream, read in pages of 7.
    async fn all_changes(&self, tenant: &TenantId, connection: &ConnectionId) -> Vec<RecordChange> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .records
                .changes(tenant, connection, STREAM, after, 7)
                .await
                .unwrap();
            all.extend(page.items);
            match page.next_after {
                Some(next) => after = Some(next),
                None => return all,
            }
        }
    }

    async fn live(&self, tenant: &TenantId, connection: &ConnectionId) -> Vec<StoredRecord> {
        self.records
            .records(tenant, connection, STREAM, None, 1000)
            .await
            .unwrap()
            .items
    }

    async fn live_keys(&self, tenant: &TenantId, connection: &ConnectionId) -> Vec<String> {
        self.live(tenant, connection)
            .await
            .into_iter()
            .map(|r| r.primary_key)
            .collect()
    }
}

fn kinds(changes: &[RecordChange]) -> Vec<(ChangeKind, &str)> {
    changes
        .iter()
        .map(|c| (c.kind, c.primary_key.as_str()))
        .collect()
}

backend_tests! { Fixture;
    async fn counts_added_updated_unchanged_and_deleted(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let (run1, run2) = (RunId::generate(), RunId::generate());

        let mut first = page(&tenant, &connection, STREAM, Some(&run1));
        first.upserts = vec![
            record("a", json!({"v": 1})),
            record("b", json!({"v": 1})),
            // Twice in one page: the last copy wins and counts once.
            record("a", json!({"v": 2})),
        ];
        let mut total = fx.records.write_page(first).await.unwrap();
        assert_eq!(total, counts(2, 0, 0, 0));

        let mut second = page(&tenant, &connection, STREAM, Some(&run1));
        second.upserts = vec![record("c", json!({"v": 1}))];
        let counted = fx.records.write_page(second).await.unwrap();
        assert_eq!(counted, counts(1, 0, 0, 0));
        total += counted;
        assert_eq!(total, counts(3, 0, 0, 0));

        let mut next_run = page(&tenant, &connection, STREAM, Some(&run2));
        next_run.upserts = vec![
            record("a", json!({"v": 2})),
            record("b", json!({"v": 9})),
            record("d", json!({"v": 1})),
        ];
        // `zz` was never there; `c` twice is one deletion.
        next_run.deletions = vec!["c".into(), "zz".into(), "c".into()];
        let counted = fx.records.write_page(next_run).await.unwrap();
        assert_eq!(counted, counts(1, 1, 1, 1));
        assert_eq!(total + counted, counts(4, 1, 1, 1));
        assert_eq!(counted.changes(), 3);

        // Deleting a deleted record counts nothing; bringing it back is an addition.
        let mut again = page(&tenant, &connection, STREAM, Some(&run2));
        again.deletions = vec!["c".into()];
        assert_eq!(fx.records.write_page(again).await.unwrap(), counts(0, 0, 0, 0));
        let mut back = page(&tenant, &connection, STREAM, Some(&run2));
        back.upserts = vec![record("c", json!({"v": 1}))];
        assert_eq!(fx.records.write_page(back).await.unwrap(), counts(1, 0, 0, 0));

        assert_eq!(fx.live_keys(&tenant, &connection).await, ["a", "b", "c", "d"]);
        let live = fx.live(&tenant, &connection).await;
        assert_eq!(live[0].data, json!({"v": 2}));
        assert_eq!(live[1].data, json!({"v": 9}));
        assert_eq!(
            kinds(&fx.all_changes(&tenant, &connection).await),
            [
                (ChangeKind::Added, "a"),
                (ChangeKind::Added, "b"),
                (ChangeKind::Added, "c"),
                (ChangeKind::Updated, "b"),
                (ChangeKind::Added, "d"),
                (ChangeKind::Deleted, "c"),
                (ChangeKind::Added, "c"),
            ]
        );
    }

    async fn unchanged_records_are_not_rewritten(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let (run1, run2) = (RunId::generate(), RunId::generate());
        // The same document with its keys in another order is the same content.
        let mut forward = Map::new();
        forward.insert("name".into(), json!("switchyard"));
        forward.insert("owner".into(), json!({"login": "acme", "id": 7}));
        let mut backward = Map::new();
        backward.insert("owner".into(), json!({"id": 7, "login": "acme"}));
        backward.insert("name".into(), json!("switchyard"));

        let mut write = page(&tenant, &connection, STREAM, Some(&run1));
        write.upserts = vec![record("r1", Value::Object(forward))];
        fx.records.write_page(write).await.unwrap();
        let before = fx.live(&tenant, &connection).await.remove(0);
        let canonical = r#"{"name":"switchyard","owner":{"id":7,"login":"acme"}}"#;
        assert_eq!(before.content_hash, hex::encode(Sha256::digest(canonical)));
        assert_eq!(before.last_seen_run, Some(run1));

        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut write = page(&tenant, &connection, STREAM, Some(&run2));
        write.upserts = vec![record("r1", Value::Object(backward))];
        assert_eq!(fx.records.write_page(write).await.unwrap(), counts(0, 0, 1, 0));
        let after = fx.live(&tenant, &connection).await.remove(0);
        assert_eq!(after.updated_at, before.updated_at);
        assert_eq!(after.content_hash, before.content_hash);
        assert_eq!(after.last_seen_run, Some(run2), "the run that saw it is noted");
        assert_eq!(fx.all_changes(&tenant, &connection).await.len(), 1);

        // A webhook (no run) changing it rewrites it but keeps the run that last saw it.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let mut write = page(&tenant, &connection, STREAM, None);
        write.upserts = vec![record("r1", json!({"name": "renamed"}))];
        assert_eq!(fx.records.write_page(write).await.unwrap(), counts(0, 1, 0, 0));
        let changed = fx.live(&tenant, &connection).await.remove(0);
        assert!(changed.updated_at > before.updated_at);
        assert_eq!(changed.created_at, before.created_at);
        assert_eq!(changed.last_seen_run, Some(run2));
        let changes = fx.all_changes(&tenant, &connection).await;
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[1].run, None);
    }

    async fn the_change_stream_is_ordered_and_resumable(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let run = RunId::generate();
        for (key, version) in [("x", 1), ("y", 1), ("x", 2)] {
            let mut write = page(&tenant, &connection, STREAM, Some(&run));
            write.upserts = vec![record(key, json!({"version": version}))];
            fx.records.write_page(write).await.unwrap();
        }
        let mut write = page(&tenant, &connection, STREAM, Some(&run));
        write.deletions = vec!["x".into()];
        fx.records.write_page(write).await.unwrap();

        let first = fx.records.changes(&tenant, &connection, STREAM, None, 2).await.unwrap();
        assert_eq!(first.items.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(first.next_after, Some(2));
        let rest = fx.records.changes(&tenant, &connection, STREAM, Some(2), 10).await.unwrap();
        assert_eq!(rest.next_after, None);
        assert_eq!(rest.items.iter().map(|c| c.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(rest.items[0].kind, ChangeKind::Updated);
        assert_eq!(rest.items[0].data, json!({"version": 2}));
        // A deletion carries the last known data.
        assert_eq!(rest.items[1].kind, ChangeKind::Deleted);
        assert_eq!(rest.items[1].data, json!({"version": 2}));
        assert!(rest.items.iter().all(|c| c.run == Some(run)));
        assert!(rest.items[0].at <= rest.items[1].at);
        assert!(fx.records.changes(&tenant, &connection, STREAM, Some(4), 10).await.unwrap().items.is_empty());
        // Another stream of the same connection has its own numbering.
        assert!(fx.records.changes(&tenant, &connection, "teams", None, 10).await.unwrap().items.is_empty());
        let mut write = page(&tenant, &connection, "teams", None);
        write.upserts = vec![record("t", json!({}))];
        fx.records.write_page(write).await.unwrap();
        let teams = fx.records.changes(&tenant, &connection, "teams", None, 10).await.unwrap();
        assert_eq!(teams.items.iter().map(|c| c.seq).collect::<Vec<_>>(), [1]);
    }

    async fn the_checkpoint_is_saved_with_its_page(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let run = RunId::generate();
        assert!(fx.records.checkpoint(&tenant, &connection, STREAM).await.unwrap().is_none());

        let mut write = page(&tenant, &connection, STREAM, Some(&run));
        write.upserts = vec![record("a", json!(1))];
        write.checkpoint = Some(json!({"cursor": "p2"}));
        fx.records.write_page(write).await.unwrap();
        let saved = fx.records.checkpoint(&tenant, &connection, STREAM).await.unwrap().unwrap();
        assert_eq!(saved.value, json!({"cursor": "p2"}));
        assert_eq!(saved.run, Some(run));

        // A page without a checkpoint keeps the stored one.
        let mut write = page(&tenant, &connection, STREAM, None);
        write.upserts = vec![record("b", json!(1))];
        fx.records.write_page(write).await.unwrap();
        assert_eq!(fx.records.checkpoint(&tenant, &connection, STREAM).await.unwrap(), Some(saved));

        // A reset forgets the checkpoint only: records stay and numbering goes on.
        fx.records.reset_checkpoint(&tenant, &connection, STREAM).await.unwrap();
        assert!(fx.records.checkpoint(&tenant, &connection, STREAM).await.unwrap().is_none());
        assert_eq!(fx.live_keys(&tenant, &connection).await, ["a", "b"]);
        let mut write = page(&tenant, &connection, STREAM, None);
        write.upserts = vec![record("c", json!(1))];
        write.checkpoint = Some(json!(null));
        fx.records.write_page(write).await.unwrap();
        let changes = fx.all_changes(&tenant, &connection).await;
        assert_eq!(changes.last().map(|c| c.seq), Some(3));
        let saved = fx.records.checkpoint(&tenant, &connection, STREAM).await.unwrap().unwrap();
        assert_eq!((saved.value, saved.run), (json!(null), None));
    }

    async fn a_failed_page_writes_nothing(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let run = RunId::generate();
        let mut write = page(&tenant, &connection, STREAM, Some(&run));
        write.upserts = vec![record("a", json!(1)), record("b", json!(1))];
        write.checkpoint = Some(json!({"page": 1}));
        fx.records.write_page(write).await.unwrap();
        let records_before = fx.live(&tenant, &connection).await;

        // The last statement of the page fails, after its records and changes were written.
        fx.fail_checkpoints_with_boom().await;
        let failing_run = RunId::generate();
        let mut write = page(&tenant, &connection, STREAM, Some(&failing_run));
        write.upserts = vec![record("a", json!(2)), record("c", json!(1))];
        write.deletions = vec!["b".into()];
        write.checkpoint = Some(json!({"page": "boom"}));
        let error = fx.records.write_page(write).await.unwrap_err();
        assert!(matches!(error, StoreError::Database(_)), "{error:?}");

        assert_eq!(fx.live(&tenant, &connection).await, records_before);
        assert_eq!(fx.rows("records", &tenant, &connection).await, 2);
        assert_eq!(fx.all_changes(&tenant, &connection).await.len(), 2);
        let checkpoint = fx.records.checkpoint(&tenant, &connection, STREAM).await.unwrap().unwrap();
        assert_eq!(checkpoint.value, json!({"page": 1}));

        // The stream still works, and its numbering has no gap.
        let mut write = page(&tenant, &connection, STREAM, Some(&run));
        write.upserts = vec![record("c", json!(1))];
        fx.records.write_page(write).await.unwrap();
        let seqs: Vec<u64> = fx.all_changes(&tenant, &connection).await.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, [1, 2, 3]);
    }

    async fn sweep_deletes_what_the_run_did_not_see(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let (run1, run2) = (RunId::generate(), RunId::generate());
        assert_eq!(fx.records.sweep_unseen(&tenant, &connection, STREAM, &run1).await.unwrap(), 0);
        let mut write = page(&tenant, &connection, STREAM, Some(&run1));
        write.upserts = ["a", "b", "c", "d"].iter().map(|k| record(k, json!({"k": k}))).collect();
        fx.records.write_page(write).await.unwrap();
        // A webhook adds `w` outside any run: no run saw it.
        let mut write = page(&tenant, &connection, STREAM, None);
        write.upserts = vec![record("w", json!({}))];
        fx.records.write_page(write).await.unwrap();

        // Run 2 sees `a` unchanged and `b` changed; `c`, `d` and `w` are gone at the provider.
        let mut write = page(&tenant, &connection, STREAM, Some(&run2));
        write.upserts = vec![record("a", json!({"k": "a"})), record("b", json!({"k": "B"}))];
        fx.records.write_page(write).await.unwrap();
        assert_eq!(fx.records.sweep_unseen(&tenant, &connection, STREAM, &run2).await.unwrap(), 3);
        assert_eq!(fx.live_keys(&tenant, &connection).await, ["a", "b"]);
        let changes = fx.all_changes(&tenant, &connection).await;
        let sweep = &changes[changes.len() - 3..];
        assert_eq!(
            kinds(sweep),
            [(ChangeKind::Deleted, "c"), (ChangeKind::Deleted, "d"), (ChangeKind::Deleted, "w")]
        );
        assert_eq!(sweep[0].data, json!({"k": "c"}));
        assert!(sweep.iter().all(|c| c.run == Some(run2)));
        let seqs: Vec<u64> = changes.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, (1..=9).collect::<Vec<u64>>());
        // Nothing left to sweep.
        assert_eq!(fx.records.sweep_unseen(&tenant, &connection, STREAM, &run2).await.unwrap(), 0);
        assert_eq!(fx.all_changes(&tenant, &connection).await.len(), 9);
    }

    async fn a_full_read_under_way_does_not_sweep_what_a_webhook_wrote_meanwhile(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let first = RunId::generate();
        let mut write = page(&tenant, &connection, STREAM, Some(&first));
        write.upserts = ["a", "b", "gone"].iter().map(|k| record(k, json!({"k": k}))).collect();
        fx.records.write_page(write).await.unwrap();
        let mut write = page(&tenant, &connection, STREAM, Some(&first));
        write.deletions = vec!["gone".into()];
        fx.records.write_page(write).await.unwrap();

        // A full read starts; meanwhile webhooks add `new`, change `b` and bring `gone` back,
        // each write stamped with an id made at the write.
        let read = RunId::generate();
        let stamp = RunId::generate();
        let mut write = page(&tenant, &connection, STREAM, None);
        write.seen_by = Some(&stamp);
        write.upserts = vec![
            record("new", json!({"k": "new"})),
            record("b", json!({"k": "B"})),
            record("gone", json!({"k": "back"})),
        ];
        let counts = fx.records.write_page(write).await.unwrap();
        assert_eq!((counts.added, counts.updated), (2, 1));
        // The read listed only `a` (its pages were read before the webhooks' changes).
        let mut write = page(&tenant, &connection, STREAM, Some(&read));
        write.upserts = vec![record("a", json!({"k": "a"}))];
        fx.records.write_page(write).await.unwrap();
        assert_eq!(fx.records.sweep_unseen(&tenant, &connection, STREAM, &read).await.unwrap(), 0);
        assert_eq!(fx.live_keys(&tenant, &connection).await, ["a", "b", "gone", "new"]);
        // Webhook changes are nobody's run's.
        let changes = fx.all_changes(&tenant, &connection).await;
        assert!(changes.iter().rev().take(3).all(|c| c.run.is_none()));

        // The next read judges them as any other record: what it does not list is gone.
        let next = RunId::generate();
        let mut write = page(&tenant, &connection, STREAM, Some(&next));
        write.upserts = vec![record("a", json!({"k": "a"})), record("new", json!({"k": "new"}))];
        fx.records.write_page(write).await.unwrap();
        assert_eq!(fx.records.sweep_unseen(&tenant, &connection, STREAM, &next).await.unwrap(), 2);
        assert_eq!(fx.live_keys(&tenant, &connection).await, ["a", "new"]);
    }

    async fn another_tenant_sees_nothing(fx) {
        let (owner, connection) = fx.tenant_with_connection().await;
        let run = RunId::generate();
        let mut write = page(&owner, &connection, STREAM, Some(&run));
        write.upserts = vec![record("a", json!({"secret-ish": "owner data"}))];
        write.checkpoint = Some(json!({"cursor": 1}));
        fx.records.write_page(write).await.unwrap();

        let intruder = TenantId::generate();
        let store = &fx.connections;
        assert!(store.get(&intruder, &connection).await.unwrap().is_none());
        assert!(store.list(&intruder, None, 100).await.unwrap().items.is_empty());
        let rename = switchyard_connectors::store::ConnectionUpdate {
            name: Some("mine".into()),
            ..Default::default()
        };
        assert!(store.update(&intruder, &connection, rename).await.unwrap().is_none());
        assert!(store.delete(&intruder, &connection).await.unwrap().is_none());

        let records = &fx.records;
        assert!(records.checkpoint(&intruder, &connection, STREAM).await.unwrap().is_none());
        assert!(records.records(&intruder, &connection, STREAM, None, 100).await.unwrap().items.is_empty());
        assert!(records.changes(&intruder, &connection, STREAM, None, 100).await.unwrap().items.is_empty());
        records.reset_checkpoint(&intruder, &connection, STREAM).await.unwrap();
        assert_eq!(records.sweep_unseen(&intruder, &connection, STREAM, &RunId::generate()).await.unwrap(), 0);
        let mut write = page(&intruder, &connection, STREAM, None);
        write.upserts = vec![record("a", json!("overwritten"))];
        write.deletions = vec!["a".into()];
        let error = records.write_page(write).await.unwrap_err();
        assert!(matches!(error, StoreError::ConnectionNotFound), "{error:?}");

        // The owner's data is untouched.
        let mine = store.get(&owner, &connection).await.unwrap().unwrap();
        assert_eq!((mine.name.as_str(), mine.version), ("github", 1));
        assert_eq!(records.checkpoint(&owner, &connection, STREAM).await.unwrap().unwrap().value, json!({"cursor": 1}));
        assert_eq!(fx.live(&owner, &connection).await[0].data, json!({"secret-ish": "owner data"}));
        assert_eq!(fx.all_changes(&owner, &connection).await.len(), 1);
    }

    async fn concurrent_writers_get_a_gap_free_sequence(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        const PAGES: usize = 15;
        const PER_PAGE: usize = 20;
        let writer = |name: &'static str| {
            let records = fx.records.clone();
            tokio::spawn(async move {
                for page_number in 0..PAGES {
                    let mut write = page(&tenant, &connection, STREAM, None);
                    write.upserts = (0..PER_PAGE)
                        .map(|i| record(&format!("{name}-{page_number:02}-{i:02}"), json!({"i": i})))
                        .collect();
                    write.checkpoint = Some(json!({"writer": name, "page": page_number}));
                    let counted = records.write_page(write).await.unwrap();
                    assert_eq!(counted.added, PER_PAGE as u64);
                }
            })
        };
        let (one, two) = tokio::join!(writer("one"), writer("two"));
        one.unwrap();
        two.unwrap();

        let changes = fx.all_changes(&tenant, &connection).await;
        let total = (2 * PAGES * PER_PAGE) as u64;
        assert_eq!(changes.iter().map(|c| c.seq).collect::<Vec<_>>(), (1..=total).collect::<Vec<_>>());
        let keys: HashSet<&str> = changes.iter().map(|c| c.primary_key.as_str()).collect();
        assert_eq!(keys.len() as u64, total);
        // Each page's changes are contiguous: writers did not interleave within a page.
        for block in changes.chunks(PER_PAGE) {
            let prefix = &block[0].primary_key[..6];
            assert!(block.iter().all(|c| c.primary_key.starts_with(prefix)), "{prefix}");
        }
    }

    async fn refuses_an_empty_stream_or_key(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let error = fx.records.write_page(page(&tenant, &connection, "", None)).await.unwrap_err();
        assert!(matches!(error, StoreError::Invalid { field: "stream", .. }), "{error:?}");
        let mut write = page(&tenant, &connection, STREAM, None);
        write.upserts = vec![record("", json!({}))];
        let error = fx.records.write_page(write).await.unwrap_err();
        assert!(matches!(error, StoreError::Invalid { field: "primary_key", .. }), "{error:?}");
    }
}
