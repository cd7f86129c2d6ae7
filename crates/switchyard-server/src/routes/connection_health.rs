//! `/v1/connections/{connection_id}/health`: what the last hour of provider calls says about
//! a connection (see `docs/connection-health.md`).

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Serialize;
use switchyard_core::{Role, TenantId};
use switchyard_health::{ConnectionHealth, RecentError};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::sources::{TenantLookup, acting_tenant};
use crate::{
    AppState,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
};

/// A connection's health over the hour ending at `window_end`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionHealthResponse {
    pub connection_id: String,
    pub tenant_id: TenantId,
    pub provider: String,
    /// `healthy`, `degraded` (more than 10 % of the window's calls failed) or `unhealthy`
    /// (more than 50 % failed, or the credential was refused after the last success). No
    /// calls in the window: `healthy` with `calls: 0`.
    #[schema(example = "healthy")]
    pub status: &'static str,
    #[serde(with = "time::serde::rfc3339")]
    pub window_start: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub window_end: OffsetDateTime,
    /// Attempts in the window, of every class.
    pub calls: u64,
    /// Attempts that count as errors: every class except `success`, `client_error` and
    /// `rate_limited`.
    pub errors: u64,
    /// `errors / calls`; `null` without calls.
    pub error_rate: Option<f64>,
    /// `success / calls`; `null` without calls.
    pub success_rate: Option<f64>,
    /// The upper bound of the latency bucket holding the median attempt, in milliseconds.
    pub latency_p50_ms: Option<u64>,
    /// The same for the 95th percentile.
    pub latency_p95_ms: Option<u64>,
    /// Attempts in the window by outcome class, every class present.
    pub counts: BTreeMap<&'static str, u64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_success_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_failure_at: Option<OffsetDateTime>,
    /// When the announced status last changed (a `switchyard.connection.*` event).
    #[serde(with = "time::serde::rfc3339::option")]
    pub status_changed_at: Option<OffsetDateTime>,
    /// The last errors, newest first, at most 10.
    pub recent_errors: Vec<RecentErrorResponse>,
}

/// One failed attempt: where and how, never what was sent or received.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecentErrorResponse {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    #[schema(example = "GET")]
    pub method: String,
    /// The route template, not the filled-in path.
    #[schema(example = "/repos/{owner}/{repo}")]
    pub route: String,
    pub status: Option<u16>,
    /// `auth_failure`, `server_error`, `timeout`, `transport` or `circuit_open`.
    #[schema(example = "server_error")]
    pub class: &'static str,
    /// A stable error code.
    #[schema(example = "http_503")]
    pub error: Option<String>,
}

impl From<RecentError> for RecentErrorResponse {
    fn from(error: RecentError) -> Self {
        Self {
            at: error.at,
            method: error.method,
            route: error.route,
            status: error.status,
            class: error.class.as_str(),
            error: error.error,
        }
    }
}

impl From<ConnectionHealth> for ConnectionHealthResponse {
    fn from(health: ConnectionHealth) -> Self {
        Self {
            connection_id: health.connection_id,
            tenant_id: health.tenant,
            provider: health.provider,
            status: health.status.as_str(),
            window_start: health.window_start,
            window_end: health.window_end,
            calls: health.calls,
            errors: health.errors,
            error_rate: health.error_rate,
            success_rate: health.success_rate,
            latency_p50_ms: health.latency_p50_ms,
            latency_p95_ms: health.latency_p95_ms,
            counts: health.counts,
            last_success_at: health.last_success_at,
            last_failure_at: health.last_failure_at,
            status_changed_at: health.status_changed_at,
            recent_errors: health.recent_errors.into_iter().map(Into::into).collect(),
        }
    }
}

/// Reads a connection's health. 404 when no call of that connection was ever recorded in
/// this tenant.
#[utoipa::path(
    get, path = "/v1/connections/{connection_id}/health", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = ConnectionHealthResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_connection_health(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(connection_id): ApiPath<String>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<ConnectionHealthResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let health = switchyard_health::connection_health(
        state.store.database(),
        tenant,
        &connection_id,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(ApiError::internal)?
    .ok_or_else(|| ApiError::not_found("connection health"))?;
    Ok(axum::Json(health.into()))
}
