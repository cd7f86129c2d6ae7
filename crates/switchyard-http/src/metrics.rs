//! Metric names and the few helpers that record them. No label carries a key, URL or host:
//! per-endpoint labels would grow without bound.

use std::time::Duration;

use crate::breaker::BreakerState;
use crate::ssrf::Denied;

/// Counter, label `class`: destinations the SSRF guard refused (each denied address, or the
/// URL refusal: `scheme`, `no_host`).
pub const SSRF_DENIED_TOTAL: &str = "switchyard_http_ssrf_denied_total";
/// Gauge, label `state` (`closed|open|half_open`): how many breakers are in each state.
pub const BREAKERS: &str = "switchyard_http_breakers";
/// Counter, labels `from`, `to`: breaker state transitions.
pub const BREAKER_TRANSITIONS_TOTAL: &str = "switchyard_http_breaker_transitions_total";
/// Counter: calls a breaker refused.
pub const BREAKER_REJECTED_TOTAL: &str = "switchyard_http_breaker_rejected_total";
/// Counter: waits `until_ready` had to make before a call was admitted.
pub const RATE_LIMIT_WAITS_TOTAL: &str = "switchyard_http_rate_limit_waits_total";
/// Counter: calls refused because admission would come after the caller's deadline.
pub const RATE_LIMIT_REJECTED_TOTAL: &str = "switchyard_http_rate_limit_rejected_total";
/// Counter, labels `provider`, `outcome` (`2xx|3xx|4xx|429|5xx|timeout|connect_error|
/// transport_error`): provider call attempts. The provider label is a connector id, a small
/// fixed set.
pub const PROVIDER_REQUESTS_TOTAL: &str = "switchyard_provider_requests_total";
/// Histogram, seconds, label `provider`: attempt latency, from send to the body read.
pub const PROVIDER_REQUEST_SECONDS: &str = "switchyard_provider_request_duration_seconds";
/// Counter, label `provider`: attempts repeated by the retry policy.
pub const PROVIDER_RETRIES_TOTAL: &str = "switchyard_provider_retries_total";
/// Histogram, seconds: time calls waited for the adaptive pause, pacing and rate limiter.
pub const PROVIDER_RATE_WAIT_SECONDS: &str = "switchyard_provider_rate_limit_wait_seconds";

