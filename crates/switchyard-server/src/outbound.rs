//! Outbound webhook delivery as the server holds it: the endpoint store the API routes use,
//! the dispatcher's settings from configuration, and the sink through which inbound
//! canonical events fan out to subscribed endpoints.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use switchyard_audit::Actor;
use switchyard_http::{JitteredSchedule, SsrfPolicy};
use switchyard_inbound::{events::InboundEvent, process::EventSink};
use switchyard_outbound::{
    DispatcherConfig, Endpoints, EndpointsConfig, NewEvent, OutboundError, publish,
};
use switchyard_store::Database;
use switchyard_vault::{AuditContext, AuditedVault};

/// Everything the endpoint, event and delivery routes share.
pub struct OutboundApi {
    pub endpoints: Endpoints,
    pub database: Database,
}

/// Moves endpoint header values saved before they went to the vault (migration 0011) out of
/// the database row. At startup, before the dispatcher sends anything: a delivery in between
/// would go out without them. SQL cannot do it (only the server holds the vault key), and
/// doing it once here keeps every later read on one shape.
///
/// # Errors
/// The vault's or the database's; the start fails rather than leave them in plain text.
pub async fn move_legacy_headers(endpoints: &Endpoints) -> Result<(), OutboundError> {
    let context = AuditContext::new(Actor::Internal {
        component: "outbound.startup".to_owned(),
        run_id: None,
    });
    let moved = endpoints.move_legacy_headers(&context).await?;
    if moved > 0 {
        tracing::info!(
            endpoints = moved,
            "moved endpoint header values into the vault"
        );
    }
    Ok(())
}

/// The endpoint store's settings from `[outbound]`.
pub fn endpoints_config(config: &switchyard_config::OutboundConfig) -> EndpointsConfig {
    EndpointsConfig {
        allow_http: config.allow_http,
        rotation_grace: config.rotation_grace,
    }
}

/// The dispatcher's settings from `[outbound]`; everything else keeps its production default.
pub fn dispatcher_config(
    config: &switchyard_config::OutboundConfig,
    ssrf: SsrfPolicy,
) -> DispatcherConfig {
    DispatcherConfig {
        concurrency: config.concurrency,
        per_endpoint_concurrency: config.per_endpoint_concurrency,
        timeout: config.timeout,
        schedule: JitteredSchedule::new(config.retry_schedule.clone(), config.retry_jitter),
        disable_after: config.disable_after,
        lease_margin: config.lease_margin,
        ssrf,
        ..DispatcherConfig::default()
    }
}

/// Hands each processed inbound event to the outbound fan-out as an event whose `data` is
/// the whole CloudEvent (so subscribers see its `source`, `subject` and `time` too).
///
/// The outbound event's id is the inbound event's id: publishing is idempotent by id, so a
/// processing job that runs again (a lost lease, a replay) fans out nothing twice.
pub struct FanOut {
    pub database: Database,
    /// Seals event bodies: a canonical event carries the provider's payload, which must not
    /// sit in plaintext here when the gateway keeps it encrypted.
    pub vault: AuditedVault,
}

#[async_trait]
impl EventSink for FanOut {
    async fn accept(
        &self,
        event: &InboundEvent,
        _linked_connection: Option<&str>,
        canonical: &Value,
        _headers: &axum::http::HeaderMap,
    ) -> Result<(), String> {
        let Some(event_type) = canonical.get("type").and_then(Value::as_str) else {
            return Ok(());
        };
        let new = NewEvent::new(event_type, canonical.clone()).id(event.id.to_string());
        match publish(&self.database, &self.vault, event.tenant_id, new).await {
            Ok(_) => Ok(()),
            // A provider type that is not a valid outbound type (odd characters, too long)
            // cannot be subscribed to; retrying would not change that.
            Err(OutboundError::Invalid { field, reason }) => {
                tracing::warn!(
                    inbound_event = %event.id,
                    field,
                    reason,
                    "inbound event not fanned out: its type is not a valid event type"
                );
                Ok(())
            }
            Err(error) => Err(format!("outbound fan-out failed: {}", error.code())),
        }
    }
}

/// The sink as the job registry takes it.
pub fn fan_out(database: Database, vault: AuditedVault) -> Arc<dyn EventSink> {
    Arc::new(FanOut { database, vault })
}
