//! One conformance suite for every rate-limit backend: the in-memory one and Redis
//! (`SWITCHYARD_TEST_REDIS_URL`; required in CI). Real time, real Redis: what is asserted is
//! what a caller sees, with a few milliseconds of slack for scheduling.
//!
//! Also: two operating-system processes sharing one Redis budget stay within it together.
//! The parent runs this test binary twice more as children (the ignored `child_*` test), each
//! printing when it was admitted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_http::{
    Admission, Rate, RateLimitBackend, RateLimitError, RateLimiter, RedisBackend,
};
use tokio::time::Instant;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// A key no other test run uses: Redis outlives test runs.
fn fresh_key(name: &str) -> String {
    format!("{name}/{}", rand::random::<u64>())
}

const SLACK: Duration = Duration::from_millis(15);

async fn the_burst_is_admitted_then_the_next_slot_is_one_interval_away(
    backend: impl RateLimitBackend,
) {
    let key = fresh_key("burst");
    let rate = Rate::per_second(nz(10)).with_burst(nz(3));
    for _ in 0..3 {
        assert_eq!(backend.check(&key, rate).await.unwrap(), Admission::Ready);
    }
    let Admission::RetryIn(wait) = backend.check(&key, rate).await.unwrap() else {
        panic!("the fourth call fits no burst of three");
    };
    assert!(
        wait <= Duration::from_millis(100) && wait + SLACK >= Duration::from_millis(100) - SLACK,
        "{wait:?}"
    );
    tokio::time::sleep(wait).await;
    assert_eq!(backend.check(&key, rate).await.unwrap(), Admission::Ready);
}

async fn keys_and_their_rates_are_independent(backend: impl RateLimitBackend) {
    let (slow, fast) = (fresh_key("slow"), fresh_key("fast"));
    let one = Rate::per_second(nz(1));
    let many = Rate::per_second(nz(1000));
    assert_eq!(backend.check(&slow, one).await.unwrap(), Admission::Ready);
    assert!(matches!(
        backend.check(&slow, one).await.unwrap(),
        Admission::RetryIn(_)
    ));
    for _ in 0..200 {
        assert_eq!(backend.check(&fast, many).await.unwrap(), Admission::Ready);
    }
    assert_eq!(
        backend.check(&fresh_key("other"), one).await.unwrap(),
        Admission::Ready
    );
}

/// Any span of `t` seconds holds at most `burst + rate · t` admissions.
fn assert_within_budget(times: &[Duration], rate: f64, burst: f64) {
    let mut times = times.to_vec();
    times.sort();
    for i in 0..times.len() {
        for j in i..times.len() {
            let span = (times[j] - times[i] + SLACK).as_secs_f64();
            let admitted = (j - i + 1) as f64;
            assert!(
                admitted <= burst + rate * span,
                "{admitted} admissions in {span:.3} s"
            );
        }
    }
}

async fn waiting_callers_share_the_sustained_rate(backend: impl RateLimitBackend + 'static) {
    let key = fresh_key("sustained");
    let limiter = std::sync::Arc::new(RateLimiter::new(
        backend,
        Rate::per_second(nz(20)).with_burst(nz(5)),
    ));
    let started = Instant::now();
    let until = started + Duration::from_millis(1500);
    let callers = (0..4).map(|_| {
        let limiter = std::sync::Arc::clone(&limiter);
        let key = key.clone();
        tokio::spawn(async move {
            let mut admitted = Vec::new();
            while limiter
                .until_ready(&key, until + Duration::from_secs(5))
                .await
                .is_ok()
            {
                let at = started.elapsed();
                if at >= Duration::from_millis(1500) {
                    break;
                }
                admitted.push(at);
            }
            admitted
        })
    });
    let mut times = Vec::new();
    for caller in callers.collect::<Vec<_>>() {
        times.extend(caller.await.unwrap());
    }
    assert_within_budget(&times, 20.0, 5.0);
    // And the budget is used: 5 at once, then 20 a second for 1.5 s, less scheduling.
    assert!(times.len() >= 30, "only {} admissions", times.len());
}

async fn a_slot_past_the_deadline_fails_at_once(backend: impl RateLimitBackend) {
    let key = fresh_key("deadline");
    let limiter = RateLimiter::new(backend, Rate::per_second(nz(1)));
    limiter
        .until_ready(&key, Instant::now() + Duration::from_secs(5))
        .await
        .unwrap();
    let started = Instant::now();
    let err = limiter
        .until_ready(&key, started + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RateLimitError::DeadlineExceeded { retry_in } if retry_in > Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "waited before failing"
    );
}

