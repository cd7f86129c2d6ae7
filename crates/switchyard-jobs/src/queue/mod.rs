//! Jobs and the queue: enqueue (inside a caller's transaction or on its own), claiming with
//! leases, completion, retries and the dead state.
//!
//! The queue is the `jobs` table in the store of record
//! (`switchyard-store/migrations/*/0005_jobs.sql`). A job moves
//! `queued → running → succeeded`, or on failure `running → failed` (a retry waits for its
//! `run_at`) and finally `dead` when no attempt is left or the error is not retryable. A
//! running job holds a lease (`lease_owner`, `lease_expires_at`) that its worker renews; a
//! lease that runs out means the process died, and [`reap_expired`] puts the job back.
//!
//! Wake-ups: on PostgreSQL enqueue sends `NOTIFY switchyard_jobs` (delivered at commit, so a
//! rolled-back enqueue wakes nobody); on SQLite, where one process owns the file, an
//! in-process channel is signalled after commit.
//!
//! Most callers need only [`enqueue`], [`enqueue_in`], [`get`], [`list`] and
//! [`requeue_dead`]; the lease functions are the worker's.

mod failure;
mod provider_failure;
mod sql;

use std::{collections::HashSet, fmt, str::FromStr, sync::LazyLock};

use serde_json::Value;
use switchyard_core::TenantId;
use switchyard_store::{BackendTransaction, Database, Transaction};
use time::OffsetDateTime;
use tokio::sync::watch;

pub use failure::{FailureClass, JobError, UnknownFailureClass};
use sql::{ClaimParams, JobRow};

/// The PostgreSQL channel enqueue notifies and workers listen on.
pub const NOTIFY_CHANNEL: &str = "switchyard_jobs";

/// Why a queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("database error")]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),

    /// A value read from `jobs` does not parse.
    #[error("corrupt row in `jobs`: {0}")]
    Corrupt(String),

    #[error("invalid job id: {0}")]
    InvalidId(String),
}

// ---------------------------------------------------------------------------------------------
// Ids

pub use switchyard_core::JobId;

/// A stored job id that does not parse is a corrupt row, reported with its text.
fn parse_job_id(text: &str) -> Result<JobId, QueueError> {
    text.parse()
        .map_err(|_| QueueError::InvalidId(text.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// Jobs

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    /// The last attempt failed; a retry is due at `run_at`.
    Failed,
    /// No attempt left, or a failure that retrying cannot fix. Kept for [`requeue_dead`].
    Dead,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Succeeded => "succeeded",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
        }
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobStatus {
    type Err = QueueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| QueueError::Corrupt(format!("unknown status `{s}`")))
    }
}

/// A job to enqueue. `NewJob::new(kind, payload)` plus the builder methods.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub kind: String,
    /// `None` for platform jobs.
    pub tenant: Option<TenantId>,
    pub payload: Value,
    /// Higher runs first (within a tenant's turn; see the worker's fairness).
    pub priority: i32,
    /// Not before this time; `None` is now.
    pub run_at: Option<OffsetDateTime>,
    /// `None`: the kind's retry policy decides.
    pub max_attempts: Option<u32>,
    /// Enqueueing a key that exists is a no-op returning the existing job's id.
    pub unique_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: impl Into<String>, payload: Value) -> Self {
        Self {
            kind: kind.into(),
            tenant: None,
            payload,
            priority: 0,
            run_at: None,
            max_attempts: None,
            unique_key: None,
        }
    }

    pub fn tenant(mut self, tenant: TenantId) -> Self {
        self.tenant = Some(tenant);
        self
    }

    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn run_at(mut self, run_at: OffsetDateTime) -> Self {
        self.run_at = Some(run_at);
        self
    }

    pub fn max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = Some(max_attempts.max(1));
        self
    }

    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub tenant: Option<TenantId>,
    pub payload: Value,
    pub priority: i32,
    pub status: JobStatus,
    pub run_at: OffsetDateTime,
    /// Attempts started so far; while running, the number of the current attempt.
    pub attempts: u32,
    pub max_attempts: Option<u32>,
    pub unique_key: Option<String>,
    pub last_error: Option<String>,
    pub last_error_class: Option<FailureClass>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

impl TryFrom<JobRow> for Job {
    type Error = QueueError;

