//! `/v1/oauth-clients`: a tenant's OAuth app registrations, one per provider. The client
//! secret or private key goes to the vault on the way in and never comes back out.

use axum::{extract::State, http::StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use switchyard_audit::Action;
use switchyard_connectors::store::OAuthClient;
use switchyard_core::{OAuthClientId, Role, TenantId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::sources::{TenantListQuery, TenantLookup, acting_tenant};
use crate::{
    AppState, audit_trail,
    auth::Principal,
    connectors::store_error,
    error::{ApiError, Problem},
    extract::{ApiJson, ApiPath, ApiQuery},
    oauth::clients::{ClientSecrets, NewRegistration, RegistrationUpdate},
    pagination::ListResponse,
};

/// A registration of the tenant's OAuth app at a provider.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOAuthClientRequest {
    /// The connector's id; it must have an `oauth2` authorization-code auth mode.
    #[schema(example = "slack")]
    pub provider: String,
    pub client_id: String,
    /// Write-only. Required unless the provider authenticates clients with `private_key_jwt`.
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    /// Write-only PEM, for providers that authenticate clients with `private_key_jwt`.
    #[schema(value_type = Option<String>)]
    pub private_key: Option<SecretString>,
    /// The `kid` the provider registered the public key under.
    pub key_id: Option<String>,
    /// Scopes to request; default the connector's.
    pub scopes: Option<Vec<String>>,
    /// The redirect URI registered at the provider; default `{public_url}/oauth/callback`.
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for CreateOAuthClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateOAuthClientRequest")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Changes to a registration; absent fields stay. New secrets replace the stored ones.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOAuthClientRequest {
    pub client_id: Option<String>,
    #[schema(value_type = Option<String>)]
    pub client_secret: Option<SecretString>,
    #[schema(value_type = Option<String>)]
    pub private_key: Option<SecretString>,
    pub key_id: Option<String>,
    pub scopes: Option<Vec<String>>,
    /// `null` goes back to the default callback URL.
    #[serde(default, with = "super::double_option")]
    #[schema(value_type = Option<String>)]
    pub redirect_uri: Option<Option<String>>,
}

impl std::fmt::Debug for UpdateOAuthClientRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateOAuthClientRequest")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// A registration (never its secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct OAuthClientResponse {
    #[schema(value_type = String, example = "oac_01JD2S5W8X3Q4R5T6V7W8X9Y0Z")]
    pub id: OAuthClientId,
    pub tenant_id: TenantId,
    pub provider: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    /// `null`: the server's callback URL.
    pub redirect_uri: Option<String>,
    /// A keyed fingerprint of the stored secret or key, to tell them apart.
    pub secret_fingerprint: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<OAuthClient> for OAuthClientResponse {
    fn from(client: OAuthClient) -> Self {
        Self {
            id: client.id,
            tenant_id: client.tenant_id,
            provider: client.provider,
            client_id: client.client_id,
            scopes: client.scopes,
            redirect_uri: client.redirect_uri,
            secret_fingerprint: client.secret.map(|s| s.fingerprint),
            created_at: client.created_at,
            updated_at: client.updated_at,
        }
    }
}

fn check_redirect(uri: Option<&str>) -> Result<(), ApiError> {
    match uri {
        Some(uri) if !(uri.starts_with("https://") || uri.starts_with("http://")) => {
            Err(ApiError::new(switchyard_core::ErrorCode::ValidationFailed)
                .with_detail("`redirect_uri`: an http(s) URL"))
        }
        _ => Ok(()),
    }
}

fn check_client_id(client_id: &str) -> Result<(), ApiError> {
    if client_id.trim().is_empty() || client_id.len() > 512 {
        return Err(ApiError::new(switchyard_core::ErrorCode::ValidationFailed)
            .with_detail("`client_id` must be 1 to 512 characters"));
    }
    Ok(())
}

/// Registers the tenant's OAuth app for a provider (`admin` role).
#[utoipa::path(
    post, path = "/v1/oauth-clients", tag = "oauth",
    params(TenantLookup),
    request_body = CreateOAuthClientRequest,
    responses(
        (status = 201, body = OAuthClientResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_oauth_client(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<CreateOAuthClientRequest>,
) -> Result<(StatusCode, axum::Json<OAuthClientResponse>), ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Admin)?;
    check_client_id(&request.client_id)?;
    check_redirect(request.redirect_uri.as_deref())?;
    let client = state
        .oauth
        .flows
        .clients
        .create(
            &principal.audit_context(),
            tenant,
            NewRegistration {
                provider: request.provider,
                client_id: request.client_id,
                secrets: ClientSecrets {
                    client_secret: request.client_secret,
                    private_key: request.private_key,
                    key_id: request.key_id,
                },
                scopes: request.scopes,
                redirect_uri: request.redirect_uri,
            },
        )
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::OAUTH_CLIENT_CREATE,
        format!("oauth_client:{}", client.id),
    )
    .await;
    Ok((StatusCode::CREATED, axum::Json(client.into())))
}

