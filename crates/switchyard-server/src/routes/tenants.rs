//! `/v1/tenants`: created and listed by the platform admin; a tenant's keys may read it.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use switchyard_audit::{Action, AuditEntry, Chain};
use switchyard_core::{Role, TenantId};
use switchyard_store::{NewTenant, Tenant};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::validation;
use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    pagination::{ListParams, ListResponse},
};

/// A new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    /// A display name, 1 to 200 characters.
    #[schema(example = "Acme Corp")]
    pub name: String,
    /// An optional label such as `live` or `sandbox`.
    #[schema(example = "live")]
    pub environment: Option<String>,
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantResponse {
    pub id: TenantId,
    pub name: String,
    pub environment: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<Tenant> for TenantResponse {
    fn from(tenant: Tenant) -> Self {
        Self {
            id: tenant.id,
            name: tenant.name,
            environment: tenant.environment,
            created_at: tenant.created_at,
        }
    }
}

/// Creates a tenant (platform admin).
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants",
    request_body = CreateTenantRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST safe")),
    responses(
        (status = 201, body = TenantResponse, description = "Created"),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_tenant(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<CreateTenantRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require_platform_admin()?;
    let new_tenant = NewTenant {
        name: validation::name("name", &request.name)?,
        environment: request
            .environment
            .as_deref()
            .map(|label| validation::label("environment", label))
            .transpose()?,
    };
    let tenant = state.store.create_tenant(new_tenant).await?;
    tracing::info!(tenant_id = %tenant.id, "tenant created");
    audit_trail::record_change(
        &state,
        &principal,
        tenant.id,
        Action::TENANT_CREATE,
        format!("tenant:{}", tenant.id),
    )
    .await;
    let location = format!("/v1/tenants/{}", tenant.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(TenantResponse::from(tenant)),
    ))
}

/// Lists tenants in creation order (platform admin).
#[utoipa::path(
    get, path = "/v1/tenants", tag = "tenants",
    params(ListParams),
    responses(
        (status = 200, body = ListResponse<TenantResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_tenants(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<axum::Json<ListResponse<TenantResponse>>, ApiError> {
    principal.require_platform_admin()?;
    let page = params.page::<TenantId>(&state.api)?;
    let tenants = state.store.list_all_tenants(page.after, page.limit).await?;
    Ok(axum::Json(ListResponse::new(tenants, TenantResponse::from)))
}

/// Reads a tenant (platform admin, or any key of that tenant).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, body = TenantResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_tenant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
) -> Result<axum::Json<TenantResponse>, ApiError> {
    principal.require_tenant(tenant_id, Role::Read)?;
    let tenant = state
        .store
        .get_tenant(tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("tenant `{tenant_id}`")))?;
    Ok(axum::Json(tenant.into()))
}

/// A deleted tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedTenantResponse {
    pub id: TenantId,
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_at: OffsetDateTime,
    /// When the tenant's remaining rows will be purged.
    #[serde(with = "time::serde::rfc3339")]
    pub purge_after: OffsetDateTime,
}

/// Deletes a tenant (platform admin). Its data keys are destroyed first, so every secret and
/// blob of the tenant is unreadable at once (crypto-shredding); its API keys stop working and
/// the tenant disappears from the API. The remaining rows are purged after
/// `retention.deleted_tenants`. Audit entries are kept.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant_id}", tag = "tenants",
    params(("tenant_id" = TenantId, Path)),
    responses(
        (status = 200, body = DeletedTenantResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_tenant(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(tenant_id): ApiPath<TenantId>,
) -> Result<axum::Json<DeletedTenantResponse>, ApiError> {
    principal.require_platform_admin()?;
    if state.store.get_tenant(tenant_id).await?.is_none() {
        return Err(ApiError::not_found(format_args!("tenant `{tenant_id}`")));
    }
    // Keys first: once they are gone nothing of the tenant can be decrypted, whatever happens
    // to the rest of this request.
    let shredded = state
        .vault
        .shred_tenant(&principal.audit_context(), tenant_id)
        .await
        .map_err(ApiError::internal)?;
    // The tenant's synced provider data goes with it (its credentials went with the keys).
    let connections = state
        .connectors
        .connections
        .delete_tenant(&tenant_id)
        .await
        .map_err(ApiError::internal)?;
    let tenant = state
        .store
        .mark_tenant_deleted(tenant_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format_args!("tenant `{tenant_id}`")))?;
    let deleted_at = tenant.deleted_at.unwrap_or_else(OffsetDateTime::now_utc);
    let context = principal.audit_context();
    let mut entry = AuditEntry::new(
        Chain::Tenant(tenant_id),
        context.actor,
        Action::TENANT_DELETE,
        format!("tenant:{tenant_id}"),
    );
    if let Some(request_id) = context.request_id {
        entry = entry.with_request_id(request_id);
    }
    // Durable before we answer: a deletion must never go unrecorded.
    state
        .audit
        .record_and_wait(entry)
        .await
        .map_err(ApiError::internal)?;
    tracing::info!(
        tenant_id = %tenant_id,
        destroyed_keys = shredded.keys,
        destroyed_secret_versions = shredded.secret_versions,
        deleted_connections = connections,
        "tenant deleted"
    );
    let retention = time::Duration::try_from(state.retention_deleted_tenants)
        .unwrap_or(time::Duration::days(30));
    Ok(axum::Json(DeletedTenantResponse {
        id: tenant_id,
        deleted_at,
        purge_after: deleted_at + retention,
    }))
}
