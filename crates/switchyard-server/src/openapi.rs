//! The OpenAPI 3.1 document, generated from the handlers' annotations.
//!
//! `docs/openapi.json` is the committed copy; a test fails when it drifts from the code
//! (`UPDATE_OPENAPI=1 cargo test -p switchyard-server openapi` rewrites it).

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchyard",
        description = "Self-hosted integration platform: credential vault, connectors, webhook gateway. \
                       Errors are RFC 9457 problem documents with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::Problem)),
    tags(
        (name = "tenants", description = "Tenants (platform admin)"),
        (name = "api-keys", description = "A tenant's API keys"),
        (name = "vault", description = "A tenant's data keys and their rotation"),
        (name = "audit", description = "The hash-chained audit log"),
        (name = "runs", description = "The record of work and its attempts"),
        (name = "endpoints", description = "Outbound webhook subscribers, their secrets and replays"),
        (name = "events", description = "Events published to subscribed endpoints"),
        (name = "deliveries", description = "Outbound deliveries, their attempts and retries"),
        (name = "providers", description = "The connector catalogue"),
        (name = "oauth", description = "OAuth client registrations and connect sessions"),
        (name = "connections", description = "Connections to providers: credentials, health, syncs, records and actions"),
        (name = "operations", description = "Health and readiness"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A tenant API key (`sy_…`) or the platform admin token",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as served on `/openapi.json` and committed in `docs/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    crate::routes::openapi_only()
}
