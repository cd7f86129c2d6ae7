//! The job engine's retention classes: finished runs (their attempts go with them by
//! `ON DELETE CASCADE`), succeeded jobs, dead jobs, and probe records. Unfinished work is never purged: each
//! class's condition names the terminal states it may delete.

use std::time::Duration;

use switchyard_store::retention::RetentionClass;

/// How long each class is kept; the composition root fills it from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPeriods {
    pub runs: Duration,
    pub jobs_succeeded: Duration,
    pub jobs_dead: Duration,
}

/// The classes with their periods, named as in configuration (`retention.<name>`).
pub fn classes(periods: RetentionPeriods) -> Vec<RetentionClass> {
    vec![
        RetentionClass {
            name: "runs",
            table: "runs",
            age_column: "finished_at",
            condition: Some("status IN ('succeeded', 'failed', 'cancelled')"),
            default_period: periods.runs,
        },
        RetentionClass {
            name: "jobs_succeeded",
            table: "jobs",
            age_column: "finished_at",
            condition: Some("status = 'succeeded'"),
            default_period: periods.jobs_succeeded,
        },
        RetentionClass {
            name: "jobs_dead",
            table: "jobs",
            age_column: "finished_at",
            condition: Some("status = 'dead'"),
            default_period: periods.jobs_dead,
        },
        // Probe records are as disposable as the succeeded jobs they record.
        RetentionClass {
            name: "job_probes",
            table: "job_probes",
            age_column: "last_finished_at",
            condition: None,
            default_period: periods.jobs_succeeded,
        },
    ]
}
