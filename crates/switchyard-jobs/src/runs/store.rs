//! `runs` and `run_attempts` in the store of record.
//!
//! Statements are written once and expanded per backend by `run_sql!`. Every change to a run
//! is a transaction that first reads and locks the run (`BEGIN IMMEDIATE` on SQLite, which
//! takes the single write lock up front so a read-then-write transaction cannot fail half
//! way; `SELECT … FOR UPDATE` on PostgreSQL), decides in Rust, then writes the run's state
//! back. The rules live in one place ([`RunStore`]'s methods) instead of in SQL conditions.
//!
//! Every method is scoped to one owner: a tenant, or with `None` the platform. Another
//! owner's run reads as absent and cannot be changed.

use std::sync::Arc;

use sqlx::types::Json;
use switchyard_core::TenantId;
use switchyard_store::{Database, Page};
use time::OffsetDateTime;

use super::{
    AttemptOutcome, AttemptResult, Counters, Failure, NewRun, RetryRun, Run, RunAttempt, RunError,
    RunFilter, RunId, RunOrder, RunStatus, RunTrigger, RunWithAttempts, model::truncate_message,
};
use crate::schedule::{
    Clock, SystemClock,
    db::{bind_time, on_backend, owner_condition, owner_param, to_micros},
};

/// Largest page of [`RunStore::list_runs`].
pub const MAX_RUN_PAGE: u32 = 500;

/// Runs and attempts over a connected, migrated database.
#[derive(Debug, Clone)]
pub struct RunStore {
    database: Database,
    clock: Arc<dyn Clock>,
}

impl RunStore {
    pub fn new(database: &Database) -> Self {
        Self {
            database: database.clone(),
            clock: Arc::new(SystemClock),
        }
    }

