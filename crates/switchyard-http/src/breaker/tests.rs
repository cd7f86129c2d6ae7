use super::*;
use crate::clock::ManualClock;

const SEC: Duration = Duration::from_secs(1);

fn config() -> BreakerConfig {
    BreakerConfig {
        failure_rate: 0.5,
        window: Duration::from_secs(10),
        min_calls: 4,
        cool_down: Duration::from_secs(30),
        half_open_probes: 2,
    }
}

fn breaker(clock: &ManualClock) -> Arc<CircuitBreaker> {
    Arc::new(CircuitBreaker::new(config(), Arc::new(clock.clone())))
}

fn call(b: &Arc<CircuitBreaker>, ok: bool) {
    let permit = b.try_acquire().unwrap();
    if ok {
        permit.success()
    } else {
        permit.failure()
    }
}

/// Opens the breaker with four failures.
fn trip(b: &Arc<CircuitBreaker>) {
    for _ in 0..4 {
        call(b, false);
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn stays_closed_below_min_calls_even_if_all_fail() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..3 {
        call(&b, false);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn opens_when_the_failure_rate_reaches_the_threshold() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for ok in [true, true, true, false, false] {
        call(&b, ok);
    }
    // 2 of 5 failed: 40 % < 50 %.
    assert_eq!(b.state(), BreakerState::Closed);
    call(&b, false);
    // 3 of 6: 50 %.
    assert_eq!(b.state(), BreakerState::Open);
    let err = b.try_acquire().unwrap_err();
    assert_eq!(
        err,
        BreakerRejected::Open {
            retry_in: Duration::from_secs(30)
        }
    );
    assert_eq!(err.code(), "circuit_open");
    clock.advance(Duration::from_secs(12));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_in(),
        Duration::from_secs(18)
    );
}

#[test]
fn successes_alone_never_open_and_old_failures_expire() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    for _ in 0..3 {
        call(&b, false);
    }
    // Those failures leave the 10 s window before the next ones arrive.
    clock.advance(Duration::from_secs(11));
    for _ in 0..3 {
        call(&b, false);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    for _ in 0..100 {
        call(&b, true);
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn half_open_after_cool_down_and_closes_on_probe_success() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    trip(&b);
    clock.advance(Duration::from_secs(30) - SEC);
    assert_eq!(b.state(), BreakerState::Open);
    clock.advance(SEC);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let probe = b.try_acquire().unwrap();
    assert!(probe.is_probe());
    probe.success();
    assert_eq!(b.state(), BreakerState::Closed);
    // A fresh window: three failures are again below min_calls.
    for _ in 0..3 {
        call(&b, false);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    let permit = b.try_acquire().unwrap();
    assert!(!permit.is_probe());
    permit.failure();
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn probe_failure_reopens_for_a_full_cool_down() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    trip(&b);
    clock.advance(Duration::from_secs(31));
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(
        b.try_acquire().unwrap_err(),
        BreakerRejected::Open {
            retry_in: Duration::from_secs(30)
        }
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[test]
fn half_open_limits_concurrent_probes() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    trip(&b);
    clock.advance(Duration::from_secs(30));
    let first = b.try_acquire().unwrap();
    let second = b.try_acquire().unwrap();
    assert_eq!(b.try_acquire().unwrap_err(), BreakerRejected::ProbesBusy);
    assert_eq!(BreakerRejected::ProbesBusy.retry_in(), Duration::ZERO);
    // A cancelled probe frees its slot without a verdict.
    drop(first);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    let third = b.try_acquire().unwrap();
    assert_eq!(b.try_acquire().unwrap_err(), BreakerRejected::ProbesBusy);
    // The first verdict decides; the other probe's late result belongs to a past state.
    third.success();
    assert_eq!(b.state(), BreakerState::Closed);
    second.failure();
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn outcomes_from_an_earlier_state_are_ignored() {
    let clock = ManualClock::new();
    let b = breaker(&clock);
    let slow = b.try_acquire().unwrap();
    trip(&b);
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    // A call admitted while closed must not close the circuit behind the probes' back.
    slow.success();
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[test]
fn registry_keeps_keys_apart_and_counts_states() {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::new(config(), Arc::new(clock.clone()));
    let a = registry.get("end_a");
    trip(&a);
    registry.try_acquire("end_b").unwrap().success();
    registry.get("end_c");
    assert!(Arc::ptr_eq(&a, &registry.get("end_a")));
    assert_eq!(registry.state("end_a"), Some(BreakerState::Open));
    assert_eq!(registry.state("end_b"), Some(BreakerState::Closed));
    assert_eq!(registry.state("nope"), None);
    assert!(registry.try_acquire("end_a").is_err());
    assert_eq!(
        registry.counts(),
        StateCounts {
            closed: 2,
            open: 1,
            half_open: 0
        }
    );
    clock.advance(Duration::from_secs(30));
    assert_eq!(
        registry.counts(),
        StateCounts {
            closed: 2,
            open: 0,
            half_open: 1
        }
    );
    assert_eq!(
        registry.snapshot(),
        [
            ("end_a".to_owned(), BreakerState::HalfOpen),
            ("end_b".to_owned(), BreakerState::Closed),
            ("end_c".to_owned(), BreakerState::Closed),
        ]
    );
    assert_eq!(registry.len(), 3);
    assert!(registry.remove("end_c").is_some());
    assert_eq!(registry.len(), 2);
}

#[test]
fn registry_prunes_idle_breakers_only() {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::new(config(), Arc::new(clock.clone()));
    registry.get("idle");
    registry.try_acquire("recent").unwrap().success();
    trip(&registry.get("open"));
    let held = registry.get("held");
    assert_eq!(registry.prune_idle(), 1);
    assert_eq!(registry.state("idle"), None);
    // Once its calls leave the window, `recent` goes too; `open` and `held` stay.
    clock.advance(Duration::from_secs(11));
    assert_eq!(registry.prune_idle(), 1);
    assert_eq!(registry.len(), 2);
    drop(held);
    assert_eq!(registry.prune_idle(), 1);
    assert_eq!(
        registry.snapshot(),
        [("open".to_owned(), BreakerState::Open)]
    );
}

#[test]
fn per_key_config() {
    let clock = ManualClock::new();
    let registry = BreakerRegistry::new(config(), Arc::new(clock.clone()));
    let strict = BreakerConfig {
        min_calls: 1,
        failure_rate: 0.01,
        ..config()
    };
    let b = registry.get_with("fragile", strict);
    call(&b, false);
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(registry.get("fragile").config().min_calls, 1);
}
