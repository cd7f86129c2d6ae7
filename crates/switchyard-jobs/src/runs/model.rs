//! Runs, attempts and their vocabulary as callers see them.

use std::{collections::BTreeMap, fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use switchyard_core::TenantId;
use time::OffsetDateTime;

pub use switchyard_core::RunId;

/// Named integer counters of a run or attempt (`pages`, `records_added`, …). An attempt's
/// counters are added to its run's: work an attempt did before failing was still done.
pub type Counters = BTreeMap<String, i64>;

/// A stored word that is not one of the enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownValue {
    pub what: &'static str,
    pub value: String,
}

/// Defines `as_str`, `Display` and `FromStr` for a unit enum stored as a word.
macro_rules! stored_word {
    ($name:ident, $what:literal, { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                match value {
                    $($text => Ok($name::$variant),)*
                    other => Err(UnknownValue { what: $what, value: other.to_owned() }),
                }
            }
        }
    };
}

/// Why an attempt failed: the queue's classes, so a retry decision and what users see agree.
pub use crate::queue::FailureClass;

/// Where a run's status stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for its first attempt, or for the next one after a retryable failure.
    Queued,
    /// An attempt is in progress.
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

stored_word!(RunStatus, "run status", {
    Queued => "queued",
    Running => "running",
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
});

impl RunStatus {
    /// Succeeded, failed or cancelled: final, never reopened.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Schedule,
    Manual,
    Webhook,
    /// A retry of a finished run (see [`super::RunStore::retry_run`]).
    Retry,
}

stored_word!(RunTrigger, "run trigger", {
    Schedule => "schedule",
    Manual => "manual",
    Webhook => "webhook",
    Retry => "retry",
});

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
    Cancelled,
    /// A newer attempt started while this one was unfinished: its worker died or lost its
    /// lease. Set by [`super::RunStore::start_attempt`].
    Abandoned,
}

stored_word!(AttemptOutcome, "attempt outcome", {
    Succeeded => "succeeded",
    Failed => "failed",
    Cancelled => "cancelled",
    Abandoned => "abandoned",
});

/// A classified failure with its message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub class: FailureClass,
    /// Shown to users: must not contain secrets. Stored up to [`MAX_ERROR_MESSAGE`] bytes.
    pub message: String,
}

/// Longest stored error message, in bytes; longer ones are cut at a character boundary.
pub const MAX_ERROR_MESSAGE: usize = 4_000;

/// The user-visible record of one unit of work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: RunId,
    /// `None` for the platform's own work.
    pub tenant: Option<TenantId>,
    /// What the run is about, e.g. `connection:con_…/stream:users`.
    pub subject: String,
    pub trigger: RunTrigger,
    pub status: RunStatus,
    /// The job kind that performs the run.
    pub kind: String,
    /// The job payload without the run id (the enqueuer adds it): what a retry re-enqueues.
    pub payload: serde_json::Value,
    /// The queue's job, once attached.
    pub job_id: Option<String>,
    /// The run this one retries.
    pub retry_of: Option<RunId>,
    /// The run that retries this one.
    pub retried_by: Option<RunId>,
    pub counters: Counters,
    /// The last failure; cleared when the run succeeds.
    pub error: Option<Failure>,
    pub created_at: OffsetDateTime,
    /// When the first attempt started.
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
}

/// One execution of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAttempt {
    pub run_id: RunId,
    /// 1, 2, … in start order.
    pub attempt: u32,
    pub started_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    pub outcome: Option<AttemptOutcome>,
    pub error: Option<Failure>,
    pub duration_ms: Option<i64>,
    pub counters: Counters,
}

/// A run with all its attempts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunWithAttempts {
    pub run: Run,
    pub attempts: Vec<RunAttempt>,
}

/// What it takes to create a run.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub tenant: Option<TenantId>,
    pub subject: String,
    pub trigger: RunTrigger,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Known when the job was enqueued first; otherwise see
    /// [`super::RunStore::attach_job`].
    pub job_id: Option<String>,
}

/// How an attempt ended, as its worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    Succeeded,
    /// `will_retry`: the queue will run another attempt, so the run goes back to `queued`
    /// (keeping this error as its last); otherwise the run is `failed`.
    Failed {
        failure: Failure,
        will_retry: bool,
    },
    Cancelled,
}

/// Order of [`super::RunStore::list_runs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunOrder {
    /// Most recent first: what a user looking at runs wants.
    #[default]
    NewestFirst,
    OldestFirst,
}

/// Which runs [`super::RunStore::list_runs`] returns; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub subject: Option<String>,
    pub status: Option<RunStatus>,
    /// Created at or after.
    pub created_since: Option<OffsetDateTime>,
    /// Created strictly before.
    pub created_until: Option<OffsetDateTime>,
    pub order: RunOrder,
}

/// A retry created by [`super::RunStore::retry_run`]: enqueue `retry.kind` with
/// `retry.payload` plus `retry.id`, then attach the job to `retry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRun {
    /// The failed or cancelled run, now with `retried_by` set.
    pub original: Run,
    /// The new run: `queued`, trigger `retry`, `retry_of` the original.
    pub retry: Run,
}

pub(crate) fn truncate_message(mut message: String) -> String {
    if message.len() > MAX_ERROR_MESSAGE {
        let mut end = MAX_ERROR_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
    }
    message
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn failure_classes_are_snake_case_words() {
        let json = serde_json::to_string(&FailureClass::ProviderUnavailable).unwrap();
        assert_eq!(json, "\"provider_unavailable\"");
        assert_eq!(
            "rate_limited".parse::<FailureClass>().unwrap(),
            FailureClass::RateLimited
        );
        assert!(!FailureClass::Auth.is_retryable());
        assert!(FailureClass::Timeout.is_retryable());
    }

    #[test]
    fn truncates_at_a_character_boundary() {
        let long = "é".repeat(MAX_ERROR_MESSAGE);
        let cut = truncate_message(long);
        assert!(cut.len() <= MAX_ERROR_MESSAGE);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
