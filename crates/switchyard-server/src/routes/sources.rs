//! `/v1/sources`: a tenant's inbound webhook sources. The verification secret goes to the
//! vault; responses show only its fingerprint.

use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_audit::Action;
use switchyard_core::{ErrorCode, Role, SourceId, TenantId};
use switchyard_inbound::{
    InboundError,
    sources::{NewSource, Source, SourceUpdate},
};
use switchyard_webhooks::Scheme;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::{
    AppState, audit_trail,
    auth::Principal,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    pagination::{ListParams, ListResponse},
};

/// Which tenant a tenant-resource route acts for: a tenant key's own tenant, or for the
/// platform admin the `tenant_id` query parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantLookup {
    /// Platform admin only: the tenant to act for.
    pub tenant_id: Option<TenantId>,
}

/// The query of a tenant-resource list: the tenant (platform admin) and the page.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TenantListQuery {
    /// Platform admin only: the tenant to act for.
    pub tenant_id: Option<TenantId>,
    /// How many items to return (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl TenantListQuery {
    pub fn list_params(&self) -> ListParams {
        ListParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// The tenant a request acts for, with the role it needs.
pub fn acting_tenant(
    principal: &Principal,
    tenant_id: Option<TenantId>,
    role: Role,
) -> Result<TenantId, ApiError> {
    let tenant = match (principal, tenant_id) {
        (Principal::TenantKey(key), None) => key.tenant_id,
        (_, Some(tenant)) => tenant,
        (Principal::PlatformAdmin, None) => {
            return Err(ApiError::new(ErrorCode::InvalidQuery)
                .with_detail("the platform admin names the tenant with `tenant_id`"));
        }
    };
    principal.require_tenant(tenant, role)?;
    Ok(tenant)
}

/// The tenant of an existing source, checked in the order that leaks nothing: another
/// tenant's source is not found whatever the key's role, and only then is the role checked.
async fn owned_source(
    state: &AppState,
    principal: &Principal,
    tenant_id: Option<TenantId>,
    id: SourceId,
    role: Role,
) -> Result<TenantId, ApiError> {
    let tenant = acting_tenant(principal, tenant_id, Role::Read)?;
    state
        .inbound
        .sources
        .get(tenant, id)
        .await
        .map_err(inbound_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("source `{id}`")))?;
    principal.require_tenant(tenant, role)?;
    Ok(tenant)
}

/// Maps the gateway's errors onto the API's.
pub fn inbound_error(error: InboundError) -> ApiError {
    match error {
        InboundError::Config(_) | InboundError::Invalid(_) => {
            ApiError::new(ErrorCode::ValidationFailed).with_detail(error.to_string())
        }
        other => ApiError::internal(other),
    }
}

/// A new source.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSourceRequest {
    #[schema(example = "GitHub org events")]
    pub name: String,
    /// `standard_webhooks`, `svix`, `github`, `stripe`, `slack`, `shopify`, `linear`, `jira`,
    /// `gitlab`, `twilio`, `okta`, `microsoft_graph`, `aws_sns`, `google_pubsub`,
    /// `generic_hmac`, `basic_auth`, `api_key_header` or `none`.
    #[schema(value_type = String, example = "github")]
    pub scheme: Scheme,
    /// The verification secret (schemes with key material take it here too). Write-only.
    #[schema(value_type = Option<String>)]
    pub secret: Option<SecretString>,
    /// The scheme's options, plus `body_limit_bytes` and `dedup_window_seconds`
    /// (`docs/webhooks-inbound.md`).
    #[serde(default)]
    pub options: Value,
    /// Required with scheme `none`: accepting unverified requests must be explicit.
    #[serde(default)]
    pub allow_unverified: bool,
    pub connection_id: Option<String>,
}

/// Changes to a source; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSourceRequest {
    pub name: Option<String>,
    pub options: Option<Value>,
    pub allow_unverified: Option<bool>,
    /// `null` unlinks the connection.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub connection_id: Option<Option<String>>,
}

/// A new secret; the previous one stays accepted for the grace period.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSourceSecretRequest {
    #[schema(value_type = String)]
    pub secret: SecretString,
    /// Seconds the previous secret stays accepted (default 86400, at most 30 days).
    pub grace_period_seconds: Option<u64>,
}

/// A source (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceResponse {
    #[schema(value_type = String, example = "src_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: SourceId,
    pub tenant_id: TenantId,
    pub name: String,
    #[schema(value_type = String)]
    pub scheme: Scheme,
    pub options: Value,
    pub allow_unverified: bool,
    pub connection_id: Option<String>,
    /// Where the provider sends its webhooks.
    pub ingest_url: String,
    /// A keyed fingerprint of the current secret, to tell secrets apart.
    pub secret_fingerprint: Option<String>,
    /// While a rotation's grace period lasts: when the previous secret stops being accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub previous_secret_expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn response(state: &AppState, source: Source) -> SourceResponse {
    let ingest_url = state.inbound.ingest_url(source.id);
    let (fingerprint, previous) = match &source.secret {
        Some(secret) => (
            Some(secret.fingerprint.clone()),
            secret
                .previous
                .map(|(_, until)| until)
                .filter(|until| *until > OffsetDateTime::now_utc()),
        ),
        None => (None, None),
    };
    SourceResponse {
        id: source.id,
        tenant_id: source.tenant_id,
        name: source.name,
        scheme: source.scheme,
        options: source.options,
        allow_unverified: source.allow_unverified,
        connection_id: source.connection_id,
        ingest_url,
        secret_fingerprint: fingerprint,
        previous_secret_expires_at: previous,
        created_at: source.created_at,
        updated_at: source.updated_at,
    }
}

