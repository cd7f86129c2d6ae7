//! `/v1/endpoints`: a tenant's outbound webhook subscribers. The signing secret lives in the
//! vault; it is shown on creation and by the audited `GET …/secret`, never in other responses.
//! Custom header values live in the vault too and are write-only: responses name the headers.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchyard_audit::Action;
use switchyard_core::{EndpointId, ErrorCode, Role, TenantId};
use switchyard_outbound::{
    DeliveryStatus, Endpoint, EndpointUpdate, NewEndpoint, Ordering, OutboundError, ReplayFilter,
    RotateSecret,
};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use super::{
    deliveries::DeliveryResponse,
    sources::{TenantListQuery, TenantLookup, acting_tenant},
};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    idempotency::ReplayBody,
    pagination::ListResponse,
};

/// Longest grace period of a rotation.
const MAX_GRACE_SECONDS: u64 = 30 * 86_400;
/// Longest retry schedule an endpoint may set, and its longest single wait.
const MAX_RETRY_STEPS: usize = 32;
const MAX_RETRY_WAIT_SECONDS: u64 = 7 * 86_400;

/// Maps the outbound crate's errors onto the API's; internal ones show only "internal".
pub fn outbound_error(error: OutboundError) -> ApiError {
    match error.error_code() {
        ErrorCode::Internal => ApiError::internal(error),
        code => ApiError::new(code).with_detail(error.to_string()),
    }
}

/// The tenant of an existing endpoint, checked in the order that leaks nothing: another
/// tenant's endpoint is not found whatever the key's role, and only then is the role checked.
async fn owned_endpoint(
    state: &AppState,
    principal: &Principal,
    tenant_id: Option<TenantId>,
    id: EndpointId,
    role: Role,
) -> Result<(TenantId, Endpoint), ApiError> {
    let tenant = acting_tenant(principal, tenant_id, Role::Read)?;
    let endpoint = state
        .outbound
        .endpoints
        .get(tenant, id)
        .await
        .map_err(outbound_error)?;
    principal.require_tenant(tenant, role)?;
    Ok((tenant, endpoint))
}

fn parse_ordering(ordering: Option<&str>) -> Result<Option<Ordering>, ApiError> {
    ordering.map(str::parse).transpose().map_err(outbound_error)
}

fn retry_schedule(seconds: Vec<u64>) -> Result<Vec<Duration>, ApiError> {
    if seconds.is_empty() || seconds.len() > MAX_RETRY_STEPS {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .with_detail("retry_schedule_seconds: 1 to 32 waits"));
    }
    if seconds.iter().any(|&wait| wait > MAX_RETRY_WAIT_SECONDS) {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .with_detail("retry_schedule_seconds: each wait at most 604800 (7 days)"));
    }
    Ok(seconds.into_iter().map(Duration::from_secs).collect())
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpointRequest {
    /// Where deliveries are POSTed; `https` unless the operator allows `http`.
    #[schema(example = "https://hooks.example.com/switchyard")]
    pub url: String,
    #[serde(default)]
    pub description: String,
    /// Event types or patterns (`github.*`, `*`); empty: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Extra headers sent with every delivery, such as the receiver's `Authorization`.
    /// Write-only: the values are kept in the vault and responses show only `header_names`.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub headers: BTreeMap<String, SecretString>,
    /// Deliveries per second at most; absent: unlimited.
    pub rate_limit: Option<u32>,
    /// `none` (default) or `key`: events with the same `ordering_key` are delivered one at a
    /// time, in order.
    #[schema(example = "none")]
    pub ordering: Option<String>,
    /// This endpoint's waits before each attempt, in seconds (first: before the first
    /// attempt); absent: the server's schedule.
    pub retry_schedule_seconds: Option<Vec<u64>>,
    /// A `whsec_…` secret to use instead of a generated one (moving from another sender).
    /// Write-only.
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
    /// Also sign with ed25519 (`v1a`); the response carries the `whpk_…` public key.
    #[serde(default)]
    pub v1a: bool,
    /// `false` creates the endpoint disabled.
    pub enabled: Option<bool>,
}

/// Changes to an endpoint; absent fields stay as they are, `null` clears an optional one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEndpointRequest {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Replaces the whole set of extra headers; `null` or `{}` removes them. Write-only.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub headers: Option<Option<BTreeMap<String, SecretString>>>,
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<u32>)]
    pub rate_limit: Option<Option<u32>>,
    pub ordering: Option<String>,
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<Vec<u64>>)]
    pub retry_schedule_seconds: Option<Option<Vec<u64>>>,
    /// Enables or disables the endpoint. Enabling one that was disabled for failing gives it
    /// a fresh start.
    pub enabled: Option<bool>,
}

