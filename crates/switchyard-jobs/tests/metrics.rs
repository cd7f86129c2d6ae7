//! The worker's metrics as `/metrics` renders them, on SQLite and PostgreSQL: real jobs run by
//! the real worker, recorded by the server's process-wide Prometheus recorder.
//!
//! `cargo test` runs these as threads of one process sharing that recorder, so every test
//! names its job kinds uniquely, and only the backlog test publishes the tenant backlog.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    fmt::Debug,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde_json::json;
use switchyard_core::TenantId;
use switchyard_jobs::{
    queue::{self, ClaimRequest, FailureClass, Job, JobError, JobId, JobStatus, NewJob},
    worker::{JobHandler, Registry, RetryPolicy, Worker, WorkerOptions},
};
use switchyard_store::Database;
use switchyard_test_support::{TestStore, backend_tests};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

/// Held by the backlog test: its series have no kind to tell its SQLite and PostgreSQL halves
/// apart when they share a process.
static BACKLOG: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn database(store: &TestStore) -> Database {
    store.store.database().clone()
}

/// A kind no other test (or the other backend's half of this one) uses.
fn kind(name: &str) -> String {
    format!("{name}_{}", Ulid::new().to_string().to_lowercase())
}

fn options() -> WorkerOptions {
    WorkerOptions {
        poll_interval: Duration::from_millis(100),
        reap_interval: Duration::from_millis(100),
        metrics_interval: None,
        ..WorkerOptions::default()
    }
}

/// The production recorder, installed (once per process) before a test starts its worker:
/// whatever is recorded before the facade has a recorder is lost.
fn install_recorder() {
    switchyard_server::metrics::install_recorder().unwrap();
}

/// Every series of `name` in the rendered text: its labels and its value.
fn series(name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let text = switchyard_server::metrics::install_recorder()
        .unwrap()
        .render();
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            let (metric, labels) = key.split_once('{').unwrap_or((key, "}"));
            if metric != name {
                return None;
            }
            let labels = labels
                .trim_end_matches('}')
                .split(',')
                .filter(|label| !label.is_empty())
                .map(|label| {
                    let (k, v) = label.split_once('=').unwrap();
                    (k.to_owned(), v.trim_matches('"').to_owned())
                })
                .collect();
            Some((labels, value.parse().unwrap()))
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The value of the series of `name` with exactly `pairs` as its labels.
fn value(name: &str, pairs: &[(&str, &str)]) -> Option<f64> {
    let wanted = labels(pairs);
    series(name)
        .into_iter()
        .find(|(labels, _)| *labels == wanted)
        .map(|(_, value)| value)
}

/// The series of `name` that carry `label="value"`, with that label left out.
fn series_with(name: &str, label: &str, value: &str) -> Vec<BTreeMap<String, String>> {
    series(name)
        .into_iter()
        .filter(|(labels, _)| labels.get(label).is_some_and(|v| v == value))
        .map(|(mut labels, _)| {
            labels.remove(label);
            labels
        })
        .collect()
}

/// Polls `read` until it returns `expected`, for up to 10 s: gauges change only when the
/// refresher runs, which a loaded machine may delay.
async fn eventually<T: PartialEq + Debug>(mut read: impl FnMut() -> T, expected: T) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if read() == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(read(), expected);
}

