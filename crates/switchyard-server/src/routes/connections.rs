//! `/v1/connections`: a tenant's accounts at providers. Credentials go to the vault on the
//! way in and never come back out: responses carry the auth mode and a fingerprint.

use axum::{extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_audit::Action;
use switchyard_connectors::CheckReport;
use switchyard_connectors::store::{
    Connection, ConnectionStatus, ConnectionUpdate, CredentialStatus,
};
use switchyard_core::{ConnectionId, ErrorCode, Role, TenantId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::sources::{TenantListQuery, TenantLookup, acting_tenant};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    connectors::{CreateConnection, store_error},
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    pagination::ListResponse,
};

/// Credential fields: write-only, never shown (not even in a debug print of the request).
#[derive(Deserialize, ToSchema)]
#[schema(value_type = Object, example = json!({"token": "ghp_…"}))]
pub struct CredentialFields(pub Map<String, Value>);

impl std::fmt::Debug for CredentialFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.0.keys().collect();
        write!(f, "CredentialFields({names:?})")
    }
}

/// A new connection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectionRequest {
    /// The connector's id (`GET /v1/providers`).
    #[schema(example = "github")]
    pub provider: String,
    /// Unique within the tenant.
    #[schema(example = "Acme GitHub")]
    pub name: String,
    /// The connector's settings, checked against its config form.
    #[serde(default = "empty_object")]
    #[schema(value_type = Object)]
    pub config: Value,
    /// The credential fields of the auth mode (`{"token": …}` for `bearer`). Stored in the
    /// vault; write-only.
    pub credentials: Option<CredentialFields>,
    /// The auth mode's `type`; may be left out when the connector has one.
    pub auth_mode: Option<String>,
    /// Overrides the connector's base URL (a self-hosted edition, a regional endpoint).
    pub base_url: Option<String>,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

/// Changes to a connection; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectionRequest {
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// `null` removes the override.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub base_url: Option<Option<String>>,
    /// `active` or `disabled` (a disabled connection's syncs and actions are refused).
    #[schema(value_type = Option<String>, example = "disabled")]
    pub status: Option<ConnectionStatus>,
    /// Apply only if the connection is still at this version (409 otherwise).
    pub expected_version: Option<i64>,
}

/// A new credential for a connection.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateCredentialsRequest {
    pub credentials: CredentialFields,
    /// Another auth mode of the connector; default the current one.
    pub auth_mode: Option<String>,
}

/// A connection (never its credential).
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionResponse {
    #[schema(value_type = String, example = "conn_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: ConnectionId,
    pub tenant_id: TenantId,
    pub provider: String,
    pub name: String,
    #[schema(value_type = Object)]
    pub config: Value,
    pub base_url: Option<String>,
    /// The auth mode of the stored credential; `null` without one.
    pub auth_mode: Option<String>,
    /// A keyed fingerprint of the credential in use, to tell credentials apart.
    pub credential_fingerprint: Option<String>,
    /// Its vault version: it grows with each rotation.
    pub credential_version: Option<u32>,
    #[schema(value_type = String, example = "active")]
    pub status: ConnectionStatus,
    /// `valid`, or `reauthorization_required` once the provider refused the connection's
    /// refresh token: calls are refused until a connect session naming this connection
    /// authorizes it again.
    #[schema(value_type = String, example = "valid")]
    pub credential_status: CredentialStatus,
    /// When the stored OAuth access token expires (refreshed ahead of it); `null` otherwise.
    #[serde(with = "time::serde::rfc3339::option")]
    pub credential_expires_at: Option<OffsetDateTime>,
    /// Bumped by every change; pass as `expected_version` for a safe update.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<Connection> for ConnectionResponse {
    fn from(connection: Connection) -> Self {
        let credential = connection.credential;
        Self {
            id: connection.id,
            tenant_id: connection.tenant_id,
            provider: connection.provider,
            name: connection.name,
            config: connection.config,
            base_url: connection.base_url,
            auth_mode: credential.as_ref().map(|c| c.mode.clone()),
            credential_fingerprint: credential.as_ref().map(|c| c.fingerprint.clone()),
            credential_version: credential.as_ref().map(|c| c.version),
            status: connection.status,
            credential_status: connection.credential_status,
            credential_expires_at: credential.as_ref().and_then(|c| c.expires_at),
            version: connection.version,
            created_at: connection.created_at,
            updated_at: connection.updated_at,
        }
    }
}

/// The outcome of a connection check.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectionTestResponse {
    pub success: bool,
    pub latency_ms: u64,
    /// Required scopes the provider reported granted.
    pub permissions_verified: Vec<String>,
    /// Required scopes it did not grant.
    pub permissions_missing: Vec<String>,
    /// Why it failed: `auth_failed`, `provider_error`, `rate_limited`, `provider_unavailable`…
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl From<CheckReport> for ConnectionTestResponse {
    fn from(report: CheckReport) -> Self {
        Self {
            success: report.success,
            latency_ms: report.latency_ms,
            permissions_verified: report.permissions_verified,
            permissions_missing: report.permissions_missing,
            error_code: report.error_code,
            error_message: report.error_message,
        }
    }
}

/// A rotation's outcome: the check of the new credential, and the connection as it is now
/// (unchanged when the check failed).
#[derive(Debug, Serialize, ToSchema)]
pub struct RotateCredentialsResponse {
    pub rotated: bool,
    pub test: ConnectionTestResponse,
    pub connection: ConnectionResponse,
}

