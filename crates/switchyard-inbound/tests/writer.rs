//! The ingest writer on a real database, SQLite and PostgreSQL: atomic dedup within a batch,
//! across batches and across concurrent writers, an expired claim taken over, and for every
//! new key exactly one event row, one claim, one processing job and its payload slice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, time::Duration};

use serde_json::Value;
use switchyard_blob::{BlobConfig, BlobKey, BlobStore};
use switchyard_core::{InboundEventId, SourceId, TenantId};
use switchyard_inbound::writer::{Delivery, IngestWriter, PROCESS_JOB, Stored, WriterOptions};
use switchyard_store::{Database, NewTenant};
use switchyard_test_support::{TestStore, backend_tests};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

const KEYS: usize = 20;
const COPIES: usize = 25;

fn delivery(tenant: TenantId, source: SourceId, key: &str, dedup_for: Duration) -> Delivery {
    Delivery {
        id: InboundEventId::generate(),
        tenant,
        source,
        dedup_key: key.to_owned(),
        dedup_for,
        event_type: Some("test.event".to_owned()),
        // The writer stores these bytes as they are: the key makes each slice checkable.
        sealed: format!("sealed:{key}").into_bytes(),
        body_bytes: key.len(),
        received_at: OffsetDateTime::now_utc(),
    }
}

/// Runs one query on whichever engine the store uses.
macro_rules! fetch_all {
    ($database:expr, $row:ty, $sql:expr) => {
        match $database {
            Database::Sqlite(pool) => sqlx::query_as::<_, $row>($sql)
                .fetch_all(pool)
                .await
                .unwrap(),
            Database::Postgres(pool) => sqlx::query_as::<_, $row>($sql)
                .fetch_all(pool)
                .await
                .unwrap(),
        }
    };
}

struct Fixture {
    database: Database,
    blobs: BlobStore,
    writer: IngestWriter,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    tenant: TenantId,
}

async fn start(store: &TestStore) -> Fixture {
    let tenant = store
        .create_tenant(NewTenant {
            name: "Acme".to_owned(),
            environment: None,
        })
        .await
        .unwrap()
        .id;
    let database = store.store.database().clone();
    let blobs = BlobStore::open(&BlobConfig::default(), store.database.dir())
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    // Several writers and small batches, so copies of a key meet both within one batch and
    // in batches committing at the same time (SQLite serialises the writers' transactions).
    let options = WriterOptions {
        writers: 4,
        max_batch: 16,
        queue_capacity: 1024,
    };
    let (writer, tasks) =
        IngestWriter::start(database.clone(), blobs.clone(), options, shutdown.clone());
    Fixture {
        database,
        blobs,
        writer,
        shutdown,
        tasks,
        tenant,
    }
}

impl Fixture {
    async fn store_all(&self, deliveries: Vec<Delivery>) -> Vec<(String, Stored)> {
        let stores = deliveries.into_iter().map(|delivery| {
            let writer = self.writer.clone();
            async move {
                let key = delivery.dedup_key.clone();
                (key, writer.store(delivery).await.unwrap())
            }
        });
        futures::future::join_all(stores).await
    }

    async fn stop(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

backend_tests! { TestStore;
    async fn each_key_is_accepted_once_however_its_copies_arrive(store) {
        let fixture = start(&store).await;
        let source = SourceId::generate();
        let hour = Duration::from_secs(3600);
        // All copies of all keys at once, interleaved.
        let deliveries = (0..COPIES)
            .flat_map(|_| 0..KEYS)
            .map(|k| delivery(fixture.tenant, source, &format!("key-{k}"), hour))
            .collect();
        let results = fixture.store_all(deliveries).await;

        let mut accepted: HashMap<String, InboundEventId> = HashMap::new();
        for (key, stored) in &results {
            if let Stored::Accepted(id) = stored {
                assert!(accepted.insert(key.clone(), *id).is_none(), "{key} accepted twice");
            }
        }
        assert_eq!(accepted.len(), KEYS, "every key accepted once");
        for (key, stored) in &results {
            if let Stored::Duplicate(id) = stored {
                assert_eq!(*id, Some(accepted[key]), "a copy of {key} names its first event");
            }
        }
        // Later, in a batch of its own: still a duplicate of the first.
        let again = fixture
            .store_all(vec![delivery(fixture.tenant, source, "key-3", hour)])
            .await;
        assert_eq!(again[0].1, Stored::Duplicate(Some(accepted["key-3"])));

        let events = fetch_all!(
            &fixture.database,
            (String, String, String, i64, i64),
            "SELECT id, dedup_key, blob_key, blob_offset, blob_length FROM inbound_events"
        );
        assert_eq!(events.len(), KEYS, "one event per key");
        for (id, key, blob_key, offset, length) in &events {
            assert_eq!(id, &accepted[key].to_string());
            let segment = fixture
                .blobs
                .get(&blob_key.parse::<BlobKey>().unwrap())
                .await
                .unwrap();
            let (offset, length) = (usize::try_from(*offset).unwrap(), usize::try_from(*length).unwrap());
            assert_eq!(&segment[offset..offset + length], format!("sealed:{key}").as_bytes());
        }
        let claims = fetch_all!(
            &fixture.database,
            (String, String),
            "SELECT dedup_key, event_id FROM inbound_dedup"
        );
        assert_eq!(claims.len(), KEYS);
        for (key, event) in &claims {
            assert_eq!(event, &accepted[key].to_string(), "the claim names the stored event");
        }
        let jobs = fetch_all!(
            &fixture.database,
            (String, String),
            "SELECT kind, CAST(payload AS TEXT) FROM jobs"
        );
        let mut queued: Vec<String> = jobs
            .iter()
            .map(|(kind, payload)| {
                assert_eq!(kind, PROCESS_JOB);
                let payload: Value = serde_json::from_str(payload).unwrap();
                payload["event_id"].as_str().unwrap().to_owned()
            })
            .collect();
        queued.sort();
        let mut expected: Vec<String> = accepted.values().map(ToString::to_string).collect();
        expected.sort();
        assert_eq!(queued, expected, "one processing job per event");
        fixture.stop().await;
    }

    async fn an_expired_claim_is_taken_over_by_the_next_delivery(store) {
        let fixture = start(&store).await;
        let source = SourceId::generate();
        // A claim that lasts no time at all has expired by the next commit.
        let first = fixture
            .store_all(vec![delivery(fixture.tenant, source, "short", Duration::ZERO)])
            .await;
        let Stored::Accepted(first) = first[0].1 else { panic!("the first delivery is new") };
        let second = fixture
            .store_all(vec![delivery(fixture.tenant, source, "short", Duration::from_secs(3600))])
            .await;
        let Stored::Accepted(second) = second[0].1 else { panic!("an expired claim does not count") };
        assert_ne!(first, second);
        // The new claim is live: a third copy is its duplicate.
        let third = fixture
            .store_all(vec![delivery(fixture.tenant, source, "short", Duration::from_secs(3600))])
            .await;
        assert_eq!(third[0].1, Stored::Duplicate(Some(second)));
        let claims = fetch_all!(&fixture.database, (String,), "SELECT event_id FROM inbound_dedup");
        assert_eq!(claims, vec![(second.to_string(),)]);
        let events = fetch_all!(&fixture.database, (String,), "SELECT id FROM inbound_events");
        assert_eq!(events.len(), 2, "both accepted deliveries are stored");
        fixture.stop().await;
    }
}
