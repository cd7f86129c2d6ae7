//! The values callers see: a connection's health document and its recent errors.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_core::TenantId;
use switchyard_http::OutcomeClass;
use time::OffsetDateTime;

use crate::status::HealthStatus;

/// How many recent errors a connection keeps.
pub const MAX_RECENT_ERRORS: usize = 10;

/// One failed attempt as kept for people to read: where and how it failed, never what was
/// sent or received (the route is the template, the code a stable identifier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecentError {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub method: String,
    pub route: String,
    pub status: Option<u16>,
    #[serde(with = "class_name")]
    pub class: OutcomeClass,
    pub error: Option<String>,
}

/// A connection's health over the window ending at `window_end`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionHealth {
    pub tenant: TenantId,
    pub connection_id: String,
    pub provider: String,
    pub status: HealthStatus,
    pub window_start: OffsetDateTime,
    pub window_end: OffsetDateTime,
    /// Attempts in the window, of every class.
    pub calls: u64,
    /// Attempts that count as errors (every class but success, client_error, rate_limited).
    pub errors: u64,
    /// `None` without calls.
    pub error_rate: Option<f64>,
    pub success_rate: Option<f64>,
    /// Upper bounds of the latency buckets holding the 50th and 95th percentile attempt.
    pub latency_p50_ms: Option<u64>,
    pub latency_p95_ms: Option<u64>,
    /// Every outcome class, zeros included.
    pub counts: BTreeMap<&'static str, u64>,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_failure_at: Option<OffsetDateTime>,
    /// When the stored (announced) status last changed.
    pub status_changed_at: Option<OffsetDateTime>,
    /// Newest first.
    pub recent_errors: Vec<RecentError>,
}

/// Outcome classes by their stable names.
mod class_name {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use switchyard_http::OutcomeClass;

    pub fn serialize<S: Serializer>(
        class: &OutcomeClass,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(class.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<OutcomeClass, D::Error> {
        let name = String::deserialize(deserializer)?;
        super::class_from_name(&name)
            .ok_or_else(|| D::Error::custom(format!("unknown outcome class `{name}`")))
    }
}

/// The class named `name` ([`OutcomeClass::as_str`]).
pub fn class_from_name(name: &str) -> Option<OutcomeClass> {
    OutcomeClass::ALL.into_iter().find(|c| c.as_str() == name)
}