    fn try_from(row: JobRow) -> Result<Self, Self::Error> {
        let corrupt = |e: &dyn fmt::Display| QueueError::Corrupt(e.to_string());
        Ok(Job {
            id: parse_job_id(&row.id)?,
            kind: row.kind,
            tenant: row
                .tenant_id
                .map(|t| t.parse::<TenantId>())
                .transpose()
                .map_err(|e| corrupt(&e))?,
            payload: row.payload.0,
            priority: row.priority,
            status: row.status.parse()?,
            run_at: row.run_at,
            attempts: u32::try_from(row.attempts).map_err(|e| corrupt(&e))?,
            max_attempts: row
                .max_attempts
                .map(u32::try_from)
                .transpose()
                .map_err(|e| corrupt(&e))?,
            unique_key: row.unique_key,
            last_error: row.last_error,
            last_error_class: row
                .last_error_class
                .map(|c| c.parse::<FailureClass>())
                .transpose()
                .map_err(|e| corrupt(&e))?,
            lease_owner: row.lease_owner,
            lease_expires_at: row.lease_expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
            started_at: row.started_at,
            finished_at: row.finished_at,
        })
    }
}

fn jobs_from_rows(rows: Vec<JobRow>) -> Result<Vec<Job>, QueueError> {
    rows.into_iter().map(Job::try_from).collect()
}

/// What enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    pub id: JobId,
    /// `false` when a job with the same unique key existed; `id` is that job's.
    pub created: bool,
}

/// Times as stored: microseconds, so a row reads back equal on both backends.
pub fn now() -> OffsetDateTime {
    switchyard_store::model::now_for_storage()
}

fn truncate(time: OffsetDateTime) -> OffsetDateTime {
    switchyard_store::DbTime::new(time).get()
}

fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

// ---------------------------------------------------------------------------------------------
// Wake-ups

/// SQLite's wake-up signal: a counter that enqueues bump after commit. A watch channel (not a
/// `Notify`) so a worker that was busy claiming when it changed still sees the change.
static SQLITE_WAKE: LazyLock<watch::Sender<u64>> = LazyLock::new(|| watch::channel(0).0);

pub(crate) fn wake_sqlite_workers() {
    SQLITE_WAKE.send_modify(|n| *n = n.wrapping_add(1));
}

pub(crate) fn sqlite_wake_receiver() -> watch::Receiver<u64> {
    SQLITE_WAKE.subscribe()
}

async fn notify_postgres(conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(conn)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Enqueue

fn prepare(mut job: NewJob, now: OffsetDateTime) -> NewJob {
    job.run_at = Some(truncate(job.run_at.unwrap_or(now)));
    job
}

/// Enqueues a batch in one statement (`$insert_many`), then looks up the job each unique key
/// that already existed names. Only a unique key conflicts; the row it names exists (or
/// existed, if it was purged between the two statements, which a retry of the enqueue
/// resolves).
macro_rules! enqueue_batch {
    ($module:ident, $insert_many:path, $conn:expr, $jobs:expr, $now:expr) => {{
        let conn = $conn;
        let ids: Vec<JobId> = $jobs.iter().map(|_| JobId::generate()).collect();
        let rows: Vec<(String, &NewJob)> = ids
            .iter()
            .map(|id| id.to_string())
            .zip($jobs.iter())
            .collect();
        let inserted: HashSet<String> = $insert_many(&mut *conn, &rows, $now)
            .await?
            .into_iter()
            .collect();
        let mut results = Vec::with_capacity(rows.len());
        for (id, (text, job)) in ids.into_iter().zip(&rows) {
            if inserted.contains(text) {
                results.push(Enqueued { id, created: true });
                continue;
            }
            let key = job.unique_key.as_deref().unwrap_or_default();
            let existing = sql::$module::find_unique(&mut *conn, key)
                .await?
                .ok_or_else(|| {
                    QueueError::Corrupt(format!("unique key `{key}` conflicted but is gone"))
                })?;
            results.push(Enqueued {
                id: parse_job_id(&existing)?,
                created: false,
            });
        }
        results
    }};
}

/// Enqueues a job on its own (autocommit).
///
/// # Errors
/// [`QueueError::Database`] when the insert fails.
pub async fn enqueue(database: &Database, job: NewJob) -> Result<Enqueued, QueueError> {
    let mut results = enqueue_many(database, vec![job]).await?;
    results
        .pop()
        .ok_or_else(|| QueueError::Corrupt("enqueue returned nothing".into()))
}

/// Enqueues several jobs in one transaction (and one wake-up).
///
/// # Errors
/// [`QueueError::Database`] when an insert fails; nothing is enqueued then.
pub async fn enqueue_many(
    database: &Database,
    jobs: Vec<NewJob>,
) -> Result<Vec<Enqueued>, QueueError> {
    let mut tx = database.begin().await?;
    let results = enqueue_many_in(&mut tx, jobs).await?;
    tx.commit().await?;
    Ok(results)
}

/// Enqueues a job in the caller's transaction: it exists (and wakes workers) only if the
/// transaction commits.
///
/// # Errors
/// [`QueueError::Database`] when the insert fails.
pub async fn enqueue_in(tx: &mut Transaction, job: NewJob) -> Result<Enqueued, QueueError> {
    let mut results = enqueue_many_in(tx, vec![job]).await?;
    results
        .pop()
        .ok_or_else(|| QueueError::Corrupt("enqueue returned nothing".into()))
}

/// Enqueues several jobs in the caller's transaction.
///
/// # Errors
/// [`QueueError::Database`] when an insert fails.
pub async fn enqueue_many_in(
    tx: &mut Transaction,
    jobs: Vec<NewJob>,
) -> Result<Vec<Enqueued>, QueueError> {
    let now = now();
    let jobs: Vec<NewJob> = jobs.into_iter().map(|job| prepare(job, now)).collect();
    let mut wake_sqlite = false;
    let results = match tx.inner() {
        BackendTransaction::Sqlite(tx) => {
            let results = enqueue_batch!(sqlite, sql::sqlite_insert_many, &mut **tx, jobs, now);
            wake_sqlite = results.iter().any(|r| r.created);
            results
        }
        BackendTransaction::Postgres(tx) => {
            let results = enqueue_batch!(postgres, sql::postgres_insert_many, &mut **tx, jobs, now);
            if results.iter().any(|r| r.created) {
                // NOTIFY is transactional: delivered at commit, dropped on rollback.
                notify_postgres(tx).await?;
            }
            results
        }
    };
    if wake_sqlite {
        tx.after_commit(wake_sqlite_workers);
    }
    Ok(results)
}

// ---------------------------------------------------------------------------------------------
// Inspection

/// Runs `$body` with `$conn` bound to a pooled connection of the right backend and `$m` to the
/// statement module for it.
macro_rules! on_connection {
    ($database:expr, |$m:ident, $conn:ident| $body:expr) => {
        match $database {
            Database::Sqlite(pool) => {
                let mut pooled = pool.acquire().await?;
                let $conn: &mut sqlx::SqliteConnection = &mut pooled;
                use sql::sqlite as $m;
                $body
            }
            Database::Postgres(pool) => {
                let mut pooled = pool.acquire().await?;
                let $conn: &mut sqlx::PgConnection = &mut pooled;
                use sql::postgres as $m;
                $body
            }
        }
    };
}

/// One job by id.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn get(database: &Database, id: JobId) -> Result<Option<Job>, QueueError> {
    let id = id.to_string();
    let row = on_connection!(database, |m, conn| m::get(conn, &id).await?);
    row.map(Job::try_from).transpose()
}

