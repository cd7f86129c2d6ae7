//! `/v1/providers`: the connector catalogue (built-in connectors and the configured
//! directory's), with what each offers: auth modes, config form, streams, actions, webhook
//! events.

use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use switchyard_connectors::ConnectorMetadata;
use utoipa::ToSchema;

use crate::{
    AppState,
    auth::Principal,
    error::{ApiError, Problem},
    extract::ApiPath,
};

/// A connector as the catalogue lists it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderResponse {
    #[schema(example = "github")]
    pub id: String,
    pub name: String,
    /// The manifest's version (semver).
    pub version: String,
    pub categories: Vec<String>,
    pub docs_url: Option<String>,
    /// Each mode's `type` and the `credentials` fields a connection using it supplies.
    #[schema(value_type = Vec<Object>)]
    pub auth_modes: Value,
    /// The connection `config` form (JSON Schema).
    #[schema(value_type = Object)]
    pub config_schema: Value,
    /// `name`, `description`, `incremental` (`full_refresh`, `updated_since`, `etag`,
    /// `delta_token`) and `unified_model` of each stream.
    #[schema(value_type = Vec<Object>)]
    pub streams: Value,
    /// `name`, `description`, `input_schema` and `idempotent` of each action.
    #[schema(value_type = Vec<Object>)]
    pub actions: Value,
    /// Webhook event types (or `prefix*`) the connector reacts to.
    pub webhook_events: Vec<String>,
}

impl From<&ConnectorMetadata> for ProviderResponse {
    fn from(metadata: &ConnectorMetadata) -> Self {
        // Serializing plain data structures cannot fail.
        fn json(value: &impl Serialize) -> Value {
            serde_json::to_value(value).unwrap_or_default()
        }
        Self {
            id: metadata.id.clone(),
            name: metadata.name.clone(),
            version: metadata.version.clone(),
            categories: metadata.categories.clone(),
            docs_url: metadata.docs_url.clone(),
            auth_modes: json(&metadata.auth_modes),
            config_schema: metadata.config_schema.clone(),
            streams: json(&metadata.streams),
            actions: json(&metadata.actions),
            webhook_events: metadata.webhook_events.clone(),
        }
    }
}

/// Every connector, by id. Any authenticated caller may read the catalogue.
#[utoipa::path(
    get, path = "/v1/providers", tag = "providers",
    responses(
        (status = 200, body = Vec<ProviderResponse>),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_providers(
    State(state): State<AppState>,
    _principal: Principal,
) -> axum::Json<Vec<ProviderResponse>> {
    let registry = state.connectors.catalogue.registry();
    axum::Json(registry.list().map(ProviderResponse::from).collect())
}

/// One connector.
#[utoipa::path(
    get, path = "/v1/providers/{provider_id}", tag = "providers",
    params(("provider_id" = String, Path)),
    responses(
        (status = 200, body = ProviderResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_provider(
    State(state): State<AppState>,
    _principal: Principal,
    ApiPath(id): ApiPath<String>,
) -> Result<axum::Json<ProviderResponse>, ApiError> {
    let connector = state.connectors.connector(&id)?;
    Ok(axum::Json(ProviderResponse::from(connector.metadata())))
}
