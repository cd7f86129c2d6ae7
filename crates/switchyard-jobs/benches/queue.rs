//! End-to-end queue benchmark: no-op jobs per second (enqueue a backlog, drain it) and the
//! claim latency of an idle worker (enqueue → handler start), on SQLite and, when
//! `SWITCHYARD_TEST_DATABASE_URL` is set, PostgreSQL.
//!
//! Drains: one worker in this process (both backends), then on PostgreSQL one and three worker
//! *processes* (this binary re-executed with `--worker-process`, so nothing else needs
//! building), each a worker with the same options, draining one shared backlog.
//!
//! `cargo bench -p switchyard-jobs --bench queue` (release build). Knobs: `BENCH_JOBS`
//! (default 20000), `BENCH_CONCURRENCY` (64), `BENCH_BATCH` (64), `BENCH_SAMPLES` (200),
//! `BENCH_PROCESSES` (`1,3`: the process counts to drain with on PostgreSQL).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{
    io::{BufRead as _, BufReader, Write as _},
    process::{Child, Command, Stdio},
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

#[allow(clippy::cast_precision_loss)]
fn per_second(jobs: usize, elapsed: Duration) -> f64 {
    jobs as f64 / elapsed.as_secs_f64()
}

/// Enqueues `jobs` no-op jobs in transactions of 1,000; returns how long it took.
async fn enqueue_backlog(db: &Database, jobs: usize) -> Duration {
    let started = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
        let batch = chunk
            .iter()
            .map(|n| NewJob::new("noop", json!({ "n": n })))
            .collect();
        queue::enqueue_many(db, batch).await.unwrap();
    }
    started.elapsed()
}

async fn throughput(db: &Database, jobs: usize) {
    let enqueue = enqueue_backlog(db, jobs).await;

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
    println!(
        "  enqueue {jobs} jobs: {:.2?} ({:.0}/s); drain, 1 worker in-process: {:.2?} ({:.0} jobs/s); end to end {:.0} jobs/s",
        enqueue,
        per_second(jobs, enqueue),
        drain,
        per_second(jobs, drain),
        per_second(jobs, enqueue + drain)
    );
}

/// Jobs not finished yet (`succeeded` or `dead`).
async fn unfinished(db: &Database) -> i64 {
    let Database::Postgres(pool) = db else {
        unreachable!("multi-process drains run on PostgreSQL only")
    };
    sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'failed', 'running')")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Drains a backlog of `jobs` with `processes` worker processes started beforehand (connected,
/// migrated, listening), so the figure is the queue's, not process start-up.
async fn throughput_processes(db: &Database, url: &str, jobs: usize, processes: usize) {
    enqueue_backlog(db, jobs).await;
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<Child> = (0..processes)
        .map(|_| {
            Command::new(&exe)
                .arg("--worker-process")
                .env("BENCH_WORKER_URL", url)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut outputs = Vec::new();
    for child in &mut children {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        outputs.push(lines);
    }
    let started = Instant::now();
    for child in &mut children {
        writeln!(child.stdin.as_mut().unwrap(), "go").unwrap();
    }
    while unfinished(db).await > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drain = started.elapsed();
    let mut succeeded = 0;
    for (mut child, mut lines) in children.into_iter().zip(outputs) {
        drop(child.stdin.take()); // EOF: stop
        succeeded += lines.next().unwrap().unwrap().parse::<usize>().unwrap();
        assert!(child.wait().unwrap().success());
    }
    assert_eq!(succeeded, jobs);
    println!(
        "  drain, {processes} worker process{}: {drain:.2?} ({:.0} jobs/s)",
        if processes == 1 { "" } else { "es" },
        per_second(jobs, drain)
    );
}

/// `--worker-process`: connect, print `ready`, start a no-op worker on `go`, stop at EOF on
/// stdin and print how many jobs succeeded.
async fn worker_process() {
    let url = std::env::var("BENCH_WORKER_URL").unwrap();
    let db = Database::connect(
        &url,
        &DatabaseOptions {
            // Three of these must fit in the server's connection limit next to the parent.
            max_connections: 8,
            ..DatabaseOptions::default()
        },
    )
    .await
    .unwrap();
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    println!("ready");
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line)
        .await
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let mut registry = Registry::new();
    registry.register("noop", Noop(Arc::clone(&done)));
    let shutdown = CancellationToken::new();
    let worker = Worker::start(db.clone(), registry, options(), shutdown.clone());
    line.clear();
    while tokio::io::AsyncBufReadExt::read_line(&mut stdin, &mut line)
        .await
        .unwrap()
        > 0
    {
        line.clear();
    }
    shutdown.cancel();
    let report = worker.join().await.unwrap();
    println!("{}", report.succeeded);
    db.close().await;
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
    let jobs = env("BENCH_JOBS", 20_000);
    throughput(&db, jobs).await;
    if backend == TestBackend::Postgres {
        let counts = std::env::var("BENCH_PROCESSES").unwrap_or_else(|_| "1,3".to_owned());
        for processes in counts.split(',').filter_map(|n| n.trim().parse().ok()) {
            throughput_processes(&db, test_db.url(), jobs, processes).await;
        }
    }
    idle_latency(&db, env("BENCH_SAMPLES", 200)).await;
    db.close().await;
}

fn main() {
    if std::env::args().any(|arg| arg == "--worker-process") {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(worker_process());
        return;
    }
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