/// An endpoint (never its secret, nor its header values).
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointResponse {
    #[schema(value_type = String, example = "ep_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: EndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    /// Names of the extra headers sent with every delivery; their values are never shown.
    pub header_names: Vec<String>,
    pub rate_limit: Option<u32>,
    #[schema(example = "none")]
    pub ordering: &'static str,
    pub retry_schedule_seconds: Option<Vec<u64>>,
    pub enabled: bool,
    /// Why it is disabled (`gone`: it answered 410; `failing`: no success for too long;
    /// or the reason given when it was disabled through the API).
    pub disabled_reason: Option<String>,
    /// A keyed fingerprint of the current signing secret, to tell secrets apart.
    pub secret_fingerprint: String,
    /// The `whpk_…` key that verifies `v1a` signatures, when enabled.
    pub public_key: Option<String>,
    /// While a rotation's grace period lasts: when the previous secret stops signing.
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotation_expires_at: Option<OffsetDateTime>,
    /// The first failure since the last success; `null` while healthy.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Endpoint> for EndpointResponse {
    fn from(endpoint: Endpoint) -> Self {
        Self {
            id: endpoint.id,
            tenant_id: endpoint.tenant,
            url: endpoint.url,
            description: endpoint.description,
            event_types: endpoint.event_types,
            header_names: endpoint.header_names,
            rate_limit: endpoint.rate_limit,
            ordering: endpoint.ordering.as_str(),
            retry_schedule_seconds: endpoint
                .retry_schedule
                .map(|steps| steps.iter().map(Duration::as_secs).collect()),
            enabled: endpoint.enabled,
            disabled_reason: endpoint.disabled_reason,
            secret_fingerprint: endpoint.secret_fingerprint,
            public_key: endpoint.public_key,
            rotation_expires_at: endpoint
                .rotation_expires_at
                .filter(|until| *until > OffsetDateTime::now_utc()),
            failing_since: endpoint.failing_since,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// A new endpoint with its signing secret, shown here once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedEndpointResponse {
    #[serde(flatten)]
    pub endpoint: EndpointResponse,
    /// The `whsec_…` signing secret. Read it again with `GET /v1/endpoints/{id}/secret`.
    pub secret: String,
}

/// An endpoint's verification material.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointSecretResponse {
    /// The current `whsec_…`.
    pub secret: String,
    /// The previous secret while a rotation's grace period lasts (deliveries carry both
    /// signatures until then).
    pub previous_secret: Option<String>,
    pub public_key: Option<String>,
}

/// A new signing secret; the previous one keeps signing for the grace period.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateEndpointSecretRequest {
    /// A `whsec_…` to use; absent: generated.
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
    /// Seconds deliveries stay signed with the previous secret too (default 86400, at most
    /// 30 days; 0 stops it at once).
    pub grace_period_seconds: Option<u64>,
}

/// Which deliveries to send again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Deliveries created at or after this time (RFC 3339)…
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    /// …and before this one (absent: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// Only deliveries with these statuses (`succeeded`, `failed`); absent or empty: both.
    #[serde(default)]
    pub status: Vec<String>,
}

/// How many deliveries a replay queued again.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResponse {
    pub replayed: u64,
}

/// The query of an endpoint's delivery list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListQuery {
    /// Platform admin only: the tenant to act for.
    pub tenant_id: Option<TenantId>,
    /// `pending`, `sending`, `succeeded` or `failed`.
    pub status: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Creates an endpoint (`admin` or `write` role) and returns its signing secret once.
