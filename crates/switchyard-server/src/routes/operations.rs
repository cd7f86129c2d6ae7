//! Unauthenticated operations endpoints: liveness, readiness, metrics, the OpenAPI document.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{AppState, error::ApiError};

/// The status of a health probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = HealthResponse)))]
pub async fn healthz() -> axum::Json<HealthResponse> {
    axum::Json(HealthResponse { status: "ok" })
}

/// Readiness: the database answers. 503 otherwise, so a load balancer stops sending traffic.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, body = HealthResponse),
        (status = 503, body = crate::error::Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<HealthResponse>, ApiError> {
    state.store.ping().await.map_err(|error| {
        tracing::warn!(error = %error, "readiness check failed: database unreachable");
        ApiError::new(switchyard_core::ErrorCode::Unavailable)
            .with_detail("the database is unreachable")
    })?;
    Ok(axum::Json(HealthResponse { status: "ok" }))
}

/// Prometheus text exposition of every metric of the process.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
