//! Re-sealing stored requests onto a tenant's new data key, on SQLite and PostgreSQL: more
//! events than one batch, spread over many segments, all readable once the old key is
//! retired; a second pass moves nothing; another tenant's events stay on their key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::HashMap, sync::Arc, time::Duration};

use base64::Engine;
use secrecy::SecretString;
use switchyard_audit::{AuditLog, AuditOptions};
use switchyard_blob::{BlobConfig, BlobStore};
use switchyard_core::{InboundEventId, SourceId, TenantId};
use switchyard_inbound::{
    envelope::StoredRequest,
    events::{self, EventFilter, InboundEvents},
    writer::{Delivery, IngestWriter, Stored, WriterOptions},
};
use switchyard_store::NewTenant;
use switchyard_test_support::{TestStore, backend_tests};
use switchyard_vault::{AuditedVault, KekConfig, KeyState, Vault, VaultOptions, storage_for};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

/// More than one re-sealing batch (500).
const EVENTS: usize = 620;

async fn tenant(store: &TestStore, name: &str) -> TenantId {
    store
        .create_tenant(NewTenant {
            name: name.to_owned(),
            environment: None,
        })
        .await
        .unwrap()
        .id
}

fn request(n: usize) -> StoredRequest {
    StoredRequest {
        method: "POST".to_owned(),
        url: format!("https://hooks.example.test/{n}"),
        headers: vec![("x-n".to_owned(), n.to_string().into_bytes())],
        received_at: OffsetDateTime::now_utc(),
        body: format!(r#"{{"n":{n}}}"#).into_bytes(),
    }
}

/// Stores `count` sealed requests through the writer; returns them by event id.
async fn ingest(
    writer: &IngestWriter,
    vault: &AuditedVault,
    tenant: TenantId,
    count: usize,
) -> HashMap<InboundEventId, StoredRequest> {
    let source = SourceId::generate();
    let mut expected = HashMap::new();
    let mut deliveries = Vec::new();
    for n in 0..count {
        let id = InboundEventId::generate();
        let stored = request(n);
        let sealed = vault
            .encrypt_blob(tenant, &events::aad(id), &stored.encode().unwrap())
            .await
            .unwrap();
        deliveries.push(Delivery {
            id,
            tenant,
            source,
            dedup_key: format!("key-{n}"),
            dedup_for: Duration::from_secs(3600),
            event_type: None,
            sealed,
            body_bytes: stored.body.len(),
            received_at: stored.received_at,
        });
        expected.insert(id, stored);
    }
    let stores = deliveries
        .into_iter()
        .map(|delivery| writer.store(delivery));
    for stored in futures::future::join_all(stores).await {
        assert!(matches!(stored.unwrap(), Stored::Accepted(_)));
    }
    expected
}

async fn assert_readable(
    events: &InboundEvents,
    tenant: TenantId,
    expected: &HashMap<InboundEventId, StoredRequest>,
) {
    let listed = events
        .list(tenant, &EventFilter::default(), None, 10_000)
        .await
        .unwrap();
    assert_eq!(listed.len(), expected.len());
    for event in listed {
        assert_eq!(&events.request(&event).await.unwrap(), &expected[&event.id]);
    }
}

backend_tests! { TestStore;
    async fn resealed_requests_survive_retiring_the_old_key(store) {
        let (rotated, other) = (tenant(&store, "Acme").await, tenant(&store, "Other").await);
        let database = store.store.database().clone();
        let blobs = BlobStore::open(&BlobConfig::default(), store.database.dir()).await.unwrap();
        let kek = KekConfig::Env {
            key_base64: SecretString::from(base64::engine::general_purpose::STANDARD.encode([7_u8; 32])),
        };
        let options = VaultOptions { cache_ttl: Duration::ZERO, ..VaultOptions::default() };
        let raw = Arc::new(Vault::open(storage_for(&database), &kek, options).await.unwrap());
        let (audit, audit_writer) = AuditLog::start(&database, AuditOptions::default());
        let vault = AuditedVault::new(Arc::clone(&raw), audit);
        let events = InboundEvents::new(database.clone(), blobs.clone(), vault.clone());
        // Small batches: the requests land in dozens of segments.
        let shutdown = CancellationToken::new();
        let options = WriterOptions { writers: 1, max_batch: 16, queue_capacity: 1024 };
        let (writer, tasks) = IngestWriter::start(database.clone(), blobs, options, shutdown.clone());
        let expected = ingest(&writer, &vault, rotated, EVENTS).await;
        let untouched = ingest(&writer, &vault, other, 3).await;

        let version = raw.rotate_dek(&rotated.to_string()).await.unwrap();
        assert_eq!(vault.prepare_dek_completion(rotated).await.unwrap(), Some(version));
        assert_eq!(vault.prepare_dek_completion(other).await.unwrap(), None, "nothing to move");
        assert_eq!(events.reseal_tenant(rotated, version).await.unwrap(), EVENTS as u64);
        assert_eq!(events.reseal_tenant(rotated, version).await.unwrap(), 0, "idempotent");
        let report = raw.complete_dek_rotation(&rotated.to_string()).await.unwrap();
        assert_eq!(report.retired, vec![1]);

        assert_readable(&events, rotated, &expected).await;
        assert_readable(&events, other, &untouched).await;
        let other_keys = raw.data_keys(&other.to_string()).await.unwrap();
        assert_eq!(other_keys.iter().map(|k| (k.version, k.state)).collect::<Vec<_>>(), [(1, KeyState::Active)]);

        shutdown.cancel();
        for task in tasks {
            task.await.unwrap();
        }
        audit_writer.shutdown().await.unwrap();
    }
}
