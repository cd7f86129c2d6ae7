//! `/v1/tenants/{tenant_id}/vault/…`: a tenant's data keys and their rotation (platform admin
//! or the tenant's `admin` keys). Secrets themselves are stored by the features that own them
//! (connections, sources, endpoints), never through a generic secrets API.

use axum::{extract::State, http::StatusCode};
use serde::Serialize;
use switchyard_core::{ErrorCode, Role, TenantId};
use switchyard_vault::{DataKeyInfo, VaultError};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Principal,
    background,
    error::{ApiError, Problem},
    extract::ApiPath,
    rotation::CompletionError,
};

/// One version of a tenant data key (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub struct DataKeyResponse {
    pub version: u32,
    /// `active` (encrypts new data), `decrypt_only` (rotated out, still readable),
    /// `retired` or `destroyed`.
    pub state: &'static str,
    /// The KEK wrapping it; absent once retired or destroyed.
    pub kek_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<DataKeyInfo> for DataKeyResponse {
    fn from(key: DataKeyInfo) -> Self {
        Self {
            version: key.version,
            state: key.state.as_str(),
            kek_id: key.kek_id,
            created_at: key.created_at,
        }
    }
}

/// The data keys of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataKeysResponse {
    pub data: Vec<DataKeyResponse>,
}

/// A started data-key rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DekRotationResponse {
    /// The new active data key version.
    pub version: u32,
    /// After this time the server re-encrypts the tenant's secrets onto the new key and
    /// retires the old ones (other processes may cache the old key until then).
    #[serde(with = "time::serde::rfc3339")]
    pub completes_after: OffsetDateTime,
    /// The run that completes the rotation (see `GET /v1/runs/{run_id}`).
    #[schema(example = "run_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub run_id: String,
}

/// A completed data-key rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct DekCompletionResponse {
    /// Secret versions moved onto the active key.
    pub reencrypted: u64,
    /// Stored data re-sealed with the active key before the old keys were retired.
    pub resealed: ResealedResponse,
    /// Data key versions retired.
    pub retired: Vec<u32>,
}

/// Stored data moved onto the active data key, by kind.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResealedResponse {
    /// Raw inbound webhook requests.
    pub inbound_payloads: u64,
    /// Outbound event bodies.
    pub event_bodies: u64,
    /// Kept response bodies of delivery attempts.
    pub response_bodies: u64,
}

/// Lists the tenant's data keys.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}/vault/data-keys", tag = "vault",
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, body = DataKeysResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_data_keys(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
) -> Result<axum::Json<DataKeysResponse>, ApiError> {
    require_live_tenant(&state, &principal, tenant_id).await?;
    let keys = state
        .vault
        .data_keys(tenant_id)
        .await
        .map_err(vault_error)?;
    Ok(axum::Json(DataKeysResponse {
        data: keys.into_iter().map(DataKeyResponse::from).collect(),
    }))
}

/// Rotates the tenant's data key: new secrets and blobs use a new key at once. Once the key
/// cache TTL has passed, a job re-seals the tenant's stored data and re-encrypts its secrets
/// onto it and retires the old key (its run is `run_id`), or run
/// `switchyard vault complete-dek-rotation`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/vault/rotate-dek", tag = "vault",
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 202, body = DekRotationResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_dek(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
) -> Result<(StatusCode, axum::Json<DekRotationResponse>), ApiError> {
    require_live_tenant(&state, &principal, tenant_id).await?;
    let version = state
        .vault
        .rotate_dek(&principal.audit_context(), tenant_id)
        .await
        .map_err(vault_error)?;
    // Durable: a job in the store of record, run once the key cache has expired everywhere.
    let grace = state.vault_key_cache_ttl + std::time::Duration::from_secs(1);
    let completes_after =
        OffsetDateTime::now_utc() + time::Duration::try_from(grace).unwrap_or(time::Duration::ZERO);
    let run_id = background::enqueue_dek_completion(
        state.store.database(),
        &state.runs,
        tenant_id,
        version,
        completes_after,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(DekRotationResponse {
            version,
            completes_after,
            run_id: run_id.to_string(),
        }),
    ))
}

/// Re-seals the tenant's stored data (inbound payloads, outbound event and response bodies)
/// and re-encrypts its secrets onto the active data key, then retires rotated-out keys.
/// `409 conflict` until the key cache TTL has passed since the rotation; safe to repeat.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant_id}/vault/complete-dek-rotation", tag = "vault",
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, body = DekCompletionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn complete_dek_rotation(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
) -> Result<axum::Json<DekCompletionResponse>, ApiError> {
    require_live_tenant(&state, &principal, tenant_id).await?;
    let report = state
        .rotation
        .complete(&principal.audit_context(), tenant_id)
        .await
        .map_err(|error| match error {
            CompletionError::Vault(error) => vault_error(error),
            other => ApiError::internal(other),
        })?;
    Ok(axum::Json(DekCompletionResponse {
        reencrypted: report.reencrypted,
        resealed: ResealedResponse {
            inbound_payloads: report.inbound_payloads,
            event_bodies: report.outbound.event_bodies,
            response_bodies: report.outbound.response_bodies,
        },
        retired: report.retired,
    }))
}

async fn require_live_tenant(
    state: &AppState,
    principal: &Principal,
    tenant_id: TenantId,
) -> Result<(), ApiError> {
    principal.require_tenant(tenant_id, Role::Admin)?;
    match state.store.get_tenant(tenant_id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format_args!("tenant `{tenant_id}`"))),
    }
}

fn vault_error(error: VaultError) -> ApiError {
    match error {
        VaultError::DekRetireTooEarly { .. } | VaultError::DekRetireRefused { .. } => {
            ApiError::new(ErrorCode::Conflict).with_detail(
                "the rotated-out key may still be cached by other processes; retry after the key cache TTL",
            )
        }
        VaultError::Conflict { .. } => {
            ApiError::new(ErrorCode::Conflict).with_detail("a concurrent change won; retry")
        }
        other => ApiError::internal(other),
    }
}
