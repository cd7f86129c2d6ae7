//! Status changes as outbound events, published through the same fan-out as tenants' events.

use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use switchyard_outbound::NewEvent;

use crate::model::ConnectionHealth;
use crate::status::HealthStatus;

pub const CONNECTION_DEGRADED: &str = "switchyard.connection.degraded";
pub const CONNECTION_UNHEALTHY: &str = "switchyard.connection.unhealthy";
/// Back to healthy, from either degraded or unhealthy.
pub const CONNECTION_RECOVERED: &str = "switchyard.connection.recovered";

/// The event type announcing a move to `status`.
pub const fn event_type(status: HealthStatus) -> &'static str {
    match status {
        HealthStatus::Healthy => CONNECTION_RECOVERED,
        HealthStatus::Degraded => CONNECTION_DEGRADED,
        HealthStatus::Unhealthy => CONNECTION_UNHEALTHY,
    }
}

/// The event announcing that `health` moved from `previous` to its status. Ordered by
/// connection, so endpoints that ask for ordering see a connection's changes in sequence.
pub(crate) fn status_changed(health: &ConnectionHealth, previous: HealthStatus) -> NewEvent {
    let data = json!({
        "connection_id": health.connection_id,
        "provider": health.provider,
        "previous_status": previous.as_str(),
        "status": health.status.as_str(),
        "error_rate": health.error_rate,
        "success_rate": health.success_rate,
        "calls": health.calls,
        "errors": health.errors,
        "counts": health.counts,
        "window_start": rfc3339(health.window_start),
        "window_end": rfc3339(health.window_end),
        "last_success_at": health.last_success_at.map(rfc3339),
        "last_failure_at": health.last_failure_at.map(rfc3339),
    });
    NewEvent::new(event_type(health.status), data).ordering_key(health.connection_id.clone())
}

fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&Rfc3339).unwrap_or_default()
}
