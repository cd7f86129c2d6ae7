//! The audit log on real databases: every body runs on SQLite and on PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchyard_audit::{
    Action, Actor, AuditEntry, AuditError, AuditEvent, AuditFilter, AuditLog, AuditOptions,
    AuditReader, BreakKind, Chain, ChainBreak, GENESIS, Outcome,
};
use switchyard_core::{ApiKeyId, TenantId};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{TestStore, backend_tests};

fn entry(tenant: TenantId, action: Action, target: &str) -> AuditEntry {
    AuditEntry::new(
        tenant,
        Actor::ApiKey {
            key_id: ApiKeyId::generate(),
        },
        action,
        target,
    )
}

fn quick() -> AuditOptions {
    AuditOptions {
        linger: Duration::from_millis(2),
        ..AuditOptions::default()
    }
}

async fn raw(database: &Database, sql: &str) -> Result<u64, sqlx::Error> {
    match database {
        Database::Sqlite(pool) => sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        Database::Postgres(pool) => sqlx::raw_sql(sql)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
    }
}

/// What a database owner would do first to tamper: remove the append-only guard.
async fn drop_append_only_guard(database: &Database) {
    let sql = match database {
        Database::Sqlite(_) => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
        }
        Database::Postgres(_) => "DROP TRIGGER audit_events_append_only ON audit_events;",
    };
    raw(database, sql).await.unwrap();
}

/// Five entries for `tenant`, written and durable.
async fn five_entries(log: &AuditLog, tenant: TenantId) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    for index in 1..=5 {
        let target = format!("secret:github/token@{index}");
        events.push(
            log.record_and_wait(entry(tenant, Action::SECRET_PUT, &target))
                .await
                .unwrap(),
        );
    }
    events
}

async fn all_events(reader: &AuditReader, chain: Chain) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let page = reader
            .list(chain, &AuditFilter::default(), after, 1000)
            .await
            .unwrap();
        events.extend(page.items);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return events,
        }
    }
}

/// Sequence numbers 1..=n with every entry pointing at its predecessor.
fn assert_linear(events: &[AuditEvent]) {
    let mut prev = GENESIS.to_owned();
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.seq, index as u64 + 1, "sequence numbers are dense");
        assert_eq!(
            event.prev_hash, prev,
            "entry {} links to its predecessor",
            event.seq
        );
        prev.clone_from(&event.hash);
    }
}

