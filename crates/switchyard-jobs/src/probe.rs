//! Probe jobs (`diagnostics.probe`): no-op jobs whose one effect is a row in `job_probes`,
//! keyed by job id and upserted idempotently.
//!
//! They answer an operator's questions without touching real work: are the workers running,
//! how fast do they drain a batch, and did every job take effect exactly once (an execution
//! count above one shows a re-run after a lost lease, which at-least-once delivery allows).
//! `switchyard jobs probe` enqueues a batch and waits for it; the multi-process test uses the
//! ledger to prove that a `kill -9` loses nothing.

use async_trait::async_trait;
use serde_json::json;
use switchyard_store::{Database, DbTime};
use ulid::Ulid;

use crate::{
    queue::{self, Job, JobError, JobId, NewJob, QueueError},
    worker::JobHandler,
};

pub const PROBE: &str = "diagnostics.probe";

/// Runs probe jobs.
#[derive(Debug, Clone)]
pub struct ProbeHandler {
    database: Database,
}

impl ProbeHandler {
    pub fn new(database: Database) -> Self {
        Self { database }
    }
}

#[async_trait]
impl JobHandler for ProbeHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let batch = job
            .payload
            .get("batch")
            .and_then(|batch| batch.as_str())
            .unwrap_or("unbatched");
        let worker = job.lease_owner.as_deref().unwrap_or("unknown");
        let statement = "INSERT INTO job_probes \
             (job_id, batch, executions, worker, enqueued_at, first_finished_at, last_finished_at) \
             VALUES ($1, $2, 1, $3, $4, $5, $5) \
             ON CONFLICT (job_id) DO UPDATE SET executions = job_probes.executions + 1, \
             worker = excluded.worker, last_finished_at = excluded.last_finished_at";
        let (id, created, now) = (
            job.id.to_string(),
            DbTime::new(job.created_at),
            DbTime::now(),
        );
        let done = match &self.database {
            Database::Sqlite(pool) => sqlx::query(statement)
                .bind(&id)
                .bind(batch)
                .bind(worker)
                .bind(created)
                .bind(now)
                .execute(pool)
                .await
                .map(drop),
            Database::Postgres(pool) => sqlx::query(statement)
                .bind(&id)
                .bind(batch)
                .bind(worker)
                .bind(created)
                .bind(now)
                .execute(pool)
                .await
                .map(drop),
        };
        done.map_err(|error| JobError::internal(format!("recording the probe failed: {error}")))
    }
}

/// A batch of probe jobs just enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeBatch {
    pub batch: String,
    pub jobs: Vec<JobId>,
}

/// Enqueues `count` probe jobs as one batch (platform jobs, no tenant).
///
/// # Errors
/// When the database fails.
pub async fn enqueue_batch(database: &Database, count: u32) -> Result<ProbeBatch, QueueError> {
    let batch = format!("prb_{}", Ulid::new());
    let jobs: Vec<NewJob> = (0..count)
        .map(|_| NewJob::new(PROBE, json!({ "batch": batch })).max_attempts(3))
        .collect();
    let enqueued = queue::enqueue_many(database, jobs).await?;
    Ok(ProbeBatch {
        batch,
        jobs: enqueued.into_iter().map(|job| job.id).collect(),
    })
}

/// What a batch's probes recorded so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeLedger {
    /// Distinct jobs that took effect.
    pub effects: u64,
    /// Executions in all; above `effects` when a job ran again after a lost lease.
    pub executions: u64,
    /// Microseconds from the first enqueue to the last finish, when any finished.
    pub span_micros: Option<i64>,
}

/// The ledger of one batch.
///
/// # Errors
/// When the database fails.
pub async fn ledger(database: &Database, batch: &str) -> Result<ProbeLedger, QueueError> {
    let statement = "SELECT COUNT(*), COALESCE(SUM(executions), 0), MIN(enqueued_at), \
                     MAX(last_finished_at) FROM job_probes WHERE batch = $1";
    type Row = (i64, i64, Option<DbTime>, Option<DbTime>);
    let (effects, executions, first, last): Row = match database {
        Database::Sqlite(pool) => {
            sqlx::query_as(statement)
                .bind(batch)
                .fetch_one(pool)
                .await?
        }
        Database::Postgres(pool) => {
            sqlx::query_as(statement)
                .bind(batch)
                .fetch_one(pool)
                .await?
        }
    };
    let span_micros = first.zip(last).map(|(first, last)| {
        i64::try_from((last.get() - first.get()).whole_microseconds()).unwrap_or(i64::MAX)
    });
    Ok(ProbeLedger {
        effects: u64::try_from(effects).unwrap_or(0),
        executions: u64::try_from(executions).unwrap_or(0),
        span_micros,
    })
}
