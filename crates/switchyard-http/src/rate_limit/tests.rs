use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}

#[tokio::test(start_paused = true)]
async fn admits_the_burst_then_the_sustained_rate() {
    let limiter = RateLimiter::in_memory(Rate::per_second(nz(5)));
    let start = Instant::now();
    let mut per_second = [0u32; 3];
    loop {
        limiter.until_ready("end_1", far()).await.unwrap();
        let second = start.elapsed().as_secs() as usize;
        if second >= per_second.len() {
            break;
        }
        per_second[second] += 1;
    }
    // Second 0: the burst of 5 plus slots at 0.2, 0.4, 0.6, 0.8 s; after that exactly 5/s.
    assert_eq!(per_second, [9, 5, 5]);
}

#[tokio::test(start_paused = true)]
async fn burst_is_configurable_and_check_does_not_wait() {
    let limiter = RateLimiter::in_memory(Rate::per_second(nz(10)).with_burst(nz(2)));
    assert_eq!(limiter.check("k").await.unwrap(), Admission::Ready);
    assert_eq!(limiter.check("k").await.unwrap(), Admission::Ready);
    assert_eq!(
        limiter.check("k").await.unwrap(),
        Admission::RetryIn(Duration::from_millis(100))
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_eq!(limiter.check("k").await.unwrap(), Admission::Ready);
}

#[tokio::test(start_paused = true)]
async fn a_per_minute_rate_refills_one_call_per_interval() {
    // Slack's Tier 2: 20 a minute, a burst of 2, then one call every three seconds.
    let limiter = RateLimiter::in_memory(Rate::per_minute(nz(20)).with_burst(nz(2)));
    assert_eq!(limiter.check("k").await.unwrap(), Admission::Ready);
    assert_eq!(limiter.check("k").await.unwrap(), Admission::Ready);
    assert_eq!(
        limiter.check("k").await.unwrap(),
        Admission::RetryIn(Duration::from_secs(3))
    );
    tokio::time::advance(Duration::from_millis(2_999)).await;
    assert!(matches!(
        limiter.check("k").await.unwrap(),
        Admission::RetryIn(_)
    ));
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(limiter.check("k").await.unwrap(), Admission::Ready);
    // From here on, a minute of calls that wait for their slot admits exactly the rate.
    let start = Instant::now();
    let mut admitted = 0;
    while start.elapsed() < Duration::from_secs(60) {
        limiter.until_ready("k", far()).await.unwrap();
        admitted += 1;
    }
    assert_eq!(admitted, 20);
}

#[tokio::test(start_paused = true)]
async fn keys_are_independent_and_rates_per_key() {
    let limiter = RateLimiter::in_memory(Rate::per_second(nz(1)));
    limiter.set_rate("fast", Rate::per_second(nz(100)));
    assert_eq!(limiter.rate_for("fast"), Rate::per_second(nz(100)));
    assert_eq!(limiter.rate_for("other"), Rate::per_second(nz(1)));
    assert_eq!(limiter.check("slow").await.unwrap(), Admission::Ready);
    assert!(matches!(
        limiter.check("slow").await.unwrap(),
        Admission::RetryIn(_)
    ));
    for _ in 0..100 {
        assert_eq!(limiter.check("fast").await.unwrap(), Admission::Ready);
    }
    assert_eq!(limiter.check("slow2").await.unwrap(), Admission::Ready);
    limiter.clear_rate("fast");
    assert_eq!(limiter.rate_for("fast"), Rate::per_second(nz(1)));
}

#[tokio::test(start_paused = true)]
async fn fails_fast_when_the_slot_is_past_the_deadline() {
    let limiter = RateLimiter::in_memory(Rate::per_second(nz(1)));
    limiter.until_ready("k", far()).await.unwrap();
    let start = Instant::now();
    let err = limiter
        .until_ready("k", start + Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RateLimitError::DeadlineExceeded { retry_in } if retry_in == Duration::from_secs(1))
    );
    assert_eq!(err.code(), "rate_limited");
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "must not sleep before failing"
    );
    // A deadline exactly at the slot is enough.
    limiter
        .until_ready("k", start + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn concurrent_waiters_share_the_rate() {
    let limiter = Arc::new(RateLimiter::in_memory(
        Rate::per_second(nz(4)).with_burst(nz(1)),
    ));
    let start = Instant::now();
    let admitted = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            let admitted = Arc::clone(&admitted);
            tokio::spawn(async move {
                limiter.until_ready("shared", far()).await.unwrap();
                admitted.fetch_add(1, Ordering::SeqCst);
                start.elapsed()
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in tasks {
        times.push(task.await.unwrap());
    }
    times.sort();
    assert_eq!(admitted.load(Ordering::SeqCst), 8);
    // One slot every 250 ms: 0, 0.25, …, 1.75 s.
    let expected: Vec<Duration> = (0..8).map(|i| Duration::from_millis(250 * i)).collect();
    assert_eq!(times, expected);
}

#[tokio::test(start_paused = true)]
async fn cleanup_forgets_idle_keys() {
    let limiter = RateLimiter::in_memory(Rate::per_second(nz(2)));
    limiter.set_rate("b", Rate::per_second(nz(50)));
    for key in ["a", "b", "c"] {
        limiter.check(key).await.unwrap();
    }
    assert_eq!(limiter.backend().tracked_keys(), 3);
    limiter.cleanup().await;
    assert_eq!(
        limiter.backend().tracked_keys(),
        3,
        "recently used keys stay"
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    limiter.cleanup().await;
    assert_eq!(limiter.backend().tracked_keys(), 0);
    // The configured rate outlives the state.
    assert_eq!(limiter.rate_for("b"), Rate::per_second(nz(50)));
}

#[tokio::test(start_paused = true)]
async fn spawned_cleanup_runs_and_stops_with_the_limiter() {
    let limiter = Arc::new(RateLimiter::in_memory(Rate::per_second(nz(1))));
    limiter.check("k").await.unwrap();
    let task = spawn_cleanup(&limiter, Duration::from_secs(60));
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert_eq!(limiter.backend().tracked_keys(), 0);
    drop(limiter);
    tokio::time::sleep(Duration::from_secs(61)).await;
    assert!(task.is_finished());
}

/// A backend that refuses twice, then admits: `until_ready` is backend-agnostic.
struct Scripted {
    calls: AtomicU32,
}

impl RateLimitBackend for Scripted {
    fn check(
        &self,
        _key: &str,
        _rate: Rate,
    ) -> impl Future<Output = Result<Admission, RateLimitError>> + Send {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(if n < 2 {
            Admission::RetryIn(Duration::from_millis(300))
        } else {
            Admission::Ready
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn until_ready_works_over_any_backend() {
    let limiter = RateLimiter::new(
        Scripted {
            calls: AtomicU32::new(0),
        },
        Rate::per_second(nz(1)),
    );
    let start = Instant::now();
    limiter.until_ready("k", far()).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(600));
    assert_eq!(limiter.backend().calls.load(Ordering::SeqCst), 3);
}