/// Lists the tenant's registrations by id.
#[utoipa::path(
    get, path = "/v1/oauth-clients", tag = "oauth",
    params(TenantListQuery),
    responses(
        (status = 200, body = ListResponse<OAuthClientResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_oauth_clients(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(query): ApiQuery<TenantListQuery>,
) -> Result<axum::Json<ListResponse<OAuthClientResponse>>, ApiError> {
    let tenant = acting_tenant(&principal, query.tenant_id, Role::Read)?;
    let page = query.list_params().page::<OAuthClientId>(&state.api)?;
    let clients = state
        .oauth
        .flows
        .clients
        .store
        .list(&tenant, page.after.as_ref(), page.limit)
        .await
        .map_err(store_error)?;
    Ok(axum::Json(ListResponse::new(
        clients,
        OAuthClientResponse::from,
    )))
}

/// Reads a registration.
#[utoipa::path(
    get, path = "/v1/oauth-clients/{oauth_client_id}", tag = "oauth",
    params(("oauth_client_id" = String, Path), TenantLookup),
    responses(
        (status = 200, body = OAuthClientResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_oauth_client(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<OAuthClientId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<axum::Json<OAuthClientResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    let client = state.oauth.flows.clients.get(tenant, id).await?;
    Ok(axum::Json(client.into()))
}

/// Changes a registration (`admin` role); new secrets become a new vault version.
#[utoipa::path(
    patch, path = "/v1/oauth-clients/{oauth_client_id}", tag = "oauth",
    params(("oauth_client_id" = String, Path), TenantLookup),
    request_body = UpdateOAuthClientRequest,
    responses(
        (status = 200, body = OAuthClientResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update_oauth_client(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<OAuthClientId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
    ApiJson(request): ApiJson<UpdateOAuthClientRequest>,
) -> Result<axum::Json<OAuthClientResponse>, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    // Another tenant's registration is not found, whatever the role.
    state.oauth.flows.clients.get(tenant, id).await?;
    principal.require_tenant(tenant, Role::Admin)?;
    if let Some(client_id) = &request.client_id {
        check_client_id(client_id)?;
    }
    check_redirect(request.redirect_uri.as_ref().and_then(Option::as_deref))?;
    if request.key_id.is_some() && request.private_key.is_none() {
        return Err(ApiError::new(switchyard_core::ErrorCode::ValidationFailed)
            .with_detail("`key_id` changes together with `private_key`"));
    }
    let secrets =
        (request.client_secret.is_some() || request.private_key.is_some()).then(|| ClientSecrets {
            client_secret: request.client_secret,
            private_key: request.private_key,
            key_id: request.key_id,
        });
    let client = state
        .oauth
        .flows
        .clients
        .update(
            &principal.audit_context(),
            tenant,
            id,
            RegistrationUpdate {
                client_id: request.client_id,
                secrets,
                scopes: request.scopes,
                redirect_uri: request.redirect_uri,
            },
        )
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::OAUTH_CLIENT_UPDATE,
        format!("oauth_client:{id}"),
    )
    .await;
    Ok(axum::Json(client.into()))
}

/// Deletes a registration and destroys its secret (`admin` role). Connections made with it
/// keep their tokens but can no longer refresh them.
#[utoipa::path(
    delete, path = "/v1/oauth-clients/{oauth_client_id}", tag = "oauth",
    params(("oauth_client_id" = String, Path), TenantLookup),
    responses(
        (status = 204),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn delete_oauth_client(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(id): ApiPath<OAuthClientId>,
    ApiQuery(lookup): ApiQuery<TenantLookup>,
) -> Result<StatusCode, ApiError> {
    let tenant = acting_tenant(&principal, lookup.tenant_id, Role::Read)?;
    state.oauth.flows.clients.get(tenant, id).await?;
    principal.require_tenant(tenant, Role::Admin)?;
    state
        .oauth
        .flows
        .clients
        .delete(&principal.audit_context(), tenant, id)
        .await?;
    audit_trail::record_change(
        &state,
        &principal,
        tenant,
        Action::OAUTH_CLIENT_DELETE,
        format!("oauth_client:{id}"),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
