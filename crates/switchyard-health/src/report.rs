//! Reading a connection's health: the window's buckets summed, the status they give, and
//! what the connection's row remembers beyond the window.

use switchyard_core::TenantId;
use switchyard_store::Database;
use time::OffsetDateTime;

use crate::counts::OutcomeCounts;
use crate::db::{self, StoredConnection};
use crate::error::Result;
use crate::histogram::percentile;
use crate::model::ConnectionHealth;
use crate::status::{HealthStatus, assess, window_start};

/// The health of `connection` in `tenant` over the hour ending at `now`; `None` when no
/// attempt of that connection was ever recorded in this tenant.
///
/// # Errors
/// Database failures; [`crate::HealthError::Corrupt`] for a row that does not parse.
pub async fn connection_health(
    database: &Database,
    tenant: TenantId,
    connection: &str,
    now: OffsetDateTime,
) -> Result<Option<ConnectionHealth>> {
    Ok(read(database, tenant, connection, now)
        .await?
        .map(|(health, _)| health))
}

/// As [`connection_health`], with the status last announced (stored in the row).
pub(crate) async fn read(
    database: &Database,
    tenant: TenantId,
    connection: &str,
    now: OffsetDateTime,
) -> Result<Option<(ConnectionHealth, HealthStatus)>> {
    let Some(stored) = db::connection(database, tenant, connection).await? else {
        return Ok(None);
    };
    let announced = stored.status;
    let start = window_start(now);
    let window = db::window_counts(database, tenant, connection, start).await?;
    let health = document(tenant, connection, stored, &window, start, now);
    Ok(Some((health, announced)))
}

fn document(
    tenant: TenantId,
    connection: &str,
    stored: StoredConnection,
    window: &OutcomeCounts,
    window_start: OffsetDateTime,
    window_end: OffsetDateTime,
) -> ConnectionHealth {
    let mut recent_errors = stored.recent_errors;
    recent_errors.reverse();
    ConnectionHealth {
        tenant,
        connection_id: connection.to_owned(),
        provider: stored.provider,
        status: assess(window, stored.last_success_at, stored.last_auth_failure_at),
        window_start,
        window_end,
        calls: window.calls(),
        errors: window.errors(),
        error_rate: window.error_rate(),
        success_rate: window.success_rate(),
        latency_p50_ms: percentile(window.latency(), 0.50),
        latency_p95_ms: percentile(window.latency(), 0.95),
        counts: window.by_class_name(),
        last_success_at: stored.last_success_at,
        last_failure_at: stored.last_failure_at,
        status_changed_at: stored.status_changed_at,
        recent_errors,
    }
}
