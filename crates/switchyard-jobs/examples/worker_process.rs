//! A stand-alone worker process for multi-process tests, until `switchyard serve --role
//! worker` exists.
//!
//! ```text
//! worker_process enqueue <count>   # enqueue <count> `example.effect` jobs, print nothing
//! worker_process work              # run a worker until SIGTERM/SIGINT
//! worker_process ledger            # print `enqueued succeeded dead effects duplicates`
//! ```
//! The database is `SWITCHYARD_DATABASE_URL`, else `SWITCHYARD_TEST_DATABASE_URL`; it is
//! migrated on start. Each job's handler records its effect idempotently in
//! `example_job_effects` (one row per job id, `runs` counting executions), so a test can check
//! "every job succeeded exactly once in effect" even across a SIGKILL: `effects` must equal
//! `enqueued`, and `duplicates` (re-runs after a lost lease) are allowed but visible.
//! Knobs: `EXAMPLE_JOB_MILLIS` (handler sleep, default 1), `EXAMPLE_CONCURRENCY` (16),
//! `EXAMPLE_LEASE_MILLIS` (lease, default 2000: a killed process's jobs return quickly).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::{process::ExitCode, time::Duration};

use async_trait::async_trait;
use serde_json::json;
use switchyard_jobs::{
    queue::{self, Job, JobError, JobStatus, NewJob},
    worker::{JobHandler, Registry, Worker, WorkerOptions},
};
use switchyard_store::{Database, DatabaseOptions};
use tokio_util::sync::CancellationToken;

const KIND: &str = "example.effect";

struct Effect {
    database: Database,
    sleep: Duration,
}

#[async_trait]
impl JobHandler for Effect {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        tokio::time::sleep(self.sleep).await;
        let statement = "INSERT INTO example_job_effects (job_id, runs) VALUES ($1, 1) \
                         ON CONFLICT (job_id) DO UPDATE SET runs = example_job_effects.runs + 1";
        let id = job.id.to_string();
        let result = match &self.database {
            Database::Sqlite(pool) => sqlx::query(statement)
                .bind(&id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
            Database::Postgres(pool) => sqlx::query(statement)
                .bind(&id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected()),
        };
        result
            .map(|_| ())
            .map_err(|e| JobError::internal(format!("recording the effect failed: {e}")))
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn execute(database: &Database, statement: &str) -> Result<(), sqlx::Error> {
    match database {
        Database::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
        Database::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
    }
}

async fn scalar(database: &Database, statement: &str) -> Result<i64, sqlx::Error> {
    match database {
        Database::Sqlite(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
        Database::Postgres(pool) => sqlx::query_scalar(statement).fetch_one(pool).await,
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("SWITCHYARD_DATABASE_URL")
        .or_else(|_| std::env::var("SWITCHYARD_TEST_DATABASE_URL"))
        .map_err(|_| "set SWITCHYARD_DATABASE_URL or SWITCHYARD_TEST_DATABASE_URL")?;
    let database = Database::connect(&url, &DatabaseOptions::default()).await?;
    database.migrate().await?;
    execute(
        &database,
        "CREATE TABLE IF NOT EXISTS example_job_effects \
         (job_id TEXT PRIMARY KEY, runs INTEGER NOT NULL)",
    )
    .await?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("enqueue") => {
            let count: usize = args.get(1).ok_or("enqueue <count>")?.parse()?;
            for start in (0..count).step_by(1_000) {
                let batch = (start..count.min(start + 1_000))
                    .map(|n| NewJob::new(KIND, json!({ "n": n })))
                    .collect();
                queue::enqueue_many(&database, batch).await?;
            }
        }
        Some("work") => {
            let shutdown = CancellationToken::new();
            let mut registry = Registry::new();
            registry.register(
                KIND,
                Effect {
                    database: database.clone(),
                    sleep: Duration::from_millis(env_u64("EXAMPLE_JOB_MILLIS", 1)),
                },
            );
            let lease = Duration::from_millis(env_u64("EXAMPLE_LEASE_MILLIS", 2_000));
            let options = WorkerOptions {
                concurrency: usize::try_from(env_u64("EXAMPLE_CONCURRENCY", 16))?,
                lease,
                heartbeat_interval: lease / 4,
                reap_interval: lease / 4,
                shutdown_grace: Duration::from_secs(5),
                ..WorkerOptions::default()
            };
            let worker = Worker::start(database.clone(), registry, options, shutdown.clone());
            worker.ready().await;
            eprintln!("worker {} ready", worker.id());
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
            shutdown.cancel();
            let report = worker.join().await?;
            eprintln!("worker stopped: {report:?}");
        }
        Some("ledger") => {
            let total = scalar(&database, "SELECT COUNT(*) FROM jobs").await?;
            let mut by_status = std::collections::HashMap::new();
            for status in [JobStatus::Succeeded, JobStatus::Dead] {
                let n = scalar(
                    &database,
                    &format!(
                        "SELECT COUNT(*) FROM jobs WHERE status = '{}'",
                        status.as_str()
                    ),
                )
                .await?;
                by_status.insert(status, n);
            }
            let effects = scalar(&database, "SELECT COUNT(*) FROM example_job_effects").await?;
            let duplicates = scalar(
                &database,
                "SELECT COALESCE(SUM(runs - 1), 0) FROM example_job_effects",
            )
            .await?;
            println!(
                "{total} {} {} {effects} {duplicates}",
                by_status[&JobStatus::Succeeded],
                by_status[&JobStatus::Dead]
            );
        }
        _ => return Err("usage: worker_process enqueue <count> | work | ledger".into()),
    }
    database.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