    /// The same store, timed by `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now(&self) -> OffsetDateTime {
        to_micros(self.clock.now())
    }

    /// Records a new, `queued` run.
    ///
    /// # Errors
    /// Database errors (including a foreign-key violation for an unknown tenant).
    pub async fn create_run(&self, new: NewRun) -> Result<Run, RunError> {
        let run = Run {
            id: RunId::generate(),
            tenant: new.tenant,
            subject: new.subject,
            trigger: new.trigger,
            status: RunStatus::Queued,
            kind: new.kind,
            payload: new.payload,
            job_id: new.job_id,
            retry_of: None,
            retried_by: None,
            counters: Counters::new(),
            error: None,
            created_at: self.now(),
            started_at: None,
            finished_at: None,
        };
        on_backend!(&self.database, insert_run(&run))?;
        Ok(run)
    }

    /// Records the queue's job id for a run created before its job.
    ///
    /// # Errors
    /// [`RunError::RunNotFound`], database errors.
    pub async fn attach_job(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
        job_id: &str,
    ) -> Result<Run, RunError> {
        let job_id = job_id.to_owned();
        self.change(tenant, id, move |run, _| {
            run.job_id = Some(job_id);
            Ok(())
        })
        .await
    }

    /// Starts the next attempt of a queued or running run and marks the run `running`. An
    /// attempt still unfinished (its worker died or lost its lease) is closed as
    /// [`AttemptOutcome::Abandoned`] first.
    ///
    /// # Errors
    /// [`RunError::RunNotFound`], [`RunError::RunFinished`], database errors.
    pub async fn start_attempt(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
    ) -> Result<RunAttempt, RunError> {
        on_backend!(&self.database, start_attempt(tenant, id, self.now()))
    }

    /// Shows what an unfinished attempt has counted so far (a sync's pages and records), for
    /// progress displays; the attempt's end sets its final counters. A finished attempt is
    /// left alone.
    ///
    /// # Errors
    /// [`RunError::RunNotFound`], database errors.
    pub async fn record_progress(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
        attempt: u32,
        counters: Counters,
    ) -> Result<(), RunError> {
        on_backend!(
            &self.database,
            record_progress(tenant, id, attempt, &counters)
        )
    }

    /// Finishes `attempt` of a run and updates the run: its counters grow by the attempt's,
    /// its status follows the result (a failure the queue will retry sends the run back to
    /// `queued`), its error is the failure's or cleared on success. A run finished meanwhile
    /// (cancelled while the attempt ran) keeps its status; the attempt is still recorded.
    ///
    /// # Errors
    /// [`RunError::RunNotFound`], [`RunError::AttemptNotFound`],
    /// [`RunError::AttemptFinished`], database errors.
    pub async fn finish_attempt(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
        attempt: u32,
        result: AttemptResult,
        counters: Counters,
    ) -> Result<Run, RunError> {
        let result = match result {
            AttemptResult::Failed {
                failure,
                will_retry,
            } => AttemptResult::Failed {
                failure: Failure {
                    class: failure.class,
                    message: truncate_message(failure.message),
                },
                will_retry,
            },
            other => other,
        };
        on_backend!(
            &self.database,
            finish_attempt(tenant, id, attempt, &result, &counters, self.now())
        )
    }

    /// Cancels a run that has not finished; a finished run is returned unchanged. The worker
    /// of a running attempt learns it when it finishes the attempt (or sooner, through the
    /// queue); the run stays `cancelled`.
    ///
    /// # Errors
    /// [`RunError::RunNotFound`], database errors.
    pub async fn cancel_run(&self, tenant: Option<TenantId>, id: RunId) -> Result<Run, RunError> {
        self.change(tenant, id, |run, now| {
            if !run.status.is_finished() {
                run.status = RunStatus::Cancelled;
                run.finished_at = Some(now);
            }
            Ok(())
        })
        .await
    }

    /// A run and its attempts.
    ///
    /// # Errors
    /// Database errors, [`RunError::Corrupt`].
    pub async fn get_run(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
    ) -> Result<Option<RunWithAttempts>, RunError> {
        on_backend!(&self.database, get_run(tenant, id))
    }

    /// A page of runs matching `filter`, ordered by id (creation order) as `filter.order`
    /// says. `after` is the previous page's `next_after`; `limit` is clamped to
    /// 1..=[`MAX_RUN_PAGE`].
    ///
    /// # Errors
    /// Database errors, [`RunError::Corrupt`].
    pub async fn list_runs(
        &self,
        tenant: Option<TenantId>,
        filter: &RunFilter,
        after: Option<RunId>,
        limit: u32,
    ) -> Result<Page<Run, RunId>, RunError> {
        let limit = limit.clamp(1, MAX_RUN_PAGE);
        let mut items = on_backend!(&self.database, list_runs(tenant, filter, after, limit + 1))?;
        let next_after = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|run| run.id)
        } else {
            None
        };
        Ok(Page { items, next_after })
    }

    /// Retries a failed or cancelled run by creating a **new run** (trigger `retry`,
    /// `retry_of` the original), rather than adding an attempt to the original.
    ///
    /// Why a new run: a finished run is a final record that users, dashboards and webhooks
    /// already saw as failed; reopening it would rewrite history, and its counters and times
    /// would mix two separate executions. Attempts are the queue's automatic retries *within*
    /// a run; a retry asked for later by a person is a new unit of work with its own trigger,
    /// times and counters, linked both ways (`retry_of`, `retried_by`). A run is retried at
    /// most once, so a double click cannot start two retries; retry the retry to go again.
    ///
    /// The caller enqueues `retry.kind` with `retry.payload` (plus the new run's id) and
    /// attaches the job with [`RunStore::attach_job`].
    ///
    /// # Errors
    /// [`RunError::RunNotFound`], [`RunError::NotRetryable`], [`RunError::AlreadyRetried`],
    /// database errors.
    pub async fn retry_run(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
    ) -> Result<RetryRun, RunError> {
        on_backend!(&self.database, retry_run(tenant, id, self.now()))
    }

    /// Applies `edit` to a locked run and saves it.
    async fn change(
        &self,
        tenant: Option<TenantId>,
        id: RunId,
        edit: impl FnOnce(&mut Run, OffsetDateTime) -> Result<(), RunError> + Send,
    ) -> Result<Run, RunError> {
        on_backend!(&self.database, change(tenant, id, self.now(), edit))
    }
}