async fn wait_for_status(db: &Database, id: JobId, status: JobStatus) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = queue::get(db, id).await.unwrap().unwrap();
        if job.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job stayed {:?}, wanted {status:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Succeeds after `0`.
struct Sleep(Duration);

#[async_trait]
impl JobHandler for Sleep {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

/// Always fails with one class.
struct Fail(FailureClass);

#[async_trait]
impl JobHandler for Fail {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        Err(JobError::new(self.0, "provider said no"))
    }
}

backend_tests! { TestStore;
    async fn claim_latency_and_run_time_are_recorded_per_kind(store) {
        install_recorder();
        let db = database(&store);
        let kind = kind("timed");
        let mut registry = Registry::new();
        registry.register(kind.clone(), Sleep(Duration::from_millis(50)));
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, options(), shutdown.clone());
        // Due 30 s ago: the claim latency (run_at to start) is at least that.
        let due = OffsetDateTime::now_utc() - time::Duration::seconds(30);
        let id = queue::enqueue(&db, NewJob::new(kind.clone(), json!({})).run_at(due)).await.unwrap().id;
        wait_for_status(&db, id, JobStatus::Succeeded).await;
        shutdown.cancel();
        worker.join().await.unwrap(); // every finished job's metrics are recorded by now

        let k = kind.as_str();
        let claims = value("switchyard_job_claim_latency_seconds_count", &[("kind", k)]);
        assert_eq!(claims, Some(1.0));
        let latency = value("switchyard_job_claim_latency_seconds_sum", &[("kind", k)]).unwrap();
        // A claim takes its start time before its query runs, and a worker already polling
        // can take it just before the test read the clock for `due`: then the latency is a
        // fraction of a millisecond short of 30 s.
        assert!((29.9..60.0).contains(&latency), "claim latency {latency}");
        let runs = series_with("switchyard_job_run_seconds_count", "kind", k);
        assert_eq!(runs, vec![labels(&[("outcome", "succeeded")])]);
        let runs = value("switchyard_job_run_seconds_count", &[("kind", k), ("outcome", "succeeded")]);
        assert_eq!(runs, Some(1.0));
        let run_time = value("switchyard_job_run_seconds_sum", &[("kind", k), ("outcome", "succeeded")]).unwrap();
        assert!((0.05..10.0).contains(&run_time), "run time {run_time}");
    }

    async fn retries_dead_jobs_and_queue_depth_are_counted(store) {
        install_recorder();
        let db = database(&store);
        let (flaky, denied, parked) = (kind("flaky"), kind("denied"), kind("parked"));
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        let mut registry = Registry::new();
        registry.register_with(flaky.clone(), Fail(FailureClass::ProviderUnavailable), policy.clone());
        registry.register_with(denied.clone(), Fail(FailureClass::Auth), policy);
        let refreshing = WorkerOptions {
            metrics_interval: Some(Duration::from_millis(100)),
            backlog_top_n: 0, // the backlog test's series
            ..options()
        };
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, refreshing, shutdown.clone());
        let flaky_id = queue::enqueue(&db, NewJob::new(flaky.clone(), json!({}))).await.unwrap().id;
        let denied_id = queue::enqueue(&db, NewJob::new(denied.clone(), json!({}))).await.unwrap().id;
        // No handler: these stay queued.
        let parked_jobs = (0..3).map(|n| NewJob::new(parked.clone(), json!(n))).collect();
        queue::enqueue_many(&db, parked_jobs).await.unwrap();
        wait_for_status(&db, flaky_id, JobStatus::Dead).await;
        wait_for_status(&db, denied_id, JobStatus::Dead).await;

        let depth = |kind: &str, status: &str| value("switchyard_jobs", &[("kind", kind), ("status", status)]);
        eventually(|| (depth(&flaky, "dead"), depth(&denied, "dead")), (Some(1.0), Some(1.0))).await;
        eventually(|| depth(&parked, "queued"), Some(3.0)).await;
        shutdown.cancel();
        worker.join().await.unwrap();

        // Two failed attempts retried, then the third exhausted the budget.
        let retries = series_with("switchyard_job_retries_total", "kind", &flaky);
        assert_eq!(retries, vec![labels(&[("class", "provider_unavailable")])]);
        assert_eq!(value("switchyard_job_retries_total", &[("kind", &flaky), ("class", "provider_unavailable")]), Some(2.0));
        assert_eq!(value("switchyard_job_dead_total", &[("kind", &flaky)]), Some(1.0));
        let runs = |kind: &str, outcome: &str| value("switchyard_job_run_seconds_count", &[("kind", kind), ("outcome", outcome)]);
        assert_eq!((runs(&flaky, "retried"), runs(&flaky, "dead")), (Some(2.0), Some(1.0)));
        // An auth failure is not retried: dead at once.
        assert!(series_with("switchyard_job_retries_total", "kind", &denied).is_empty());
        assert_eq!(value("switchyard_job_dead_total", &[("kind", &denied)]), Some(1.0));
        assert_eq!(runs(&denied, "dead"), Some(1.0));
    }

    async fn an_expired_lease_is_counted(store) {
        install_recorder();
        let db = database(&store);
        let kind = kind("orphan");
        // A "process" claimed a job with a short lease and died.
        let id = queue::enqueue(&db, NewJob::new(kind.clone(), json!({}))).await.unwrap().id;
        let claimed = queue::claim(&db, &ClaimRequest {
            owner: "wrk_dead".to_owned(),
            kinds: vec![kind.clone()],
            exclude_tenants: Vec::new(),
            limit: 1,
            per_tenant: 1,
            lease: time::Duration::milliseconds(300),
        }).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let mut registry = Registry::new();
        registry.register(kind.clone(), Sleep(Duration::ZERO));
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, options(), shutdown.clone());
        wait_for_status(&db, id, JobStatus::Succeeded).await;
        shutdown.cancel();
        worker.join().await.unwrap();

        assert_eq!(value("switchyard_job_lease_expiries_total", &[("kind", &kind)]), Some(1.0));
        assert_eq!(value("switchyard_job_run_seconds_count", &[("kind", &kind), ("outcome", "succeeded")]), Some(1.0));
    }

    async fn the_tenant_backlog_is_the_top_n_by_rank(store) {
        install_recorder();
        let _backlog = BACKLOG.lock().await;
        let db = database(&store);
        let parked = kind("parked");
        let mut registry = Registry::new();
        registry.register(kind("idle"), Sleep(Duration::ZERO));
        let refreshing = WorkerOptions {
            metrics_interval: Some(Duration::from_millis(100)),
            backlog_top_n: 2,
            ..options()
        };
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, refreshing, shutdown.clone());
        let enqueue = |tenant: TenantId, n: usize| {
            let jobs = (0..n).map(|i| NewJob::new(parked.clone(), json!(i)).tenant(tenant)).collect();
            queue::enqueue_many(&db, jobs)
        };
        // All the series, compared whole: one per rank and no tenant label, so nothing is
        // left behind by a tenant that drops out.
        let ranks = || {
            let mut ranks = series("switchyard_job_tenant_backlog");
            ranks.sort_by(|a, b| a.0.cmp(&b.0));
            ranks
        };
        let expect = |first: f64, second: f64| {
            vec![(labels(&[("rank", "1")]), first), (labels(&[("rank", "2")]), second)]
        };
        let (a, b, c) = (TenantId::generate(), TenantId::generate(), TenantId::generate());
        enqueue(a, 3).await.unwrap();
        enqueue(b, 2).await.unwrap();
        enqueue(c, 1).await.unwrap();
        eventually(ranks, expect(3.0, 2.0)).await;

        // c overtakes a; b drops out of the top 2 and leaves no series behind.
        enqueue(c, 3).await.unwrap();
        eventually(ranks, expect(4.0, 3.0)).await;

        // Another worker drains the backlog: every rank reads 0, still just two series.
        let mut registry = Registry::new();
        registry.register(parked.clone(), Sleep(Duration::ZERO));
        let drain_shutdown = CancellationToken::new();
        let drainer = Worker::start(db.clone(), registry, options(), drain_shutdown.clone());
        eventually(ranks, expect(0.0, 0.0)).await;
        drain_shutdown.cancel();
        assert_eq!(drainer.join().await.unwrap().succeeded, 9);
        shutdown.cancel();
        worker.join().await.unwrap();
    }
}
