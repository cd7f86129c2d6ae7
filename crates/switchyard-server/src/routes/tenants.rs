//! `/v1/tenants`: created and listed by the platform admin; a tenant's keys may read it.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use switchyard_core::{Role, TenantId};
use switchyard_store::{NewTenant, Tenant};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::validation;
use crate::{
    AppState,
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
