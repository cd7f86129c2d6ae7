//! The inbound gateway's retention classes.

use std::time::Duration;

use switchyard_store::retention::RetentionClass;

/// How long each class is kept; the composition root fills it from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPeriods {
    /// Inbound event metadata rows.
    pub inbound_events: Duration,
}

/// The classes with their periods, named as in configuration (`retention.<name>`). Raw
/// payload segments are blobs, purged by day with `BlobStore::purge_older_than`.
pub fn classes(periods: RetentionPeriods) -> Vec<RetentionClass> {
    vec![
        RetentionClass {
            name: "inbound_events",
            table: "inbound_events",
            age_column: "received_at",
            condition: None,
            default_period: periods.inbound_events,
        },
        // A dedup claim carries its own expiry (the source's horizon): purge it once passed.
        RetentionClass {
            name: "inbound_dedup",
            table: "inbound_dedup",
            age_column: "expires_at",
            condition: None,
            default_period: Duration::ZERO,
        },
    ]
}