/// Up to `limit` jobs in `status` (optionally of one kind) after the id `after`, in id order.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn list(
    database: &Database,
    status: JobStatus,
    kind: Option<&str>,
    after: Option<JobId>,
    limit: u32,
) -> Result<Vec<Job>, QueueError> {
    let after = after.map(|id| id.to_string());
    let after = after.as_deref();
    let limit = i64::from(limit);
    let rows = on_connection!(database, |m, conn| m::list(
        conn,
        status.as_str(),
        kind,
        after,
        limit
    )
    .await?);
    jobs_from_rows(rows)
}

/// Puts a dead job back in the queue with a fresh attempt budget. Its last error stays for
/// reference until the next attempt. `false` when the job is not dead.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn requeue_dead(database: &Database, id: JobId) -> Result<bool, QueueError> {
    let id = id.to_string();
    let now = now();
    let requeued = on_connection!(database, |m, conn| m::requeue_dead(conn, &id, now).await?);
    if requeued {
        wake(database).await?;
    }
    Ok(requeued)
}

/// Number of jobs per (kind, status), without `succeeded`.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn counts(database: &Database) -> Result<Vec<(String, JobStatus, u64)>, QueueError> {
    let rows = on_connection!(database, |m, conn| m::counts(conn).await?);
    rows.into_iter()
        .map(|(kind, status, count)| {
            Ok((
                kind,
                status.parse()?,
                u64::try_from(count).unwrap_or_default(),
            ))
        })
        .collect()
}

/// The `limit` tenants with the most runnable-or-waiting jobs, largest first.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn tenant_backlog(
    database: &Database,
    limit: u32,
) -> Result<Vec<(String, u64)>, QueueError> {
    let limit = i64::from(limit);
    let rows = on_connection!(database, |m, conn| m::tenant_backlog(conn, limit).await?);
    Ok(rows
        .into_iter()
        .map(|(tenant, n)| (tenant, u64::try_from(n).unwrap_or_default()))
        .collect())
}

/// The earliest `run_at` of a waiting job, so an idle worker sleeps exactly until then.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn next_run_at(database: &Database) -> Result<Option<OffsetDateTime>, QueueError> {
    Ok(on_connection!(database, |m, conn| m::next_run_at(conn).await?))
}

