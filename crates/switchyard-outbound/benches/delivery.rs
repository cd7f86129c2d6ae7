//! Outbound delivery benchmark, on SQLite and (with `SWITCHYARD_TEST_DATABASE_URL`)
//! PostgreSQL, against a local axum receiver answering 204:
//!
//! 1. backlog drain: `BENCH_EVENTS` events fanned out to `BENCH_ENDPOINTS` endpoints are
//!    published with no dispatcher running, then one dispatcher drains them (deliveries/s);
//! 2. publish and deliver in one process: `BENCH_EVENTS` events published by
//!    `BENCH_PUBLISHERS` tasks while the dispatcher runs (events/s, each to one endpoint);
//! 3. publish → first byte on an idle system, `BENCH_SAMPLES` events one at a time (p50/p99).
//!
//! `cargo bench -p switchyard-outbound --bench delivery` (release build).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use secrecy::SecretString;
use serde_json::json;
use switchyard_audit::{Actor, AuditLog, AuditOptions};
use switchyard_core::TenantId;
use switchyard_http::SsrfPolicy;
use switchyard_outbound::{
    Dispatcher, DispatcherConfig, Endpoints, EndpointsConfig, NewEndpoint, NewEvent, publish,
};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{TestBackend, TestDatabase};
use switchyard_vault::{AuditContext, AuditedVault, KekConfig, Vault, VaultOptions, storage_for};
use tokio_util::sync::CancellationToken;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Default)]
struct Sink {
    count: AtomicUsize,
    first_byte: Mutex<HashMap<String, Instant>>,
}

async fn receiver() -> (String, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let state = Arc::clone(&sink);
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let state = Arc::clone(&state);
        async move {
            let at = Instant::now();
            if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                state.first_byte.lock().unwrap().insert(id.to_owned(), at);
            }
            state.count.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, sink)
}

struct Setup {
    database: Database,
    vault: AuditedVault,
    endpoints: Endpoints,
    _db: TestDatabase,
}

async fn setup(backend: TestBackend) -> Option<Setup> {
    let db = TestDatabase::create(backend).await?;
    let options = DatabaseOptions {
        max_connections: 32,
        ..DatabaseOptions::default()
    };
    let database = Database::connect(db.url(), &options).await.unwrap();
    database.migrate().await.unwrap();
    let kek = KekConfig::Env {
        key_base64: SecretString::from(base64::engine::general_purpose::STANDARD.encode([9u8; 32])),
    };
    let vault = Vault::open(storage_for(&database), &kek, VaultOptions::default())
        .await
        .unwrap();
    let (log, writer) = AuditLog::start(&database, AuditOptions::default());
    std::mem::forget(writer);
    let vault = AuditedVault::new(Arc::new(vault), log);
    let endpoints = Endpoints::new(
        database.clone(),
        vault.clone(),
        EndpointsConfig {
            allow_http: true,
            ..EndpointsConfig::default()
        },
    );
    Some(Setup {
        database,
        vault,
        endpoints,
        _db: db,
    })
}

fn config() -> DispatcherConfig {
    DispatcherConfig {
        ssrf: SsrfPolicy::strict()
            .with_allow_http(true)
            .with_allow_cidrs(SsrfPolicy::parse_allow_list("127.0.0.1/32").unwrap()),
        concurrency: env("BENCH_CONCURRENCY", 256),
        per_endpoint_concurrency: env("BENCH_PER_ENDPOINT", 64),
        ..DispatcherConfig::default()
    }
}

