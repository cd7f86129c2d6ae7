//! The worker runtime: claims jobs of the registered kinds, runs their handlers, renews their
//! leases, and records the outcome.
//!
//! One [`Worker`] is one claim loop plus a task per running job. The loop claims when it has
//! free slots, in batches of up to [`WorkerOptions::claim_batch`] (a deep queue is drained
//! with one query per batch, not per job), and claims again at once while claims return jobs;
//! then it sleeps until a wake-up (PostgreSQL `LISTEN switchyard_jobs`, or SQLite's
//! in-process signal), a quarter of the slots are free again when it ran short of them, the
//! next delayed `run_at` is due, or [`WorkerOptions::poll_interval`] passes (the fallback for
//! missed notifications). A slot is free when the handler returns; successes are then
//! recorded in batches by a completer task (one UPDATE per batch), and the job's task waits
//! for that before it ends.
//!
//! Side tasks: a heartbeat renewing every lease this worker holds with one statement, a
//! reaper requeueing jobs whose lease expired (their process died), and the gauge refresher.
//!
//! Shutdown (the token given to [`Worker::start`]): stop claiming, let running jobs finish
//! for up to [`WorkerOptions::shutdown_grace`], then abort the rest and release their leases
//! (back to `queued`, attempt uncounted) so another process takes them at once.

mod metrics;
mod registry;

use std::{
    collections::{HashMap, HashSet},
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt as _;
use switchyard_store::Database;
use time::OffsetDateTime;
use tokio::{
    sync::{mpsc, oneshot, watch},
    task::{JoinHandle, JoinSet},
};
use tokio_util::sync::CancellationToken;
use ulid::Ulid;

pub use registry::{
    AttemptObserver, AttemptOutcome, AttemptReport, JobHandler, Registry, RetryPolicy,
};

use crate::queue::{self, ClaimRequest, Job, JobError, JobId, QueueError};

/// Tuning of one worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs running at once in this worker.
    pub concurrency: usize,
    /// Most jobs per claim query.
    pub claim_batch: u32,
    /// Most running jobs of one kind in this worker (kinds not listed: only `concurrency`).
    pub kind_concurrency: HashMap<String, usize>,
    /// Most running jobs of one tenant in this worker, so one tenant cannot take every slot
    /// while others wait. `None`: no cap (claim-time fairness still interleaves tenants).
    pub tenant_share: Option<usize>,
    /// How long a claim is valid without a heartbeat; a dead process's jobs wait this long.
    pub lease: Duration,
    pub heartbeat_interval: Duration,
    /// Fallback poll for delayed jobs and missed notifications.
    pub poll_interval: Duration,
    /// How often to look for expired leases.
    pub reap_interval: Duration,
    /// How long running jobs may finish after shutdown before their leases are released.
    pub shutdown_grace: Duration,
    /// How often the queue-depth gauges are refreshed (`None`: never, for tests and benches).
    pub metrics_interval: Option<Duration>,
    /// Ranks of `switchyard_job_tenant_backlog`: the N largest tenant backlogs (0: none).
    pub backlog_top_n: u32,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            claim_batch: 32,
            kind_concurrency: HashMap::new(),
            tenant_share: None,
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            reap_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            metrics_interval: Some(Duration::from_secs(15)),
            backlog_top_n: 10,
        }
    }
}

/// Why a worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// Releasing leases at shutdown failed; the jobs come back when their leases expire.
    #[error("releasing leases at shutdown failed")]
    Release(#[source] QueueError),

    #[error("the worker task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// What a worker did, returned when it stops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerReport {
    pub succeeded: u64,
    pub retried: u64,
    pub dead: u64,
    /// Jobs handed back at shutdown.
    pub released: u64,
}

/// A running worker. Cancel the token given to [`Worker::start`], then [`Worker::join`].
#[derive(Debug)]
pub struct Worker {
    id: String,
    ready: watch::Receiver<bool>,
    task: JoinHandle<Result<WorkerReport, WorkerError>>,
}