async fn wake(database: &Database) -> Result<(), QueueError> {
    match database {
        Database::Sqlite(_) => wake_sqlite_workers(),
        Database::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            notify_postgres(&mut conn).await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Leases (the worker's side)

/// What to claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// The lease owner, unique per worker (`wrk_…`).
    pub owner: String,
    /// Only these kinds (the ones with a handler and a free slot).
    pub kinds: Vec<String>,
    /// Tenants (ids; `""` for platform jobs) at their in-flight share: not now.
    pub exclude_tenants: Vec<String>,
    /// At most this many jobs.
    pub limit: u32,
    /// At most this many jobs of one tenant in this claim.
    pub per_tenant: u32,
    pub lease: time::Duration,
}

/// Claims up to `limit` runnable jobs, fairly across tenants, and leases them to `owner`.
/// Each claimed job's `attempts` is the number of the attempt now starting.
///
/// Every tenant's first job comes before anyone's second (then priority, then `run_at`), and
/// the cost does not grow with the backlog (see `sql.rs`). A claim may return fewer than
/// `limit` jobs while more are runnable; an empty claim means nothing is runnable now (or
/// another worker is claiming all of it at this instant).
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn claim(database: &Database, request: &ClaimRequest) -> Result<Vec<Job>, QueueError> {
    if request.kinds.is_empty() || request.limit == 0 {
        return Ok(Vec::new());
    }
    let now = now();
    let params = ClaimParams {
        now,
        kinds: &request.kinds,
        exclude_tenants: &request.exclude_tenants,
        per_tenant: i64::from(request.per_tenant.max(1)),
        limit: i64::from(request.limit),
        owner: &request.owner,
        lease_expires_at: truncate(now + request.lease),
    };
    let rows = on_connection!(database, |m, conn| m::claim(conn, &params).await?);
    jobs_from_rows(rows)
}

/// Marks a claimed job succeeded. `false` when the lease was lost meanwhile (the job was
/// reaped and possibly claimed again): its effects must be idempotent.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn complete(database: &Database, job: &Job, owner: &str) -> Result<bool, QueueError> {
    let id = job.id.to_string();
    let attempt = to_i32(job.attempts);
    let now = now();
    Ok(on_connection!(database, |m, conn| m::complete(
        conn, &id, owner, attempt, now
    )
    .await?))
}

/// Marks several claimed attempts succeeded in one statement (`(job, attempt)` pairs, as
/// claimed). Returns the ids recorded; a missing id had lost its lease.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn complete_many(
    database: &Database,
    owner: &str,
    attempts: &[(JobId, u32)],
) -> Result<Vec<JobId>, QueueError> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = attempts
        .iter()
        .map(|(id, attempt)| format!("{id}:{attempt}"))
        .collect();
    let now = now();
    let rows = on_connection!(database, |m, conn| m::complete_many(
        conn, owner, &keys, now
    )
    .await?);
    rows.into_iter().map(|(id,)| parse_job_id(&id)).collect()
}

/// Records a failed attempt: `failed` with a retry at `retry_at`, or `dead` when `None`.
/// `false` when the lease was lost meanwhile.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn fail(
    database: &Database,
    job: &Job,
    owner: &str,
    error: &JobError,
    retry_at: Option<OffsetDateTime>,
) -> Result<bool, QueueError> {
    let id = job.id.to_string();
    let attempt = to_i32(job.attempts);
    let now = now();
    let retry_at = retry_at.map(truncate);
    let message = error.message.as_str();
    let class = error.class.as_str();
    Ok(on_connection!(database, |m, conn| m::fail(
        conn, &id, owner, attempt, retry_at, message, class, now
    )
    .await?))
}

/// Extends every lease `owner` holds to now + `lease`; returns how many.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn heartbeat(
    database: &Database,
    owner: &str,
    lease: time::Duration,
) -> Result<u64, QueueError> {
    let expires_at = truncate(now() + lease);
    Ok(on_connection!(database, |m, conn| m::heartbeat(
        conn, owner, expires_at
    )
    .await?))
}

/// Gives back `owner`'s running jobs (or only `id`) at once, uncounted: status `queued`,
/// lease cleared, so any worker can take them immediately.
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn release(
    database: &Database,
    owner: &str,
    id: Option<JobId>,
) -> Result<u64, QueueError> {
    let id = id.map(|id| id.to_string());
    let id = id.as_deref();
    let now = now();
    let released = on_connection!(database, |m, conn| m::release(conn, owner, id, now).await?);
    if released > 0 {
        wake(database).await?;
    }
    Ok(released)
}

/// Requeues every running job whose lease has expired; returns their kinds (one per job).
///
/// # Errors
/// [`QueueError::Database`] on a database failure.
pub async fn reap_expired(database: &Database) -> Result<Vec<String>, QueueError> {
    let now = now();
    let rows = on_connection!(database, |m, conn| m::reap(conn, now).await?);
    Ok(rows.into_iter().map(|(kind,)| kind).collect())
}

/// Opens a dedicated PostgreSQL listener on [`NOTIFY_CHANNEL`].
pub(crate) async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, QueueError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}
