//! `/v1/inbound-events`: what providers sent, as stored. Metadata for any role; the
//! decrypted raw payload for `admin` and `write` keys, and every such read is audited.

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use switchyard_audit::Action;
use switchyard_core::{ErrorCode, InboundEventId, Role, SourceId, TenantId};
use switchyard_inbound::events::{EventFilter, InboundEvent, InboundStatus};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::sources::{TenantLookup, acting_tenant, inbound_error};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiPath, ApiQuery},
    pagination::{ListParams, ListResponse},
};

/// Filters of the inbound event list (newest first).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboundEventQuery {
    /// Platform admin only: the tenant to act for.
    pub tenant_id: Option<TenantId>,
    #[param(value_type = Option<String>)]
    pub source_id: Option<SourceId>,
    /// Exactly this event type, such as `github.push`.
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    /// `received`, `processed` or `failed`.
    pub status: Option<String>,
    /// Received at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<OffsetDateTime>,
    /// Received before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// An inbound event's metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct InboundEventResponse {
    #[schema(value_type = String, example = "inb_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: InboundEventId,
    #[schema(value_type = String)]
    pub source_id: SourceId,
    /// The provider's delivery id (the dedup key), else the body's SHA-256.
    pub delivery_id: String,
    #[serde(rename = "type")]
    pub event_type: Option<String>,
    pub subject: Option<String>,
    /// `received` (queued for processing), `processed` or `failed`.
    pub status: String,
    pub error: Option<String>,
    pub body_bytes: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub processed_at: Option<OffsetDateTime>,
}

impl From<InboundEvent> for InboundEventResponse {
    fn from(event: InboundEvent) -> Self {
        Self {
            id: event.id,
            source_id: event.source_id,
            delivery_id: event.delivery_id,
            event_type: event.event_type,
            subject: event.subject,
            status: event.status.as_str().to_owned(),
            error: event.error,
            body_bytes: event.body_bytes,
            received_at: event.received_at,
            processed_at: event.processed_at,
        }
    }
}

/// Lists inbound events, newest first.
#[utoipa::path(
    get, path = "/v1/inbound-events", tag = "inbound-events",
    params(InboundEventQuery),
    responses(
        (status = 200, body = ListResponse<InboundEventResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_inbound_events(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<InboundEventQuery>,
) -> Result<axum::Json<ListResponse<InboundEventResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let page = ListParams {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page::<InboundEventId>(&state.api)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<InboundStatus>)
        .transpose()
        .map_err(|_| {
            ApiError::new(ErrorCode::InvalidQuery)
                .with_detail("`status` must be received, processed or failed")
        })?;
    let filter = EventFilter {
        source: query.source_id,
        event_type: query.event_type,
        status,
        since: query.since,
        until: query.until,
    };
    let events = state
        .inbound
        .events
        .list(tenant, &filter, page.after, page.limit + 1)
        .await
        .map_err(inbound_error)?;
    Ok(axum::Json(ListResponse::new(
        switchyard_store::Page::from_overfetch(events, page.limit, |event| event.id),
        InboundEventResponse::from,
    )))
}

async fn find(
    state: &AppState,
    tenant: TenantId,
    id: InboundEventId,
) -> Result<InboundEvent, ApiError> {
    state
        .inbound
        .events
        .get(tenant, id)
        .await
        .map_err(inbound_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("inbound event `{id}`")))
}

/// Reads an inbound event's metadata.
#[utoipa::path(
    get, path = "/v1/inbound-events/{event_id}", tag = "inbound-events",
    params(("event_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = InboundEventResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_inbound_event(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboundEventId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<InboundEventResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    Ok(axum::Json(find(&state, tenant, id).await?.into()))
}

/// The raw body exactly as received, decrypted (`admin` or `write`; audited). The original
/// content type is returned as `content-type`.
#[utoipa::path(
    get, path = "/v1/inbound-events/{event_id}/payload", tag = "inbound-events",
    params(("event_id" = String, Path), TenantLookup),
    responses(
        (status = 200, description = "The raw body", content_type = "application/octet-stream"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_inbound_payload(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboundEventId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<Response, ApiError> {
    // Another tenant's event is not found whatever the role: look it up with read first.
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let event = find(&state, tenant, id).await?;
    principal.require_tenant(tenant, Role::Write)?;
    let request = state
        .inbound
        .events
        .request(&event)
        .await
        .map_err(inbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::INBOUND_PAYLOAD_READ,
        format!("inbound_event:{id}"),
    )
    .await;
    let content_type = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, value)| HeaderValue::from_bytes(value).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = (StatusCode::OK, request.body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    Ok(response)
}

/// Processes an event again (`write` role): it is handed on to the event sinks once more.
#[utoipa::path(
    post, path = "/v1/inbound-events/{event_id}/replay", tag = "inbound-events",
    params(("event_id" = String, Path), TenantLookup),
    responses(
        (status = 202, body = InboundEventResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn replay_inbound_event(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<InboundEventId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<(StatusCode, axum::Json<InboundEventResponse>), ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    find(&state, tenant, id).await?;
    principal.require_tenant(tenant, Role::Write)?;
    state
        .inbound
        .events
        .replay(tenant, id)
        .await
        .map_err(inbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::INBOUND_REPLAY,
        format!("inbound_event:{id}"),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(find(&state, tenant, id).await?.into()),
    ))
}
