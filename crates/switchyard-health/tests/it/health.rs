//! Status thresholds, transitions and their events, several processes on one database, the
//! window, percentiles, tenant scoping, and what recent errors keep.

use std::time::{Duration, SystemTime};

use serde_json::Value;
use switchyard_core::TenantId;
use switchyard_health::{
    CONNECTION_DEGRADED, CONNECTION_RECOVERED, CONNECTION_UNHEALTHY, ConnectionHealth,
    HealthRecorder, HealthStatus, connection_health,
};
use switchyard_http::{CallObserver, OutcomeClass};
use switchyard_test_support::backend_tests;
use time::OffsetDateTime;

use crate::support::{Fixture, attempt, record_n};

async fn health_of(fx: &Fixture, tenant: TenantId, connection: &str) -> ConnectionHealth {
    connection_health(&fx.database, tenant, connection, OffsetDateTime::now_utc())
        .await
        .unwrap()
        .expect("health was recorded")
}

/// Records `successes` and `failures` server errors for a fresh connection, flushes, and
/// returns its status and the event types published.
async fn status_after(
    fx: &Fixture,
    successes: usize,
    failures: usize,
) -> (HealthStatus, Vec<String>) {
    let tenant = TenantId::generate();
    let recorder = fx.recorder();
    record_n(
        &recorder,
        tenant,
        "con_thresholds",
        OutcomeClass::Success,
        successes,
    );
    record_n(
        &recorder,
        tenant,
        "con_thresholds",
        OutcomeClass::ServerError,
        failures,
    );
    recorder.flush().await.unwrap();
    let health = health_of(fx, tenant, "con_thresholds").await;
    assert_eq!(health.calls, (successes + failures) as u64);
    (health.status, fx.event_types(tenant).await)
}

fn data_of(published: &switchyard_outbound::Published) -> Value {
    serde_json::from_str::<Value>(&published.event.body).unwrap()["data"].clone()
}

