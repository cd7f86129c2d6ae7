//! Retention classes of this server. They are purged by the `retention.purge` job, which an
//! hourly platform schedule enqueues ([`crate::background`]), and by `switchyard purge`.

use switchyard_store::retention::RetentionClass;

/// Every retention class of the process, with its period from configuration.
pub fn classes(config: &switchyard_config::Config) -> Vec<RetentionClass> {
    switchyard_store::retention::store_classes(
        config.retention.deleted_tenants,
        config.api.idempotency_ttl,
    )
}