impl Worker {
    /// Starts a worker on the current Tokio runtime for a connected, migrated database.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns its tasks).
    pub fn start(
        database: Database,
        registry: Registry,
        options: WorkerOptions,
        shutdown: CancellationToken,
    ) -> Worker {
        let id = format!("wrk_{}", Ulid::new());
        let (ready_tx, ready) = watch::channel(false);
        let (completions, completion_receiver) = mpsc::unbounded_channel();
        let (handler_done, handler_done_receiver) = mpsc::unbounded_channel();
        tokio::spawn(record_completions(
            database.clone(),
            id.clone(),
            completion_receiver,
        ));
        let options = WorkerOptions {
            concurrency: options.concurrency.max(1),
            claim_batch: options.claim_batch.max(1),
            ..options
        };
        let runtime = Runtime {
            context: Arc::new(Context {
                database,
                registry,
                owner: id.clone(),
                completions,
                handler_done,
            }),
            options,
            shutdown,
            running: HashMap::new(),
            per_kind: HashMap::new(),
            per_tenant: HashMap::new(),
            handler_done: handler_done_receiver,
            tasks: JoinSet::new(),
            report: WorkerReport::default(),
        };
        let task = tokio::spawn(runtime.run(ready_tx));
        Worker { id, ready, task }
    }

    /// This worker's lease owner id (`wrk_…`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits until the worker listens for wake-ups (immediate on SQLite), so a job enqueued
    /// afterwards wakes it without waiting for a poll.
    pub async fn ready(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|ready| *ready).await;
    }

    /// Waits for the worker to stop (after its shutdown token is cancelled).
    ///
    /// # Errors
    /// [`WorkerError::Release`] when the leases could not be released.
    pub async fn join(self) -> Result<WorkerReport, WorkerError> {
        self.task.await?
    }
}

/// What a job's task needs.
struct Context {
    database: Database,
    registry: Registry,
    owner: String,
    completions: mpsc::UnboundedSender<Completion>,
    /// A handler returned: its slot is free, though its outcome may still be being recorded.
    handler_done: mpsc::UnboundedSender<(JobId, u32)>,
}

/// A succeeded attempt waiting to be recorded by the completer. `ack` answers whether it was
/// recorded (`None`: the database failed; the job returns at lease expiry).
struct Completion {
    id: JobId,
    attempt: u32,
    ack: oneshot::Sender<Option<bool>>,
}

/// Most completions per statement.
const COMPLETION_BATCH: usize = 512;

/// Records successes in batches: one UPDATE for whatever finished while the previous one
/// ran. Per-job UPDATEs made many small write transactions compete for SQLite's single write
/// lock (its busy handler sleeps) and cost a round trip per job on PostgreSQL.
async fn record_completions(
    database: Database,
    owner: String,
    mut receiver: mpsc::UnboundedReceiver<Completion>,
) {
    while let Some(first) = receiver.recv().await {
        let mut batch = vec![first];
        while batch.len() < COMPLETION_BATCH {
            match receiver.try_recv() {
                Ok(completion) => batch.push(completion),
                Err(_) => break,
            }
        }
        let attempts: Vec<(JobId, u32)> = batch.iter().map(|c| (c.id, c.attempt)).collect();
        let result = with_retries(|| queue::complete_many(&database, &owner, &attempts)).await;
        let recorded: Option<HashSet<JobId>> = match result {
            Ok(ids) => Some(ids.into_iter().collect()),
            Err(error) => {
                tracing::warn!(error = %error, jobs = batch.len(), "recording completions failed");
                None
            }
        };
        for completion in batch {
            let answer = recorded.as_ref().map(|ids| ids.contains(&completion.id));
            let _ = completion.ack.send(answer);
        }
    }
}

/// How a job's task ended, for the loop's bookkeeping.
struct Finished {
    id: JobId,
    attempt: u32,
    outcome: Outcome,
}

#[derive(Clone, Copy)]
enum Outcome {
    Succeeded,
    Retried,
    Dead,
    /// The lease was lost or the database failed; the job comes back by lease expiry.
    Unrecorded,
}

struct Running {
    job: Arc<Job>,
    started_at: OffsetDateTime,
    clock: Instant,
}

struct Runtime {
    context: Arc<Context>,
    options: WorkerOptions,
    shutdown: CancellationToken,
    running: HashMap<JobId, Running>,
    per_kind: HashMap<String, usize>,
    per_tenant: HashMap<String, usize>,
    handler_done: mpsc::UnboundedReceiver<(JobId, u32)>,
    /// Job tasks, including those whose handler returned and that wait for their outcome to
    /// be recorded (shutdown waits for those too, before releasing leases).
    tasks: JoinSet<Finished>,
    report: WorkerReport,
}

