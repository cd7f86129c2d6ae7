//! A provider's limits as a connector manifest declares them (JSON), turned into the
//! [`ProviderPolicy`] the stack runs with. Unknown fields are refused so a typo in a manifest
//! is an error, not a silently ignored limit.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;

use crate::backoff::ExponentialBackoff;
use crate::capture::CaptureSpec;
use crate::provider::{LimitScope, ProviderPolicy};
use crate::rate_limit::Rate;
use crate::retry::RetryPolicy;
use crate::signals::SignalSpec;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySpec {
    #[serde(default)]
    rate: Option<RateSpec>,
    #[serde(default)]
    limit_scope: LimitScope,
    #[serde(default)]
    max_concurrency: Option<NonZeroU32>,
    #[serde(default)]
    endpoint_rates: HashMap<String, RateSpec>,
    #[serde(default)]
    signals: SignalSpec,
    #[serde(default)]
    retry: Option<RetrySpec>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    capture: CaptureSpec,
}

/// `per_second` or `per_minute` (exactly one), and an optional `burst`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateSpec {
    #[serde(default)]
    per_second: Option<NonZeroU32>,
    /// For providers that count per minute (Slack's tiers): 20 a minute is one call every
    /// three seconds, which `per_second` cannot say.
    #[serde(default)]
    per_minute: Option<NonZeroU32>,
    /// Calls allowed at once; the `per_second` or `per_minute` number when absent.
    #[serde(default)]
    burst: Option<NonZeroU32>,
}

