//! `/ingest/{source_id}`: where providers push webhooks. Unauthenticated, but every request
//! is verified by its source's scheme, on the raw bytes, before anything is stored.
//!
//! Order: size limit (413; a body cut short by the client is 400 and counted as
//! `incomplete`) → handshake (answered at once) → verification (401 with a reason) → durable
//! write through the ingest writer (dedup claim, encrypted request, metadata row and
//! processing job in one commit) → 200 `{"id", "duplicate"}`.
//!
//! Once the delivery is handed to the writer, the durable part no longer depends on this
//! request: a client that disconnects drops only the wait for the answer (see
//! `switchyard_inbound::writer`).

use std::time::Instant;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use switchyard_core::{ErrorCode, InboundEventId, SourceId};
use switchyard_inbound::{
    envelope::StoredRequest,
    events,
    writer::{Delivery, Stored},
};
use switchyard_webhooks::{HandshakeAction, Inbound, InboundRequest};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{AppState, error::ApiError};

/// What a provider gets back for an accepted delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// The inbound event (for a duplicate: the first delivery's, when known).
    pub id: Option<InboundEventId>,
    /// `true` when this delivery id was already received within the source's dedup window;
    /// it is not processed again.
    pub duplicate: bool,
}

/// Receives a webhook for a source (any method a provider uses: POST for deliveries, GET
/// and OPTIONS for handshakes).
#[utoipa::path(
    post, path = "/ingest/{source_id}", tag = "ingest",
    params(("source_id" = String, Path, example = "src_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")),
    request_body(content = Vec<u8>, description = "The provider's raw payload", content_type = "application/octet-stream"),
    responses(
        (status = 200, body = IngestResponse, description = "Stored durably (or a duplicate), or a handshake answered"),
        (status = 400, body = crate::error::Problem, content_type = "application/problem+json", description = "The body ended before it was complete (`invalid_body`)"),
        (status = 401, body = crate::error::Problem, content_type = "application/problem+json", description = "Verification failed: `reason` says why"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn ingest(
    State(state): State<AppState>,
    Path(source_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let received_at = OffsetDateTime::now_utc();
    let gateway = &state.inbound;
    let not_found = || ApiError::not_found(format_args!("source `{source_id}`"));
    let id: SourceId = source_id.parse().map_err(|_| not_found())?;
    let resolved = gateway
        .ingest_sources
        .get(id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(not_found)?;
    let source = &resolved.source;

    let limit = source.body_limit(gateway.default_body_limit);
    let body = match axum::body::to_bytes(body, limit).await {
        Ok(body) => body,
        Err(error) if is_over_limit(&error) => {
            count("rejected", Some("payload_too_large"));
            return Err(ApiError::new(ErrorCode::PayloadTooLarge)
                .with_detail(format!("this source accepts at most {limit} bytes")));
        }
        Err(_) => {
            // The client went away (or broke the framing) before the body was complete:
            // nothing to verify or store, and not a size problem.
            count("incomplete", None);
            return Err(ApiError::new(ErrorCode::InvalidBody)
                .with_detail("the request body ended before it was complete"));
        }
    };
    // The URL the provider was given: Twilio signs it, and it is stored with the request.
    let public = format!(
        "{}{}",
        gateway.public_url,
        uri.path_and_query().map_or("", |pq| pq.as_str())
    );
    let url = url::Url::parse(&public).map_err(ApiError::internal)?;
    let request = InboundRequest {
        method: &method,
        url: &url,
        headers: &headers,
        body: &body,
        received_at,
    };
    let verified = match switchyard_webhooks::process(
        &resolved.config,
        &resolved.secrets,
        &request,
        &gateway.keys,
    )
    .await
    {
        Ok(Inbound::Delivery(verified)) => verified,
        Ok(Inbound::Handshake(handshake)) => {
            count("handshake", None);
            return handshake_response(&state, handshake.action).await;
        }
        Err(rejection) => {
            count("rejected", Some(rejection.code()));
            return Err(ApiError::new(ErrorCode::WebhookVerificationFailed)
                .with_reason(rejection.code())
                .with_detail(format!(
                    "the request failed `{}` verification",
                    source.scheme.as_str()
                )));
        }
    };

    let event_id = InboundEventId::generate();
    let stored = StoredRequest {
        method: method.to_string(),
        url: public,
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
        received_at,
        body: body.to_vec(),
    };
    let plain = stored.encode().map_err(ApiError::internal)?;
    let sealed = state
        .vault
        .encrypt_blob(source.tenant_id, &events::aad(event_id), &plain)
        .await
        .map_err(ApiError::internal)?;
    let delivery = Delivery {
        id: event_id,
        tenant: source.tenant_id,
        source: source.id,
        dedup_key: verified.delivery_id,
        dedup_for: source.dedup_window(gateway.default_dedup_window),
        event_type: verified.event_type,
        sealed,
        body_bytes: body.len(),
        received_at,
    };
    let outcome = gateway
        .writer
        .store(delivery)
        .await
        .map_err(|error| match error.as_ref() {
            switchyard_inbound::InboundError::WriterStopped => {
                ApiError::new(ErrorCode::Unavailable)
            }
            _ => ApiError::internal(error.to_string()),
        })?;
    metrics::histogram!("switchyard_inbound_ack_seconds").record(started.elapsed().as_secs_f64());
    metrics::counter!("switchyard_inbound_bytes_total").increment(body.len() as u64);
    let response = match outcome {
        Stored::Accepted(id) => {
            count("accepted", None);
            IngestResponse {
                id: Some(id),
                duplicate: false,
            }
        }
        Stored::Duplicate(id) => {
            count("duplicate", None);
            IngestResponse {
                id,
                duplicate: true,
            }
        }
    };
    Ok((StatusCode::OK, axum::Json(response)).into_response())
}

/// Whether reading the body stopped at the size limit (rather than because the client went
/// away or the framing broke).
fn is_over_limit(error: &axum::Error) -> bool {
    std::error::Error::source(error)
        .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>())
}

fn count(outcome: &'static str, reason: Option<&'static str>) {
    metrics::counter!(
        "switchyard_inbound_requests_total",
        "outcome" => outcome,
        "reason" => reason.unwrap_or("")
    )
    .increment(1);
}

async fn handshake_response(
    state: &AppState,
    action: HandshakeAction,
) -> Result<Response, ApiError> {
    match action {
        HandshakeAction::Reply(reply) => {
            let mut response = Response::new(Body::from(reply.body));
            *response.status_mut() = reply.status;
            *response.headers_mut() = reply.headers;
            Ok(response)
        }
        HandshakeAction::ConfirmSubscription { subscribe_url } => {
            // The subscription is confirmed by fetching its URL, through the SSRF guard.
            let http = &state.inbound.http;
            let request = http.get(subscribe_url).map_err(|denied| {
                ApiError::new(ErrorCode::ValidationFailed)
                    .with_detail(format!("the SubscribeURL was refused: {}", denied.code()))
            })?;
            let confirmed = http
                .send(request)
                .await
                .map_err(|error| ApiError::internal(error.code()))?;
            if !confirmed.status().is_success() {
                return Err(ApiError::new(ErrorCode::Unavailable).with_detail(format!(
                    "confirming the subscription answered {}",
                    confirmed.status().as_u16()
                )));
            }
            Ok(StatusCode::OK.into_response())
        }
    }
}
