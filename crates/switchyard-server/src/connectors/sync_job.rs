//! Syncs as jobs and runs.
//!
//! - `connector.sync` reads one stream of one connection to the end (`switchyard_connectors::sync`)
//!   as run `run_id` of its payload. The run id is also the stream's sync lease holder, so a
//!   job retried after its worker died resumes at once from the last stored page, while any
//!   other sync of the stream waits (it fails with `sync_in_progress` and is retried).
//! - `connector.sync.tick` is what a sync schedule enqueues: it creates the run and the
//!   `connector.sync` job of that tick (the tick's unique key makes a repeated tick one job).
//!
//! A sync that changed records publishes `{provider}.{stream}.changed` to the outbound
//! fan-out, with the counts and the change-stream cursor after them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;
use switchyard_connectors::manifest::ErrorKind;
use switchyard_connectors::sync::{self, SyncCounts, SyncError, SyncTarget};
use switchyard_connectors::{CallContext, ConnectorError};
use switchyard_core::{ConnectionId, JobId, TenantId};
use switchyard_jobs::queue::{self, FailureClass, Job, JobError, NewJob};
use switchyard_jobs::runs::{Counters, NewRun, RunId, RunStore, RunTrigger};
use switchyard_jobs::worker::JobHandler;
use switchyard_store::Database;
use switchyard_vault::AuditedVault;

use super::ConnectorService;
use crate::error::ApiError;

pub const SYNC_JOB: &str = "connector.sync";
pub const SYNC_TICK_JOB: &str = "connector.sync.tick";

/// Counters handlers report for the attempt they run, read by the run recorder when the
/// attempt ends. Keyed by job and attempt, so a late report never lands on another attempt.
#[derive(Clone, Default)]
pub struct AttemptCounters(Arc<Mutex<BTreeMap<(JobId, u32), Counters>>>);

impl AttemptCounters {
    pub fn report(&self, job: &Job, counters: Counters) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((job.id, job.attempts), counters);
    }

    /// What the job's current attempt reported last, leaving it for [`Self::take`].
    pub fn peek(&self, job: &Job) -> Option<Counters> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(job.id, job.attempts))
            .cloned()
    }

    pub fn take(&self, job: &Job, attempt: u32) -> Counters {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(job.id, attempt))
            .unwrap_or_default()
    }
}

/// What a sync job names.
struct SyncPayload {
    tenant: TenantId,
    connection: ConnectionId,
    stream: String,
    run: Option<RunId>,
}

impl SyncPayload {
    fn parse(job: &Job) -> Result<Self, JobError> {
        let bad = |what: &str| {
            JobError::new(
                FailureClass::InvalidResponse,
                format!("sync job payload: {what}"),
            )
        };
        let text = |name: &str| job.payload[name].as_str().ok_or_else(|| bad(name));
        Ok(Self {
            tenant: text("tenant")?.parse().map_err(|_| bad("tenant"))?,
            connection: text("connection_id")?
                .parse()
                .map_err(|_| bad("connection_id"))?,
            stream: text("stream")?.to_owned(),
            run: job.payload["run_id"].as_str().and_then(|r| r.parse().ok()),
        })
    }
}

/// Creates a run and its `connector.sync` job; `unique_key` makes the pair once per key
/// (a schedule tick), else once per run.
pub async fn enqueue_sync(
    database: &Database,
    runs: &RunStore,
    tenant: TenantId,
    connection: ConnectionId,
    stream: &str,
    trigger: RunTrigger,
    unique_key: Option<String>,
) -> Result<RunId, ApiError> {
    let payload = json!({
        "tenant": tenant.to_string(),
        "connection_id": connection.to_string(),
        "stream": stream,
    });
    let run = runs
        .create_run(NewRun {
            tenant: Some(tenant),
            subject: format!("connection:{connection}:{stream}"),
            trigger,
            kind: SYNC_JOB.to_owned(),
            payload: payload.clone(),
            job_id: None,
        })
        .await
        .map_err(ApiError::internal)?;
    let mut with_run = payload;
    with_run["run_id"] = json!(run.id.to_string());
    let job = NewJob::new(SYNC_JOB, with_run)
        .tenant(tenant)
        .unique_key(unique_key.unwrap_or_else(|| format!("sync:{}", run.id)));
    let enqueued = queue::enqueue(database, job)
        .await
        .map_err(ApiError::internal)?;
    if !enqueued.created {
        // This tick's job exists already (the tick ran before): its run is the real one.
        runs.cancel_run(Some(tenant), run.id)
            .await
            .map_err(ApiError::internal)?;
        return Ok(run.id);
    }
    runs.attach_job(Some(tenant), run.id, &enqueued.id.to_string())
        .await
        .map_err(ApiError::internal)?;
    Ok(run.id)
}

