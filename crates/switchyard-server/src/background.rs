//! The job kinds this server runs, and starting the worker and scheduler by process role.
//!
//! Work that must survive a restart is a job in the store of record:
//! - `vault.complete_dek_rotation`: re-seals a tenant's stored data and re-encrypts its secrets
//!   onto its new data key, then retires the old one, once the key cache TTL has passed
//!   (enqueued by the rotate-dek route, recorded as a run; see [`crate::rotation`]);
//! - `retention.purge`: purges every retention class; enqueued hourly by a platform schedule;
//! - `diagnostics.probe`: a no-op whose effect is its row in `job_probes`
//!   (`switchyard jobs probe`);
//! - `connector.sync` and `connector.sync.tick`: a stream's sync, and a schedule's tick of
//!   one (see [`crate::connectors::sync_job`]);
//! - `connector.action`: an `"async": true` action (see [`crate::connectors::action_job`]);
//! - `oauth.refresh_due`: refreshes OAuth tokens about to expire and idle ones, and forgets
//!   old authorization states; enqueued by a platform schedule (see [`crate::oauth::scheduled`]).
//!
//! Attempts of jobs whose payload names a `run_id` are recorded on that run.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::json;
use switchyard_audit::Actor;
use switchyard_core::TenantId;
use switchyard_jobs::{
    probe::{PROBE, ProbeHandler},
    queue::{self, FailureClass, Job, JobError, NewJob},
    runs::{AttemptResult, Failure, RunId, RunStore},
    schedule::{
        CatchUp, DueTick, NewSchedule, ScheduleError, ScheduleSpec, ScheduleStore, TickSink,
    },
    worker::{AttemptObserver, AttemptOutcome, AttemptReport, JobHandler, Registry},
};
use switchyard_store::{
    Database, SettingsStore,
    retention::{DEFAULT_BATCH_SIZE, RetentionClass, cutoff_for, purge_expired},
};
use switchyard_vault::{AuditContext, VaultError};
use time::OffsetDateTime;

use crate::connectors::action_job::{ACTION_JOB, ActionHandler};
use crate::connectors::action_results::ActionResults;
use crate::connectors::sync_job::{
    AttemptCounters, SYNC_JOB, SYNC_TICK_JOB, SyncHandler, SyncTickHandler,
};
use crate::rotation::{CompletionError, DekCompletion};

pub const COMPLETE_DEK_ROTATION: &str = "vault.complete_dek_rotation";
pub const RETENTION_PURGE: &str = "retention.purge";
/// Set once the platform's retention schedule exists, so concurrent starts create one.
const RETENTION_SCHEDULE_SETTING: &str = "schedule.retention_purge";
const OAUTH_REFRESH_SCHEDULE_SETTING: &str = "schedule.oauth_refresh";

/// Every job kind of this server with its handler, built from what handlers share.
pub fn registry(
    state: &crate::AppState,
    retention: Vec<RetentionClass>,
    blob_retention: BlobRetention,
) -> Registry {
    let vault = state.vault.clone();
    let rotation = state.rotation.clone();
    let database = state.store.database().clone();
    let runs = state.runs.clone();
    let inbound = &state.inbound;
    let connectors = &state.connectors;
    let counters = AttemptCounters::default();
    let mut registry = Registry::new();
    registry
        .register(
            switchyard_inbound::writer::PROCESS_JOB,
            switchyard_inbound::process::ProcessInbound::new(
                inbound.events.clone(),
                inbound.sources.clone(),
                // Processed inbound events fan out to outbound endpoints, and go to the
                // connector of the source's linked connection.
                vec![
                    crate::outbound::fan_out(database.clone(), vault.clone()),
                    Arc::new(crate::connectors::webhooks::ConnectorWebhooks {
                        service: connectors.clone(),
                        database: database.clone(),
                        runs: runs.clone(),
                        vault: vault.clone(),
                    }),
                ],
            ),
        )
        .register(
            SYNC_JOB,
            SyncHandler {
                service: connectors.clone(),
                counters: counters.clone(),
                runs: runs.clone(),
                database: database.clone(),
                vault: vault.clone(),
            },
        )
        .register(
            ACTION_JOB,
            ActionHandler {
                service: connectors.clone(),
                results: ActionResults::new(database.clone()),
            },
        )
        .register(
            SYNC_TICK_JOB,
            SyncTickHandler {
                database: database.clone(),
                runs: runs.clone(),
            },
        )
        .register(COMPLETE_DEK_ROTATION, CompleteDekRotation { rotation })
        .register(PROBE, ProbeHandler::new(database.clone()))
        .register(
            crate::oauth::scheduled::OAUTH_REFRESH_JOB,
            crate::oauth::scheduled::RefreshDue {
                refresher: Arc::clone(&state.oauth.refresher),
                sessions: state.oauth.flows.sessions.clone(),
            },
        )
        .register(
            RETENTION_PURGE,
            RetentionPurge {
                database,
                classes: retention,
                blobs: blob_retention,
            },
        )
        .observe(Arc::new(RunRecorder { runs, counters }));
    registry
}

