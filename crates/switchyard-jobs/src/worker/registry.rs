//! Handlers by job kind, their retry policies, and the attempt observer hook.

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

use async_trait::async_trait;
use rand::Rng;
use time::OffsetDateTime;

use crate::queue::{FailureClass, Job, JobError};

/// Runs jobs of one kind. Delivery is at least once: a job can run again after its process
/// died mid-way or its lease was lost, so a handler makes its effects idempotent.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> Result<(), JobError>;
}

/// When and how often a kind is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included, unless the job sets its own `max_attempts`.
    pub max_attempts: u32,
    /// The backoff cap of the first retry; it doubles per attempt up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Classes worth another attempt; any other class makes the job dead at once.
    pub retryable: Vec<FailureClass>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(15 * 60),
            retryable: FailureClass::ALL
                .into_iter()
                .filter(|class| class.is_retryable())
                .collect(),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: uniform in `[0, min(max, base · 2^(n-1))]` after
    /// attempt `n`, so retries of many jobs failing together spread out instead of returning
    /// in waves.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let cap = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }

    /// How long to wait before the next attempt after `job`'s current one failed with
    /// `error`, or `None` when the job is dead.
    pub fn retry_delay(&self, job: &Job, error: &JobError) -> Option<Duration> {
        let max_attempts = job.max_attempts.unwrap_or(self.max_attempts);
        if job.attempts >= max_attempts || !self.retryable.contains(&error.class) {
            return None;
        }
        let backoff = self.backoff(job.attempts);
        Some(
            error
                .retry_after
                .map_or(backoff, |after| after.max(backoff)),
        )
    }
}

/// How an attempt ended, as told to an [`AttemptObserver`].
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Succeeded,
    /// Failed; another attempt is due at `retry_at`.
    Retrying {
        error: JobError,
        retry_at: OffsetDateTime,
    },
    /// Failed for good: the job is dead.
    Dead {
        error: JobError,
    },
    /// Interrupted by shutdown; the job went back to the queue uncounted.
    Released,
}

/// One finished attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    pub attempt: u32,
    pub started_at: OffsetDateTime,
    pub finished_at: OffsetDateTime,
    pub duration: Duration,
    pub outcome: AttemptOutcome,
}

/// Told when attempts start and finish, for the runs module's attempt records. Called on the
/// job's task: keep it quick (it delays the job's completion, not other jobs).
#[async_trait]
pub trait AttemptObserver: Send + Sync + 'static {
    async fn attempt_started(&self, job: &Job, started_at: OffsetDateTime);
    async fn attempt_finished(&self, job: &Job, report: &AttemptReport);
}

#[derive(Clone)]
pub(crate) struct Registered {
    pub handler: Arc<dyn JobHandler>,
    pub policy: RetryPolicy,
}

/// The handlers a worker runs, by kind, and an optional observer.
#[derive(Clone, Default)]
pub struct Registry {
    pub(crate) handlers: HashMap<String, Registered>,
    pub(crate) observer: Option<Arc<dyn AttemptObserver>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kinds: Vec<&String> = self.handlers.keys().collect();
        kinds.sort();
        f.debug_struct("Registry")
            .field("kinds", &kinds)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `kind` with the default [`RetryPolicy`].
    pub fn register(&mut self, kind: impl Into<String>, handler: impl JobHandler) -> &mut Self {
        self.register_with(kind, handler, RetryPolicy::default())
    }

    /// Registers `handler` for `kind` with its own retry policy (replacing an earlier one).
    pub fn register_with(
        &mut self,
        kind: impl Into<String>,
        handler: impl JobHandler,
        policy: RetryPolicy,
    ) -> &mut Self {
        self.handlers.insert(
            kind.into(),
            Registered {
                handler: Arc::new(handler),
                policy,
            },
        );
        self
    }

    /// Sets the observer told about every attempt.
    pub fn observe(&mut self, observer: Arc<dyn AttemptObserver>) -> &mut Self {
        self.observer = Some(observer);
        self
    }

    /// The registered kinds.
    pub fn kinds(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }
}
