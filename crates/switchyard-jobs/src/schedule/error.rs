//! Errors of schedules and the scheduler.

/// Why a schedule operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse. Five fields (minute, hour, day of month, month,
    /// day of week) are expected; seconds are not supported.
    #[error("invalid cron expression `{expression}`: {reason}")]
    InvalidCron { expression: String, reason: String },

    /// The time zone is not an IANA zone name such as `Europe/Berlin` or `UTC`.
    #[error("unknown time zone `{zone}`: use an IANA name such as `Europe/Berlin`")]
    UnknownTimeZone { zone: String },

    /// The interval is zero, too long, or its jitter is out of range.
    #[error("invalid interval: {reason}")]
    InvalidInterval { reason: String },

    /// A cron expression that never matches again (for example `0 0 30 2 *`).
    #[error("the cron expression `{expression}` has no upcoming time")]
    NoUpcomingTick { expression: String },

    /// The schedule was changed by someone else while this update was being applied, several
    /// times in a row. Retrying later is safe.
    #[error("the schedule kept changing concurrently; try again")]
    Contended,

    /// The [`TickSink`](super::TickSink) could not enqueue a tick's job. The tick stays due
    /// and is retried on the next poll.
    #[error("could not enqueue the job of a schedule tick")]
    Sink(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A stored value does not parse (for example an unknown catch-up policy).
    #[error("corrupt row in `schedules`: {reason}")]
    Corrupt { reason: String },

    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl ScheduleError {
    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        ScheduleError::Corrupt {
            reason: reason.to_string(),
        }
    }
}
