//! Errors of the run store.

use super::{RunId, RunStatus};

/// Why a run operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// No such run for this owner (another tenant's run is "not found" too).
    #[error("run not found")]
    RunNotFound,

    /// The run has no attempt with this number.
    #[error("run attempt {attempt} not found")]
    AttemptNotFound { attempt: u32 },

    /// The attempt was finished already (a duplicate report).
    #[error("run attempt {attempt} is already finished")]
    AttemptFinished { attempt: u32 },

    /// The run is finished (succeeded, failed or cancelled); no attempt can start.
    #[error("the run is {status} and takes no more attempts")]
    RunFinished { status: RunStatus },

    /// Only failed and cancelled runs can be retried.
    #[error("a {status} run cannot be retried")]
    NotRetryable { status: RunStatus },

    /// The run was retried already, by `retry`.
    #[error("the run was already retried as {retry}")]
    AlreadyRetried { retry: RunId },

    /// A stored value does not parse.
    #[error("corrupt row in `{table}`: {reason}")]
    Corrupt { table: &'static str, reason: String },

    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl RunError {
    pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> Self {
        RunError::Corrupt {
            table,
            reason: reason.to_string(),
        }
    }
}