#[utoipa::path(
    post, path = "/v1/endpoints", tag = "endpoints",
    params(TenantLookup),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, body = CreatedEndpointResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<CreateEndpointRequest>,
) -> Result<Response, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Write)?;
    let ordering = parse_ordering(request.ordering.as_deref())?.unwrap_or_default();
    let retry = request
        .retry_schedule_seconds
        .map(retry_schedule)
        .transpose()?;
    let endpoints = &state.outbound.endpoints;
    let created = endpoints
        .create(
            &principal.audit_context(),
            tenant,
            NewEndpoint {
                url: request.url,
                description: request.description,
                event_types: request.event_types,
                headers: request.headers,
                rate_limit: request.rate_limit,
                ordering,
                retry_schedule: retry,
                secret: request.secret,
                v1a: request.v1a,
            },
        )
        .await
        .map_err(outbound_error)?;
    let mut endpoint = created.endpoint;
    if request.enabled == Some(false) {
        endpoint = endpoints
            .disable(tenant, endpoint.id, "disabled on creation")
            .await
            .map_err(outbound_error)?;
    }
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::ENDPOINT_CREATE,
        format!("endpoint:{}", endpoint.id),
    )
    .await;
    let shown = EndpointResponse::from(endpoint);
    // An idempotent replay of this request gets the endpoint without its secret, which is
    // then read with `GET …/secret`: the idempotency store never holds it.
    let replay = serde_json::to_vec(&shown).map_err(ApiError::internal)?;
    let body = CreatedEndpointResponse {
        endpoint: shown,
        secret: created.secret.expose_secret().to_owned(),
    };
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response
        .extensions_mut()
        .insert(ReplayBody(Bytes::from(replay)));
    Ok(response)
}

