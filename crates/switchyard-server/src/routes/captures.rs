//! `/v1/connections/{connection_id}/captures`: the provider calls captured for a connection
//! whose connector enables `limits.capture` (see `docs/provider-calls.md`). Listing shows
//! what was called; opening one shows the redacted request and answer, to keys that may
//! write (a capture can hold personal data the redaction rules did not name), audited.

use axum::extract::State;
use serde::Serialize;
use switchyard_audit::Action;
use switchyard_core::{ConnectionId, Role};
use utoipa::ToSchema;

use super::connections::owned_connection;
use super::sources::{TenantListQuery, TenantLookup};
use crate::pagination::{ListParams, ListResponse};
use crate::provider_capture::{CaptureError, CaptureSummary};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
};

/// One capture, opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureResponse {
    #[serde(flatten)]
    pub summary: CaptureSummary,
    /// The request as built before the credential was added, and the answer, with
    /// authorization headers and the manifest's `redact_*` fields replaced by `[redacted]`.
    #[schema(value_type = Object)]
    pub capture: serde_json::Value,
}

fn capture_error(error: CaptureError) -> ApiError {
    match error {
        CaptureError::NotFound => ApiError::not_found("capture"),
        other => ApiError::internal(other),
    }
}

/// Lists a connection's captured provider calls, newest first.
#[utoipa::path(
    get, path = "/v1/connections/{connection_id}/captures", tag = "connections",
    params(("connection_id" = String, Path), TenantListQuery),
    responses(
        (status = 200, body = ListResponse<CaptureSummary>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_captures(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<axum::Json<ListResponse<CaptureSummary>>, ApiError> {
    let connection = owned_connection(&state, &principal, query.tenant_id, id, Role::Read).await?;
    let params: ListParams = query.list_params();
    let page = params.page::<String>(&state.api)?;
    let captures = state
        .captures
        .index
        .list(
            &connection.tenant_id,
            &connection.id,
            page.after.as_deref(),
            page.limit,
        )
        .await
        .map_err(capture_error)?;
    Ok(axum::Json(ListResponse::new(captures, |c| c)))
}

/// Opens one captured provider call (write or admin keys; audited).
#[utoipa::path(
    get, path = "/v1/connections/{connection_id}/captures/{capture_id}", tag = "connections",
    params(("connection_id" = String, Path), ("capture_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = CaptureResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_capture(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((id, capture_id)): ApiPath<(ConnectionId, String)>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<CaptureResponse>, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let (summary, capture) = state
        .captures
        .open(connection.tenant_id, &connection.id, &capture_id)
        .await
        .map_err(capture_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("capture `{capture_id}`")))?;
    audit_trail::record_change(
        &state,
        &principal,
        connection.tenant_id,
        Action::PROVIDER_CAPTURE_READ,
        format!("connection:{}/capture:{capture_id}", connection.id),
    )
    .await;
    Ok(axum::Json(CaptureResponse { summary, capture }))
}
