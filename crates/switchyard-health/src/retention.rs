//! Retention classes of connection health (see `switchyard_store::retention`).

use std::time::Duration;

use switchyard_store::retention::RetentionClass;

/// Minute buckets are read for one hour; two days leave room to look at a bad night.
pub const BUCKETS_PERIOD: Duration = Duration::from_secs(2 * 24 * 3600);
/// A connection's row (last success, recent errors) goes once nothing was recorded for it
/// for this long.
pub const CONNECTIONS_PERIOD: Duration = Duration::from_secs(90 * 24 * 3600);

pub fn classes() -> Vec<RetentionClass> {
    vec![
        RetentionClass {
            name: "connection_health_buckets",
            table: "connection_health_buckets",
            age_column: "minute",
            condition: None,
            default_period: BUCKETS_PERIOD,
        },
        RetentionClass {
            name: "connection_health",
            table: "connection_health",
            age_column: "updated_at",
            condition: None,
            default_period: CONNECTIONS_PERIOD,
        },
    ]
}