fn seqs(events: &[AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

backend_tests! { TestStore;
    async fn appends_and_lists_with_filters_and_cursors(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        let key = ApiKeyId::generate();
        let actor = Actor::ApiKey { key_id: key };
        let mut written = Vec::new();
        for (action, target, outcome) in [
            (Action::SECRET_PUT, "secret:a@1", Outcome::Success),
            (Action::SECRET_RESOLVE, "secret:a@1", Outcome::Success),
            (Action::SECRET_RESOLVE, "secret:b@1", Outcome::failure("not_found")),
            (Action::SECRET_ROTATE, "secret:a@2", Outcome::Success),
            (Action::SECRET_RESOLVE, "secret:a@2", Outcome::Failure { reason: None }),
        ] {
            let entry = AuditEntry::new(tenant, actor.clone(), action, target)
                .with_outcome(outcome)
                .with_request_id("req_123");
            written.push(log.record_and_wait(entry).await.unwrap());
        }
        let reader = log.reader();

        let everything = all_events(reader, tenant.into()).await;
        assert_eq!(everything, written, "entries read back exactly as stored");
        assert_linear(&everything);
        assert_eq!(everything[2].outcome, Outcome::failure("not_found"));
        assert_eq!(everything[0].actor, actor);
        assert_eq!(everything[0].request_id.as_deref(), Some("req_123"));
        assert!(everything[0].id.to_string().starts_with("aud_"));

        // Cursor pagination.
        let first = reader.list(tenant, &AuditFilter::default(), None, 2).await.unwrap();
        assert_eq!(seqs(&first.items), [1, 2]);
        assert_eq!(first.next_after, Some(2));
        let second = reader.list(tenant, &AuditFilter::default(), first.next_after, 2).await.unwrap();
        assert_eq!(seqs(&second.items), [3, 4]);
        let last = reader.list(tenant, &AuditFilter::default(), second.next_after, 2).await.unwrap();
        assert_eq!(seqs(&last.items), [5]);
        assert_eq!(last.next_after, None);

        // Each filter, alone and with a cursor.
        let resolves = AuditFilter { action: Some(Action::SECRET_RESOLVE), ..AuditFilter::default() };
        let page = reader.list(tenant, &resolves, None, 2).await.unwrap();
        assert_eq!(seqs(&page.items), [2, 3]);
        let page = reader.list(tenant, &resolves, page.next_after, 2).await.unwrap();
        assert_eq!((seqs(&page.items), page.next_after), (vec![5], None));

        let on_a1 = AuditFilter { target: Some("secret:a@1".into()), ..AuditFilter::default() };
        assert_eq!(seqs(&reader.list(tenant, &on_a1, None, 10).await.unwrap().items), [1, 2]);

        let since = AuditFilter { since: Some(written[2].occurred_at), ..AuditFilter::default() };
        assert_eq!(seqs(&reader.list(tenant, &since, None, 10).await.unwrap().items), [3, 4, 5]);

        let until = AuditFilter { until: Some(written[2].occurred_at), ..AuditFilter::default() };
        assert_eq!(seqs(&reader.list(tenant, &until, None, 10).await.unwrap().items), [1, 2]);

        let window = AuditFilter {
            action: Some(Action::SECRET_RESOLVE),
            since: Some(written[1].occurred_at),
            until: Some(written[4].occurred_at),
            ..AuditFilter::default()
        };
        assert_eq!(seqs(&reader.list(tenant, &window, None, 10).await.unwrap().items), [2, 3]);

        let nothing = AuditFilter { action: Some(Action::KEK_ROTATE), ..AuditFilter::default() };
        let empty = reader.list(tenant, &nothing, None, 10).await.unwrap();
        assert!(empty.items.is_empty() && empty.next_after.is_none());

        writer.shutdown().await.unwrap();
    }

    async fn scopes_every_read_to_its_tenant(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let (a, b) = (TenantId::generate(), TenantId::generate());
        five_entries(&log, a).await;
        log.record_and_wait(entry(b, Action::SECRET_RESOLVE, "secret:b@1")).await.unwrap();
        let reader = log.reader();

        let of_b = all_events(reader, b.into()).await;
        assert_eq!(of_b.len(), 1);
        assert!(of_b.iter().all(|e| e.chain == Chain::Tenant(b)));
        assert_eq!(of_b[0].seq, 1, "each tenant has its own sequence");
        assert_eq!(of_b[0].prev_hash, GENESIS, "and its own chain");
        for filter in [
            AuditFilter { target: Some("secret:github/token@1".into()), ..AuditFilter::default() },
            AuditFilter { action: Some(Action::SECRET_PUT), ..AuditFilter::default() },
        ] {
            assert!(reader.list(b, &filter, None, 10).await.unwrap().items.is_empty());
        }
        // A cursor taken from A's listing does not open A's chain either.
        assert!(reader.list(b, &AuditFilter::default(), Some(0), 10).await.unwrap().items.len() == 1);
        assert!(reader.list(TenantId::generate(), &AuditFilter::default(), None, 10).await.unwrap().items.is_empty());

        assert_eq!(reader.verify(a).await.unwrap().verified, 5);
        assert_eq!(reader.verify(b).await.unwrap().verified, 1);
        writer.shutdown().await.unwrap();
    }

    async fn batches_concurrent_records_into_linear_chains(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, AuditOptions::default());
        let tenants: Vec<TenantId> = (0..4).map(|_| TenantId::generate()).collect();
        let tasks: Vec<_> = (0..400)
            .map(|index| {
                let log = log.clone();
                let tenant = tenants[index % tenants.len()];
                tokio::spawn(async move {
                    log.record(entry(tenant, Action::SECRET_RESOLVE, &format!("secret:s@{index}")))
                        .await
                        .unwrap();
                })
            })
            .collect();
        for task in futures::future::join_all(tasks).await {
            task.unwrap();
        }
        log.flush().await.unwrap();

        let stats = log.stats();
        assert_eq!(stats.events_written, 400);
        assert!(
            stats.batches_committed < 400,
            "batched into fewer transactions than entries: {stats:?}"
        );
        let reader = log.reader();
        for tenant in &tenants {
            let events = all_events(reader, (*tenant).into()).await;
            assert_eq!(events.len(), 100);
            assert_linear(&events);
            let report = reader.verify(*tenant).await.unwrap();
            assert!(report.is_ok(), "{report}");
            assert_eq!(report.verified, 100);
        }
        writer.shutdown().await.unwrap();
    }

    async fn two_writers_on_one_database_keep_one_linear_chain(store) {
        // A second pool on the same database stands in for a second Switchyard process.
        let first = store.store.database().clone();
        let second = Database::connect(store.database.url(), &DatabaseOptions::default())
            .await
            .unwrap();
        // Small batches, so the two writers take turns on the chain head many times.
        let options = AuditOptions {
            max_batch: 8,
            linger: Duration::from_millis(1),
            ..AuditOptions::default()
        };
        let (log_1, writer_1) = AuditLog::start(&first, options.clone());
        let (log_2, writer_2) = AuditLog::start(&second, options);
        let (shared, other) = (TenantId::generate(), TenantId::generate());

        let mut tasks = Vec::new();
        for (name, log) in [("one", log_1.clone()), ("two", log_2.clone())] {
            for index in 0..150 {
                let log = log.clone();
                let tenant = if index % 5 == 0 { other } else { shared };
                tasks.push(tokio::spawn(async move {
                    log.record(entry(tenant, Action::SECRET_RESOLVE, &format!("secret:{name}@{index}")))
                        .await
                        .unwrap();
                }));
            }
        }
        for task in futures::future::join_all(tasks).await {
            task.unwrap();
        }
        log_1.flush().await.unwrap();
        log_2.flush().await.unwrap();
        assert!(log_1.stats().batches_committed > 1 && log_2.stats().batches_committed > 1);

        let reader = AuditReader::new(&first);
        let events = all_events(&reader, shared.into()).await;
        assert_eq!(events.len(), 240);
        assert_linear(&events);
        let from_one = events.iter().filter(|e| e.target.starts_with("secret:one@")).count();
        assert_eq!(from_one, 120, "both writers appended to the same chain");
        for report in reader.verify_all().await.unwrap() {
            assert!(report.is_ok(), "{report}");
        }
        assert_eq!(reader.verify(other).await.unwrap().verified, 60);

        writer_1.shutdown().await.unwrap();
        writer_2.shutdown().await.unwrap();
        second.close().await;
    }

    async fn verifies_every_chain_including_the_platform_chain(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let (a, b) = (TenantId::generate(), TenantId::generate());
        five_entries(&log, a).await;
        five_entries(&log, b).await;
        let platform = AuditEntry::new(
            Chain::Platform,
            Actor::Internal { component: "vault.rotation".into(), run_id: Some("run_7".into()) },
            Action::KEK_ROTATE,
            "kek:file:main",
        );
        let stored = log.record_and_wait(platform).await.unwrap();
        assert_eq!((stored.chain, stored.seq), (Chain::Platform, 1));

        let reports = log.reader().verify_all().await.unwrap();
        let mut chains: Vec<Chain> = reports.iter().map(|r| r.chain).collect();
        chains.sort();
        let mut expected = vec![Chain::Tenant(a), Chain::Tenant(b), Chain::Platform];
        expected.sort();
        assert_eq!(chains, expected);
        assert!(reports.iter().all(|r| r.is_ok()));
        let unknown = log.reader().verify(TenantId::generate()).await.unwrap();
        assert!(unknown.is_ok() && unknown.verified == 0, "an empty chain is intact");

        // One tampered tenant shows up alone in verify_all.
        drop_append_only_guard(database).await;
        raw(database, &format!(
            "UPDATE audit_events SET outcome = 'failure' WHERE chain_id = '{b}' AND seq = 2"
        )).await.unwrap();
        let broken: Vec<_> = log.reader().verify_all().await.unwrap()
            .into_iter().filter(|r| !r.is_ok()).collect();
        assert_eq!(broken.len(), 1);
        assert_eq!(broken[0].chain, Chain::Tenant(b));
        writer.shutdown().await.unwrap();
    }

    async fn verify_detects_an_edited_entry(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        five_entries(&log, tenant).await;
        drop_append_only_guard(database).await;
        raw(database, &format!(
            "UPDATE audit_events SET target = 'secret:innocent@1' WHERE chain_id = '{tenant}' AND seq = 3"
        )).await.unwrap();

        let report = log.reader().verify(tenant).await.unwrap();
        assert_eq!(report.broken, Some(ChainBreak { seq: 3, kind: BreakKind::HashMismatch }), "{report}");
        assert_eq!(report.verified, 2);
        assert!(report.to_string().contains("edited"), "{report}");
        writer.shutdown().await.unwrap();
    }

    async fn verify_detects_a_deleted_entry(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        five_entries(&log, tenant).await;
        drop_append_only_guard(database).await;
        raw(database, &format!("DELETE FROM audit_events WHERE chain_id = '{tenant}' AND seq = 3"))
            .await
            .unwrap();

        let report = log.reader().verify(tenant).await.unwrap();
        assert_eq!(
            report.broken,
            Some(ChainBreak { seq: 3, kind: BreakKind::SequenceGap { found: Some(4) } }),
            "{report}"
        );
        assert!(report.to_string().contains("deleted"), "{report}");
        writer.shutdown().await.unwrap();
    }

    async fn verify_detects_deleted_newest_entries(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        five_entries(&log, tenant).await;
        drop_append_only_guard(database).await;
        raw(database, &format!("DELETE FROM audit_events WHERE chain_id = '{tenant}' AND seq >= 4"))
            .await
            .unwrap();

        // The chain alone still links up; the head remembers there were five.
        let report = log.reader().verify(tenant).await.unwrap();
        assert_eq!(
            report.broken,
            Some(ChainBreak { seq: 4, kind: BreakKind::SequenceGap { found: None } }),
            "{report}"
        );
        assert_eq!(report.verified, 3);
        writer.shutdown().await.unwrap();
    }

    async fn verify_detects_swapped_entries(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        five_entries(&log, tenant).await;
        drop_append_only_guard(database).await;
        // Swap entries 3 and 4 through a free sequence number (the primary key is checked
        // row by row on PostgreSQL).
        raw(database, &format!(
            "UPDATE audit_events SET seq = 1000 WHERE chain_id = '{tenant}' AND seq = 3; \
             UPDATE audit_events SET seq = 3 WHERE chain_id = '{tenant}' AND seq = 4; \
             UPDATE audit_events SET seq = 4 WHERE chain_id = '{tenant}' AND seq = 1000;"
        )).await.unwrap();
        let targets: Vec<String> = all_events(log.reader(), tenant.into()).await
            .into_iter().map(|e| e.target).collect();
        assert_eq!(targets[2], "secret:github/token@4", "the swap took effect");

        let report = log.reader().verify(tenant).await.unwrap();
        assert_eq!(report.broken, Some(ChainBreak { seq: 3, kind: BreakKind::PrevHashMismatch }), "{report}");
        assert!(report.to_string().contains("reordered"), "{report}");
        writer.shutdown().await.unwrap();
    }

    async fn verify_detects_an_altered_head(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        five_entries(&log, tenant).await;
        // Rolling the head back would hide entries 4 and 5 from a verifier that trusts it.
        raw(database, &format!(
            "UPDATE audit_chain_heads SET last_seq = 3, \
             last_hash = (SELECT hash FROM audit_events WHERE chain_id = '{tenant}' AND seq = 3) \
             WHERE chain_id = '{tenant}'"
        )).await.unwrap();
        let report = log.reader().verify(tenant).await.unwrap();
        assert_eq!(report.broken, Some(ChainBreak { seq: 3, kind: BreakKind::HeadMismatch }), "{report}");
        writer.shutdown().await.unwrap();
    }

    async fn append_only_triggers_reject_changes(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        five_entries(&log, tenant).await;
        let update = raw(database, "UPDATE audit_events SET target = 'x'").await;
        assert!(update.unwrap_err().to_string().contains("append-only"));
        let delete = raw(database, "DELETE FROM audit_events").await;
        assert!(delete.unwrap_err().to_string().contains("append-only"));
        if let Database::Postgres(_) = database {
            let truncate = raw(database, "TRUNCATE audit_events").await;
            assert!(truncate.unwrap_err().to_string().contains("append-only"));
        }
        let report = log.reader().verify(tenant).await.unwrap();
        assert!(report.is_ok() && report.verified == 5, "{report}");
        writer.shutdown().await.unwrap();
    }

    async fn shutdown_writes_everything_queued(store) {
        let database = store.store.database();
        // A long linger and a small queue: entries pile up and `record` has to wait.
        let options = AuditOptions {
            queue_capacity: 16,
            linger: Duration::from_millis(50),
            ..AuditOptions::default()
        };
        let (log, writer) = AuditLog::start(database, options);
        let tenant = TenantId::generate();
        for index in 0..500 {
            log.record(entry(tenant, Action::SECRET_RESOLVE, &format!("secret:s@{index}")))
                .await
                .unwrap();
        }
        writer.shutdown().await.unwrap();

        let after = log.record(entry(tenant, Action::SECRET_RESOLVE, "secret:late@1")).await;
        assert!(matches!(after, Err(AuditError::Closed)), "{after:?}");
        assert!(matches!(log.flush().await, Err(AuditError::Closed)));
        let report = AuditReader::new(database).verify(tenant).await.unwrap();
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.verified, 500);
    }

    async fn dropping_every_handle_still_writes_what_was_queued(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        for index in 0..50 {
            log.record(entry(tenant, Action::SECRET_RESOLVE, &format!("secret:s@{index}")))
                .await
                .unwrap();
        }
        drop(writer);
        drop(log);
        let reader = AuditReader::new(database);
        let mut verified = 0;
        for _ in 0..200 {
            verified = reader.verify(tenant).await.unwrap().verified;
            if verified == 50 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(verified, 50);
    }

    async fn shutdown_gives_up_on_a_database_that_is_gone_and_says_how_much_was_lost(store) {
        let doomed = Database::connect(store.database.url(), &DatabaseOptions::default())
            .await
            .unwrap();
        let options = AuditOptions {
            retry_backoff: Duration::from_millis(5),
            shutdown_attempts: 2,
            ..quick()
        };
        let (log, writer) = AuditLog::start(&doomed, options);
        let tenant = TenantId::generate();
        log.record_and_wait(entry(tenant, Action::SECRET_PUT, "secret:a@1")).await.unwrap();
        doomed.close().await;
        for index in 0..3 {
            log.record(entry(tenant, Action::SECRET_RESOLVE, &format!("secret:a@{index}")))
                .await
                .unwrap();
        }
        let result = writer.shutdown().await;
        assert!(matches!(result, Err(AuditError::Unflushed { count: 3 })), "{result:?}");
        assert!(log.stats().failed_attempts >= 2);
        let report = AuditReader::new(store.store.database()).verify(tenant).await.unwrap();
        assert!(report.is_ok() && report.verified == 1, "{report}");
    }

    async fn rejects_invalid_entries_before_queueing(store) {
        let database = store.store.database();
        let (log, writer) = AuditLog::start(database, quick());
        let tenant = TenantId::generate();
        let bad = entry(tenant, Action::SECRET_PUT, "");
        assert!(matches!(log.record(bad).await, Err(AuditError::Invalid { field: "target", .. })));
        let bad = entry(tenant, Action::SECRET_PUT, "secret:a@1").with_request_id("two words");
        assert!(matches!(log.record_and_wait(bad).await, Err(AuditError::Invalid { .. })));
        assert!(Action::new("Secret.Put").is_err());
        log.flush().await.unwrap();
        assert_eq!(log.stats().events_written, 0);
        writer.shutdown().await.unwrap();
    }
}
