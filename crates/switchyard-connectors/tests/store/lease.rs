//! The sync lease: one holder per stream until it releases or its lease expires.

use std::time::Duration;

use switchyard_test_support::backend_tests;

use crate::support::Fixture;

backend_tests! { Fixture;
    async fn one_sync_of_a_stream_at_a_time(fx) {
        let (tenant, connection) = fx.tenant_with_connection().await;
        let lease = |holder: &'static str, ttl: Duration| {
            let records = fx.records.clone();
            async move { records.acquire_sync_lease(&tenant, &connection, "repos", holder, ttl).await.unwrap() }
        };
        let minute = Duration::from_secs(60);
        assert!(lease("run_a", minute).await);
        assert!(!lease("run_b", minute).await, "held by run_a");
        assert!(lease("run_a", minute).await, "its holder renews it");
        // Another stream of the same connection is free.
        assert!(fx.records.acquire_sync_lease(&tenant, &connection, "teams", "run_b", minute).await.unwrap());
        fx.records.release_sync_lease(&tenant, &connection, "repos", "run_b").await.unwrap();
        assert!(!lease("run_b", minute).await, "only the holder releases");
        fx.records.release_sync_lease(&tenant, &connection, "repos", "run_a").await.unwrap();
        assert!(lease("run_b", Duration::ZERO).await, "free after release");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(lease("run_c", minute).await, "an expired lease is taken over");
    }

    async fn a_lease_needs_the_tenants_connection(fx) {
        let (_, connection) = fx.tenant_with_connection().await;
        let other = switchyard_core::TenantId::generate();
        let error = fx.records.acquire_sync_lease(&other, &connection, "repos", "run_a", Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(error, switchyard_connectors::store::StoreError::ConnectionNotFound), "{error:?}");
    }
}
