//! What handlers share.

use std::{sync::Arc, time::Duration};

use switchyard_store::Store;

/// Shared by every handler and middleware. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub api: Arc<ApiSettings>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
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
