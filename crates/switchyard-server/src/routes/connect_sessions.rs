//! `/v1/connect-sessions`: a tenant's app asks for a connect URL to send its end user to.

use std::time::Duration;

use axum::{
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_audit::Action;
use switchyard_connectors::store::ConnectSession;
use switchyard_core::{ConnectSessionId, ConnectionId, ErrorCode, Role, TenantId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::sources::{TenantListQuery, TenantLookup, acting_tenant};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    connectors::store_error,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    idempotency::ReplayBody,
    oauth::connect::NewSession,
    pagination::ListResponse,
};

/// Who is connecting, in the tenant's own terms.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct EndUser {
    /// The tenant's id for its user (1 to 200 characters); connections made in the session
    /// are named `{provider}:{id}`.
    #[schema(example = "user-42")]
    pub id: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

/// A new connect session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnectSessionRequest {
    pub end_user: EndUser,
    /// The providers the user may connect. `provider` alone is the same as a list of one.
    #[serde(default)]
    pub allowed_providers: Vec<String>,
    #[schema(example = "slack")]
    pub provider: Option<String>,
    /// Where the user goes afterwards, with `connect_session_id`, `status`
    /// (`completed`/`failed`), `connection_id` and `error` in the query.
    pub redirect_url: Option<String>,
    /// A connection to repair in place (one whose `credential_status` is
    /// `reauthorization_required`, or any to re-authorize).
    #[schema(value_type = Option<String>)]
    pub connection_id: Option<ConnectionId>,
    /// Seconds until the session expires (default 1800).
    pub expires_in: Option<u64>,
    /// Per provider, connection settings the user is not asked for (`{"okta": {"domain": …}}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub config: Map<String, Value>,
}

/// A connect session. `token` and `connect_url` are returned once, on creation.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectSessionResponse {
    #[schema(value_type = String, example = "cse_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: ConnectSessionId,
    pub tenant_id: TenantId,
    #[schema(value_type = Object)]
    pub end_user: Value,
    pub allowed_providers: Vec<String>,
    pub redirect_url: Option<String>,
    #[schema(value_type = Option<String>)]
    pub connection_id: Option<ConnectionId>,
    /// `pending`, `completed`, `failed` or `expired`.
    pub status: String,
    /// When finished: the provider, the `connection_id` and its check, or the `error`.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<ConnectSession> for ConnectSessionResponse {
    fn from(session: ConnectSession) -> Self {
        let mut end_user = session.end_user;
        let mut status = session.status.as_str().to_owned();
        if status == "pending" && session.expires_at <= OffsetDateTime::now_utc() {
            status = "expired".to_owned();
        }
        if let Some(object) = end_user.as_object_mut() {
            object.remove("config");
        }
        Self {
            id: session.id,
            tenant_id: session.tenant_id,
            end_user,
            allowed_providers: session.allowed_providers,
            redirect_url: session.redirect_url,
            connection_id: session.connection_id,
            status,
            result: session.result,
            token: None,
            connect_url: None,
            expires_at: session.expires_at,
            created_at: session.created_at,
        }
    }
}

/// Creates a connect session (`write` role) and returns its connect URL.
#[utoipa::path(
    post, path = "/v1/connect-sessions", tag = "oauth",
    params(TenantLookup),
    request_body = CreateConnectSessionRequest,
    responses(
        (status = 201, body = ConnectSessionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_connect_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<CreateConnectSessionRequest>,
) -> Result<Response, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Write)?;
    let mut allowed = request.allowed_providers;
    if let Some(provider) = request.provider
        && !allowed.contains(&provider)
    {
        allowed.push(provider);
    }
    let end_user = serde_json::to_value(&request.end_user).map_err(ApiError::internal)?;
    if let Some(config) = request.config.values().find(|c| !c.is_object()) {
        return Err(
            ApiError::new(ErrorCode::ValidationFailed).with_detail(format!(
                "`config`: each provider's settings are an object, not {config}"
            )),
        );
    }
    let (session, token) = state
        .oauth
        .flows
        .create_session(
            &state.connectors,
            tenant,
            NewSession {
                end_user,
                allowed_providers: allowed,
                redirect_url: request.redirect_url,
                connection_id: request.connection_id,
                ttl: request.expires_in.map(Duration::from_secs),
                config: request.config,
            },
        )
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::CONNECT_SESSION_CREATE,
        format!("connect_session:{}", session.id),
    )
    .await;
    let connect_url = state.oauth.flows.connect_url(&token);
    let mut body = ConnectSessionResponse::from(session);
    // A replay (same Idempotency-Key) must not make us store the token: it gets the session
    // without it, and the caller creates a new session if it lost the URL.
    let replay = serde_json::to_vec(&body).map_err(ApiError::internal)?;
    body.token = Some(token);
    body.connect_url = Some(connect_url);
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
    response
        .extensions_mut()
        .insert(ReplayBody(Bytes::from(replay)));
    Ok(response)
}

/// Lists the tenant's connect sessions by id.
#[utoipa::path(
    get, path = "/v1/connect-sessions", tag = "oauth",
    params(TenantListQuery),
    responses(
        (status = 200, body = ListResponse<ConnectSessionResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_connect_sessions(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<axum::Json<ListResponse<ConnectSessionResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let page = query.list_params().page::<ConnectSessionId>(&state.api)?;
    let sessions = state
        .oauth
        .flows
        .sessions
        .list(&tenant, page.after.as_ref(), page.limit)
        .await
        .map_err(store_error)?;
    Ok(axum::Json(ListResponse::new(
        sessions,
        ConnectSessionResponse::from,
    )))
}

/// Reads a connect session: its status and, once finished, its result.
#[utoipa::path(
    get, path = "/v1/connect-sessions/{connect_session_id}", tag = "oauth",
    params(("connect_session_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = ConnectSessionResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_connect_session(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<ConnectSessionId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<ConnectSessionResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let session = state
        .oauth
        .flows
        .sessions
        .get(&tenant, &id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| ApiError::not_found(format_args!("connect session `{id}`")))?;
    Ok(axum::Json(session.into()))
}