async fn wait_count(sink: &Sink, n: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while sink.count.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

async fn finished(database: &Database) -> i64 {
    let sql = "SELECT COUNT(*) FROM webhook_deliveries WHERE status IN ('pending', 'sending')";
    match database {
        Database::Sqlite(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
        Database::Postgres(pool) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
    }
}

async fn run(backend: TestBackend, name: &str) {
    let events = env("BENCH_EVENTS", 5000);
    let endpoint_count = env("BENCH_ENDPOINTS", 4);
    let publishers = env("BENCH_PUBLISHERS", 8);
    let samples = env("BENCH_SAMPLES", 200);
    let context = AuditContext::new(Actor::PlatformAdmin);

    // 1. Backlog drain.
    let Some(s) = setup(backend).await else {
        println!("{name}: skipped (SWITCHYARD_TEST_DATABASE_URL not set)");
        return;
    };
    let (url, sink) = receiver().await;
    let tenant = TenantId::generate();
    for i in 0..endpoint_count {
        s.endpoints
            .create(&context, tenant, NewEndpoint::new(format!("{url}/e{i}")))
            .await
            .unwrap();
    }
    for i in 0..events {
        publish(
            &s.database,
            &s.vault,
            tenant,
            NewEvent::new("bench.drain", json!({"i": i, "pad": "x".repeat(200)})),
        )
        .await
        .unwrap();
    }
    let total = events * endpoint_count;
    let dispatcher = Dispatcher::new(s.database.clone(), s.vault.clone(), config()).unwrap();
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let handle = dispatcher.start(cancel.clone());
    let ok = wait_count(&sink, total, Duration::from_secs(600)).await;
    let sent = started.elapsed();
    while finished(&s.database).await > 0 && started.elapsed() < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let recorded = started.elapsed();
    #[allow(clippy::cast_precision_loss)]
    let rate = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "{name}: backlog drain {total} deliveries ({events} events x {endpoint_count} endpoints): \
         all received in {sent:.2?} = {:.0}/s; all recorded in {recorded:.2?} = {:.0}/s{}",
        rate(total, sent),
        rate(total, recorded),
        if ok { "" } else { " (INCOMPLETE)" }
    );
    cancel.cancel();
    let _ = handle.await;
    drop(s);

    // 2. Publish and deliver in one process.
    let s = setup(backend).await.unwrap();
    let (url, sink) = receiver().await;
    let tenant = TenantId::generate();
    s.endpoints
        .create(&context, tenant, NewEndpoint::new(format!("{url}/one")))
        .await
        .unwrap();
    let dispatcher = Dispatcher::new(s.database.clone(), s.vault.clone(), config()).unwrap();
    let cancel = CancellationToken::new();
    let handle = dispatcher.start(cancel.clone());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let database = s.database.clone();
        let vault = s.vault.clone();
        let share = events / publishers + usize::from(p < events % publishers);
        tasks.push(tokio::spawn(async move {
            for i in 0..share {
                publish(
                    &database,
                    &vault,
                    tenant,
                    NewEvent::new("bench.live", json!({"p": p, "i": i})),
                )
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let published = started.elapsed();
    let ok = wait_count(&sink, events, Duration::from_secs(600)).await;
    let delivered = started.elapsed();
    println!(
        "{name}: publish and deliver {events} events ({publishers} publishers): published in \
         {published:.2?} = {:.0}/s; all received in {delivered:.2?} = {:.0}/s{}",
        rate(events, published),
        rate(events, delivered),
        if ok { "" } else { " (INCOMPLETE)" }
    );

    // 3. Publish → first byte, idle.
    while finished(&s.database).await > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let id = format!("lat-{i}");
        let sent = Instant::now();
        publish(
            &s.database,
            &s.vault,
            tenant,
            NewEvent::new("bench.latency", json!({})).id(id.clone()),
        )
        .await
        .unwrap();
        let arrived = loop {
            if let Some(at) = sink.first_byte.lock().unwrap().get(&id) {
                break *at;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        latencies.push(arrived - sent);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort();
    let pick = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index]
    };
    println!(
        "{name}: publish -> first byte ({samples} samples, idle): p50 {:.1?} p99 {:.1?} max {:.1?}",
        pick(0.5),
        pick(0.99),
        latencies[latencies.len() - 1]
    );
    cancel.cancel();
    let _ = handle.await;
}

fn main() {
    // Only the bench's own figures: `cargo bench` passes `--bench`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        run(TestBackend::Sqlite, "sqlite").await;
        run(TestBackend::Postgres, "postgres").await;
    });
}