fn tenant_key(job: &Job) -> String {
    job.tenant.map(|t| t.to_string()).unwrap_or_default()
}

impl Runtime {
    async fn run(mut self, ready: watch::Sender<bool>) -> Result<WorkerReport, WorkerError> {
        let side = CancellationToken::new();
        let mut wake = self.wake_source(&side).await;
        let _ = ready.send(true);
        tokio::spawn(heartbeat(
            Arc::clone(&self.context),
            self.options.lease,
            self.options.heartbeat_interval,
            side.clone(),
        ));
        if let Some(interval) = self.options.metrics_interval {
            tokio::spawn(metrics::refresh_gauges(
                self.context.database.clone(),
                interval,
                self.options.backlog_top_n,
                side.clone(),
            ));
        }
        let mut last_reap: Option<Instant> = None;
        let mut error_backoff = Duration::from_millis(50);
        let refill = (self.options.concurrency / 4).max(1);
        let mut wake_alive = true;
        // Free slots needed to claim: any after a wake-up or a timeout (a new job should start
        // at once), a quarter of them right after a successful claim (many one-job claims
        // would cost a query each for little).
        let mut min_claim = 1;

        'outer: while !self.shutdown.is_cancelled() {
            if last_reap.is_none_or(|at| at.elapsed() >= self.options.reap_interval) {
                self.reap().await;
                last_reap = Some(Instant::now());
            }
            // Anything enqueued from here on will show as a change, even during the claim.
            wake.borrow_and_update();
            // Count the slots freed while we were claiming, so the next claim asks for all of
            // them rather than for what the last claim left.
            while let Ok((id, attempt)) = self.handler_done.try_recv() {
                self.forget(id, attempt);
            }
            while let Some(finished) = self.tasks.try_join_next() {
                self.finished(finished);
            }
            let free = self.options.concurrency.saturating_sub(self.running.len());
            let mut sleep_for = self.options.poll_interval;
            let short_of_slots = free == 0 || free < min_claim;
            if !short_of_slots {
                match self.claim(free).await {
                    Ok(started) => {
                        error_backoff = Duration::from_millis(50);
                        if started > 0 {
                            // Maybe more waiting (a claim samples a few jobs per tenant, so a
                            // short batch does not mean an empty queue): claim again without
                            // sleeping; an empty claim is one cheap index probe per tenant.
                            // Yield first so the jobs just started get going: short ones free
                            // their slot before the next claim counts them.
                            min_claim = refill;
                            tokio::task::yield_now().await;
                            continue;
                        }
                        if let Ok(Some(next)) = queue::next_run_at(&self.context.database).await {
                            let until = next - OffsetDateTime::now_utc();
                            let until = Duration::try_from(until).unwrap_or(Duration::ZERO);
                            sleep_for = sleep_for.min(until.max(Duration::from_millis(5)));
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "claiming jobs failed");
                        sleep_for = error_backoff;
                        error_backoff = (error_backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            let deadline = tokio::time::Instant::now() + sleep_for;
            loop {
                tokio::select! {
                    () = self.shutdown.cancelled() => break 'outer,
                    changed = wake.changed(), if wake_alive => {
                        if changed.is_err() {
                            wake_alive = false;
                            continue;
                        }
                        min_claim = 1;
                        break;
                    }
                    Some((id, attempt)) = self.handler_done.recv() => {
                        // The slot is free once the handler returns, not once its success is
                        // committed: holding it through the commit would cap a worker at
                        // `concurrency` jobs per commit latency.
                        self.forget(id, attempt);
                        if short_of_slots && self.running.len() + refill <= self.options.concurrency {
                            break;
                        }
                    }
                    Some(finished) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                        self.finished(finished);
                        // A freed slot matters only if we stopped claiming for lack of one:
                        // refill once a quarter of the slots are free.
                        if short_of_slots && self.running.len() + refill <= self.options.concurrency {
                            break;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => {
                        min_claim = 1;
                        break;
                    }
                }
            }
        }

        self.drain().await;
        side.cancel();
        let released = queue::release(&self.context.database, &self.context.owner, None)
            .await
            .map_err(WorkerError::Release)?;
        self.report.released += released;
        if released > 0 {
            tracing::info!(released, "released leases of unfinished jobs at shutdown");
        }
        Ok(self.report)
    }

    /// The wake-up signal: SQLite's in-process channel, or a LISTEN connection feeding a
    /// channel. If LISTEN cannot be set up the worker still runs, on the fallback poll.
    async fn wake_source(&self, stop: &CancellationToken) -> watch::Receiver<u64> {
        let Database::Postgres(pool) = &self.context.database else {
            return queue::sqlite_wake_receiver();
        };
        let (sender, receiver) = watch::channel(0u64);
        match queue::listen(pool).await {
            Ok(mut listener) => {
                let stop = stop.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            received = listener.recv() => {
                                if let Err(error) = received {
                                    // PgListener reconnects on the next recv; notifications
                                    // sent meanwhile are lost, so claim once to be sure.
                                    tracing::warn!(error = %error, "job notification listener failed");
                                    tokio::time::sleep(Duration::from_millis(200)).await;
                                }
                                sender.send_modify(|n| *n = n.wrapping_add(1));
                            }
                        }
                    }
                });
            }
            Err(error) => {
                tracing::warn!(error = %error, "LISTEN failed; relying on the poll interval");
            }
        }
        receiver
    }

