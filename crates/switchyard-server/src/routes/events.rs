//! `/v1/events`: publishing an event to the tenant's subscribed endpoints, and reading one
//! back with its deliveries. An event often carries a provider's payload fanned out from an
//! inbound event, so reading its data follows the inbound payload's rule: `admin` and `write`
//! keys only, and every such read is audited; `read` keys see the metadata.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use switchyard_audit::Action;
use switchyard_core::{DeliveryId, MessageId, Role, TenantId};
use switchyard_outbound::{Event, EventMetadata, NewEvent};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::{
    deliveries::DeliveryResponse,
    endpoints::outbound_error,
    sources::{TenantLookup, acting_tenant},
};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
};

/// An event to publish.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishEventRequest {
    /// Dot-separated segments of letters, digits, `_`, `-` and `:`.
    #[serde(rename = "type")]
    #[schema(example = "invoice.paid")]
    pub event_type: String,
    /// Any JSON value; sent as `data` in `{"type", "timestamp", "data"}`.
    pub data: Value,
    /// Your id for the event: publishing it again returns the first event and sends nothing
    /// more. It is the `webhook-id` of every delivery. Generated (`msg_…`) when absent.
    pub id: Option<String>,
    /// Endpoints with `ordering: key` receive events of one key one at a time, in order.
    pub ordering_key: Option<String>,
}

/// What an event is, without its data.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventMetadataResponse {
    #[schema(value_type = String, example = "msg_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: MessageId,
    pub tenant_id: TenantId,
    /// The `webhook-id` header of its deliveries.
    pub webhook_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub ordering_key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<EventMetadata> for EventMetadataResponse {
    fn from(event: EventMetadata) -> Self {
        Self {
            id: event.id,
            tenant_id: event.tenant,
            webhook_id: event.webhook_id,
            event_type: event.event_type,
            ordering_key: event.ordering_key,
            created_at: event.created_at,
        }
    }
}

/// The body column as JSON. Written by publish as serialised JSON; a row that is not would
/// be corrupt.
fn payload(body: String) -> Box<RawValue> {
    RawValue::from_string(body).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// A published event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    #[serde(flatten)]
    pub event: EventMetadataResponse,
    /// The exact JSON body every delivery sends (and signs), byte for byte.
    #[schema(value_type = Object)]
    pub payload: Box<RawValue>,
}

impl From<Event> for EventResponse {
    fn from(event: Event) -> Self {
        Self {
            event: EventMetadata::from(&event).into(),
            payload: payload(event.body),
        }
    }
}

/// What publishing did.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublishedEventResponse {
    #[serde(flatten)]
    pub event: EventResponse,
    /// `false`: an event with this `id` existed; it is returned and nothing was sent.
    pub created: bool,
    /// One delivery per enabled endpoint whose `event_types` match.
    #[schema(value_type = Vec<String>)]
    pub deliveries: Vec<DeliveryId>,
}

/// An event with its deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDetailResponse {
    #[serde(flatten)]
    pub event: EventMetadataResponse,
    /// The exact JSON body every delivery sends, with the event's `data`. Only for `admin` and
    /// `write` keys (the read is audited); absent for `read` keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Box<RawValue>>,
    pub deliveries: Vec<DeliveryResponse>,
}

/// Publishes an event (`admin` or `write`): one delivery per matching endpoint, written in
/// the same transaction as the event. 202 when new, 200 when the `id` was published before.
#[utoipa::path(
    post, path = "/v1/events", tag = "events",
    params(TenantLookup),
    request_body = PublishEventRequest,
    responses(
        (status = 202, body = PublishedEventResponse),
        (status = 200, body = PublishedEventResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn publish_event(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<PublishEventRequest>,
) -> Result<(StatusCode, axum::Json<PublishedEventResponse>), ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Write)?;
    let new = NewEvent {
        event_type: request.event_type,
        data: request.data,
        id: request.id,
        ordering_key: request.ordering_key,
    };
    let published =
        switchyard_outbound::publish(&state.outbound.database, &state.vault, tenant, new)
            .await
            .map_err(outbound_error)?;
    let status = if published.created {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        axum::Json(PublishedEventResponse {
            event: published.event.into(),
            created: published.created,
            deliveries: published.deliveries,
        }),
    ))
}

/// Reads an event with its deliveries. The `payload` (with the event's data) is shown to
/// `admin` and `write` keys only, and each such read is audited; `read` keys get the metadata.
#[utoipa::path(
    get, path = "/v1/events/{event_id}", tag = "events",
    params(("event_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = EventDetailResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_event(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<MessageId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<EventDetailResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let database = &state.outbound.database;
    if principal.require_tenant(tenant, Role::Write).is_err() {
        // Not even decrypted for a key that may not see it.
        let detail = switchyard_outbound::get_event_metadata(database, tenant, id)
            .await
            .map_err(outbound_error)?;
        return Ok(axum::Json(EventDetailResponse {
            event: detail.event.into(),
            payload: None,
            deliveries: detail.deliveries.into_iter().map(Into::into).collect(),
        }));
    }
    let detail = switchyard_outbound::get_event(database, &state.vault, tenant, id)
        .await
        .map_err(outbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::EVENT_PAYLOAD_READ,
        format!("event:{id}"),
    )
    .await;
    Ok(axum::Json(EventDetailResponse {
        event: EventMetadata::from(&detail.event).into(),
        payload: Some(payload(detail.event.body)),
        deliveries: detail.deliveries.into_iter().map(Into::into).collect(),
    }))
}
