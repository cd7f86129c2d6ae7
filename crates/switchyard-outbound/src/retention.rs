//! Retention classes of outbound webhooks (see `switchyard_store::retention`).

use std::time::Duration;

use switchyard_store::retention::RetentionClass;

/// Finished deliveries (their attempts go with them by foreign key), attempts, and events
/// none of whose deliveries is still unfinished, all kept for `period` (default 90 days,
/// `retention.webhook_deliveries`). Kept response bodies are blobs of kind
/// [`crate::dispatch::BLOB_KIND`], purged by day with the same period.
pub fn classes(period: Duration) -> Vec<RetentionClass> {
    vec![
        RetentionClass {
            name: "webhook_deliveries",
            table: "webhook_deliveries",
            age_column: "finished_at",
            condition: Some("status IN ('succeeded', 'failed')"),
            default_period: period,
        },
        RetentionClass {
            name: "webhook_delivery_attempts",
            table: "webhook_delivery_attempts",
            age_column: "created_at",
            condition: None,
            default_period: period,
        },
        RetentionClass {
            name: "webhook_events",
            table: "webhook_events",
            age_column: "created_at",
            condition: Some(
                "NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                 WHERE d.event_id = webhook_events.id AND d.status IN ('pending', 'sending'))",
            ),
            default_period: period,
        },
    ]
}