    async fn reap(&self) {
        match queue::reap_expired(&self.context.database).await {
            Ok(kinds) => {
                for kind in &kinds {
                    metrics::lease_expired(kind);
                }
                if !kinds.is_empty() {
                    tracing::warn!(count = kinds.len(), "requeued jobs whose lease expired");
                }
            }
            Err(error) => tracing::warn!(error = %error, "reaping expired leases failed"),
        }
    }

    /// Claims up to `free` jobs of kinds with a free slot and starts them. Returns how many
    /// were started (or settled).
    async fn claim(&mut self, free: usize) -> Result<usize, QueueError> {
        let kinds: Vec<String> = self
            .context
            .registry
            .handlers
            .keys()
            .filter(|kind| self.kind_free(kind) > 0)
            .cloned()
            .collect();
        // Do not claim more than the kind limits leave room for: an excess claim costs a
        // release (and a wake-up of every worker) per job.
        let kind_room = kinds.iter().fold(0usize, |room, kind| {
            room.saturating_add(self.kind_free(kind))
        });
        let exclude_tenants: Vec<String> = match self.options.tenant_share {
            Some(share) => self
                .per_tenant
                .iter()
                .filter(|(_, n)| **n >= share)
                .map(|(tenant, _)| tenant.clone())
                .collect(),
            None => Vec::new(),
        };
        let limit = free.min(self.options.claim_batch as usize).min(kind_room);
        let request = ClaimRequest {
            owner: self.context.owner.clone(),
            kinds,
            exclude_tenants,
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            per_tenant: self
                .options
                .tenant_share
                .map_or(u32::MAX, |s| u32::try_from(s).unwrap_or(u32::MAX)),
            lease: time::Duration::try_from(self.options.lease).unwrap_or(time::Duration::MINUTE),
        };
        let jobs = queue::claim(&self.context.database, &request).await?;
        let mut started = 0;
        for job in jobs {
            if self.start_job(job).await {
                started += 1;
            }
        }
        Ok(started)
    }

    fn kind_free(&self, kind: &str) -> usize {
        let running = self.per_kind.get(kind).copied().unwrap_or(0);
        match self.options.kind_concurrency.get(kind) {
            Some(limit) => limit.saturating_sub(running),
            None => usize::MAX,
        }
    }

