//! The API's routes, one module per resource, assembled with their OpenAPI description.

pub mod actions;
pub mod api_keys;
pub mod audit_events;
pub mod captures;
pub mod connect_sessions;
pub mod connection_health;
pub mod connections;
pub mod deliveries;
pub mod endpoints;
pub mod events;
pub mod inbound_events;
pub mod ingest;
pub mod oauth_clients;
pub mod operations;
pub mod providers;
pub mod records;
pub mod runs;
pub mod sources;
pub mod syncs;
pub mod tenants;
mod validation;
pub mod vault;

/// For PATCH fields that can be cleared: with `#[serde(default)]`, an absent field is `None`
/// ("leave it") and `null` is `Some(None)` ("clear it").
pub(crate) mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

use axum::{Router, middleware};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{AppState, auth, idempotency, openapi::ApiDoc};

struct DocumentedRoutes {
    management: Router<AppState>,
    operations: Router<AppState>,
    document: utoipa::openapi::OpenApi,
}

/// Every documented route, before the layers that need a live state are applied.
fn documented_routes() -> DocumentedRoutes {
    let (management, management_document) = OpenApiRouter::new()
        .routes(routes!(tenants::create_tenant, tenants::list_tenants))
        .routes(routes!(tenants::get_tenant, tenants::delete_tenant))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::revoke_api_key))
        .routes(routes!(vault::list_data_keys))
        .routes(routes!(vault::rotate_dek))
        .routes(routes!(vault::complete_dek_rotation))
        .routes(routes!(audit_events::list_audit_events))
        .routes(routes!(runs::list_runs))
        .routes(routes!(runs::get_run))
        .routes(routes!(runs::retry_run))
        .routes(routes!(sources::create_source, sources::list_sources))
        .routes(routes!(
            sources::get_source,
            sources::update_source,
            sources::delete_source
        ))
        .routes(routes!(sources::rotate_source_secret))
        .routes(routes!(inbound_events::list_inbound_events))
        .routes(routes!(inbound_events::get_inbound_event))
        .routes(routes!(inbound_events::get_inbound_payload))
        .routes(routes!(inbound_events::replay_inbound_event))
        .routes(routes!(
            endpoints::create_endpoint,
            endpoints::list_endpoints
        ))
        .routes(routes!(
            endpoints::get_endpoint,
            endpoints::update_endpoint,
            endpoints::delete_endpoint
        ))
        .routes(routes!(endpoints::get_endpoint_secret))
        .routes(routes!(endpoints::rotate_endpoint_secret))
        .routes(routes!(endpoints::replay_endpoint))
        .routes(routes!(endpoints::list_endpoint_deliveries))
        .routes(routes!(events::publish_event))
        .routes(routes!(events::get_event))
        .routes(routes!(deliveries::get_delivery))
        .routes(routes!(deliveries::retry_delivery))
        .routes(routes!(connection_health::get_connection_health))
        .routes(routes!(providers::list_providers))
        .routes(routes!(providers::get_provider))
        .routes(routes!(
            connections::create_connection,
            connections::list_connections
        ))
        .routes(routes!(
            connections::get_connection,
            connections::update_connection,
            connections::delete_connection
        ))
        .routes(routes!(connections::test_connection))
        .routes(routes!(connections::rotate_credentials))
        .routes(routes!(captures::list_captures))
        .routes(routes!(captures::get_capture))
        .routes(routes!(syncs::list_syncs))
        .routes(routes!(syncs::set_sync, syncs::delete_sync))
        .routes(routes!(syncs::run_sync))
        .routes(routes!(syncs::reset_sync))
        .routes(routes!(records::list_records))
        .routes(routes!(actions::run_action))
        .routes(routes!(
            oauth_clients::create_oauth_client,
            oauth_clients::list_oauth_clients
        ))
        .routes(routes!(
            oauth_clients::get_oauth_client,
            oauth_clients::update_oauth_client,
            oauth_clients::delete_oauth_client
        ))
        .routes(routes!(
            connect_sessions::create_connect_session,
            connect_sessions::list_connect_sessions
        ))
        .routes(routes!(connect_sessions::get_connect_session))
        .split_for_parts();
    let (operations, mut document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(operations::healthz))
        .routes(routes!(operations::readyz))
        .split_for_parts();
    let (_, ingest_document) = OpenApiRouter::<AppState>::new()
        .routes(routes!(ingest::ingest))
        .split_for_parts();
    document.merge(ingest_document);
    document.merge(management_document);
    DocumentedRoutes {
        management,
        operations,
        document,
    }
}

/// The OpenAPI document alone (for `switchyard openapi` and the drift check).
pub fn openapi_only() -> utoipa::openapi::OpenApi {
    documented_routes().document
}

/// The operations routes, and with `serve_api` the `/v1` API, authenticated and with
/// idempotent POSTs. The document always describes the whole API.
pub fn router(state: &AppState, serve_api: bool) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let DocumentedRoutes {
        management,
        operations,
        document,
    } = documented_routes();
    // The last layer added runs first: authentication, then idempotency, which needs the
    // principal to scope keys.
    let management = management
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::middleware,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ));
    if serve_api {
        // Ingest takes any method a provider uses (handshakes are GET and OPTIONS), has no
        // bearer auth (the source's scheme verifies it) and its own per-source body limit.
        let ingest = Router::new().route(
            "/ingest/{source_id}",
            axum::routing::any(ingest::ingest).layer(axum::extract::DefaultBodyLimit::disable()),
        );
        // The connect pages are for end users' browsers: the session token in the path is
        // the capability, no bearer key.
        let connect = Router::new()
            .route(
                "/connect/{token}",
                axum::routing::get(crate::connect::connect_page),
            )
            .route(
                "/connect/{token}/oauth/{provider}",
                axum::routing::get(crate::connect::start_oauth),
            )
            .route(
                "/connect/{token}/credentials/{provider}",
                axum::routing::post(crate::connect::submit_credentials),
            )
            .route(
                "/oauth/callback",
                axum::routing::get(crate::connect::oauth_callback),
            );
        (
            operations.merge(management).merge(ingest).merge(connect),
            document,
        )
    } else {
        (operations, document)
    }
}
