//! The worker runtime on SQLite and PostgreSQL: running jobs, retries with backoff and the
//! dead state, requeue, per-kind limits, shutdown releasing leases, wake-up latency.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use serde_json::json;
use switchyard_jobs::{
    queue::{self, FailureClass, Job, JobError, JobId, JobStatus, NewJob},
    worker::{
        AttemptObserver, AttemptOutcome, AttemptReport, JobHandler, Registry, RetryPolicy, Worker,
        WorkerOptions,
    },
};
use switchyard_store::Database;
use switchyard_test_support::{TestStore, backend_tests};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn database(store: &TestStore) -> Database {
    store.store.database().clone()
}

fn fast_options() -> WorkerOptions {
    WorkerOptions {
        poll_interval: Duration::from_millis(100),
        metrics_interval: None,
        ..WorkerOptions::default()
    }
}

/// Succeeds and reports each run on a channel.
struct Report(mpsc::UnboundedSender<(JobId, Instant)>);

#[async_trait]
impl JobHandler for Report {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let _ = self.0.send((job.id, Instant::now()));
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

/// Sleeps, tracking how many run at once.
struct Slow {
    duration: Duration,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

#[async_trait]
impl JobHandler for Slow {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.duration).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.done.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(u32, &'static str)>>);

#[async_trait]
impl AttemptObserver for Recorder {
    async fn attempt_started(&self, job: &Job, _started_at: OffsetDateTime) {
        self.0.lock().unwrap().push((job.attempts, "started"));
    }

    async fn attempt_finished(&self, _job: &Job, report: &AttemptReport) {
        let outcome = match report.outcome {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Retrying { .. } => "retrying",
            AttemptOutcome::Dead { .. } => "dead",
            AttemptOutcome::Released => "released",
        };
        self.0.lock().unwrap().push((report.attempt, outcome));
    }
}

async fn wait_for_status(db: &Database, id: JobId, status: JobStatus) -> Job {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let job = queue::get(db, id).await.unwrap().unwrap();
        if job.status == status {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job stayed {:?}, wanted {status:?}",
            job.status
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

backend_tests! { TestStore;
    async fn runs_jobs_to_success(store) {
        let db = database(&store);
        let (sender, mut ran) = mpsc::unbounded_channel();
        let mut registry = Registry::new();
        registry.register("report", Report(sender));
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, fast_options(), shutdown.clone());
        let jobs: Vec<NewJob> = (0..200).map(|n| NewJob::new("report", json!(n))).collect();
        let ids = queue::enqueue_many(&db, jobs).await.unwrap();
        let mut seen = std::collections::HashSet::new();
        while seen.len() < ids.len() {
            let (id, _) = tokio::time::timeout(Duration::from_secs(10), ran.recv()).await.unwrap().unwrap();
            seen.insert(id);
        }
        shutdown.cancel();
        let report = worker.join().await.unwrap();
        assert_eq!(report.succeeded, 200);
        assert_eq!(report.released, 0);
        for enqueued in ids {
            let job = queue::get(&db, enqueued.id).await.unwrap().unwrap();
            assert_eq!(job.status, JobStatus::Succeeded);
            assert_eq!(job.attempts, 1);
        }
    }

    async fn retries_with_backoff_then_dies_and_can_be_requeued(store) {
        let db = database(&store);
        let policy = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            ..RetryPolicy::default()
        };
        let observer = Arc::new(Recorder::default());
        let mut registry = Registry::new();
        registry.register_with("flaky", Fail(FailureClass::ProviderUnavailable), policy.clone());
        registry.register_with("denied", Fail(FailureClass::Auth), policy);
        registry.observe(Arc::clone(&observer) as Arc<dyn AttemptObserver>);
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, fast_options(), shutdown.clone());

        let flaky = queue::enqueue(&db, NewJob::new("flaky", json!({}))).await.unwrap().id;
        let denied = queue::enqueue(&db, NewJob::new("denied", json!({}))).await.unwrap().id;
        let flaky_job = wait_for_status(&db, flaky, JobStatus::Dead).await;
        assert_eq!(flaky_job.attempts, 3, "retried until max_attempts");
        assert_eq!(flaky_job.last_error_class, Some(FailureClass::ProviderUnavailable));
        assert_eq!(flaky_job.last_error.as_deref(), Some("provider said no"));
        assert!(flaky_job.lease_owner.is_none());
        let denied_job = wait_for_status(&db, denied, JobStatus::Dead).await;
        assert_eq!(denied_job.attempts, 1, "an auth failure is not retried");
        assert_eq!(denied_job.last_error_class, Some(FailureClass::Auth));

        let dead = queue::list(&db, JobStatus::Dead, Some("flaky"), None, 10).await.unwrap();
        assert_eq!(dead.iter().map(|j| j.id).collect::<Vec<_>>(), vec![flaky]);
        shutdown.cancel();
        let report = worker.join().await.unwrap();
        assert_eq!(report.dead, 2);
        assert_eq!(report.retried, 2);
        {
            let events = observer.0.lock().unwrap();
            let finished: Vec<&str> = events.iter().filter(|(_, e)| *e != "started").map(|(_, e)| *e).collect();
            assert_eq!(finished.iter().filter(|e| **e == "retrying").count(), 2);
            assert_eq!(finished.iter().filter(|e| **e == "dead").count(), 2);
            assert_eq!(events.iter().filter(|(_, e)| *e == "started").count(), 4);
        }

        // Requeue with a handler that now works.
        assert!(queue::requeue_dead(&db, flaky).await.unwrap());
        assert!(!queue::requeue_dead(&db, flaky).await.unwrap(), "only dead jobs are requeued");
        let requeued = queue::get(&db, flaky).await.unwrap().unwrap();
        assert_eq!(requeued.status, JobStatus::Queued);
        assert_eq!(requeued.attempts, 0);
        let (sender, mut ran) = mpsc::unbounded_channel();
        let mut registry = Registry::new();
        registry.register("flaky", Report(sender));
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, fast_options(), shutdown.clone());
        let (id, _) = tokio::time::timeout(Duration::from_secs(10), ran.recv()).await.unwrap().unwrap();
        assert_eq!(id, flaky);
        let done = wait_for_status(&db, flaky, JobStatus::Succeeded).await;
        assert_eq!(done.attempts, 1);
        shutdown.cancel();
        worker.join().await.unwrap();
    }

