//! [`HealthStatus`] and the rule that assigns it: the window's error rate, and whether the
//! credential was refused after the last success.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use time::OffsetDateTime;

use crate::counts::OutcomeCounts;

/// How far back the status looks.
pub const WINDOW: Duration = Duration::from_secs(3600);

/// What a connection's recent calls say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    Healthy,
    /// More than 10 % of the window's calls failed.
    Degraded,
    /// More than 50 % failed, or the credential was refused after the last success.
    Unhealthy,
}

impl HealthStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Degraded => "degraded",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status that is none of the three.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a health status")]
pub struct UnknownStatus(pub String);

impl FromStr for HealthStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "healthy" => Ok(Self::Healthy),
            "degraded" => Ok(Self::Degraded),
            "unhealthy" => Ok(Self::Unhealthy),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// The status of a connection with `window` counted over the last hour.
///
/// The auth rule looks past the window on purpose: a refused credential stays refused until a
/// call succeeds, however long nobody tried. The error-rate rule sees only the window, so a
/// connection nobody called for an hour is `healthy` with zero calls.
pub fn assess(
    window: &OutcomeCounts,
    last_success_at: Option<OffsetDateTime>,
    last_auth_failure_at: Option<OffsetDateTime>,
) -> HealthStatus {
    let refused = match (last_auth_failure_at, last_success_at) {
        (Some(refused), Some(succeeded)) => refused > succeeded,
        (Some(_), None) => true,
        (None, _) => false,
    };
    // Integer comparisons: exactly 10 % or 50 % is still the better status.
    let (errors, calls) = (window.errors(), window.calls());
    if refused || errors * 2 > calls {
        HealthStatus::Unhealthy
    } else if errors * 10 > calls {
        HealthStatus::Degraded
    } else {
        HealthStatus::Healthy
    }
}

/// The start of the window ending at `now`: the minute buckets from 59 minutes before the
/// current one, so the window always spans 60 whole or partial minutes.
pub fn window_start(now: OffsetDateTime) -> OffsetDateTime {
    let minutes = time::Duration::try_from(WINDOW).unwrap_or(time::Duration::HOUR);
    crate::accumulator::minute_of(now) - minutes + time::Duration::MINUTE
}

#[cfg(test)]
mod tests {
    use switchyard_http::OutcomeClass;
    use time::macros::datetime;

    use super::*;

    fn counts(successes: u64, class: OutcomeClass, failures: u64) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for _ in 0..successes {
            counts.add(OutcomeClass::Success, Duration::from_millis(5));
        }
        for _ in 0..failures {
            counts.add(class, Duration::from_millis(5));
        }
        counts
    }

    #[test]
    fn error_rate_thresholds() {
        let t = OutcomeClass::ServerError;
        assert_eq!(assess(&counts(91, t, 9), None, None), HealthStatus::Healthy);
        assert_eq!(
            assess(&counts(90, t, 10), None, None),
            HealthStatus::Healthy
        );
        assert_eq!(
            assess(&counts(89, t, 11), None, None),
            HealthStatus::Degraded
        );
        assert_eq!(
            assess(&counts(50, t, 50), None, None),
            HealthStatus::Degraded
        );
        assert_eq!(
            assess(&counts(49, t, 51), None, None),
            HealthStatus::Unhealthy
        );
        assert_eq!(assess(&counts(0, t, 0), None, None), HealthStatus::Healthy);
    }

    #[test]
    fn client_errors_and_rate_limits_are_not_errors() {
        let limited = counts(10, OutcomeClass::RateLimited, 90);
        assert_eq!(assess(&limited, None, None), HealthStatus::Healthy);
        let not_found = counts(10, OutcomeClass::ClientError, 90);
        assert_eq!(assess(&not_found, None, None), HealthStatus::Healthy);
        let open = counts(10, OutcomeClass::CircuitOpen, 90);
        assert_eq!(assess(&open, None, None), HealthStatus::Unhealthy);
    }

    #[test]
    fn a_refused_credential_after_the_last_success_is_unhealthy() {
        let mostly_fine = counts(99, OutcomeClass::AuthFailure, 1);
        let before = datetime!(2026-01-01 10:00 UTC);
        let after = datetime!(2026-01-01 10:05 UTC);
        assert_eq!(
            assess(&mostly_fine, Some(before), Some(after)),
            HealthStatus::Unhealthy
        );
        assert_eq!(
            assess(&mostly_fine, Some(after), Some(before)),
            HealthStatus::Healthy
        );
        // Outside the window it still holds: nothing has succeeded since.
        let quiet = OutcomeCounts::default();
        assert_eq!(assess(&quiet, None, Some(before)), HealthStatus::Unhealthy);
    }

    #[test]
    fn the_window_is_sixty_minutes_ending_with_the_current_one() {
        let now = datetime!(2026-01-01 10:30:45 UTC);
        assert_eq!(window_start(now), datetime!(2026-01-01 09:31 UTC));
    }
}
