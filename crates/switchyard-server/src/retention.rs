//! Retention classes of this server. They are purged by the `retention.purge` job, which an
//! hourly platform schedule enqueues ([`crate::background`]), and by `switchyard purge`.

use switchyard_store::retention::RetentionClass;

/// Every retention class of the process, with its period from configuration.
pub fn classes(config: &switchyard_config::Config) -> Vec<RetentionClass> {
    let retention = &config.retention;
    let mut classes = switchyard_store::retention::store_classes(
        retention.deleted_tenants,
        config.api.idempotency_ttl,
    );
    classes.extend(switchyard_jobs::retention::classes(
        switchyard_jobs::retention::RetentionPeriods {
            runs: retention.runs,
            jobs_succeeded: retention.jobs_succeeded,
            jobs_dead: retention.jobs_dead,
        },
    ));
    classes.extend(switchyard_inbound::retention::classes(
        switchyard_inbound::retention::RetentionPeriods {
            inbound_events: retention.inbound_events,
        },
    ));
    classes.extend(switchyard_outbound::retention::classes(
        retention.webhook_deliveries,
    ));
    classes.extend(switchyard_health::retention::classes());
    // Connect sessions (and their results) a week after they expired, finished or not; their
    // authorization states go sooner, with the scheduled token refresh.
    classes.push(RetentionClass {
        name: "connect_sessions",
        table: "connect_sessions",
        age_column: "expires_at",
        condition: None,
        default_period: std::time::Duration::from_secs(7 * 24 * 3600),
    });
    // The index of provider call captures, for as long as their blobs are kept.
    classes.push(RetentionClass {
        name: "provider_captures",
        table: "provider_captures",
        age_column: "captured_at",
        condition: None,
        default_period: retention.provider_captures,
    });
    classes
}
