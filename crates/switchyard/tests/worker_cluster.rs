//! Three `switchyard serve --role worker` processes on one PostgreSQL database drain 10,000
//! probe jobs; one is killed with SIGKILL midway. Afterwards every job succeeded, each took
//! effect exactly once (the probe ledger has one row per job id), nothing is stuck past its
//! lease, and the ledger balances: enqueued = succeeded + dead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::{
    path::Path,
    time::{Duration, Instant},
};

use switchyard_jobs::probe;
use switchyard_store::{Database, DatabaseOptions};
use switchyard_test_support::{ServerProcess, TestDatabase};

const BINARY: &str = env!("CARGO_BIN_EXE_switchyard");
const JOBS: u32 = 10_000;
/// Shared by the three processes, so each opens the same vault.
const KEK: &str = "bXVsdGktcHJvY2Vzcy10ZXN0LWtlay0zMi1ieXRlcyE=";

/// Probe jobs by status: (succeeded, dead, anything else).
async fn status_counts(database: &Database) -> (u64, u64, u64) {
    let Database::Postgres(pool) = database else {
        unreachable!("the cluster test runs on PostgreSQL")
    };
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, COUNT(*) FROM jobs WHERE kind = $1 GROUP BY status")
            .bind(probe::PROBE)
            .fetch_all(pool)
            .await
            .unwrap();
    let (mut succeeded, mut dead, mut other) = (0, 0, 0);
    for (status, count) in rows {
        let count = u64::try_from(count).unwrap();
        match status.as_str() {
            "succeeded" => succeeded += count,
            "dead" => dead += count,
            _ => other += count,
        }
    }
    (succeeded, dead, other)
}

async fn wait_until<F: std::future::Future<Output = bool>>(
    what: &str,
    timeout: Duration,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + timeout;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_drain_the_queue_despite_a_sigkill() {
    let Some(test_database) = TestDatabase::postgres().await else {
        return;
    };
    let url = test_database.url().to_owned();
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    database.migrate().await.unwrap();
    let batch = probe::enqueue_batch(&database, JOBS).await.unwrap();
    assert_eq!(batch.jobs.len(), JOBS as usize);

    let env = [
        ("SWITCHYARD_VAULT__KEK__PROVIDER", "env"),
        ("SWITCHYARD_VAULT__KEK__KEY_BASE64", KEK),
        // A killed process's jobs come back after the lease, so keep it short here.
        ("SWITCHYARD_WORKER__LEASE", "3s"),
        ("SWITCHYARD_WORKER__HEARTBEAT_INTERVAL", "1s"),
    ];
    let mut workers: Vec<ServerProcess> = (0..3)
        .map(|n| {
            let data_dir = test_database.path(&format!("worker-{n}"));
            let extra = ["--role", "worker", "--database-url", url.as_str()];
            ServerProcess::start_with_env(Path::new(BINARY), &data_dir, &extra, "info", &env)
        })
        .collect();

    wait_until("a third of the jobs", Duration::from_secs(120), || async {
        probe::ledger(&database, &batch.batch)
            .await
            .unwrap()
            .effects
            >= u64::from(JOBS / 3)
    })
    .await;
    // Die without releasing anything: its leased jobs come back when the leases expire.
    workers.remove(0).kill();

    wait_until(
        "the ledger to balance",
        Duration::from_secs(180),
        || async {
            let (succeeded, dead, _) = status_counts(&database).await;
            succeeded + dead == u64::from(JOBS)
        },
    )
    .await;
    for worker in workers {
        worker.terminate();
    }

    let (succeeded, dead, unfinished) = status_counts(&database).await;
    assert_eq!(
        (succeeded, dead, unfinished),
        (u64::from(JOBS), 0, 0),
        "every job succeeded; none is dead or stuck"
    );
    let ledger = probe::ledger(&database, &batch.batch).await.unwrap();
    assert_eq!(
        ledger.effects,
        u64::from(JOBS),
        "every job took effect once"
    );
    // At-least-once: only jobs the killed process held (at most its concurrency plus a
    // claim batch) can have run twice.
    let reruns = ledger.executions - ledger.effects;
    assert!(reruns <= 16 + 32, "{reruns} re-runs after the kill");
    eprintln!("ledger: {JOBS} enqueued, {succeeded} succeeded, {dead} dead, {reruns} re-runs");
    database.close().await;
}