    async fn backoff_spaces_retries(store) {
        let db = database(&store);
        let policy = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_secs(3600),
            max_delay: Duration::from_secs(3600),
            ..RetryPolicy::default()
        };
        let mut registry = Registry::new();
        registry.register_with("flaky", Fail(FailureClass::Timeout), policy);
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, fast_options(), shutdown.clone());
        let before = OffsetDateTime::now_utc();
        let id = queue::enqueue(&db, NewJob::new("flaky", json!({}))).await.unwrap().id;
        let failed = wait_for_status(&db, id, JobStatus::Failed).await;
        assert_eq!(failed.attempts, 1);
        assert_eq!(failed.last_error_class, Some(FailureClass::Timeout));
        // Full jitter: anywhere in [now, now + 1 h].
        assert!(failed.run_at >= before - time::Duration::seconds(1));
        assert!(failed.run_at <= OffsetDateTime::now_utc() + time::Duration::hours(1));
        shutdown.cancel();
        worker.join().await.unwrap();

        // retry_after beats a shorter backoff.
        let policy = RetryPolicy { base_delay: Duration::ZERO, ..RetryPolicy::default() };
        let error = JobError::new(FailureClass::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(60));
        let job = queue::get(&db, id).await.unwrap().unwrap();
        assert_eq!(policy.retry_delay(&job, &error), Some(Duration::from_secs(60)));
    }

    async fn per_kind_concurrency_is_respected(store) {
        let db = database(&store);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let mut registry = Registry::new();
        registry.register("slow", Slow {
            duration: Duration::from_millis(30),
            running: Arc::clone(&running),
            peak: Arc::clone(&peak),
            done: Arc::clone(&done),
        });
        let mut options = fast_options();
        options.kind_concurrency.insert("slow".to_owned(), 2);
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, options, shutdown.clone());
        let jobs: Vec<NewJob> = (0..20).map(|n| NewJob::new("slow", json!(n))).collect();
        queue::enqueue_many(&db, jobs).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while done.load(Ordering::SeqCst) < 20 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        shutdown.cancel();
        assert_eq!(worker.join().await.unwrap().succeeded, 20);
    }

    async fn shutdown_releases_leases(store) {
        let db = database(&store);
        let running = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let observer = Arc::new(Recorder::default());
        let mut registry = Registry::new();
        registry.register("slow", Slow {
            duration: Duration::from_secs(60),
            running: Arc::clone(&running),
            peak: Arc::new(AtomicUsize::new(0)),
            done: Arc::clone(&done),
        });
        registry.observe(Arc::clone(&observer) as Arc<dyn AttemptObserver>);
        let options = WorkerOptions { shutdown_grace: Duration::from_millis(200), ..fast_options() };
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, options, shutdown.clone());
        let a = queue::enqueue(&db, NewJob::new("slow", json!(1))).await.unwrap().id;
        let b = queue::enqueue(&db, NewJob::new("slow", json!(2))).await.unwrap().id;
        let deadline = Instant::now() + Duration::from_secs(10);
        while running.load(Ordering::SeqCst) < 2 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let stopping = Instant::now();
        shutdown.cancel();
        let report = worker.join().await.unwrap();
        assert!(stopping.elapsed() < Duration::from_secs(5), "the grace period bounds shutdown");
        assert_eq!(report.released, 2);
        assert_eq!(done.load(Ordering::SeqCst), 0);
        for id in [a, b] {
            let job = queue::get(&db, id).await.unwrap().unwrap();
            assert_eq!(job.status, JobStatus::Queued);
            assert!(job.lease_owner.is_none() && job.lease_expires_at.is_none());
            assert_eq!(job.attempts, 0, "an interrupted attempt is not counted");
        }
        assert_eq!(observer.0.lock().unwrap().iter().filter(|(_, e)| *e == "released").count(), 2);
        // Another worker takes them at once, no lease expiry needed.
        let claimed = queue::claim(&db, &queue::ClaimRequest {
            owner: "wrk_next".to_owned(),
            kinds: vec!["slow".to_owned()],
            exclude_tenants: Vec::new(),
            limit: 10,
            per_tenant: 10,
            lease: time::Duration::seconds(30),
        }).await.unwrap();
        assert_eq!(claimed.len(), 2);
    }

    async fn a_dead_workers_jobs_are_taken_over(store) {
        let db = database(&store);
        // A "process" claimed a job with a short lease and died.
        let id = queue::enqueue(&db, NewJob::new("report", json!(1))).await.unwrap().id;
        let claimed = queue::claim(&db, &queue::ClaimRequest {
            owner: "wrk_dead".to_owned(),
            kinds: vec!["report".to_owned()],
            exclude_tenants: Vec::new(),
            limit: 1,
            per_tenant: 1,
            lease: time::Duration::milliseconds(300),
        }).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let (sender, mut ran) = mpsc::unbounded_channel();
        let mut registry = Registry::new();
        registry.register("report", Report(sender));
        let options = WorkerOptions { reap_interval: Duration::from_millis(100), ..fast_options() };
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, options, shutdown.clone());
        let (ran_id, _) = tokio::time::timeout(Duration::from_secs(10), ran.recv()).await.unwrap().unwrap();
        assert_eq!(ran_id, id);
        let job = wait_for_status(&db, id, JobStatus::Succeeded).await;
        assert_eq!(job.attempts, 2);
        shutdown.cancel();
        worker.join().await.unwrap();
    }

    async fn an_idle_worker_wakes_on_enqueue(store) {
        let db = database(&store);
        let (sender, mut ran) = mpsc::unbounded_channel();
        let mut registry = Registry::new();
        registry.register("report", Report(sender));
        // A poll interval far beyond the bound: only the wake-up can meet it.
        let options = WorkerOptions { poll_interval: Duration::from_secs(60), ..fast_options() };
        let shutdown = CancellationToken::new();
        let worker = Worker::start(db.clone(), registry, options, shutdown.clone());
        worker.ready().await;
        let mut latencies = Vec::new();
        for n in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await; // let it go idle
            let enqueued_at = Instant::now();
            let id = if n % 2 == 0 {
                queue::enqueue(&db, NewJob::new("report", json!(n))).await.unwrap().id
            } else {
                let mut tx = db.begin().await.unwrap();
                let id = queue::enqueue_in(&mut tx, NewJob::new("report", json!(n))).await.unwrap().id;
                tx.commit().await.unwrap();
                id
            };
            let (ran_id, started) = tokio::time::timeout(Duration::from_secs(5), ran.recv()).await.unwrap().unwrap();
            assert_eq!(ran_id, id);
            latencies.push(started - enqueued_at);
        }
        let worst = latencies.iter().max().unwrap();
        // The poll interval is 60 s: anything near a second proves the wake-up, with room
        // for a loaded CI machine (typical figures are in docs/benchmarks.md).
        assert!(*worst < Duration::from_secs(2), "wake-up latencies {latencies:?}");
        shutdown.cancel();
        worker.join().await.unwrap();
    }
}