backend_tests! { Fixture;
    async fn error_rate_thresholds_set_the_status(fx) {
        assert_eq!(status_after(&fx, 91, 9).await, (HealthStatus::Healthy, vec![]));
        assert_eq!(status_after(&fx, 89, 11).await, (HealthStatus::Degraded, vec![CONNECTION_DEGRADED.to_owned()]));
        assert_eq!(status_after(&fx, 49, 51).await, (HealthStatus::Unhealthy, vec![CONNECTION_UNHEALTHY.to_owned()]));
    }

    async fn rate_limits_and_client_errors_are_counted_but_are_not_errors(fx) {
        let tenant = TenantId::generate();
        let recorder = fx.recorder();
        record_n(&recorder, tenant, "con_busy", OutcomeClass::Success, 10);
        record_n(&recorder, tenant, "con_busy", OutcomeClass::RateLimited, 30);
        record_n(&recorder, tenant, "con_busy", OutcomeClass::ClientError, 30);
        recorder.flush().await.unwrap();
        let health = health_of(&fx, tenant, "con_busy").await;
        assert_eq!(health.status, HealthStatus::Healthy);
        assert_eq!((health.calls, health.errors), (70, 0));
        assert_eq!(health.counts["rate_limited"], 30);
        assert_eq!(health.counts["client_error"], 30);
        assert_eq!(health.counts.len(), OutcomeClass::ALL.len());
        assert!(health.recent_errors.is_empty());
        assert!(health.last_failure_at.is_none());
    }

    async fn a_refused_credential_is_unhealthy_until_a_success_and_then_recovers(fx) {
        let tenant = TenantId::generate();
        fx.subscriber(tenant).await;
        let recorder = fx.recorder();
        record_n(&recorder, tenant, "con_auth", OutcomeClass::Success, 50);
        recorder.flush().await.unwrap();
        // One 401 among 51 calls: 2 % errors, but the credential was refused after the last
        // success.
        record_n(&recorder, tenant, "con_auth", OutcomeClass::AuthFailure, 1);
        let report = recorder.flush().await.unwrap();
        assert_eq!(report.transitions.len(), 1);
        let unhealthy = &report.transitions[0];
        assert_eq!((unhealthy.previous, unhealthy.status), (HealthStatus::Healthy, HealthStatus::Unhealthy));
        assert_eq!(unhealthy.published.deliveries.len(), 1, "fanned out to the subscriber");
        let data = data_of(&unhealthy.published);
        assert_eq!(data["connection_id"], "con_auth");
        assert_eq!(data["provider"], "github");
        assert_eq!(data["previous_status"], "healthy");
        assert_eq!(data["status"], "unhealthy");
        assert_eq!(data["counts"]["auth_failure"], 1);
        assert_eq!(data["calls"], 51);
        assert!(data["error_rate"].as_f64().unwrap() < 0.05);
        assert_eq!(health_of(&fx, tenant, "con_auth").await.status, HealthStatus::Unhealthy);

        // A later success clears the auth rule; 1 error in 52 calls is healthy again.
        tokio::time::sleep(Duration::from_millis(5)).await;
        record_n(&recorder, tenant, "con_auth", OutcomeClass::Success, 1);
        let report = recorder.flush().await.unwrap();
        assert_eq!(report.transitions.len(), 1);
        let recovered = &report.transitions[0];
        assert_eq!((recovered.previous, recovered.status), (HealthStatus::Unhealthy, HealthStatus::Healthy));
        assert_eq!(recovered.published.event.event_type, CONNECTION_RECOVERED);
        assert_eq!(data_of(&recovered.published)["previous_status"], "unhealthy");
        // Nothing changes, nothing is published.
        record_n(&recorder, tenant, "con_auth", OutcomeClass::Success, 1);
        assert!(recorder.flush().await.unwrap().transitions.is_empty());

        assert_eq!(fx.event_types(tenant).await, [CONNECTION_UNHEALTHY, CONNECTION_RECOVERED]);
        let health = health_of(&fx, tenant, "con_auth").await;
        assert_eq!(health.status, HealthStatus::Healthy);
        assert!(health.status_changed_at.is_some());
        assert!(health.last_success_at > health.last_failure_at);
    }

    async fn degraded_recovers_when_the_error_rate_falls(fx) {
        let tenant = TenantId::generate();
        let recorder = fx.recorder();
        record_n(&recorder, tenant, "con_flaky", OutcomeClass::Success, 8);
        record_n(&recorder, tenant, "con_flaky", OutcomeClass::Timeout, 2);
        recorder.flush().await.unwrap();
        assert_eq!(health_of(&fx, tenant, "con_flaky").await.status, HealthStatus::Degraded);
        record_n(&recorder, tenant, "con_flaky", OutcomeClass::Success, 20);
        recorder.flush().await.unwrap();
        assert_eq!(health_of(&fx, tenant, "con_flaky").await.status, HealthStatus::Healthy);
        assert_eq!(fx.event_types(tenant).await, [CONNECTION_DEGRADED, CONNECTION_RECOVERED]);
    }

    async fn percentiles_are_read_from_the_histogram(fx) {
        let tenant = TenantId::generate();
        let recorder = fx.recorder();
        for i in 0..100u64 {
            let mut record = attempt(tenant, "con_latency", OutcomeClass::Success);
            // 90 attempts at 30–39 ms (bucket ≤ 50 ms), 10 at 1.2 s (bucket ≤ 2 s).
            record.latency = if i < 90 { Duration::from_millis(30 + i % 10) } else { Duration::from_millis(1_200) };
            recorder.attempt(&record);
        }
        // The breaker's refusals are counted but not timed.
        record_n(&recorder, tenant, "con_latency", OutcomeClass::CircuitOpen, 5);
        recorder.flush().await.unwrap();
        let health = health_of(&fx, tenant, "con_latency").await;
        assert_eq!(health.latency_p50_ms, Some(50));
        assert_eq!(health.latency_p95_ms, Some(2_000));
        assert_eq!(health.calls, 105);
        let success_rate = health.success_rate.unwrap();
        assert!((success_rate - 100.0 / 105.0).abs() < 1e-9, "{success_rate}");
    }

    async fn two_processes_add_up(fx) {
        let tenant = TenantId::generate();
        let first = fx.recorder();
        let second = fx.other_process().await;
        record_n(&first, tenant, "con_shared", OutcomeClass::Success, 30);
        record_n(&first, tenant, "con_shared", OutcomeClass::ServerError, 1);
        record_n(&second, tenant, "con_shared", OutcomeClass::Success, 20);
        record_n(&second, tenant, "con_shared", OutcomeClass::Timeout, 2);
        first.flush().await.unwrap();
        second.flush().await.unwrap();
        // And again into the same minute rows.
        record_n(&first, tenant, "con_shared", OutcomeClass::Success, 7);
        first.flush().await.unwrap();
        let health = health_of(&fx, tenant, "con_shared").await;
        assert_eq!(health.calls, 60);
        assert_eq!(health.counts["success"], 57);
        assert_eq!(health.counts["server_error"], 1);
        assert_eq!(health.counts["timeout"], 2);
        assert_eq!(health.errors, 3);
        assert_eq!(health.recent_errors.len(), 3, "both processes' errors are kept");
        assert_eq!(health.status, HealthStatus::Healthy);
    }

    async fn concurrent_flushes_announce_each_change_once(fx) {
        let tenant = TenantId::generate();
        fx.subscriber(tenant).await;
        let processes = [fx.recorder(), fx.other_process().await, fx.other_process().await];
        for round in 0..5 {
            let connection = format!("con_race_{round}");
            for process in &processes {
                record_n(process, tenant, &connection, OutcomeClass::ServerError, 4);
            }
            let reports = futures_join(&processes).await;
            let won: usize = reports.iter().map(|r| r.transitions.len()).sum();
            assert_eq!(won, 1, "round {round}: one process announces the change");
        }
        let types = fx.event_types(tenant).await;
        assert_eq!(types.len(), 5, "{types:?}");
        assert!(types.iter().all(|t| t == CONNECTION_UNHEALTHY));
    }

    async fn buckets_older_than_the_window_do_not_count(fx) {
        let tenant = TenantId::generate();
        let recorder = fx.recorder();
        for _ in 0..20 {
            let mut old = attempt(tenant, "con_old", OutcomeClass::ServerError);
            old.at = SystemTime::now() - Duration::from_secs(2 * 3600);
            recorder.attempt(&old);
        }
        recorder.flush().await.unwrap();
        let health = health_of(&fx, tenant, "con_old").await;
        assert_eq!((health.calls, health.status), (0, HealthStatus::Healthy));
        assert_eq!(health.error_rate, None);
        assert_eq!(health.latency_p50_ms, None);
        // What the row remembers beyond the window is still there.
        assert!(health.last_failure_at.is_some());
        assert_eq!(health.recent_errors.len(), 10);
        assert!(fx.event_types(tenant).await.is_empty());
        assert!(health.window_start > OffsetDateTime::now_utc() - time::Duration::minutes(61));

        record_n(&recorder, tenant, "con_old", OutcomeClass::Success, 3);
        recorder.flush().await.unwrap();
        let health = health_of(&fx, tenant, "con_old").await;
        assert_eq!((health.calls, health.errors), (3, 0));
    }

    async fn retention_purges_old_buckets_and_keeps_the_connection(fx) {
        let tenant = TenantId::generate();
        let recorder = fx.recorder();
        let mut old = attempt(tenant, "con_purged", OutcomeClass::ServerError);
        old.at = SystemTime::now() - Duration::from_secs(3 * 24 * 3600);
        recorder.attempt(&old);
        record_n(&recorder, tenant, "con_purged", OutcomeClass::Success, 2);
        recorder.flush().await.unwrap();
        let mut purged = 0;
        for class in switchyard_health::retention::classes() {
            let cutoff = switchyard_store::retention::cutoff_for(class.default_period);
            purged += switchyard_store::retention::purge_expired(&fx.database, &class, cutoff, 100).await.unwrap().rows;
        }
        assert_eq!(purged, 1, "the three-day-old minute only");
        let health = health_of(&fx, tenant, "con_purged").await;
        assert_eq!(health.calls, 2);
        assert!(health.last_failure_at.is_some());
    }

    async fn health_is_scoped_by_tenant(fx) {
        let tenant = TenantId::generate();
        let other = TenantId::generate();
        let recorder = fx.recorder();
        record_n(&recorder, tenant, "con_mine", OutcomeClass::Success, 1);
        recorder.flush().await.unwrap();
        let now = OffsetDateTime::now_utc();
        assert!(connection_health(&fx.database, tenant, "con_mine", now).await.unwrap().is_some());
        assert!(connection_health(&fx.database, other, "con_mine", now).await.unwrap().is_none());
        assert!(connection_health(&fx.database, tenant, "con_unknown", now).await.unwrap().is_none());
        // The same connection id in another tenant is another connection.
        record_n(&recorder, other, "con_mine", OutcomeClass::ServerError, 3);
        recorder.flush().await.unwrap();
        assert_eq!(health_of(&fx, tenant, "con_mine").await.calls, 1);
        assert_eq!(health_of(&fx, other, "con_mine").await.calls, 3);
    }

    async fn recent_errors_keep_codes_and_templates_only(fx) {
        let tenant = TenantId::generate();
        let recorder = fx.recorder();
        record_n(&recorder, tenant, "con_clean", OutcomeClass::Success, 1);
        for class in [OutcomeClass::AuthFailure, OutcomeClass::ServerError, OutcomeClass::Timeout, OutcomeClass::Transport] {
            record_n(&recorder, tenant, "con_clean", class, 1);
        }
        // Attempts without a connection are not health's business.
        let mut unscoped = attempt(tenant, "ignored", OutcomeClass::ServerError);
        unscoped.connection = None;
        recorder.attempt(&unscoped);
        recorder.flush().await.unwrap();
        assert!(connection_health(&fx.database, tenant, "ignored", OffsetDateTime::now_utc()).await.unwrap().is_none());

        let health = health_of(&fx, tenant, "con_clean").await;
        assert_eq!(health.recent_errors.len(), 4);
        let newest = &health.recent_errors[0];
        assert_eq!(newest.class, OutcomeClass::Transport);
        assert_eq!(newest.route, "/repos/{owner}/{repo}/branches");
        assert_eq!(newest.method, "GET");
        assert_eq!(newest.error.as_deref(), Some("transport"));
        assert_eq!(health.recent_errors[3].status, Some(401));

        // The stored row holds exactly these fields: no header, query or body content.
        let stored = fx.stored_text(tenant, "con_clean").await;
        let errors: Value = serde_json::from_str(stored.split_once(' ').unwrap().1.split_once(' ').unwrap().1).unwrap();
        for error in errors.as_array().unwrap() {
            let mut keys: Vec<&str> = error.as_object().unwrap().keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["at", "class", "error", "method", "route", "status"]);
        }
        for forbidden in ["authorization", "bearer", "cookie", "token", "?", "&", "body"] {
            assert!(!stored.to_lowercase().contains(forbidden), "`{forbidden}` in {stored}");
        }
    }
}

/// Flushes every recorder at once.
async fn futures_join(recorders: &[HealthRecorder]) -> Vec<switchyard_health::FlushReport> {
    let handles: Vec<_> = recorders
        .iter()
        .map(|recorder| {
            let recorder = recorder.clone();
            tokio::spawn(async move { recorder.flush().await.unwrap() })
        })
        .collect();
    let mut reports = Vec::new();
    for handle in handles {
        reports.push(handle.await.unwrap());
    }
    reports
}
