//! What handlers share.

use std::{sync::Arc, time::Duration};

use switchyard_audit::{AuditLog, AuditReader};
use switchyard_store::Store;
use switchyard_vault::AuditedVault;

/// Shared by every handler and middleware. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub api: Arc<ApiSettings>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    pub vault: AuditedVault,
    pub audit: AuditLog,
    pub audit_reader: AuditReader,
    /// How long unwrapped data keys stay cached: a rotated-out key may be retired only after.
    pub vault_key_cache_ttl: Duration,
    /// How long a deleted tenant's rows are kept before the purge.
    pub retention_deleted_tenants: Duration,
    pub runs: switchyard_jobs::runs::RunStore,
    pub inbound: Arc<crate::inbound::InboundGateway>,
    pub outbound: Arc<crate::outbound::OutboundApi>,
    /// Completes data-key rotations: re-seals stored data, then retires old keys.
    pub rotation: crate::rotation::DekCompletion,
    /// Connection health: hand it to the provider stack as an observer
    /// (`ProviderClient::with_observer(health.observer())`); the server flushes it.
    pub health: switchyard_health::HealthRecorder,
    /// Connections and what is done through them.
    pub connectors: crate::connectors::ConnectorService,
    /// OAuth registrations, connect sessions and token refresh.
    pub oauth: crate::oauth::OAuthService,
    /// Provider call captures of connections, to list and open.
    pub captures: crate::provider_capture::Captures,
}

/// The API settings handlers consult on each request.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub body_limit_bytes: usize,
    pub default_page_limit: u32,
    pub max_page_limit: u32,
    pub idempotency_ttl: Duration,
}

impl From<&switchyard_config::ApiConfig> for ApiSettings {
    fn from(config: &switchyard_config::ApiConfig) -> Self {
        Self {
            body_limit_bytes: config.body_limit_bytes,
            default_page_limit: config.default_page_limit,
            max_page_limit: config.max_page_limit,
            idempotency_ttl: config.idempotency_ttl,
        }
    }
}
