//! Criterion benchmarks of the vault on SQLite in a temporary directory with a key-file KEK.
//!
//! `cargo bench -p switchyard-vault --bench vault`
//! - `resolve/cached`: data key and ciphertext in the cache (the steady state; target < 5 µs).
//! - `resolve/cached_audited`: the same through `AuditedVault`, as the server resolves: each
//!   call also queues an audit entry for the batching writer. Timed in bursts of 1,000 with
//!   the queue drained between bursts (untimed), so it measures what a resolve costs while
//!   the audit writer keeps up.
//! - `resolve/cached_audited_saturated`: back-to-back audited resolves with no pause, so the
//!   queue fills and every resolve waits for the writer: the audit log's sustained throughput.
//! - `resolve/uncached`: cache disabled: one SQLite read and one key unwrap per call.
//! - `put`: a new secret per iteration (encrypt, fingerprint, one SQLite transaction).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_audit::{Actor, AuditLog, AuditOptions};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_vault::{AuditContext, AuditedVault, KekConfig, Vault, VaultOptions, storage_for};

struct Setup {
    vault: Arc<Vault>,
    database: Database,
    _dir: tempfile::TempDir,
}

async fn setup(options: VaultOptions) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    database.migrate().await.unwrap();
    let kek = KekConfig::KeyFile {
        path: dir.path().join("master.key"),
    };
    let vault = Vault::open(storage_for(&database), &kek, options)
        .await
        .unwrap();
    Setup {
        vault: Arc::new(vault),
        database,
        _dir: dir,
    }
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let cached = runtime.block_on(setup(VaultOptions::default()));
    let reference = runtime.block_on(async {
        let stored = cached
            .vault
            .put(
                "tenant-bench",
                "github/token",
                b"ghp_0123456789abcdefghijklmnopqrstuvwxyz",
            )
            .await
            .unwrap();
        cached.vault.resolve(&stored.reference).await.unwrap();
        stored.reference
    });
    let mut group = c.benchmark_group("resolve");
    group.bench_function("cached", |b| {
        b.to_async(&runtime).iter(|| {
            let vault = Arc::clone(&cached.vault);
            let reference = reference.clone();
            async move { vault.resolve(&reference).await.unwrap() }
        });
    });

    // The server's path: every resolve is audited (queued; written in batches).
    let tenant = switchyard_core::TenantId::generate();
    let (audited, audit, audited_reference, writer) = runtime.block_on(async {
        let (audit, writer) = AuditLog::start(&cached.database, AuditOptions::default());
        let audited = AuditedVault::new(Arc::clone(&cached.vault), audit.clone());
        let stored = cached
            .vault
            .put(
                &tenant.to_string(),
                "github/token",
                b"ghp_0123456789abcdefghijklmnopqrstuvwxyz",
            )
            .await
            .unwrap();
        (audited, audit, stored.reference, writer)
    });
    let context = AuditContext::new(Actor::Internal {
        component: "bench".to_owned(),
        run_id: None,
    });
    group.bench_function("cached_audited", |b| {
        b.to_async(&runtime).iter_custom(|iterations| {
            let audited = audited.clone();
            let audit = audit.clone();
            let reference = audited_reference.clone();
            let context = context.clone();
            async move {
                let mut timed = Duration::ZERO;
                let mut done = 0;
                while done < iterations {
                    let burst = (iterations - done).min(1_000);
                    let started = std::time::Instant::now();
                    for _ in 0..burst {
                        audited.resolve(&context, &reference).await.unwrap();
                    }
                    timed += started.elapsed();
                    audit.flush().await.unwrap();
                    done += burst;
                }
                timed
            }
        });
    });
    group.bench_function("cached_audited_saturated", |b| {
        b.to_async(&runtime).iter(|| {
            let audited = audited.clone();
            let reference = audited_reference.clone();
            let context = context.clone();
            async move { audited.resolve(&context, &reference).await.unwrap() }
        });
    });
    runtime.block_on(writer.shutdown()).unwrap();

    let uncached = runtime.block_on(setup(VaultOptions {
        cache_ttl: Duration::ZERO,
        ..VaultOptions::default()
    }));
    let reference = runtime.block_on(async {
        uncached
            .vault
            .put(
                "tenant-bench",
                "github/token",
                b"ghp_0123456789abcdefghijklmnopqrstuvwxyz",
            )
            .await
            .unwrap()
            .reference
    });
    group.bench_function("uncached", |b| {
        b.to_async(&runtime).iter(|| {
            let vault = Arc::clone(&uncached.vault);
            let reference = reference.clone();
            async move { vault.resolve(&reference).await.unwrap() }
        });
    });
    group.finish();

    let counter = AtomicU64::new(0);
    c.bench_function("put", |b| {
        b.to_async(&runtime).iter(|| {
            let vault = Arc::clone(&cached.vault);
            let n = counter.fetch_add(1, Ordering::Relaxed);
            async move {
                vault
                    .put("tenant-bench", &format!("secret-{n}"), b"value-0123456789")
                    .await
                    .unwrap()
            }
        });
    });
}

criterion_group! {
    name = vault;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = benches
}
criterion_main!(vault);