impl RateSpec {
    fn rate(self) -> Result<Rate, PolicySpecError> {
        let rate = match (self.per_second, self.per_minute) {
            (Some(n), None) => Rate::per_second(n),
            (None, Some(n)) => Rate::per_minute(n),
            (Some(_), Some(_)) => {
                return Err(PolicySpecError::Inconsistent(
                    "a rate has both per_second and per_minute",
                ));
            }
            (None, None) => {
                return Err(PolicySpecError::Inconsistent(
                    "a rate needs per_second or per_minute",
                ));
            }
        };
        Ok(self.burst.map_or(rate, |burst| rate.with_burst(burst)))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrySpec {
    #[serde(default)]
    max_attempts: Option<u32>,
    #[serde(default)]
    retry_statuses: Option<Vec<u16>>,
    /// Statuses the provider documents as "not acted on": a POST is repeated after them.
    #[serde(default)]
    unprocessed_statuses: Vec<u16>,
    #[serde(default)]
    backoff_base_ms: Option<u64>,
    #[serde(default)]
    backoff_max_ms: Option<u64>,
}

/// A manifest's limits section could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicySpecError {
    #[error("invalid provider limits: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("invalid provider limits: {0}")]
    Inconsistent(&'static str),
}

impl ProviderPolicy {
    /// Reads a manifest's limits section (see `docs/provider-calls.md`); every field is
    /// optional and falls back to [`ProviderPolicy::default`].
    ///
    /// # Errors
    /// [`PolicySpecError`] for malformed JSON, unknown fields or contradictory values.
    pub fn from_manifest(json: &serde_json::Value) -> Result<Self, PolicySpecError> {
        let spec = PolicySpec::deserialize(json)?;
        let defaults = Self::default();
        let rate = spec.rate.map(RateSpec::rate).transpose()?;
        let endpoint_rates = spec
            .endpoint_rates
            .into_iter()
            .map(|(class, r)| Ok((class, r.rate()?)))
            .collect::<Result<_, PolicySpecError>>()?;
        let retry = match spec.retry {
            None => defaults.retry,
            Some(r) => {
                let base = RetryPolicy::default();
                let backoff = ExponentialBackoff::new(
                    r.backoff_base_ms
                        .map_or(base.backoff.base, Duration::from_millis),
                    r.backoff_max_ms
                        .map_or(base.backoff.max, Duration::from_millis),
                );
                if backoff.base > backoff.max {
                    return Err(PolicySpecError::Inconsistent(
                        "retry.backoff_base_ms exceeds retry.backoff_max_ms",
                    ));
                }
                let max_attempts = r.max_attempts.unwrap_or(base.max_attempts);
                if max_attempts == 0 {
                    return Err(PolicySpecError::Inconsistent(
                        "retry.max_attempts must be at least 1",
                    ));
                }
                let retry_statuses = r.retry_statuses.unwrap_or(base.retry_statuses);
                let fails = |status: &u16| {
                    retry_statuses.contains(status)
                        || spec.signals.limited_statuses.contains(status)
                        || spec.signals.body.iter().any(|signal| {
                            signal.statuses.is_empty() || signal.statuses.contains(status)
                        })
                };
                if !r.unprocessed_statuses.iter().all(fails) {
                    return Err(PolicySpecError::Inconsistent(
                        "retry.unprocessed_statuses lists a status that is neither in \
                         retry.retry_statuses nor a rate-limit signal, so it is never retried",
                    ));
                }
                RetryPolicy {
                    max_attempts,
                    backoff,
                    retry_statuses,
                    unprocessed_statuses: r.unprocessed_statuses,
                }
            }
        };
        Ok(Self {
            rate,
            limit_scope: spec.limit_scope,
            signals: spec.signals,
            retry,
            max_body: spec.max_body_bytes.unwrap_or(defaults.max_body),
            max_concurrency: spec.max_concurrency,
            endpoint_rates,
            capture: spec.capture,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use serde_json::json;

    use super::*;
    use crate::signals::ResetFormat;

    #[test]
    fn the_documented_example_reads() {
        let policy = ProviderPolicy::from_manifest(&json!({
            "rate": {"per_second": 10, "burst": 20},
            "limit_scope": "tenant_provider",
            "max_concurrency": 8,
            "endpoint_rates": {"logs": {"per_second": 2}},
            "signals": {
                "limited_statuses": [429],
                "retry_after": true,
                "windows": [
                    {"remaining": "x-rate-limit-remaining", "limit": "x-rate-limit-limit",
                     "reset": "x-rate-limit-reset", "reset_format": "epoch_seconds"}
                ],
                "body": [
                    {"statuses": [200, 400], "pointer": "/error", "values": ["ratelimited"]}
                ]
            },
            "capture": {"enabled": false, "redact_fields": ["/profile/email", "password"]}
        }))
        .unwrap();
        let n = |v| NonZeroU32::new(v).unwrap();
        assert_eq!(policy.rate, Some(Rate::per_second(n(10)).with_burst(n(20))));
        assert_eq!(policy.limit_scope, LimitScope::TenantProvider);
        assert_eq!(policy.max_concurrency, Some(n(8)));
        assert_eq!(policy.endpoint_rates["logs"], Rate::per_second(n(2)));
        assert_eq!(
            policy.signals.windows[0].reset_format,
            ResetFormat::EpochSeconds
        );
        assert_eq!(policy.signals.body[0].values, ["ratelimited"]);
        assert_eq!(policy.capture.redact_fields.len(), 2);
        assert_eq!(policy.retry, RetryPolicy::default());
    }

    #[test]
    fn an_empty_section_is_the_default_and_mistakes_are_refused() {
        let empty = ProviderPolicy::from_manifest(&json!({})).unwrap();
        assert_eq!(empty.rate, None);
        assert_eq!(empty.retry, RetryPolicy::default());
        for bad in [
            json!({"rate": {"per_second": 0}}),
            json!({"rate_limit": {}}),
            json!({"retry": {"max_attempts": 0}}),
            json!({"retry": {"backoff_base_ms": 5000, "backoff_max_ms": 100}}),
            json!({"signals": {"windows": [{"remaining": "a", "reset": "b", "reset_format": "weeks"}]}}),
        ] {
            assert!(ProviderPolicy::from_manifest(&bad).is_err(), "{bad}");
        }
        let retry = ProviderPolicy::from_manifest(&json!({"retry": {"max_attempts": 2}})).unwrap();
        assert_eq!(retry.retry.max_attempts, 2);
    }

    #[test]
    fn unprocessed_statuses_are_read_and_must_be_retried_ones() {
        let slack = ProviderPolicy::from_manifest(&json!({
            "retry": {"retry_statuses": [500, 503], "unprocessed_statuses": [429]},
        }))
        .unwrap();
        // 429 is not in retry_statuses but is the default limited status.
        assert_eq!(slack.retry.unprocessed_statuses, [429]);
        assert_eq!(slack.retry.retry_statuses, [500, 503]);
        let by_body = ProviderPolicy::from_manifest(&json!({
            "signals": {"body": [{"statuses": [400], "pointer": "/error", "values": ["busy"]}]},
            "retry": {"unprocessed_statuses": [400]},
        }))
        .unwrap();
        assert_eq!(by_body.retry.unprocessed_statuses, [400]);
        for bad in [
            json!({"retry": {"unprocessed_statuses": [409]}}),
            json!({"retry": {"retry_statuses": [503], "unprocessed_statuses": [429]},
                   "signals": {"limited_statuses": []}}),
        ] {
            let error = ProviderPolicy::from_manifest(&bad).unwrap_err();
            assert!(
                error.to_string().contains("unprocessed_statuses"),
                "{bad}: {error}"
            );
        }
        assert!(
            ProviderPolicy::from_manifest(&json!({}))
                .unwrap()
                .retry
                .unprocessed_statuses
                .is_empty()
        );
    }

    #[test]
    fn a_rate_can_be_per_minute() {
        let policy = ProviderPolicy::from_manifest(&json!({
            "rate": {"per_minute": 20},
            "endpoint_rates": {"users_list": {"per_minute": 20, "burst": 5}},
        }))
        .unwrap();
        let n = |v| NonZeroU32::new(v).unwrap();
        let rate = policy.rate.unwrap();
        assert_eq!(rate, Rate::per_minute(n(20)));
        assert_eq!(rate.interval(), Duration::from_secs(3));
        assert_eq!(rate.burst(), n(20));
        assert_eq!(
            policy.endpoint_rates["users_list"],
            Rate::per_minute(n(20)).with_burst(n(5))
        );
        for bad in [
            json!({"rate": {"per_minute": 20, "per_second": 1}}),
            json!({"rate": {"burst": 20}}),
            json!({"endpoint_rates": {"x": {"per_minute": 0}}}),
            json!({"endpoint_rates": {"x": {"per_hour": 5}}}),
        ] {
            let error = ProviderPolicy::from_manifest(&bad).unwrap_err();
            assert!(
                error.to_string().starts_with("invalid provider limits"),
                "{bad}"
            );
        }
    }
}