/// Runs `connector.sync` jobs.
pub struct SyncHandler {
    pub service: ConnectorService,
    pub counters: AttemptCounters,
    pub runs: RunStore,
    pub database: Database,
    pub vault: AuditedVault,
}

#[async_trait]
impl JobHandler for SyncHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let payload = SyncPayload::parse(job)?;
        let Some(run) = payload.run else {
            return Err(JobError::new(
                FailureClass::InvalidResponse,
                "sync job without a run",
            ));
        };
        let connection = match self
            .service
            .connections
            .get(&payload.tenant, &payload.connection)
            .await
        {
            Ok(Some(connection)) => connection,
            // Deleted since: nothing left to sync, and retrying will not bring it back.
            Ok(None) => {
                return Err(JobError::new(
                    FailureClass::InvalidResponse,
                    "the connection was deleted",
                ));
            }
            Err(error) => return Err(JobError::internal(error.code())),
        };
        if connection.status != switchyard_connectors::store::ConnectionStatus::Active {
            return Err(JobError::new(
                FailureClass::InvalidResponse,
                "the connection is disabled",
            ));
        }
        if connection.credential_status
            == switchyard_connectors::store::CredentialStatus::ReauthorizationRequired
        {
            return Err(JobError::new(
                FailureClass::Auth,
                "the connection must be authorized again (reauthorization_required)",
            ));
        }
        let connector = self
            .service
            .catalogue
            .connector(&connection.provider)
            .ok_or_else(|| {
                JobError::new(
                    FailureClass::InvalidResponse,
                    format!("no connector `{}`", connection.provider),
                )
            })?;
        let context = ConnectorService::context(&connection);
        let cx = CallContext {
            calls: self.service.calls(),
            connection: &context,
        };
        let target = SyncTarget {
            tenant: &payload.tenant,
            connection: &payload.connection,
            stream: &payload.stream,
        };
        let counters = self.counters.clone();
        // Stops with the sync, also when this future is dropped.
        let _progress = AbortOnDrop(self.show_progress(job, run));
        let outcome = sync::run(
            connector.as_ref(),
            cx,
            &self.service.records,
            target,
            &run.to_string(),
            |so_far| {
                // What the attempt did so far is what its run shows, even if it fails later.
                counters.report(job, run_counters(so_far));
            },
        )
        .await;
        let counts = match outcome {
            Ok(counts) => counts,
            Err(error) => return Err(job_error(&error)),
        };
        self.counters.report(job, run_counters(&counts));
        if counts.added + counts.updated + counts.deleted > 0 {
            self.announce(&connection.provider, &payload, run, &counts)
                .await?;
        }
        Ok(())
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often a running sync's counters are written to its run.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