/// Lists endpoints by id.
#[utoipa::path(
    get, path = "/v1/endpoints", tag = "endpoints",
    params(TenantListQuery),
    responses(
        (status = 200, body = ListResponse<EndpointResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_endpoints(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<axum::Json<ListResponse<EndpointResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let page = query.list_params().page::<EndpointId>(&state.api)?;
    let endpoints = state
        .outbound
        .endpoints
        .list(tenant, page.after, page.limit)
        .await
        .map_err(outbound_error)?;
    Ok(axum::Json(ListResponse::new(
        endpoints,
        EndpointResponse::from,
    )))
}

/// Reads an endpoint.
#[utoipa::path(
    get, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    params(("endpoint_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = EndpointResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<EndpointResponse>, ApiError> {
    let (_, endpoint) =
        owned_endpoint(&state, &principal, lookup.tenant_id, id, Role::Read).await?;
    Ok(axum::Json(endpoint.into()))
}

/// Changes an endpoint, or enables or disables it (`admin` or `write`).
#[utoipa::path(
    patch, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    params(("endpoint_id" = String, Path), TenantLookup),
    request_body = UpdateEndpointRequest,
    responses(
        (status = 200, body = EndpointResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<UpdateEndpointRequest>,
) -> Result<axum::Json<EndpointResponse>, ApiError> {
    let (tenant, current) =
        owned_endpoint(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let update = EndpointUpdate {
        url: request.url,
        description: request.description,
        event_types: request.event_types,
        headers: request.headers,
        rate_limit: request.rate_limit,
        ordering: parse_ordering(request.ordering.as_deref())?,
        retry_schedule: request
            .retry_schedule_seconds
            .map(|steps| steps.map(retry_schedule).transpose())
            .transpose()?,
    };
    let endpoints = &state.outbound.endpoints;
    let mut endpoint = endpoints
        .update(&principal.audit_context(), tenant, id, update)
        .await
        .map_err(outbound_error)?;
    match request.enabled {
        Some(true) if !current.enabled => {
            endpoint = endpoints.enable(tenant, id).await.map_err(outbound_error)?;
        }
        Some(false) if current.enabled => {
            endpoint = endpoints
                .disable(tenant, id, "disabled through the API")
                .await
                .map_err(outbound_error)?;
        }
        _ => {}
    }
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::ENDPOINT_UPDATE,
        format!("endpoint:{id}"),
    )
    .await;
    Ok(axum::Json(endpoint.into()))
}

/// Deletes an endpoint with its deliveries and destroys its secrets.
#[utoipa::path(
    delete, path = "/v1/endpoints/{endpoint_id}", tag = "endpoints",
    params(("endpoint_id" = String, Path), TenantLookup),
    responses(
        (status = 204),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<StatusCode, ApiError> {
    let (tenant, _) = owned_endpoint(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    state
        .outbound
        .endpoints
        .delete(&principal.audit_context(), tenant, id)
        .await
        .map_err(outbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::ENDPOINT_DELETE,
        format!("endpoint:{id}"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// The endpoint's signing secret, and the previous one during a rotation (`admin`; audited).
#[utoipa::path(
    get, path = "/v1/endpoints/{endpoint_id}/secret", tag = "endpoints",
    params(("endpoint_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = EndpointSecretResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_endpoint_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<EndpointSecretResponse>, ApiError> {
    let (tenant, _) = owned_endpoint(&state, &principal, lookup.tenant_id, id, Role::Admin).await?;
    let secret = state
        .outbound
        .endpoints
        .get_secret(&principal.audit_context(), tenant, id)
        .await
        .map_err(outbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::ENDPOINT_SECRET_READ,
        format!("endpoint:{id}"),
    )
    .await;
    Ok(axum::Json(EndpointSecretResponse {
        secret: secret.secret.expose_secret().to_owned(),
        previous_secret: secret
            .previous
            .map(|previous| previous.expose_secret().to_owned()),
        public_key: secret.public_key,
    }))
}

/// Replaces the signing secret (`admin`); deliveries carry both signatures for the grace
/// period. Read the new secret with `GET …/secret`.
#[utoipa::path(
    post, path = "/v1/endpoints/{endpoint_id}/secret/rotate", tag = "endpoints",
    params(("endpoint_id" = String, Path), TenantLookup),
    request_body = RotateEndpointSecretRequest,
    responses(
        (status = 200, body = EndpointResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_endpoint_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<RotateEndpointSecretRequest>,
) -> Result<axum::Json<EndpointResponse>, ApiError> {
    let (tenant, _) = owned_endpoint(&state, &principal, lookup.tenant_id, id, Role::Admin).await?;
    if request
        .grace_period_seconds
        .is_some_and(|grace| grace > MAX_GRACE_SECONDS)
    {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .with_detail("grace_period_seconds: at most 2592000 (30 days)"));
    }
    let endpoints = &state.outbound.endpoints;
    endpoints
        .rotate_secret(
            &principal.audit_context(),
            tenant,
            id,
            RotateSecret {
                secret: request.secret,
                grace: request.grace_period_seconds.map(Duration::from_secs),
            },
        )
        .await
        .map_err(outbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::ENDPOINT_ROTATE_SECRET,
        format!("endpoint:{id}"),
    )
    .await;
    let endpoint = endpoints.get(tenant, id).await.map_err(outbound_error)?;
    Ok(axum::Json(endpoint.into()))
}

/// Sends the endpoint's finished deliveries in a time range again (`admin` or `write`):
/// same `webhook-id`, a fresh timestamp, signed with the current secret.
#[utoipa::path(
    post, path = "/v1/endpoints/{endpoint_id}/replay", tag = "endpoints",
    params(("endpoint_id" = String, Path), TenantLookup),
    request_body = ReplayRequest,
    responses(
        (status = 202, body = ReplayResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn replay_endpoint(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> Result<(StatusCode, axum::Json<ReplayResponse>), ApiError> {
    let (tenant, _) = owned_endpoint(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let statuses = request
        .status
        .iter()
        .map(|status| status.parse::<DeliveryStatus>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(outbound_error)?;
    if let Some(until) = request.until
        && until < request.since
    {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .with_detail("until: must not be before `since`"));
    }
    let filter = ReplayFilter {
        since: request.since,
        until: request.until,
        statuses,
    };
    let replayed = switchyard_outbound::replay(&state.outbound.database, tenant, id, filter)
        .await
        .map_err(outbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::ENDPOINT_REPLAY,
        format!("endpoint:{id}"),
    )
    .await;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ReplayResponse { replayed }),
    ))
}

/// The endpoint's deliveries by id, optionally of one status.
#[utoipa::path(
    get, path = "/v1/endpoints/{endpoint_id}/deliveries", tag = "endpoints",
    params(("endpoint_id" = String, Path), DeliveryListQuery),
    responses(
        (status = 200, body = ListResponse<DeliveryResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_endpoint_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<EndpointId>,
    ApiQuery(query): ApiQuery<DeliveryListQuery>,
) -> Result<axum::Json<ListResponse<DeliveryResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<DeliveryStatus>)
        .transpose()
        .map_err(|error| ApiError::new(ErrorCode::InvalidQuery).with_detail(error.to_string()))?;
    let page = crate::pagination::ListParams {
        limit: query.limit,
        cursor: query.cursor.clone(),
    }
    .page(&state.api)?;
    let deliveries = switchyard_outbound::list_deliveries(
        &state.outbound.database,
        tenant,
        id,
        status,
        page.after,
        page.limit,
    )
    .await
    .map_err(outbound_error)?;
    Ok(axum::Json(ListResponse::new(
        deliveries,
        DeliveryResponse::from,
    )))
}
