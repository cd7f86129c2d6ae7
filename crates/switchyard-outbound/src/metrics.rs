//! The metrics this crate records. No label carries a URL; the only per-endpoint series is the
//! backlog of the few endpoints with the largest one, so cardinality stays bounded.

use std::time::Duration;

/// Finished attempts and postponements by `outcome`: `succeeded`, `retrying`, `failed` (dead
/// letter), `gone` (410), `postponed` (breaker open or rate limit).
pub const DELIVERIES_TOTAL: &str = "switchyard_outbound_deliveries_total";
/// Attempt latency (request start to response head, or error), by `outcome`.
pub const ATTEMPT_DURATION_SECONDS: &str = "switchyard_outbound_attempt_duration_seconds";
/// Unfinished deliveries of the endpoints with the largest backlog (`endpoint` label, top N).
pub const BACKLOG: &str = "switchyard_outbound_backlog";
/// Unfinished deliveries of every endpoint together.
pub const BACKLOG_TOTAL: &str = "switchyard_outbound_backlog_total";
/// Circuit breakers of this process by `state`.
pub const BREAKERS: &str = "switchyard_outbound_breakers";
/// Disabled endpoints (all tenants).
pub const DISABLED_ENDPOINTS: &str = "switchyard_outbound_disabled_endpoints";

pub(crate) fn delivery(outcome: &'static str) {
    metrics::counter!(DELIVERIES_TOTAL, "outcome" => outcome).increment(1);
}

pub(crate) fn attempt(outcome: &'static str, duration: Duration) {
    metrics::histogram!(ATTEMPT_DURATION_SECONDS, "outcome" => outcome)
        .record(duration.as_secs_f64());
}

pub(crate) fn breakers(counts: switchyard_http::breaker::StateCounts) {
    for (state, n) in [
        ("closed", counts.closed),
        ("open", counts.open),
        ("half_open", counts.half_open),
    ] {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(BREAKERS, "state" => state).set(n as f64);
    }
}

pub(crate) fn disabled_endpoints(n: i64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(DISABLED_ENDPOINTS).set(n as f64);
}

pub(crate) fn backlog(endpoint: &str, n: i64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(BACKLOG, "endpoint" => endpoint.to_owned()).set(n as f64);
}

pub(crate) fn backlog_total(n: i64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(BACKLOG_TOTAL).set(n as f64);
}