/// A run row; `FromRow` because it has more columns than sqlx's tuples support.
#[derive(Debug, sqlx::FromRow)]
struct RunRow {
    id: String,
    tenant_id: Option<String>,
    subject: String,
    trigger_kind: String,
    status: String,
    job_kind: String,
    job_payload: Json<serde_json::Value>,
    job_id: Option<String>,
    retry_of: Option<String>,
    retried_by: Option<String>,
    counters: Json<Counters>,
    error_class: Option<String>,
    error_message: Option<String>,
    created_at: OffsetDateTime,
    started_at: Option<OffsetDateTime>,
    finished_at: Option<OffsetDateTime>,
}

const RUN_COLUMNS: &str = "id, tenant_id, subject, trigger_kind, status, job_kind, job_payload, \
    job_id, retry_of, retried_by, counters, error_class, error_message, created_at, started_at, \
    finished_at";

#[derive(Debug, sqlx::FromRow)]
struct AttemptRow {
    run_id: String,
    attempt: i64,
    started_at: OffsetDateTime,
    finished_at: Option<OffsetDateTime>,
    outcome: Option<String>,
    error_class: Option<String>,
    error_message: Option<String>,
    duration_ms: Option<i64>,
    counters: Json<Counters>,
}

const ATTEMPT_COLUMNS: &str = "run_id, attempt, started_at, finished_at, outcome, error_class, \
    error_message, duration_ms, counters";

fn failure_from(
    table: &'static str,
    class: Option<String>,
    message: Option<String>,
) -> Result<Option<Failure>, RunError> {
    match (class, message) {
        (None, None) => Ok(None),
        (Some(class), message) => Ok(Some(Failure {
            class: class.parse().map_err(|e| RunError::corrupt(table, e))?,
            message: message.unwrap_or_default(),
        })),
        (None, Some(_)) => Err(RunError::corrupt(table, "error message without class")),
    }
}

fn parse_run_id(table: &'static str, text: &str) -> Result<RunId, RunError> {
    text.parse().map_err(|e| RunError::corrupt(table, e))
}