    /// Starts a claimed job (or settles one with no attempt left). `false` when it was given
    /// back, so the claim made no progress with it.
    async fn start_job(&mut self, job: Job) -> bool {
        let database = &self.context.database;
        let owner = &self.context.owner;
        let tenant = tenant_key(&job);
        let over_share = self
            .options
            .tenant_share
            .is_some_and(|share| self.per_tenant.get(&tenant).copied().unwrap_or(0) >= share);
        // One batch can hold more of a kind or tenant than it had room for; give those back.
        if self.kind_free(&job.kind) == 0 || over_share {
            if let Err(error) = queue::release(database, owner, Some(job.id)).await {
                tracing::warn!(error = %error, job = %job.id, "releasing an excess claim failed");
            }
            return false;
        }
        let Some(registered) = self.context.registry.handlers.get(&job.kind).cloned() else {
            // Cannot happen (we claim only registered kinds); release rather than guess.
            let _ = queue::release(database, owner, Some(job.id)).await;
            return false;
        };
        metrics::claimed(&job);
        // A job whose earlier attempts all ended in lost leases has used up its budget
        // without reporting an error; running it again would loop forever.
        let max_attempts = job.max_attempts.unwrap_or(registered.policy.max_attempts);
        if job.attempts > max_attempts {
            let error = JobError::internal("attempts exhausted by expired leases");
            match queue::fail(database, &job, owner, &error, None).await {
                Ok(_) => {
                    metrics::dead(&job.kind);
                    self.report.dead += 1;
                    // The observer hears of it as an attempt that died at once, so a run
                    // waiting on the job ends instead of showing `running` for ever.
                    if let Some(observer) = &self.context.registry.observer {
                        let now = OffsetDateTime::now_utc();
                        observer.attempt_started(&job, now).await;
                        let report = AttemptReport {
                            attempt: job.attempts,
                            started_at: now,
                            finished_at: now,
                            duration: Duration::ZERO,
                            outcome: AttemptOutcome::Dead { error },
                        };
                        observer.attempt_finished(&job, &report).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, job = %job.id, "marking a job dead failed"),
            }
            return true;
        }
        let job = Arc::new(job);
        if let Some(previous) = self.running.get(&job.id).map(|r| r.job.attempts) {
            // Claimable again, so the previous attempt's handler has returned; its report may
            // still be on the way.
            self.forget(job.id, previous);
        }
        *self.per_kind.entry(job.kind.clone()).or_default() += 1;
        *self.per_tenant.entry(tenant).or_default() += 1;
        let started_at = OffsetDateTime::now_utc();
        self.running.insert(
            job.id,
            Running {
                job: Arc::clone(&job),
                started_at,
                clock: Instant::now(),
            },
        );
        self.tasks.spawn(run_job(
            Arc::clone(&self.context),
            registered.handler,
            registered.policy,
            job,
            started_at,
        ));
        true
    }

    fn finished(&mut self, result: Result<Finished, tokio::task::JoinError>) {
        let Ok(finished) = result else {
            // Job tasks catch handler panics; only an abort ends one this way.
            return;
        };
        match finished.outcome {
            Outcome::Succeeded => self.report.succeeded += 1,
            Outcome::Retried => self.report.retried += 1,
            Outcome::Dead => self.report.dead += 1,
            Outcome::Unrecorded => {}
        }
        self.forget(finished.id, finished.attempt);
    }

    /// Frees the slot of `id`'s attempt `attempt`, once (the handler's return and the task's
    /// end both report it). A newer attempt of the same job (a retry claimed again before the
    /// old report arrived) keeps its slot.
    fn forget(&mut self, id: JobId, attempt: u32) -> Option<Running> {
        if self.running.get(&id)?.job.attempts != attempt {
            return None;
        }
        let running = self.running.remove(&id)?;
        if let Some(n) = self.per_kind.get_mut(&running.job.kind) {
            *n = n.saturating_sub(1);
        }
        let tenant = tenant_key(&running.job);
        if let Some(n) = self.per_tenant.get_mut(&tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_tenant.remove(&tenant);
            }
        }
        Some(running)
    }

    /// Lets running jobs finish within the grace period, then aborts the rest.
    async fn drain(&mut self) {
        let grace = tokio::time::sleep(self.options.shutdown_grace);
        tokio::pin!(grace);
        while !self.tasks.is_empty() {
            tokio::select! {
                Some(finished) = self.tasks.join_next() => self.finished(finished),
                () = &mut grace => break,
            }
        }
        self.tasks.abort_all();
        while let Some(finished) = self.tasks.join_next().await {
            self.finished(finished);
        }
        let observer = self.context.registry.observer.clone();
        let interrupted: Vec<(JobId, u32)> = self
            .running
            .iter()
            .map(|(id, running)| (*id, running.job.attempts))
            .collect();
        for (id, attempt) in interrupted {
            let Some(running) = self.forget(id, attempt) else {
                continue;
            };
            if let Some(observer) = &observer {
                let report = AttemptReport {
                    attempt: running.job.attempts,
                    started_at: running.started_at,
                    finished_at: OffsetDateTime::now_utc(),
                    duration: running.clock.elapsed(),
                    outcome: AttemptOutcome::Released,
                };
                observer.attempt_finished(&running.job, &report).await;
            }
        }
    }
}