/// Enqueues the completion of a data-key rotation for when the key cache has expired, as a
/// run of the tenant so its progress shows in `GET /v1/runs`.
pub async fn enqueue_dek_completion(
    database: &Database,
    runs: &RunStore,
    tenant: TenantId,
    version: u32,
    run_at: OffsetDateTime,
) -> Result<RunId, Box<dyn std::error::Error + Send + Sync>> {
    let payload = json!({ "tenant": tenant.to_string(), "version": version });
    let run = runs
        .create_run(switchyard_jobs::runs::NewRun {
            tenant: Some(tenant),
            subject: format!("vault:data-key:{version}"),
            trigger: switchyard_jobs::runs::RunTrigger::Manual,
            kind: COMPLETE_DEK_ROTATION.to_owned(),
            payload: payload.clone(),
            job_id: None,
        })
        .await?;
    let mut with_run = payload;
    with_run["run_id"] = json!(run.id.to_string());
    let job = NewJob::new(COMPLETE_DEK_ROTATION, with_run)
        .tenant(tenant)
        .run_at(run_at)
        .unique_key(format!("dek-completion:{tenant}:{version}"));
    let enqueued = queue::enqueue(database, job).await?;
    runs.attach_job(Some(tenant), run.id, &enqueued.id.to_string())
        .await?;
    Ok(run.id)
}

/// Creates the hourly platform schedule of the retention purge, once per database.
pub async fn ensure_retention_schedule(
    settings: &dyn SettingsStore,
    schedules: &ScheduleStore,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ensure_platform_schedule(
        settings,
        schedules,
        RETENTION_SCHEDULE_SETTING,
        "retention",
        RETENTION_PURGE,
        3600,
    )
    .await
}

/// Creates the platform schedule of the scheduled token refresh, once per database. The
/// interval is the one configured when it was first created.
pub async fn ensure_oauth_refresh_schedule(
    settings: &dyn SettingsStore,
    schedules: &ScheduleStore,
    every: Duration,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ensure_platform_schedule(
        settings,
        schedules,
        OAUTH_REFRESH_SCHEDULE_SETTING,
        "oauth.refresh",
        crate::oauth::scheduled::OAUTH_REFRESH_JOB,
        u32::try_from(every.as_secs()).unwrap_or(u32::MAX).max(1),
    )
    .await
}

/// A schedule of `kind` for no tenant, created by one of several processes starting at
/// once: the setting named `setting` is claimed first.
async fn ensure_platform_schedule(
    settings: &dyn SettingsStore,
    schedules: &ScheduleStore,
    setting: &str,
    subject: &str,
    kind: &str,
    every_seconds: u32,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if settings.get_setting(setting).await?.is_some() {
        return Ok(());
    }
    if !settings
        .insert_setting_if_absent(setting, "creating")
        .await?
    {
        return Ok(());
    }
    let schedule = schedules
        .create(NewSchedule {
            tenant: None,
            subject: subject.to_owned(),
            kind: kind.to_owned(),
            payload: json!({}),
            spec: ScheduleSpec::Interval {
                every_seconds,
                jitter_percent: 10,
            },
            catch_up: CatchUp::RunOnce,
            enabled: true,
        })
        .await?;
    settings
        .put_setting(setting, &schedule.id.to_string())
        .await?;
    Ok(())
}

/// Turns a schedule's tick into a job; the tick's unique key makes a repeated tick a no-op.
pub struct QueueTickSink {
    pub database: Database,
}

#[async_trait]
impl TickSink for QueueTickSink {
    async fn enqueue_tick(&self, tick: &DueTick) -> Result<(), ScheduleError> {
        let mut job = NewJob::new(tick.kind.clone(), tick.payload.clone())
            .run_at(tick.run_at)
            .unique_key(tick.unique_key.clone());
        if let Some(tenant) = tick.tenant {
            job = job.tenant(tenant);
        }
        queue::enqueue(&self.database, job)
            .await
            .map(|_| ())
            .map_err(|error| ScheduleError::Sink(Box::new(error)))
    }
}