/// The tenant's connection, checked in the order that leaks nothing: another tenant's is
/// not found whatever the key's role, and only then is the role checked.
pub(crate) async fn owned_connection(
    state: &AppState,
    principal: &Principal,
    tenant_id: Option<TenantId>,
    id: ConnectionId,
    role: Role,
) -> Result<Connection, ApiError> {
    let tenant = acting_tenant(principal, tenant_id, Role::Read)?;
    let connection = state.connectors.get(tenant, id).await?;
    principal.require_tenant(tenant, role)?;
    Ok(connection)
}

fn non_empty(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() || value.len() > 200 {
        return Err(ApiError::new(ErrorCode::ValidationFailed)
            .with_detail(format!("`{field}` must be 1 to 200 characters")));
    }
    Ok(())
}

/// Creates a connection (`write` role). The credential is stored in the vault; the
/// connection is not tested here (`POST /v1/connections/{id}/test` does).
#[utoipa::path(
    post, path = "/v1/connections", tag = "connections",
    params(TenantLookup),
    request_body = CreateConnectionRequest,
    responses(
        (status = 201, body = ConnectionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_connection(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<CreateConnectionRequest>,
) -> Result<(StatusCode, axum::Json<ConnectionResponse>), ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Write)?;
    non_empty("name", &request.name)?;
    let connection = state
        .connectors
        .create(
            &principal.audit_context(),
            tenant,
            CreateConnection {
                provider: request.provider,
                name: request.name,
                config: request.config,
                base_url: request.base_url,
                auth_mode: request.auth_mode,
                credentials: request.credentials.map(|c| c.0),
            },
        )
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::CONNECTION_CREATE,
        format!("connection:{}", connection.id),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(connection.into())))
}

/// Lists connections by id.
#[utoipa::path(
    get, path = "/v1/connections", tag = "connections",
    params(TenantListQuery),
    responses(
        (status = 200, body = ListResponse<ConnectionResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_connections(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<axum::Json<ListResponse<ConnectionResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let page = query.list_params().page::<ConnectionId>(&state.api)?;
    let connections = state
        .connectors
        .connections
        .list(&tenant, page.after.as_ref(), page.limit)
        .await
        .map_err(store_error)?;
    Ok(axum::Json(ListResponse::new(
        connections,
        ConnectionResponse::from,
    )))
}

/// Reads a connection.
#[utoipa::path(
    get, path = "/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = ConnectionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_connection(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<ConnectionResponse>, ApiError> {
    let connection = owned_connection(&state, &principal, lookup.tenant_id, id, Role::Read).await?;
    Ok(axum::Json(connection.into()))
}

/// Changes a connection's name, config, base URL or status.
#[utoipa::path(
    patch, path = "/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    request_body = UpdateConnectionRequest,
    responses(
        (status = 200, body = ConnectionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_connection(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<UpdateConnectionRequest>,
) -> Result<axum::Json<ConnectionResponse>, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    if let Some(name) = &request.name {
        non_empty("name", name)?;
    }
    let tenant = connection.tenant_id;
    let updated = state
        .connectors
        .update(
            tenant,
            id,
            ConnectionUpdate {
                name: request.name,
                config: request.config,
                base_url: request.base_url,
                credential: None,
                credential_status: None,
                status: request.status,
                expected_version: request.expected_version,
            },
        )
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::CONNECTION_UPDATE,
        format!("connection:{id}"),
    )
    .await;
    Ok(axum::Json(updated.into()))
}

/// Deletes a connection, its records and sync schedules, and destroys its credential.
#[utoipa::path(
    delete, path = "/v1/connections/{connection_id}", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    responses(
        (status = 204),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_connection(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<StatusCode, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let tenant = connection.tenant_id;
    super::syncs::delete_schedules(&state, &connection).await?;
    state
        .connectors
        .delete(&principal.audit_context(), tenant, id)
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::CONNECTION_DELETE,
        format!("connection:{id}"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Checks the connection's credential with the connector's check request.
#[utoipa::path(
    post, path = "/v1/connections/{connection_id}/test", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = ConnectionTestResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn test_connection(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<ConnectionTestResponse>, ApiError> {
    let connection = owned_connection(&state, &principal, lookup.tenant_id, id, Role::Read).await?;
    Ok(axum::Json(state.connectors.test(&connection).await?.into()))
}

/// Rotates the credential: the new one is stored, checked, and only on success put in use
/// and the old one destroyed. A failing new credential is discarded; the answer says why.
#[utoipa::path(
    post, path = "/v1/connections/{connection_id}/credentials/rotate", tag = "connections",
    params(("connection_id" = String, Path), TenantLookup),
    request_body = RotateCredentialsRequest,
    responses(
        (status = 200, body = RotateCredentialsResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_credentials(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<RotateCredentialsRequest>,
) -> Result<axum::Json<RotateCredentialsResponse>, ApiError> {
    let connection =
        owned_connection(&state, &principal, lookup.tenant_id, id, Role::Write).await?;
    let tenant = connection.tenant_id;
    let (connection, report) = state
        .connectors
        .rotate_credentials(
            &principal.audit_context(),
            &connection,
            request.auth_mode.as_deref(),
            &request.credentials.0,
        )
        .await?;
    let rotated = report.success;
    if rotated {
        audit_trail::record_change(
            &state,
            &principal,
            tenant,
            Action::CONNECTION_ROTATE_CREDENTIALS,
            format!("connection:{id}"),
        )
        .await;
    }
    Ok(axum::Json(RotateCredentialsResponse {
        rotated,
        test: report.into(),
        connection: connection.into(),
    }))
}