/// Renews this worker's leases until `stop`.
async fn heartbeat(
    context: Arc<Context>,
    lease: Duration,
    interval: Duration,
    stop: CancellationToken,
) {
    let lease = time::Duration::try_from(lease).unwrap_or(time::Duration::MINUTE);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Err(error) = queue::heartbeat(&context.database, &context.owner, lease).await {
            tracing::warn!(error = %error, "renewing job leases failed");
        }
    }
}

/// Runs one attempt and records its outcome.
async fn run_job(
    context: Arc<Context>,
    handler: Arc<dyn JobHandler>,
    policy: RetryPolicy,
    job: Arc<Job>,
    started_at: OffsetDateTime,
) -> Finished {
    let observer = context.registry.observer.clone();
    if let Some(observer) = &observer {
        observer.attempt_started(&job, started_at).await;
    }
    let clock = Instant::now();
    let result = AssertUnwindSafe(handler.run(&job))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(JobError::internal("the handler panicked")));
    let duration = clock.elapsed();
    let _ = context.handler_done.send((job.id, job.attempts));
    let database = &context.database;
    let owner = &context.owner;
    let (outcome, attempt_outcome, label) = match result {
        Ok(()) => {
            let (ack, answer) = oneshot::channel();
            let sent = context.completions.send(Completion {
                id: job.id,
                attempt: job.attempts,
                ack,
            });
            let recorded = match (sent, answer.await) {
                (Ok(()), Ok(Some(recorded))) => Ok(recorded),
                _ => Err(QueueError::Corrupt("completion not recorded".into())),
            };
            (
                recorded_or(recorded, Outcome::Succeeded, &job),
                AttemptOutcome::Succeeded,
                "succeeded",
            )
        }
        Err(error) => match policy.retry_delay(&job, &error) {
            Some(delay) => {
                let retry_at = OffsetDateTime::now_utc()
                    + time::Duration::try_from(delay).unwrap_or(time::Duration::MINUTE);
                let recorded =
                    with_retries(|| queue::fail(database, &job, owner, &error, Some(retry_at)))
                        .await;
                metrics::retried(&job.kind, error.class.as_str());
                (
                    recorded_or(recorded, Outcome::Retried, &job),
                    AttemptOutcome::Retrying { error, retry_at },
                    "retried",
                )
            }
            None => {
                let recorded =
                    with_retries(|| queue::fail(database, &job, owner, &error, None)).await;
                metrics::dead(&job.kind);
                tracing::warn!(job = %job.id, kind = %job.kind, error = %error, "job is dead");
                (
                    recorded_or(recorded, Outcome::Dead, &job),
                    AttemptOutcome::Dead { error },
                    "dead",
                )
            }
        },
    };
    metrics::finished(&job.kind, label, duration);
    if let Some(observer) = &observer {
        let report = AttemptReport {
            attempt: job.attempts,
            started_at,
            finished_at: OffsetDateTime::now_utc(),
            duration,
            outcome: attempt_outcome,
        };
        observer.attempt_finished(&job, &report).await;
    }
    Finished {
        id: job.id,
        attempt: job.attempts,
        outcome,
    }
}

fn recorded_or(recorded: Result<bool, QueueError>, outcome: Outcome, job: &Job) -> Outcome {
    match recorded {
        Ok(true) => outcome,
        Ok(false) => {
            tracing::warn!(job = %job.id, "lease lost before the outcome was recorded");
            Outcome::Unrecorded
        }
        Err(error) => {
            tracing::warn!(job = %job.id, error = %error, "recording the outcome failed");
            Outcome::Unrecorded
        }
    }
}

/// A completion lost to a passing database error would rerun the job at lease expiry; a few
/// quick retries make that rare.
async fn with_retries<T, F, Fut>(mut operation: F) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, QueueError>>,
{
    let mut delay = Duration::from_millis(20);
    let mut attempt = 1;
    loop {
        match operation().await {
            Err(QueueError::Database(_)) if attempt < 4 => {
                tokio::time::sleep(delay).await;
                delay *= 4;
                attempt += 1;
            }
            other => return other,
        }
    }
}
