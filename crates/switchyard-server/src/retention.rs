//! Retention in the running server: every data class's expired rows are purged hourly, in
//! small batches. Runs in every process; a purge is idempotent, so processes racing each
//! other do no harm. (The job engine will schedule this like any other job.)

use std::time::Duration;

use switchyard_store::{
    Database,
    retention::{DEFAULT_BATCH_SIZE, RetentionClass, cutoff_for, purge_expired},
};
use tokio_util::sync::CancellationToken;

const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

/// Every retention class of the process, with its period from configuration.
pub fn classes(config: &switchyard_config::Config) -> Vec<RetentionClass> {
    switchyard_store::retention::store_classes(
        config.retention.deleted_tenants,
        config.api.idempotency_ttl,
    )
}

pub(crate) async fn purge_periodically(
    database: Database,
    classes: Vec<RetentionClass>,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        for class in &classes {
            let cutoff = cutoff_for(class.default_period);
            match purge_expired(&database, class, cutoff, DEFAULT_BATCH_SIZE).await {
                Ok(report) if report.rows == 0 => {}
                Ok(report) => tracing::info!(
                    class = class.name,
                    rows = report.rows,
                    "purged expired rows"
                ),
                Err(error) => {
                    tracing::warn!(class = class.name, %error, "purge failed; will retry")
                }
            }
        }
    }
}