/// Creates a source (`admin` or `write` role).
#[utoipa::path(
    post, path = "/v1/sources", tag = "sources",
    params(TenantLookup),
    request_body = CreateSourceRequest,
    responses(
        (status = 201, body = SourceResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_source(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<CreateSourceRequest>,
) -> Result<(StatusCode, axum::Json<SourceResponse>), ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Write)?;
    let source = state
        .inbound
        .sources
        .create(
            &principal.audit_context(),
            tenant,
            NewSource {
                name: request.name,
                scheme: request.scheme,
                secret: request.secret,
                options: request.options,
                allow_unverified: request.allow_unverified,
                connection_id: request.connection_id,
            },
        )
        .await
        .map_err(inbound_error)?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::SOURCE_CREATE,
        format!("source:{}", source.id),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(response(&state, source))))
}

/// Lists sources by id.
#[utoipa::path(
    get, path = "/v1/sources", tag = "sources",
    params(TenantListQuery),
    responses(
        (status = 200, body = ListResponse<SourceResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_sources(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<axum::Json<ListResponse<SourceResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let page = query.list_params().page::<SourceId>(&state.api)?;
    let sources = state
        .inbound
        .sources
        .list(tenant, page.after, page.limit + 1)
        .await
        .map_err(inbound_error)?;
    Ok(axum::Json(ListResponse::new(
        switchyard_store::Page::from_overfetch(sources, page.limit, |source| source.id),
        |source| response(&state, source),
    )))
}

/// Reads a source.
#[utoipa::path(
    get, path = "/v1/sources/{source_id}", tag = "sources",
    params(("source_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = SourceResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_source(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<SourceId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<SourceResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let source = state
        .inbound
        .sources
        .get(tenant, id)
        .await
        .map_err(inbound_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("source `{id}`")))?;
    Ok(axum::Json(response(&state, source)))
}

/// Changes a source's name, options, `allow_unverified` or linked connection.
#[utoipa::path(
    patch, path = "/v1/sources/{source_id}", tag = "sources",
    params(("source_id" = String, Path), TenantLookup),
    request_body = UpdateSourceRequest,
    responses(
        (status = 200, body = SourceResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_source(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<SourceId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<UpdateSourceRequest>,
) -> Result<axum::Json<SourceResponse>, ApiError> {
    let tenant = owned_source(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let source = state
        .inbound
        .sources
        .update(
            tenant,
            id,
            SourceUpdate {
                name: request.name,
                options: request.options,
                allow_unverified: request.allow_unverified,
                connection_id: request.connection_id,
            },
        )
        .await
        .map_err(inbound_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("source `{id}`")))?;
    state.inbound.ingest_sources.forget(id);
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::SOURCE_UPDATE,
        format!("source:{id}"),
    )
    .await;
    Ok(axum::Json(response(&state, source)))
}

/// Deletes a source and destroys its secret; its ingest URL stops accepting at once here
/// and within the source cache TTL in other processes.
#[utoipa::path(
    delete, path = "/v1/sources/{source_id}", tag = "sources",
    params(("source_id" = String, Path), TenantLookup),
    responses(
        (status = 204),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_source(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<SourceId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<StatusCode, ApiError> {
    let tenant = owned_source(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let deleted = state
        .inbound
        .sources
        .delete(&principal.audit_context(), tenant, id)
        .await
        .map_err(inbound_error)?;
    if !deleted {
        return Err(ApiError::not_found(format_args!("source `{id}`")));
    }
    state.inbound.ingest_sources.forget(id);
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::SOURCE_DELETE,
        format!("source:{id}"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the secret; the previous one stays accepted for the grace period.
#[utoipa::path(
    post, path = "/v1/sources/{source_id}/rotate-secret", tag = "sources",
    params(("source_id" = String, Path), TenantLookup),
    request_body = RotateSourceSecretRequest,
    responses(
        (status = 200, body = SourceResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_source_secret(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<SourceId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<RotateSourceSecretRequest>,
) -> Result<axum::Json<SourceResponse>, ApiError> {
    let tenant = owned_source(&state, &principal, lookup.tenant_id, id, Role::Admin).await?;
    let grace = request.grace_period_seconds.unwrap_or(86_400);
    if grace > 30 * 86_400 {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .with_detail("grace_period_seconds: at most 2592000 (30 days)"));
    }
    let source = state
        .inbound
        .sources
        .rotate_secret(
            &principal.audit_context(),
            tenant,
            id,
            request.secret,
            Duration::from_secs(grace),
        )
        .await
        .map_err(inbound_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("source `{id}`")))?;
    state.inbound.ingest_sources.forget(id);
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::SOURCE_ROTATE_SECRET,
        format!("source:{id}"),
    )
    .await;
    Ok(axum::Json(response(&state, source)))
}
