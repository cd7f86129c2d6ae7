//! Three worker processes drain 10,000 jobs on PostgreSQL; one is killed with SIGKILL midway.
//! Afterwards every job has succeeded and its effect is recorded exactly once per job id
//! (the effect is an idempotent insert, so a job re-run after a lost lease is visible as a
//! duplicate execution but not as a second effect), nothing is stuck past its lease, and the
//! ledger balances: enqueued = succeeded + dead.
//!
//! The processes are `examples/worker_process.rs`, which `cargo test` and nextest build next
//! to the test binaries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use switchyard_test_support::TestDatabase;

const JOBS: u64 = 10_000;

fn example_binary() -> PathBuf {
    // target/<profile>/deps/multiprocess-… → target/<profile>/examples/worker_process
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let binary = profile_dir.join("examples").join("worker_process");
    assert!(
        binary.is_file(),
        "{} is missing: build it with `cargo build -p switchyard-jobs --examples`",
        binary.display()
    );
    binary
}

fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(example_binary());
    command
        .args(args)
        .env("SWITCHYARD_DATABASE_URL", url)
        .env("EXAMPLE_LEASE_MILLIS", "2000")
        .env("EXAMPLE_JOB_MILLIS", "1");
    command
}

/// `(enqueued, succeeded, dead, effects, duplicate executions)`.
fn ledger(url: &str) -> [u64; 5] {
    let output = command(url, &["ledger"]).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let numbers: Vec<u64> = text
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    numbers.try_into().unwrap()
}

fn start_worker(url: &str) -> Child {
    command(url, &["work"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn three_workers_drain_the_queue_despite_a_sigkill() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database) = runtime.block_on(TestDatabase::postgres()) else {
        return;
    };
    let url = database.url().to_owned();
    let enqueue = command(&url, &["enqueue", &JOBS.to_string()])
        .output()
        .unwrap();
    assert!(
        enqueue.status.success(),
        "{}",
        String::from_utf8_lossy(&enqueue.stderr)
    );
    assert_eq!(ledger(&url)[0], JOBS);

    let mut workers: Vec<Child> = (0..3).map(|_| start_worker(&url)).collect();
    wait_until("a third of the jobs", Duration::from_secs(120), || {
        ledger(&url)[1] >= JOBS / 3
    });
    // Die without releasing anything: its leased jobs come back when the leases expire.
    let mut killed = workers.remove(0);
    killed.kill().unwrap();
    killed.wait().unwrap();

    wait_until("the ledger to balance", Duration::from_secs(180), || {
        let [enqueued, succeeded, dead, ..] = ledger(&url);
        succeeded + dead == enqueued
    });
    for mut worker in workers {
        let status = Command::new("kill")
            .args(["-TERM", &worker.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        assert!(
            worker.wait().unwrap().success(),
            "a surviving worker stops cleanly"
        );
    }

    let [enqueued, succeeded, dead, effects, duplicates] = ledger(&url);
    assert_eq!(enqueued, JOBS);
    assert_eq!(dead, 0, "no job exhausted its attempts");
    assert_eq!(succeeded, JOBS, "every job succeeded");
    assert_eq!(effects, JOBS, "every job's effect exists exactly once");
    // At-least-once: only jobs the killed process held can have run twice.
    assert!(duplicates <= 16 * 32, "{duplicates} duplicate executions");
    eprintln!(
        "ledger: {enqueued} enqueued, {succeeded} succeeded, {dead} dead, {duplicates} re-runs after the kill"
    );
}
