//! The blob store conformance suite: the same cases on every backend.
//!
//! Local always runs. S3 runs against moto (`SWITCHYARD_TEST_MOTO_URL`, a fresh bucket per
//! test) and Azure against Azurite (`SWITCHYARD_TEST_AZURITE_URL`, a fresh container per test);
//! each is skipped locally when its variable is unset and fails in CI.

// Helpers outside `#[test]` functions panic on purpose: a failed step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cases;
mod harness;
mod specific;

macro_rules! conformance {
    ($backend:ident: $($case:ident),* $(,)?) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(harness) = crate::harness::$backend().await else { return };
                    crate::cases::$case(&harness.store).await;
                }
            )*
        }
    };
}

macro_rules! all_backends {
    ($($case:ident),* $(,)?) => {
        conformance!(local: $($case),*);
        conformance!(s3: $($case),*);
        conformance!(azure: $($case),*);
    };
}

all_backends!(
    round_trip_binary,
    overwrite,
    missing_is_not_found,
    delete_is_idempotent,
    delete_tenant_isolation,
    purge_older_than,
    key_validation_rejects_traversal,
    large_blob,
    concurrent_puts,
    check_is_ready,
);
