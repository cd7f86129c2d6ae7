//! End-to-end queue benchmark: no-op jobs per second (enqueue a batch, drain it with one
//! worker) and the claim latency of an idle worker (enqueue → handler start), on SQLite and,
//! when `SWITCHYARD_TEST_DATABASE_URL` is set, PostgreSQL.
//!
//! `cargo bench -p switchyard-jobs --bench queue` (release build). Knobs: `BENCH_JOBS`
//! (default 20000), `BENCH_CONCURRENCY` (64), `BENCH_BATCH` (64), `BENCH_SAMPLES` (200).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde_json::json;
use switchyard_jobs::{
    queue::{self, Job, JobError, NewJob},
    worker::{JobHandler, Registry, Worker, WorkerOptions},
};
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{TestBackend, TestDatabase};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Noop(Arc<AtomicUsize>);

#[async_trait]
impl JobHandler for Noop {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct Signal(mpsc::UnboundedSender<Instant>);

#[async_trait]
impl JobHandler for Signal {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        let _ = self.0.send(Instant::now());
        Ok(())
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn options() -> WorkerOptions {
    WorkerOptions {
        concurrency: env("BENCH_CONCURRENCY", 64),
        claim_batch: u32::try_from(env("BENCH_BATCH", 64)).unwrap(),
        metrics_interval: None,
        ..WorkerOptions::default()
    }
}

async fn throughput(db: &Database, jobs: usize) {
    let started = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|n| NewJob::new("noop", json!({ "n": n })))
            .collect();
        queue::enqueue_many(db, batch).await.unwrap();
    }
    let enqueue = started.elapsed();

    let done = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry.register("noop", Noop(Arc::clone(&done)));
    let shutdown = CancellationToken::new();
    let drain_started = Instant::now();
    let worker = Worker::start(db.clone(), registry, options(), shutdown.clone());
    while done.load(Ordering::Relaxed) < jobs {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Completions are written by the job tasks; joining waits for the last of them.
    shutdown.cancel();
    let report = worker.join().await.unwrap();
    let drain = drain_started.elapsed();
    assert_eq!(report.succeeded as usize, jobs);
    #[allow(clippy::cast_precision_loss)]
    let per_second = |d: Duration| jobs as f64 / d.as_secs_f64();
    println!(
        "  enqueue {jobs} jobs: {:.2?} ({:.0}/s); drain: {:.2?} ({:.0} jobs/s); end to end {:.0} jobs/s",
        enqueue,
        per_second(enqueue),
        drain,
        per_second(drain),
        per_second(enqueue + drain)
    );
}

async fn idle_latency(db: &Database, samples: usize) {
    let (sender, mut started) = mpsc::unbounded_channel();
    let mut registry = Registry::new();
    registry.register("signal", Signal(sender));
    let shutdown = CancellationToken::new();
    let worker = Worker::start(
        db.clone(),
        registry,
        WorkerOptions {
            poll_interval: Duration::from_secs(60),
            ..options()
        },
        shutdown.clone(),
    );
    worker.ready().await;
    let mut latencies = Vec::with_capacity(samples);
    for n in 0..samples {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let enqueued = Instant::now();
        queue::enqueue(db, NewJob::new("signal", json!(n)))
            .await
            .unwrap();
        let ran = tokio::time::timeout(Duration::from_secs(5), started.recv())
            .await
            .unwrap()
            .unwrap();
        latencies.push(ran - enqueued);
    }
    shutdown.cancel();
    worker.join().await.unwrap();
    latencies.sort();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((latencies.len() - 1) as f64 * q).round() as usize;
        latencies[index]
    };
    println!(
        "  idle claim latency (enqueue call → handler start), {samples} samples: p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

async fn bench(backend: TestBackend) {
    let Some(test_db) = TestDatabase::create(backend).await else {
        println!("{backend:?}: skipped (SWITCHYARD_TEST_DATABASE_URL is not set)");
        return;
    };
    let db = Database::connect(
        test_db.url(),
        &DatabaseOptions {
            max_connections: 32,
            ..DatabaseOptions::default()
        },
    )
    .await
    .unwrap();
    db.migrate().await.unwrap();
    println!("{backend:?}:");
    throughput(&db, env("BENCH_JOBS", 20_000)).await;
    idle_latency(&db, env("BENCH_SAMPLES", 200)).await;
    db.close().await;
}

fn main() {
    // Only run when asked to bench (`cargo test --benches` passes nothing and expects speed).
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        bench(TestBackend::Sqlite).await;
        bench(TestBackend::Postgres).await;
    });
}
