//! `/v1/tenants/{tenant_id}/api-keys`: a tenant's API keys, managed by the platform admin or
//! the tenant's `admin` keys. The secret key is returned once, at creation.

use axum::{
    body::Bytes,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use switchyard_audit::Action;
use switchyard_core::{ApiKeyId, Role, TenantId};
use switchyard_store::{ApiKey, NewApiKey};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::validation;
use crate::{
    AppState, audit_trail,
    auth::Principal,
    credentials,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    idempotency::ReplayBody,
    pagination::{ListParams, ListResponse},
};

/// A new API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// What the key is for, 1 to 200 characters.
    #[schema(example = "billing service")]
    pub name: String,
    pub role: Role,
}

/// An API key's metadata; the secret key itself is never shown again after creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResponse {
    pub id: ApiKeyId,
    pub tenant_id: TenantId,
    pub name: String,
    pub role: Role,
    /// The first characters of the key, to tell keys apart.
    #[schema(example = "sy_x3Fq9a")]
    pub prefix: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

/// A created API key, with the secret key shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyResponse {
    #[serde(flatten)]
    pub metadata: ApiKeyResponse,
    /// The key to send as `Authorization: Bearer …`. Store it now: it is not shown again,
    /// and an idempotent replay of this request returns the metadata without it.
    #[schema(example = "sy_x3Fq9a…")]
    pub key: String,
}

impl From<ApiKey> for ApiKeyResponse {
    fn from(key: ApiKey) -> Self {
        Self {
            id: key.id,
            tenant_id: key.tenant_id,
            name: key.name,
            role: key.role,
            prefix: key.prefix,
            created_at: key.created_at,
            revoked_at: key.revoked_at,
        }
    }
}

/// Creates an API key (platform admin or the tenant's `admin` keys).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/api-keys", tag = "api-keys",
    params(
        ("tenant_id" = TenantId, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST safe"),
    ),
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, body = CreatedApiKeyResponse, description = "Created; `key` is shown only here"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_api_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
    ApiJson(request): ApiJson<CreateApiKeyRequest>,
) -> Result<Response, ApiError> {
    principal.require_tenant(tenant_id, Role::Admin)?;
    let name = validation::name("name", &request.name)?;
    ensure_tenant_exists(&state, tenant_id).await?;
    let generated = credentials::generate_api_key();
    let key = state
        .store
        .create_api_key(NewApiKey {
            tenant_id,
            name,
            role: request.role,
            key_hash: generated.hash,
            prefix: generated.display_prefix,
        })
        .await?;
    tracing::info!(tenant_id = %tenant_id, key_id = %key.id, role = %key.role, "api key created");
    audit_trail::record_change(
        &state,
        &principal,
        tenant_id,
        Action::API_KEY_CREATE,
        format!("api_key:{}", key.id),
    )
    .await;

    let metadata = ApiKeyResponse::from(key);
    let location = format!("/v1/tenants/{tenant_id}/api-keys/{}", metadata.id);
    // A replay must not reveal the key again, and must not make us store it: keep only the
    // metadata for replays.
    let replay = serde_json::to_vec(&metadata).map_err(ApiError::internal)?;
    let body = CreatedApiKeyResponse {
        metadata,
        key: generated.key.expose_secret().to_owned(),
    };
    let mut response = (
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(body),
    )
        .into_response();
    response
        .extensions_mut()
        .insert(ReplayBody(Bytes::from(replay)));
    Ok(response)
}

/// Lists a tenant's API keys, revoked ones included (platform admin or `admin` keys).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/api-keys", tag = "api-keys",
    params(("tenant_id" = TenantId, Path), ListParams),
    responses(
        (status = 200, body = ListResponse<ApiKeyResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_api_keys(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<axum::Json<ListResponse<ApiKeyResponse>>, ApiError> {
    principal.require_tenant(tenant_id, Role::Admin)?;
    let page = params.page::<ApiKeyId>(&state.api)?;
    ensure_tenant_exists(&state, tenant_id).await?;
    let keys = state
        .store
        .list_api_keys(tenant_id, page.after, page.limit)
        .await?;
    Ok(axum::Json(ListResponse::new(keys, ApiKeyResponse::from)))
}

/// Revokes an API key at once (platform admin or `admin` keys). Revoking again is harmless.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}/api-keys/{key_id}", tag = "api-keys",
    params(("tenant_id" = TenantId, Path), ("key_id" = ApiKeyId, Path)),
    responses(
        (status = 200, body = ApiKeyResponse, description = "The revoked key"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_api_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((tenant_id, key_id)): ApiPath<(TenantId, ApiKeyId)>,
) -> Result<axum::Json<ApiKeyResponse>, ApiError> {
    principal.require_tenant(tenant_id, Role::Admin)?;
    let key = state
        .store
        .revoke_api_key(tenant_id, key_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("API key `{key_id}`")))?;
    tracing::info!(tenant_id = %tenant_id, key_id = %key_id, "api key revoked");
    audit_trail::record_change(
        &state,
        &principal,
        tenant_id,
        Action::API_KEY_REVOKE,
        format!("api_key:{key_id}"),
    )
    .await;
    Ok(axum::Json(key.into()))
}

async fn ensure_tenant_exists(state: &AppState, tenant_id: TenantId) -> Result<(), ApiError> {
    match state.store.get_tenant(tenant_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format_args!("tenant `{tenant_id}`"))),
    }
}