async fn redis() -> Option<RedisBackend> {
    let url = switchyard_test_support::required_test_server("SWITCHYARD_TEST_REDIS_URL")?;
    Some(
        RedisBackend::connect(&url, "switchyard-test:rl:")
            .await
            .unwrap(),
    )
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(switchyard_http::InMemoryBackend::new()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test]
                async fn $case() {
                    if let Some(backend) = super::redis().await {
                        super::$case(backend).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    the_burst_is_admitted_then_the_next_slot_is_one_interval_away,
    keys_and_their_rates_are_independent,
    waiting_callers_share_the_sustained_rate,
    a_slot_past_the_deadline_fails_at_once,
);

#[tokio::test]
async fn an_unreachable_redis_is_a_typed_backend_error() {
    // Nothing listens on port 1.
    let err = RedisBackend::connect("redis://127.0.0.1:1/", "x:")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "rate_limit_backend_unavailable");
    assert_eq!(err.to_string(), "rate limit backend unavailable");
}

const CHILD_KEY: &str = "SWITCHYARD_TEST_LIMITER_CHILD_KEY";
/// When the children start taking slots (epoch microseconds): both at once, however long
/// each process took to start on a loaded machine.
const CHILD_START: &str = "SWITCHYARD_TEST_LIMITER_CHILD_START";
const CHILD_RATE: u32 = 20;
const CHILD_BURST: u32 = 4;
const CHILD_RUN: Duration = Duration::from_millis(2000);

/// Run by [`two_processes_sharing_one_redis_budget_stay_within_it`] only: takes slots for
/// [`CHILD_RUN`] and prints each admission's wall time in microseconds.
#[tokio::test]
#[ignore = "a child process of two_processes_sharing_one_redis_budget_stay_within_it"]
async fn child_takes_slots_and_prints_them() {
    let key = std::env::var(CHILD_KEY).unwrap();
    let url = std::env::var("SWITCHYARD_TEST_REDIS_URL").unwrap();
    let backend = RedisBackend::connect(&url, "switchyard-test:rl:")
        .await
        .unwrap();
    let limiter = RateLimiter::new(
        backend,
        Rate::per_second(nz(CHILD_RATE)).with_burst(nz(CHILD_BURST)),
    );
    let start: u128 = std::env::var(CHILD_START).unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros();
    let wait = u64::try_from(start.saturating_sub(now)).unwrap_or(u64::MAX);
    tokio::time::sleep(Duration::from_micros(wait)).await;
    let until = Instant::now() + CHILD_RUN;
    let mut out = String::new();
    while limiter.until_ready(&key, until).await.is_ok() {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros();
        out.push_str(&format!("admitted {micros}\n"));
    }
    // One write at the end: the parent reads whole lines.
    std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes()).unwrap();
}

#[tokio::test]
async fn two_processes_sharing_one_redis_budget_stay_within_it() {
    let Some(url) = switchyard_test_support::required_test_server("SWITCHYARD_TEST_REDIS_URL")
    else {
        return;
    };
    let key = fresh_key("two-processes");
    let exe = std::env::current_exe().unwrap();
    let start = (SystemTime::now() + Duration::from_secs(3))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        .to_string();
    let children: Vec<_> = (0..2)
        .map(|_| {
            tokio::process::Command::new(&exe)
                .args([
                    "child_takes_slots_and_prints_them",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_KEY, &key)
                .env(CHILD_START, &start)
                .env("SWITCHYARD_TEST_REDIS_URL", &url)
                .output()
        })
        .collect();
    let mut per_child = Vec::new();
    for child in children {
        let output = child.await.unwrap();
        assert!(
            output.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let times: Vec<Duration> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| line.strip_prefix("admitted "))
            .map(|micros| Duration::from_micros(micros.trim().parse().unwrap()))
            .collect();
        per_child.push(times);
    }
    // Both took part; together they stayed within one budget.
    assert!(
        per_child.iter().all(|t| t.len() >= 5),
        "{:?}",
        per_child.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let all: Vec<Duration> = per_child.concat();
    assert_within_budget(&all, f64::from(CHILD_RATE), f64::from(CHILD_BURST));
    // Alone, each would have taken ~44 slots; shared, the two together take about that.
    let run = CHILD_RUN.as_secs_f64();
    assert!(
        all.len() as f64 <= f64::from(CHILD_BURST) + f64::from(CHILD_RATE) * run + 1.0,
        "{} admissions",
        all.len()
    );
}
