//! Purging deleted tenants once their retention window has passed. Runs in every process;
//! the purge is one idempotent statement, so processes racing each other do no harm. (The job
//! engine will take this over with the other retention classes.)

use std::{sync::Arc, time::Duration};

use switchyard_store::Store;
use tokio_util::sync::CancellationToken;

const PURGE_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) async fn purge_deleted_tenants(
    store: Arc<dyn Store>,
    retention: Duration,
    shutdown: CancellationToken,
) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            () = shutdown.cancelled() => return,
        }
        let Ok(retention) = time::Duration::try_from(retention) else {
            return;
        };
        let cutoff = time::OffsetDateTime::now_utc() - retention;
        match store.purge_deleted_tenants(cutoff).await {
            Ok(purged) if purged.is_empty() => {}
            Ok(purged) => tracing::info!(count = purged.len(), "purged deleted tenants"),
            Err(error) => tracing::warn!(%error, "purging deleted tenants failed; will retry"),
        }
    }
}