impl SyncHandler {
    /// Writes the attempt's counters so far to its run every [`PROGRESS_INTERVAL`], so
    /// `GET /v1/runs/{id}` (and `switchyard sync run`) show a sync's progress while it runs.
    fn show_progress(&self, job: &Job, run: RunId) -> tokio::task::AbortHandle {
        let (counters, runs, job) = (self.counters.clone(), self.runs.clone(), job.clone());
        let mut last = None;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_INTERVAL).await;
                let now = counters.peek(&job);
                if now.is_some() && now != last {
                    if let Some(so_far) = now.clone()
                        && let Err(error) = runs.record_progress(job.tenant, run, job.attempts, so_far).await
                    {
                        tracing::debug!(%error, run_id = %run, "could not record a sync's progress");
                    }
                    last = now;
                }
            }
        })
        .abort_handle()
    }

    /// Publishes `{provider}.{stream}.changed`; its id is the run's, so a retried
    /// announcement is one event.
    async fn announce(
        &self,
        provider: &str,
        payload: &SyncPayload,
        run: RunId,
        counts: &SyncCounts,
    ) -> Result<(), JobError> {
        let cursor = self
            .service
            .records
            .last_seq(&payload.tenant, &payload.connection, &payload.stream)
            .await
            .map_err(|e| JobError::internal(e.code()))?;
        let data = json!({
            "connection_id": payload.connection.to_string(),
            "stream": payload.stream,
            "run_id": run.to_string(),
            "added": counts.added,
            "updated": counts.updated,
            "deleted": counts.deleted,
            "cursor": crate::routes::records::cursor_after(cursor),
        });
        let event = switchyard_outbound::NewEvent::new(
            format!("{provider}.{}.changed", payload.stream),
            data,
        )
        .id(format!("sync_{run}"));
        match switchyard_outbound::publish(&self.database, &self.vault, payload.tenant, event).await
        {
            Ok(_) => Ok(()),
            Err(error) => Err(JobError::internal(format!(
                "announcing the sync: {}",
                error.code()
            ))),
        }
    }
}

fn run_counters(counts: &SyncCounts) -> Counters {
    let as_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    Counters::from([
        ("pages".to_owned(), as_i64(counts.pages)),
        ("records_added".to_owned(), as_i64(counts.added)),
        ("records_updated".to_owned(), as_i64(counts.updated)),
        ("records_deleted".to_owned(), as_i64(counts.deleted)),
        ("records_unchanged".to_owned(), as_i64(counts.unchanged)),
        ("not_modified".to_owned(), as_i64(counts.not_modified)),
    ])
}

/// A failed sync as the job engine classifies it: provider trouble is retried with the
/// provider's pace, a refused credential is not.
fn job_error(error: &SyncError) -> JobError {
    match error {
        SyncError::Busy => JobError::new(
            FailureClass::Internal,
            "another sync of this stream is running",
        )
        .with_retry_after(Duration::from_secs(30)),
        SyncError::Connector(ConnectorError::Provider(error)) => JobError::from(error),
        SyncError::Connector(ConnectorError::ProviderStatus { status, message }) => {
            let class = match status {
                401 | 403 => FailureClass::Auth,
                429 => FailureClass::RateLimited,
                500.. => FailureClass::ProviderUnavailable,
                _ => FailureClass::InvalidResponse,
            };
            JobError::new(class, format!("the provider answered {status}: {message}"))
        }
        SyncError::Connector(error @ ConnectorError::Refused { kind, .. }) => {
            let class = match kind {
                ErrorKind::AuthFailed | ErrorKind::PermissionDenied => FailureClass::Auth,
                ErrorKind::RateLimited => FailureClass::RateLimited,
                ErrorKind::NotFound | ErrorKind::ProviderError => FailureClass::InvalidResponse,
            };
            JobError::new(class, error.to_string())
        }
        SyncError::Connector(other) => {
            JobError::new(FailureClass::InvalidResponse, other.to_string())
        }
        SyncError::Store(error) => JobError::internal(format!("record store: {}", error.code())),
    }
}

/// Runs `connector.sync.tick` jobs: a scheduled sync's run and job.
pub struct SyncTickHandler {
    pub database: Database,
    pub runs: RunStore,
}

#[async_trait]
impl JobHandler for SyncTickHandler {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let payload = SyncPayload::parse(job)?;
        enqueue_sync(
            &self.database,
            &self.runs,
            payload.tenant,
            payload.connection,
            &payload.stream,
            RunTrigger::Schedule,
            Some(format!("sync-tick:{}", job.id)),
        )
        .await
        .map(|_| ())
        .map_err(|_| JobError::internal("could not enqueue the scheduled sync"))
    }
}
