//! [`OutcomeCounts`]: attempts per outcome class and latency bucket, the unit that is
//! accumulated in memory, stored per minute, and summed over the window.

use std::collections::BTreeMap;
use std::time::Duration;

use switchyard_http::OutcomeClass;

use crate::histogram::{self, Histogram};

/// How many outcome classes there are (columns of a bucket row).
pub const CLASSES: usize = OutcomeClass::ALL.len();

/// The position of `class` in [`OutcomeClass::ALL`] (and in a bucket row's columns).
pub(crate) fn class_index(class: OutcomeClass) -> usize {
    OutcomeClass::ALL
        .iter()
        .position(|c| *c == class)
        .unwrap_or_default()
}

/// Whether an attempt of `class` counts as an error for health. The provider answering "no"
/// to a wrong request (`client_error`, a 404) or "not now" (`rate_limited`) says nothing bad
/// about the connection; both are still counted and reported by class.
pub const fn counts_as_error(class: OutcomeClass) -> bool {
    !matches!(
        class,
        OutcomeClass::Success | OutcomeClass::ClientError | OutcomeClass::RateLimited
    )
}

/// Attempts by class, and their latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutcomeCounts {
    by_class: [u64; CLASSES],
    latency: Histogram,
}

impl OutcomeCounts {
    /// From stored columns: the classes in [`OutcomeClass::ALL`] order, then the histogram.
    pub(crate) fn from_columns(by_class: [u64; CLASSES], latency: Histogram) -> Self {
        Self { by_class, latency }
    }

    /// Counts one attempt. An attempt the open breaker stopped sent nothing, so its latency
    /// would only pull the percentiles down: it is not in the histogram.
    pub fn add(&mut self, class: OutcomeClass, latency: Duration) {
        self.by_class[class_index(class)] += 1;
        if class != OutcomeClass::CircuitOpen {
            self.latency[histogram::bucket_of(latency)] += 1;
        }
    }

    pub fn merge(&mut self, other: &Self) {
        for (mine, theirs) in self.by_class.iter_mut().zip(other.by_class) {
            *mine += theirs;
        }
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency) {
            *mine += theirs;
        }
    }

    pub fn of(&self, class: OutcomeClass) -> u64 {
        self.by_class[class_index(class)]
    }

    /// Every attempt, of every class.
    pub fn calls(&self) -> u64 {
        self.by_class.iter().sum()
    }

    /// The attempts that [count as errors](counts_as_error).
    pub fn errors(&self) -> u64 {
        OutcomeClass::ALL
            .iter()
            .filter(|class| counts_as_error(**class))
            .map(|class| self.of(*class))
            .sum()
    }

    /// Errors over calls, `None` without calls.
    pub fn error_rate(&self) -> Option<f64> {
        let calls = self.calls();
        (calls > 0).then(|| self.errors() as f64 / calls as f64)
    }

    /// Successes over calls, `None` without calls.
    pub fn success_rate(&self) -> Option<f64> {
        let calls = self.calls();
        (calls > 0).then(|| self.of(OutcomeClass::Success) as f64 / calls as f64)
    }

    pub(crate) fn by_class(&self) -> &[u64; CLASSES] {
        &self.by_class
    }

    pub fn latency(&self) -> &Histogram {
        &self.latency
    }

    /// Every class by name, zeros included, so documents always have the same keys.
    pub fn by_class_name(&self) -> BTreeMap<&'static str, u64> {
        OutcomeClass::ALL
            .iter()
            .map(|class| (class.as_str(), self.of(*class)))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.calls() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_exclude_success_client_errors_and_rate_limits() {
        let mut counts = OutcomeCounts::default();
        for class in OutcomeClass::ALL {
            counts.add(class, Duration::from_millis(3));
        }
        assert_eq!(counts.calls(), 8);
        assert_eq!(counts.errors(), 5);
        // The breaker's refusals are counted, but not timed.
        assert_eq!(counts.latency().iter().sum::<u64>(), 7);
        let mut twice = counts;
        twice.merge(&counts);
        assert_eq!(twice.calls(), 16);
        assert_eq!(twice.of(OutcomeClass::Timeout), 2);
    }
}