impl RunRow {
    fn into_run(self) -> Result<Run, RunError> {
        const T: &str = "runs";
        Ok(Run {
            id: parse_run_id(T, &self.id)?,
            tenant: self
                .tenant_id
                .map(|tenant| tenant.parse())
                .transpose()
                .map_err(|e| RunError::corrupt(T, e))?,
            subject: self.subject,
            trigger: self
                .trigger_kind
                .parse()
                .map_err(|e| RunError::corrupt(T, e))?,
            status: self.status.parse().map_err(|e| RunError::corrupt(T, e))?,
            kind: self.job_kind,
            payload: self.job_payload.0,
            job_id: self.job_id,
            retry_of: self.retry_of.map(|id| parse_run_id(T, &id)).transpose()?,
            retried_by: self.retried_by.map(|id| parse_run_id(T, &id)).transpose()?,
            counters: self.counters.0,
            error: failure_from(T, self.error_class, self.error_message)?,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

impl AttemptRow {
    fn into_attempt(self) -> Result<RunAttempt, RunError> {
        const T: &str = "run_attempts";
        Ok(RunAttempt {
            run_id: parse_run_id(T, &self.run_id)?,
            attempt: u32::try_from(self.attempt).map_err(|e| RunError::corrupt(T, e))?,
            started_at: self.started_at,
            finished_at: self.finished_at,
            outcome: self
                .outcome
                .map(|outcome| outcome.parse::<AttemptOutcome>())
                .transpose()
                .map_err(|e| RunError::corrupt(T, e))?,
            error: failure_from(T, self.error_class, self.error_message)?,
            duration_ms: self.duration_ms,
            counters: self.counters.0,
        })
    }
}

fn duration_ms(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    i64::try_from((to - from).whole_milliseconds()).unwrap_or(i64::MAX)
}

/// The run after `attempt` ended with `result`.
fn apply_result(run: &mut Run, result: &AttemptResult, counters: &Counters, now: OffsetDateTime) {
    for (name, value) in counters {
        let total = run.counters.entry(name.clone()).or_insert(0);
        *total = total.saturating_add(*value);
    }
    if run.status.is_finished() {
        return;
    }
    match result {
        AttemptResult::Succeeded => {
            run.status = RunStatus::Succeeded;
            run.error = None;
        }
        AttemptResult::Failed {
            failure,
            will_retry,
        } => {
            run.status = if *will_retry {
                RunStatus::Queued
            } else {
                RunStatus::Failed
            };
            run.error = Some(failure.clone());
        }
        AttemptResult::Cancelled => run.status = RunStatus::Cancelled,
    }
    if run.status.is_finished() {
        run.finished_at = Some(now);
    }
}

fn outcome_of(result: &AttemptResult) -> (AttemptOutcome, Option<&Failure>) {
    match result {
        AttemptResult::Succeeded => (AttemptOutcome::Succeeded, None),
        AttemptResult::Failed { failure, .. } => (AttemptOutcome::Failed, Some(failure)),
        AttemptResult::Cancelled => (AttemptOutcome::Cancelled, None),
    }
}

macro_rules! run_sql {
    ($module:ident, $pool:ty, begin: $begin:literal, lock: $lock:literal, time: $time:path) => {
        mod $module {
            use super::*;

            type Tx = sqlx::Transaction<'static, <$pool as PoolDb>::Db>;

            pub(super) async fn insert_run(pool: &$pool, run: &Run) -> Result<(), RunError> {
                let mut conn = pool.acquire().await?;
                insert_run_on(&mut conn, run).await
            }

            async fn insert_run_on(
                conn: &mut <<$pool as PoolDb>::Db as sqlx::Database>::Connection,
                run: &Run,
            ) -> Result<(), RunError> {
                sqlx::query(&format!(
                    "INSERT INTO runs ({RUN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10, $11, $12, $13, $14, $15, $16)"
                ))
                .bind(run.id.to_string())
                .bind(owner_param(run.tenant))
                .bind(&run.subject)
                .bind(run.trigger.as_str())
                .bind(run.status.as_str())
                .bind(&run.kind)
                .bind(Json(&run.payload))
                .bind(run.job_id.as_deref())
                .bind(run.retry_of.map(|id| id.to_string()))
                .bind(run.retried_by.map(|id| id.to_string()))
                .bind(Json(&run.counters))
                .bind(run.error.as_ref().map(|e| e.class.as_str()))
                .bind(run.error.as_ref().map(|e| e.message.as_str()))
                .bind($time(run.created_at)?)
                .bind(run.started_at.map($time).transpose()?)
                .bind(run.finished_at.map($time).transpose()?)
                .execute(&mut *conn)
                .await?;
                Ok(())
            }

            /// Writes back everything about a run that can change.
            async fn save_run(tx: &mut Tx, run: &Run) -> Result<(), RunError> {
                sqlx::query(
                    "UPDATE runs SET status = $2, job_id = $3, retried_by = $4, counters = $5, \
                     error_class = $6, error_message = $7, started_at = $8, finished_at = $9 \
                     WHERE id = $1",
                )
                .bind(run.id.to_string())
                .bind(run.status.as_str())
                .bind(run.job_id.as_deref())
                .bind(run.retried_by.map(|id| id.to_string()))
                .bind(Json(&run.counters))
                .bind(run.error.as_ref().map(|e| e.class.as_str()))
                .bind(run.error.as_ref().map(|e| e.message.as_str()))
                .bind(run.started_at.map($time).transpose()?)
                .bind(run.finished_at.map($time).transpose()?)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Begins a transaction holding the run's lock; `None` when `tenant` has no such run.
            async fn lock_run(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
            ) -> Result<(Tx, Option<Run>), RunError> {
                let mut tx = pool.begin_with($begin).await?;
                let row: Option<RunRow> = sqlx::query_as(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE {} AND id = $2{}",
                    owner_condition(tenant),
                    $lock
                ))
                .bind(owner_param(tenant))
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let run = row.map(RunRow::into_run).transpose()?;
                Ok((tx, run))
            }

            pub(super) async fn change(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
                now: OffsetDateTime,
                edit: impl FnOnce(&mut Run, OffsetDateTime) -> Result<(), RunError> + Send,
            ) -> Result<Run, RunError> {
                let (mut tx, run) = lock_run(pool, tenant, id).await?;
                let mut run = run.ok_or(RunError::RunNotFound)?;
                edit(&mut run, now)?;
                save_run(&mut tx, &run).await?;
                tx.commit().await?;
                Ok(run)
            }

            pub(super) async fn record_progress(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
                attempt: u32,
                counters: &Counters,
            ) -> Result<(), RunError> {
                // The run's lock scopes the write to the tenant's run.
                let (mut tx, run) = lock_run(pool, tenant, id).await?;
                let run = run.ok_or(RunError::RunNotFound)?;
                sqlx::query(
                    "UPDATE run_attempts SET counters = $3 \
                     WHERE run_id = $1 AND attempt = $2 AND finished_at IS NULL",
                )
                .bind(run.id.to_string())
                .bind(i64::from(attempt))
                .bind(Json(counters))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            pub(super) async fn start_attempt(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
                now: OffsetDateTime,
            ) -> Result<RunAttempt, RunError> {
                let (mut tx, run) = lock_run(pool, tenant, id).await?;
                let mut run = run.ok_or(RunError::RunNotFound)?;
                if run.status.is_finished() {
                    return Err(RunError::RunFinished { status: run.status });
                }
                let run_id = run.id.to_string();
                let unfinished: Vec<(i64, OffsetDateTime)> = sqlx::query_as(
                    "SELECT attempt, started_at FROM run_attempts \
                     WHERE run_id = $1 AND finished_at IS NULL",
                )
                .bind(&run_id)
                .fetch_all(&mut *tx)
                .await?;
                for (attempt, started_at) in unfinished {
                    sqlx::query(
                        "UPDATE run_attempts SET finished_at = $3, outcome = $4, duration_ms = $5 \
                         WHERE run_id = $1 AND attempt = $2",
                    )
                    .bind(&run_id)
                    .bind(attempt)
                    .bind($time(now)?)
                    .bind(AttemptOutcome::Abandoned.as_str())
                    .bind(duration_ms(started_at, now))
                    .execute(&mut *tx)
                    .await?;
                }
                let (last,): (Option<i64>,) =
                    sqlx::query_as("SELECT MAX(attempt) FROM run_attempts WHERE run_id = $1")
                        .bind(&run_id)
                        .fetch_one(&mut *tx)
                        .await?;
                let number = last.unwrap_or(0) + 1;
                sqlx::query(
                    "INSERT INTO run_attempts (run_id, attempt, started_at, counters) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(&run_id)
                .bind(number)
                .bind($time(now)?)
                .bind(Json(Counters::new()))
                .execute(&mut *tx)
                .await?;
                run.status = RunStatus::Running;
                run.started_at.get_or_insert(now);
                save_run(&mut tx, &run).await?;
                tx.commit().await?;
                Ok(RunAttempt {
                    run_id: run.id,
                    attempt: u32::try_from(number).map_err(|e| RunError::corrupt("run_attempts", e))?,
                    started_at: now,
                    finished_at: None,
                    outcome: None,
                    error: None,
                    duration_ms: None,
                    counters: Counters::new(),
                })
            }

            pub(super) async fn finish_attempt(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
                attempt: u32,
                result: &AttemptResult,
                counters: &Counters,
                now: OffsetDateTime,
            ) -> Result<Run, RunError> {
                let (mut tx, run) = lock_run(pool, tenant, id).await?;
                let mut run = run.ok_or(RunError::RunNotFound)?;
                let run_id = run.id.to_string();
                let row: Option<(OffsetDateTime, Option<OffsetDateTime>)> = sqlx::query_as(
                    "SELECT started_at, finished_at FROM run_attempts \
                     WHERE run_id = $1 AND attempt = $2",
                )
                .bind(&run_id)
                .bind(i64::from(attempt))
                .fetch_optional(&mut *tx)
                .await?;
                let (started_at, finished_at) = row.ok_or(RunError::AttemptNotFound { attempt })?;
                if finished_at.is_some() {
                    return Err(RunError::AttemptFinished { attempt });
                }
                let (outcome, failure) = outcome_of(result);
                sqlx::query(
                    "UPDATE run_attempts SET finished_at = $3, outcome = $4, error_class = $5, \
                     error_message = $6, duration_ms = $7, counters = $8 \
                     WHERE run_id = $1 AND attempt = $2",
                )
                .bind(&run_id)
                .bind(i64::from(attempt))
                .bind($time(now)?)
                .bind(outcome.as_str())
                .bind(failure.map(|f| f.class.as_str()))
                .bind(failure.map(|f| f.message.as_str()))
                .bind(duration_ms(started_at, now))
                .bind(Json(counters))
                .execute(&mut *tx)
                .await?;
                apply_result(&mut run, result, counters, now);
                save_run(&mut tx, &run).await?;
                tx.commit().await?;
                Ok(run)
            }

            pub(super) async fn retry_run(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
                now: OffsetDateTime,
            ) -> Result<RetryRun, RunError> {
                let (mut tx, original) = lock_run(pool, tenant, id).await?;
                let mut original = original.ok_or(RunError::RunNotFound)?;
                if let Some(retry) = original.retried_by {
                    return Err(RunError::AlreadyRetried { retry });
                }
                if !matches!(original.status, RunStatus::Failed | RunStatus::Cancelled) {
                    return Err(RunError::NotRetryable { status: original.status });
                }
                let retry = Run {
                    id: RunId::generate(),
                    tenant: original.tenant,
                    subject: original.subject.clone(),
                    trigger: RunTrigger::Retry,
                    status: RunStatus::Queued,
                    kind: original.kind.clone(),
                    payload: original.payload.clone(),
                    job_id: None,
                    retry_of: Some(original.id),
                    retried_by: None,
                    counters: Counters::new(),
                    error: None,
                    created_at: now,
                    started_at: None,
                    finished_at: None,
                };
                insert_run_on(&mut tx, &retry).await?;
                original.retried_by = Some(retry.id);
                save_run(&mut tx, &original).await?;
                tx.commit().await?;
                Ok(RetryRun { original, retry })
            }

            pub(super) async fn get_run(
                pool: &$pool,
                tenant: Option<TenantId>,
                id: RunId,
            ) -> Result<Option<RunWithAttempts>, RunError> {
                let row: Option<RunRow> = sqlx::query_as(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE {} AND id = $2",
                    owner_condition(tenant)
                ))
                .bind(owner_param(tenant))
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let run = row.into_run()?;
                let attempts: Vec<AttemptRow> = sqlx::query_as(&format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM run_attempts WHERE run_id = $1 ORDER BY attempt"
                ))
                .bind(run.id.to_string())
                .fetch_all(pool)
                .await?;
                let attempts = attempts
                    .into_iter()
                    .map(AttemptRow::into_attempt)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(RunWithAttempts { run, attempts }))
            }

            pub(super) async fn list_runs(
                pool: &$pool,
                tenant: Option<TenantId>,
                filter: &RunFilter,
                after: Option<RunId>,
                limit: u32,
            ) -> Result<Vec<Run>, RunError> {
                let (after_op, order) = match filter.order {
                    RunOrder::NewestFirst => ("<", "DESC"),
                    RunOrder::OldestFirst => (">", "ASC"),
                };
                let rows: Vec<RunRow> = sqlx::query_as(&format!(
                    "SELECT {RUN_COLUMNS} FROM runs WHERE {} \
                     AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR status = $3) \
                     AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) \
                     AND ($6 IS NULL OR id {after_op} $6) \
                     ORDER BY id {order} LIMIT $7",
                    owner_condition(tenant)
                ))
                .bind(owner_param(tenant))
                .bind(filter.subject.as_deref())
                .bind(filter.status.map(RunStatus::as_str))
                .bind(filter.created_since.map($time).transpose()?)
                .bind(filter.created_until.map($time).transpose()?)
                .bind(after.map(|id| id.to_string()))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
                rows.into_iter().map(RunRow::into_run).collect()
            }
        }
    };
}

/// The sqlx database type behind a pool type, so the macro can name transactions and
/// connections generically.
trait PoolDb {
    type Db: sqlx::Database;
}

impl PoolDb for sqlx::SqlitePool {
    type Db = sqlx::Sqlite;
}

impl PoolDb for sqlx::PgPool {
    type Db = sqlx::Postgres;
}

run_sql!(sqlite, sqlx::SqlitePool, begin: "BEGIN IMMEDIATE", lock: "", time: bind_time);
run_sql!(postgres, sqlx::PgPool, begin: "BEGIN", lock: " FOR UPDATE", time: bind_time);