pub(crate) fn provider_request(provider: &str, outcome: &'static str, took: Duration) {
    let provider = provider.to_owned();
    metrics::counter!(PROVIDER_REQUESTS_TOTAL, "provider" => provider.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(PROVIDER_REQUEST_SECONDS, "provider" => provider)
        .record(took.as_secs_f64());
}

pub(crate) fn provider_retry(provider: &str) {
    metrics::counter!(PROVIDER_RETRIES_TOTAL, "provider" => provider.to_owned()).increment(1);
}

pub(crate) fn provider_rate_wait(waited: Duration) {
    metrics::histogram!(PROVIDER_RATE_WAIT_SECONDS).record(waited.as_secs_f64());
}

pub(crate) fn record_ssrf_denial(denied: &Denied) {
    metrics::counter!(SSRF_DENIED_TOTAL, "class" => denied.class_label()).increment(1);
}

pub(crate) fn breaker_created() {
    metrics::gauge!(BREAKERS, "state" => BreakerState::Closed.as_str()).increment(1.0);
}

pub(crate) fn breaker_dropped(state: BreakerState) {
    metrics::gauge!(BREAKERS, "state" => state.as_str()).decrement(1.0);
}

pub(crate) fn breaker_transition(from: BreakerState, to: BreakerState) {
    metrics::gauge!(BREAKERS, "state" => from.as_str()).decrement(1.0);
    metrics::gauge!(BREAKERS, "state" => to.as_str()).increment(1.0);
    metrics::counter!(BREAKER_TRANSITIONS_TOTAL, "from" => from.as_str(), "to" => to.as_str())
        .increment(1);
}

pub(crate) fn breaker_rejected() {
    metrics::counter!(BREAKER_REJECTED_TOTAL).increment(1);
}

pub(crate) fn rate_limit_waited() {
    metrics::counter!(RATE_LIMIT_WAITS_TOTAL).increment(1);
}

pub(crate) fn rate_limit_rejected() {
    metrics::counter!(RATE_LIMIT_REJECTED_TOTAL).increment(1);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    use crate::breaker::{BreakerConfig, CircuitBreaker};
    use crate::client::GuardedResolver;
    use crate::clock::ManualClock;
    use crate::ssrf::SsrfPolicy;

    /// Every series as `name{k=v,…}` → value.
    #[derive(Default)]
    struct Capture(Arc<Mutex<BTreeMap<String, f64>>>);

    struct Series {
        id: String,
        values: Arc<Mutex<BTreeMap<String, f64>>>,
    }

    impl Series {
        fn update(&self, f: impl FnOnce(f64) -> f64) {
            let mut values = self.values.lock().unwrap();
            let v = values.entry(self.id.clone()).or_default();
            *v = f(*v);
        }
    }

    impl CounterFn for Series {
        fn increment(&self, n: u64) {
            self.update(|v| v + n as f64);
        }
        fn absolute(&self, n: u64) {
            self.update(|_| n as f64);
        }
    }

    impl GaugeFn for Series {
        fn increment(&self, n: f64) {
            self.update(|v| v + n);
        }
        fn decrement(&self, n: f64) {
            self.update(|v| v - n);
        }
        fn set(&self, n: f64) {
            self.update(|_| n);
        }
    }

    impl Capture {
        fn series(&self, key: &Key) -> Arc<Series> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            Arc::new(Series {
                id: format!("{}{{{}}}", key.name(), labels.join(",")),
                values: Arc::clone(&self.0),
            })
        }

        fn get(&self, id: &str) -> f64 {
            self.0.lock().unwrap().get(id).copied().unwrap_or_default()
        }
    }

    impl Recorder for Capture {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.series(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.series(key))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn breaker_gauges_count_breakers_per_state() {
        let capture = Capture::default();
        metrics::with_local_recorder(&capture, || {
            let clock = ManualClock::new();
            let config = BreakerConfig {
                min_calls: 1,
                ..BreakerConfig::default()
            };
            let a = Arc::new(CircuitBreaker::new(config, Arc::new(clock.clone())));
            let b = Arc::new(CircuitBreaker::new(config, Arc::new(clock.clone())));
            assert_eq!(capture.get("switchyard_http_breakers{state=closed}"), 2.0);
            a.try_acquire().unwrap().failure();
            assert_eq!(capture.get("switchyard_http_breakers{state=closed}"), 1.0);
            assert_eq!(capture.get("switchyard_http_breakers{state=open}"), 1.0);
            assert!(a.try_acquire().is_err());
            assert_eq!(capture.get("switchyard_http_breaker_rejected_total{}"), 1.0);
            clock.advance(Duration::from_secs(30));
            a.try_acquire().unwrap().success();
            assert_eq!(
                capture.get("switchyard_http_breaker_transitions_total{from=closed,to=open}"),
                1.0
            );
            assert_eq!(
                capture.get("switchyard_http_breaker_transitions_total{from=open,to=half_open}"),
                1.0
            );
            assert_eq!(
                capture.get("switchyard_http_breaker_transitions_total{from=half_open,to=closed}"),
                1.0
            );
            drop(a);
            drop(b);
            for state in ["closed", "open", "half_open"] {
                let id = format!("switchyard_http_breakers{{state={state}}}");
                assert_eq!(capture.get(&id), 0.0, "{id}");
            }
        });
    }

    #[test]
    fn ssrf_denials_are_counted_by_class() {
        let capture = Capture::default();
        metrics::with_local_recorder(&capture, || {
            let resolver = GuardedResolver::new(Arc::new(SsrfPolicy::strict()));
            let addrs =
                ["127.0.0.1:0", "[::1]:0", "10.0.0.1:0", "8.8.8.8:0"].map(|a| a.parse().unwrap());
            let kept = resolver.filter(addrs).unwrap();
            assert_eq!(kept, ["8.8.8.8:0".parse().unwrap()]);
            assert_eq!(
                capture.get("switchyard_http_ssrf_denied_total{class=loopback}"),
                2.0
            );
            assert_eq!(
                capture.get("switchyard_http_ssrf_denied_total{class=private}"),
                1.0
            );
        });
    }
}
