use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::signals::WindowReading;

fn limits() -> (AdaptiveLimits, ManualClock) {
    let clock = ManualClock::new();
    let limits = AdaptiveLimits::new(AdaptiveConfig::default(), Arc::new(clock.clone()));
    (limits, clock)
}

fn limited(retry_after: Option<Duration>) -> Signals {
    Signals {
        limited: true,
        retry_after,
        windows: Vec::new(),
    }
}

fn window(remaining: u64, reset_in: Duration) -> Signals {
    Signals {
        limited: false,
        retry_after: None,
        windows: vec![WindowReading {
            remaining,
            limit: None,
            reset_in,
        }],
    }
}

const SECOND: Duration = Duration::from_secs(1);

fn rate(n: u32) -> Rate {
    Rate::per_second(NonZeroU32::new(n).unwrap())
}

#[test]
fn an_unknown_scope_goes_at_once_at_full_rate() {
    let (limits, _) = limits();
    assert_eq!(limits.reserve("t1/github"), Duration::ZERO);
    assert_eq!(limits.effective_rate("t1/github", rate(10)), rate(10));
}

#[test]
fn retry_after_pauses_only_its_scope_until_it_passes() {
    let (limits, clock) = limits();
    limits.record("t1/github", &limited(Some(30 * SECOND)));
    assert_eq!(limits.reserve("t1/github"), 30 * SECOND);
    assert_eq!(limits.reserve("t2/github"), Duration::ZERO);
    clock.advance(20 * SECOND);
    assert_eq!(limits.reserve("t1/github"), 10 * SECOND);
    clock.advance(10 * SECOND);
    assert_eq!(limits.reserve("t1/github"), Duration::ZERO);
}

#[test]
fn a_rate_limited_response_without_a_hint_pauses_by_the_default() {
    let (limits, _) = limits();
    limits.record("s", &limited(None));
    assert_eq!(limits.reserve("s"), AdaptiveConfig::default().default_pause);
}

#[test]
fn a_later_shorter_pause_does_not_cut_a_longer_one() {
    let (limits, _) = limits();
    limits.record("s", &limited(Some(60 * SECOND)));
    limits.record("s", &limited(Some(5 * SECOND)));
    assert_eq!(limits.reserve("s"), 60 * SECOND);
}

#[test]
fn pauses_are_capped() {
    let (limits, _) = limits();
    limits.record("s", &limited(Some(Duration::from_secs(86_400))));
    assert_eq!(limits.reserve("s"), AdaptiveConfig::default().max_pause);
}

#[test]
fn the_rate_halves_on_each_rejection_and_recovers_step_by_step() {
    let (limits, _) = limits();
    limits.record("s", &limited(None));
    assert_eq!(limits.effective_rate("s", rate(100)), rate(50));
    limits.record("s", &limited(None));
    assert_eq!(limits.effective_rate("s", rate(100)), rate(25));
    // Additive: +5 % of the base per success.
    limits.record("s", &Signals::default());
    assert_eq!(limits.effective_rate("s", rate(100)), rate(30));
    for _ in 0..100 {
        limits.record("s", &Signals::default());
    }
    assert_eq!(limits.effective_rate("s", rate(100)), rate(100));
}

#[test]
fn the_rate_never_reaches_zero() {
    let (limits, _) = limits();
    for _ in 0..50 {
        limits.record("s", &limited(None));
    }
    assert!((limits.factor("s") - AdaptiveConfig::default().floor).abs() < 1e-9);
    assert_eq!(limits.effective_rate("s", rate(3)), rate(1));
}

#[test]
fn a_draining_window_spaces_calls_so_the_budget_lasts_until_the_reset() {
    let (limits, clock) = limits();
    // 4 calls left for the next 2 s: one every 500 ms, the first one spacing after the
    // answer that said so.
    limits.record("s", &window(4, 2 * SECOND));
    let waits: Vec<Duration> = (0..4).map(|_| limits.reserve("s")).collect();
    let ms = Duration::from_millis;
    assert_eq!(waits, vec![ms(500), ms(1000), ms(1500), ms(2000)]);
    // After the window's reset the pacing no longer applies.
    clock.advance(3 * SECOND);
    assert_eq!(limits.reserve("s"), Duration::ZERO);
    assert_eq!(limits.reserve("s"), Duration::ZERO);
}

#[test]
fn an_exhausted_window_pauses_until_its_reset() {
    let (limits, _) = limits();
    limits.record("s", &window(0, 42 * SECOND));
    assert_eq!(limits.reserve("s"), 42 * SECOND);
    assert!((limits.factor("s") - 1.0).abs() < 1e-9, "not a rejection");
}

#[test]
fn pacing_starts_after_a_pause() {
    let (limits, _) = limits();
    limits.record(
        "s",
        &Signals {
            limited: true,
            retry_after: Some(10 * SECOND),
            windows: vec![WindowReading {
                remaining: 10,
                limit: None,
                reset_in: 20 * SECOND,
            }],
        },
    );
    assert_eq!(limits.reserve("s"), 10 * SECOND);
    assert_eq!(limits.reserve("s"), 12 * SECOND);
}

#[test]
fn only_scopes_with_something_to_remember_hold_state() {
    let (limits, clock) = limits();
    let answered = Signals::default();
    // Successes on scopes never limited leave nothing behind.
    for channel in 0..100 {
        limits.record(&format!("t1/slack/c1#post_message#C{channel}"), &answered);
    }
    assert_eq!(limits.tracked_scopes(), 0);
    // A rejection is remembered until the factor has recovered and the pause is over.
    let scope = "t1/slack/c1#post_message#C1";
    limits.record(scope, &limited(Some(SECOND)));
    assert_eq!(limits.tracked_scopes(), 1);
    clock.advance(SECOND);
    for _ in 0..9 {
        limits.record(scope, &answered);
    }
    assert_eq!(limits.tracked_scopes(), 1, "factor still below 1");
    limits.record(scope, &answered);
    assert_eq!(limits.factor(scope), 1.0);
    assert_eq!(limits.tracked_scopes(), 0);
}

#[test]
fn idle_scopes_are_forgotten_but_a_live_pause_is_kept() {
    let (limits, clock) = limits();
    limits.record("lowered", &limited(Some(SECOND)));
    limits.record("paused", &limited(Some(10 * 60 * SECOND)));
    clock.advance(2 * SECOND);
    limits.forget_idle(60 * SECOND);
    assert_eq!(limits.tracked_scopes(), 2, "not idle long enough");
    clock.advance(60 * SECOND);
    limits.forget_idle(60 * SECOND);
    assert_eq!(limits.tracked_scopes(), 1);
    assert_eq!(limits.factor("lowered"), 1.0);
    assert!(limits.reserve("paused") > Duration::ZERO, "the pause holds");
    clock.advance(10 * 60 * SECOND);
    limits.forget_idle(60 * SECOND);
    assert_eq!(limits.tracked_scopes(), 0);
}
