//! The metrics this crate records. No label carries a URL or an endpoint id: the per-endpoint
//! backlog is published by rank, so the number of series is fixed whatever the endpoints.

use std::time::Duration;

/// Finished attempts and postponements by `outcome`: `succeeded`, `retrying`, `failed` (dead
/// letter), `gone` (410), `postponed` (breaker open or rate limit).
pub const DELIVERIES_TOTAL: &str = "switchyard_outbound_deliveries_total";
/// Attempt latency (request start to response head, or error), by `outcome`.
pub const ATTEMPT_DURATION_SECONDS: &str = "switchyard_outbound_attempt_duration_seconds";
/// Unfinished deliveries of the endpoints with the largest backlog, by `rank` (`1`: the
/// largest, up to the configured N; a rank without an endpoint reads 0).
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

/// Sets ranks `1..=top` from `largest_first`, 0 where it runs out. By rank, not endpoint: the
/// facade cannot remove a series, so an endpoint label would keep one for every endpoint that
/// was ever in the top N; ranks are exactly N.
pub(crate) fn backlog(largest_first: &[i64], top: usize) {
    let counts = largest_first.iter().copied().chain(std::iter::repeat(0));
    for (rank, n) in (1..=top).zip(counts) {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(BACKLOG, "rank" => rank.to_string()).set(n as f64);
    }
}

pub(crate) fn backlog_total(n: i64) {
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!(BACKLOG_TOTAL).set(n as f64);
}
