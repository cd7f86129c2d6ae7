//! Runs and run attempts: the user-visible record of work.
//!
//! A *run* is one unit of work a user cares about ("sync stream users of connection X"),
//! created when the work is triggered (schedule, manual, webhook, retry). An *attempt* is one
//! execution of it; the queue's automatic retries add attempts to the same run, and the run's
//! status follows its attempts (`queued` → `running` → `succeeded` / `failed` / `cancelled`,
//! back to `queued` between retryable attempts). A retry a person asks for after the run
//! finished is a new run (see [`RunStore::retry_run`] for why).
//!
//! Failures carry a [`FailureClass`] saying what went wrong in terms a user can act on, and
//! whether trying again may help ([`FailureClass::is_retryable`]).
//!
//! Tables (migration `0006_schedules_and_runs.sql`): `runs`, `run_attempts`.
//!
//! # Layout
//! - [`model`]: [`Run`], [`RunAttempt`], statuses, triggers, failure classes, filters.
//! - [`store`]: [`RunStore`], tenant-scoped, both backends.

pub mod model;
pub mod store;

mod error;

pub use error::RunError;
pub use model::{
    AttemptOutcome, AttemptResult, Counters, Failure, FailureClass, MAX_ERROR_MESSAGE, NewRun,
    RetryRun, Run, RunAttempt, RunFilter, RunId, RunOrder, RunStatus, RunTrigger, RunWithAttempts,
    UnknownValue,
};
pub use store::{MAX_RUN_PAGE, RunStore};
