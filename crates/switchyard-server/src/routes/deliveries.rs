//! `/v1/deliveries`: one outbound event on its way to one endpoint, with its attempts, and
//! the manual retry of a delivery in the dead letter.

use std::collections::BTreeMap;

use axum::{extract::State, http::StatusCode};
use serde::Serialize;
use switchyard_audit::Action;
use switchyard_core::{DeliveryId, EndpointId, MessageId, Role, TenantId};
use switchyard_outbound::{Attempt, Delivery, DeliveryDetail};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    endpoints::outbound_error,
    sources::{TenantLookup, acting_tenant},
};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
};

/// A delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryResponse {
    #[schema(value_type = String, example = "dlv_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: DeliveryId,
    pub tenant_id: TenantId,
    #[schema(value_type = String)]
    pub endpoint_id: EndpointId,
    #[schema(value_type = String)]
    pub event_id: MessageId,
    /// `pending`, `sending`, `succeeded` or `failed` (the dead letter: no attempt left, or
    /// the endpoint answered 410).
    #[schema(example = "succeeded")]
    pub status: &'static str,
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

impl From<Delivery> for DeliveryResponse {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id,
            tenant_id: delivery.tenant,
            endpoint_id: delivery.endpoint_id,
            event_id: delivery.event_id,
            status: delivery.status.as_str(),
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            created_at: delivery.created_at,
            updated_at: delivery.updated_at,
            finished_at: delivery.finished_at,
        }
    }
}

/// One request of a delivery and what came back.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptResponse {
    /// 1-based.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: u32,
    pub status_code: Option<u16>,
    pub response_headers: BTreeMap<String, String>,
    /// Bytes of the response body kept (the first 64 KiB at most).
    pub response_body_len: u32,
    /// `timeout`, `connect`, `ssrf_denied`, `redirect`, `http_status`, …; `null` on success.
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
}

impl From<Attempt> for AttemptResponse {
    fn from(attempt: Attempt) -> Self {
        Self {
            attempt: attempt.attempt,
            started_at: attempt.started_at,
            duration_ms: attempt.duration_ms,
            status_code: attempt.status_code,
            response_headers: attempt.response_headers,
            response_body_len: attempt.response_body_len,
            error_class: attempt.error_class,
            error: attempt.error,
            succeeded: attempt.succeeded,
        }
    }
}

/// A delivery with its attempts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDetailResponse {
    #[serde(flatten)]
    pub delivery: DeliveryResponse,
    pub attempt_log: Vec<AttemptResponse>,
}

impl From<DeliveryDetail> for DeliveryDetailResponse {
    fn from(detail: DeliveryDetail) -> Self {
        Self {
            delivery: detail.delivery.into(),
            attempt_log: detail.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

/// Reads a delivery with its attempts.
#[utoipa::path(
    get, path = "/v1/deliveries/{delivery_id}", tag = "deliveries",
    params(("delivery_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = DeliveryDetailResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeliveryId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<DeliveryDetailResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let detail = switchyard_outbound::get_delivery(&state.outbound.database, tenant, id)
        .await
        .map_err(outbound_error)?;
    Ok(axum::Json(detail.into()))
}

/// Sends a finished delivery again now (`admin` or `write`): same `webhook-id`, a fresh
/// timestamp and signature, and a fresh set of retries.
#[utoipa::path(
    post, path = "/v1/deliveries/{delivery_id}/retry", tag = "deliveries",
    params(("delivery_id" = String, Path), TenantLookup),
    responses(
        (status = 202, body = DeliveryResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn retry_delivery(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<DeliveryId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<(StatusCode, axum::Json<DeliveryResponse>), ApiError> {
    // Another tenant's delivery is not found whatever the role: look it up first.
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    switchyard_outbound::get_delivery(&state.outbound.database, tenant, id)
        .await
        .map_err(outbound_error)?;
    principal.require_tenant(tenant, Role::Write)?;
    let delivery = switchyard_outbound::retry_delivery(&state.outbound.database, tenant, id)
        .await
        .map_err(outbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::DELIVERY_RETRY,
        format!("delivery:{id}"),
    )
    .await;
    Ok((StatusCode::ACCEPTED, axum::Json(delivery.into())))
}