struct CompleteDekRotation {
    rotation: DekCompletion,
}

#[async_trait]
impl JobHandler for CompleteDekRotation {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let tenant: TenantId = job.payload["tenant"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                JobError::new(FailureClass::InvalidResponse, "payload without a tenant")
            })?;
        let context = AuditContext::new(Actor::Internal {
            component: "vault.rotation".to_owned(),
            run_id: job.payload["run_id"].as_str().map(str::to_owned),
        });
        match self.rotation.complete(&context, tenant).await {
            Ok(_) => Ok(()),
            // Another process may still cache the old key: try again shortly.
            Err(CompletionError::Vault(
                VaultError::DekRetireTooEarly { .. } | VaultError::Conflict { .. },
            )) => Err(JobError::new(
                FailureClass::Internal,
                "the old data key may still be cached",
            )
            .with_retry_after(Duration::from_secs(30))),
            Err(error) => Err(JobError::internal(error.code())),
        }
    }
}

/// The blob store and how long blobs of each kind are kept; they are purged by day folder.
#[derive(Debug, Clone)]
pub struct BlobRetention {
    pub store: switchyard_blob::BlobStore,
    /// Inbound raw request segments.
    pub inbound_payloads: Duration,
    /// The kept first 64 KiB of delivery responses.
    pub delivery_responses: Duration,
    /// Redacted provider call captures.
    pub provider_captures: Duration,
}

struct RetentionPurge {
    database: Database,
    classes: Vec<RetentionClass>,
    blobs: BlobRetention,
}

#[async_trait]
impl JobHandler for RetentionPurge {
    async fn run(&self, _job: &Job) -> Result<(), JobError> {
        for class in &self.classes {
            let cutoff = cutoff_for(class.default_period);
            let report = purge_expired(&self.database, class, cutoff, DEFAULT_BATCH_SIZE)
                .await
                .map_err(|error| JobError::internal(format!("purging {}: {error}", class.name)))?;
            if report.rows > 0 {
                tracing::info!(
                    class = class.name,
                    rows = report.rows,
                    "purged expired rows"
                );
            }
        }
        // Blobs are kept by day; a day's blobs go once the whole day is older than the period.
        let kinds = [
            (
                switchyard_inbound::writer::BLOB_KIND,
                self.blobs.inbound_payloads,
            ),
            (
                switchyard_outbound::dispatch::BLOB_KIND,
                self.blobs.delivery_responses,
            ),
            (
                crate::provider_capture::BLOB_KIND,
                self.blobs.provider_captures,
            ),
        ];
        for (kind, period) in kinds {
            let removed = self
                .blobs
                .store
                .purge_older_than(kind, cutoff_for(period).date())
                .await
                .map_err(|error| JobError::internal(format!("purging {kind} blobs: {error}")))?;
            if removed > 0 {
                tracing::info!(kind, blobs = removed, "purged expired blobs");
            }
        }
        Ok(())
    }
}

/// Records the attempts of jobs that belong to a run.
struct RunRecorder {
    runs: RunStore,
    /// What handlers counted in the attempt (a sync's pages and records).
    counters: AttemptCounters,
}

impl RunRecorder {
    fn run_of(job: &Job) -> Option<RunId> {
        job.payload["run_id"].as_str()?.parse().ok()
    }
}

#[async_trait]
impl AttemptObserver for RunRecorder {
    async fn attempt_started(&self, job: &Job, _started_at: OffsetDateTime) {
        if let Some(run) = Self::run_of(job)
            && let Err(error) = self.runs.start_attempt(job.tenant, run).await
        {
            tracing::warn!(%error, run_id = %run, "could not record an attempt start");
        }
    }

    async fn attempt_finished(&self, job: &Job, report: &AttemptReport) {
        let Some(run) = Self::run_of(job) else {
            return;
        };
        let failed = |error: &JobError, will_retry| AttemptResult::Failed {
            failure: Failure {
                class: error.class,
                message: error.message.clone(),
            },
            will_retry,
        };
        let counters = self.counters.take(job, report.attempt);
        let result = match &report.outcome {
            AttemptOutcome::Succeeded => AttemptResult::Succeeded,
            AttemptOutcome::Retrying { error, .. } => failed(error, true),
            AttemptOutcome::Dead { error } => failed(error, false),
            AttemptOutcome::Released => return,
        };
        if let Err(error) = self
            .runs
            .finish_attempt(job.tenant, run, report.attempt, result, counters)
            .await
        {
            tracing::warn!(%error, run_id = %run, "could not record an attempt end");
        }
    }
}
