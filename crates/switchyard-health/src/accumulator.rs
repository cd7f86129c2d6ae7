//! The in-memory side: attempts are added here on the caller's task, under a short lock, and
//! taken out whole by the flush. Nothing here waits on I/O.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use switchyard_core::TenantId;
use switchyard_http::{AttemptRecord, OutcomeClass};
use time::OffsetDateTime;

use crate::counts::{OutcomeCounts, counts_as_error};
use crate::model::{MAX_RECENT_ERRORS, RecentError};

/// Connection ids become event ordering keys: the same rule as those (printable ASCII, no
/// spaces, at most 255 bytes).
const MAX_CONNECTION_ID_LEN: usize = 255;
/// Bounds on what a recent error keeps of a record's fields: they are names and codes, so
/// anything longer is not what the field is meant to hold.
const MAX_METHOD_LEN: usize = 16;
const MAX_ROUTE_LEN: usize = 256;
const MAX_CODE_LEN: usize = 64;
const MAX_PROVIDER_LEN: usize = 128;

/// Which connection.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ConnectionKey {
    pub tenant: TenantId,
    pub connection: String,
}

/// What one connection accumulated since the last flush.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pending {
    pub provider: String,
    /// By the start of the minute the attempts were made in.
    pub minutes: BTreeMap<OffsetDateTime, OutcomeCounts>,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_failure_at: Option<OffsetDateTime>,
    pub last_auth_failure_at: Option<OffsetDateTime>,
    /// Oldest first, at most [`MAX_RECENT_ERRORS`].
    pub recent_errors: VecDeque<RecentError>,
    /// Flushes of this data that failed so far; it is dropped after a few.
    pub failed_flushes: u32,
}

impl Pending {
    fn add(&mut self, record: &AttemptRecord, at: OffsetDateTime) {
        record.provider.clone_into(&mut self.provider);
        truncate(&mut self.provider, MAX_PROVIDER_LEN);
        self.minutes
            .entry(minute_of(at))
            .or_default()
            .add(record.class, record.latency);
        if record.class.is_success() {
            self.last_success_at = later(self.last_success_at, Some(at));
        } else if counts_as_error(record.class) {
            self.last_failure_at = later(self.last_failure_at, Some(at));
            if record.class == OutcomeClass::AuthFailure {
                self.last_auth_failure_at = later(self.last_auth_failure_at, Some(at));
            }
            self.push_error(recent_error(record, at));
        }
    }

    fn push_error(&mut self, error: RecentError) {
        self.recent_errors.push_back(error);
        while self.recent_errors.len() > MAX_RECENT_ERRORS {
            self.recent_errors.pop_front();
        }
    }

    /// Adds `other` (data whose flush failed) back in.
    fn merge(&mut self, other: Pending) {
        if self.provider.is_empty() {
            self.provider = other.provider;
        }
        for (minute, counts) in other.minutes {
            self.minutes.entry(minute).or_default().merge(&counts);
        }
        self.last_success_at = later(self.last_success_at, other.last_success_at);
        self.last_failure_at = later(self.last_failure_at, other.last_failure_at);
        self.last_auth_failure_at = later(self.last_auth_failure_at, other.last_auth_failure_at);
        let mut errors: Vec<RecentError> = other.recent_errors.into_iter().collect();
        errors.extend(self.recent_errors.drain(..));
        self.recent_errors = newest(errors).into();
        self.failed_flushes = self.failed_flushes.max(other.failed_flushes);
    }
}

/// Attempts by connection, waiting for the next flush.
#[derive(Debug, Default)]
pub(crate) struct Accumulator {
    pending: Mutex<BTreeMap<ConnectionKey, Pending>>,
}

impl Accumulator {
    /// Counts `record`, unless it names no connection or carries ids health cannot key on.
    pub fn record(&self, record: &AttemptRecord) {
        let Some(connection) = record.connection.as_deref() else {
            return;
        };
        if !valid_connection_id(connection) {
            tracing::debug!("attempt not counted for health: unusable connection id");
            return;
        }
        let Ok(tenant) = record.tenant.parse::<TenantId>() else {
            tracing::debug!("attempt not counted for health: unusable tenant id");
            return;
        };
        let at = OffsetDateTime::from(record.at);
        let key = ConnectionKey {
            tenant,
            connection: connection.to_owned(),
        };
        self.lock().entry(key).or_default().add(record, at);
    }

    /// Everything accumulated so far, leaving the accumulator empty.
    pub fn take(&self) -> BTreeMap<ConnectionKey, Pending> {
        std::mem::take(&mut *self.lock())
    }

    /// Puts back data whose flush failed, to go with the next one.
    pub fn restore(&self, key: ConnectionKey, pending: Pending) {
        self.lock().entry(key).or_default().merge(pending);
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ConnectionKey, Pending>> {
        // The map stays consistent if a holder panicked: every update is a single insert.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The start of the minute `at` is in (UTC).
pub(crate) fn minute_of(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(time::UtcOffset::UTC);
    at.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at)
}

/// The later of two optional times.
pub(crate) fn later(
    a: Option<OffsetDateTime>,
    b: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// The newest [`MAX_RECENT_ERRORS`] of `errors`, oldest first.
pub(crate) fn newest(mut errors: Vec<RecentError>) -> Vec<RecentError> {
    errors.sort_by_key(|e| e.at);
    let skip = errors.len().saturating_sub(MAX_RECENT_ERRORS);
    errors.split_off(skip)
}

fn valid_connection_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_CONNECTION_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

fn recent_error(record: &AttemptRecord, at: OffsetDateTime) -> RecentError {
    let bounded = |value: &str, max: usize| {
        let mut value = value.to_owned();
        truncate(&mut value, max);
        value
    };
    RecentError {
        // Stored times are microseconds: keep the same precision here so a flushed error
        // compares equal to what reads back.
        at: switchyard_store::DbTime::new(at).get(),
        method: bounded(&record.method, MAX_METHOD_LEN),
        route: bounded(&record.route, MAX_ROUTE_LEN),
        status: record.status,
        class: record.class,
        error: record
            .error
            .as_deref()
            .map(|code| bounded(code, MAX_CODE_LEN)),
    }
}

/// Cuts `value` to at most `max` bytes, on a character boundary.
fn truncate(value: &mut String, max: usize) {
    if value.len() > max {
        let cut = (0..=max)
            .rev()
            .find(|i| value.is_char_boundary(*i))
            .unwrap_or(0);
        value.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn record(connection: Option<&str>, class: OutcomeClass) -> AttemptRecord {
        AttemptRecord {
            tenant: TenantId::generate().to_string(),
            provider: "github".to_owned(),
            connection: connection.map(str::to_owned),
            method: "GET".to_owned(),
            route: "/repos/{owner}/{repo}".to_owned(),
            status: Some(503),
            class,
            latency: Duration::from_millis(12),
            at: SystemTime::now(),
            error: Some("http_503".to_owned()),
        }
    }

    #[test]
    fn records_without_a_usable_connection_are_ignored() {
        let accumulator = Accumulator::default();
        accumulator.record(&record(None, OutcomeClass::Success));
        accumulator.record(&record(Some("has space"), OutcomeClass::Success));
        accumulator.record(&record(Some(""), OutcomeClass::Success));
        let mut bad_tenant = record(Some("con_1"), OutcomeClass::Success);
        bad_tenant.tenant = "not-a-tenant".to_owned();
        accumulator.record(&bad_tenant);
        assert!(accumulator.is_empty());
        accumulator.record(&record(Some("con_1"), OutcomeClass::Success));
        assert_eq!(accumulator.take().len(), 1);
        assert!(accumulator.is_empty());
    }

    #[test]
    fn keeps_the_newest_errors_only() {
        let mut pending = Pending::default();
        let start = OffsetDateTime::now_utc();
        for i in 0..25 {
            let mut r = record(Some("con_1"), OutcomeClass::ServerError);
            r.error = Some(format!("http_5{i:02}"));
            pending.add(&r, start + time::Duration::seconds(i));
        }
        assert_eq!(pending.recent_errors.len(), MAX_RECENT_ERRORS);
        assert_eq!(
            pending
                .recent_errors
                .back()
                .and_then(|e| e.error.as_deref()),
            Some("http_524")
        );
        assert_eq!(
            pending.last_failure_at.map(|t| t - start),
            Some(time::Duration::seconds(24))
        );
        assert!(pending.last_success_at.is_none());
        // Rate limits and client errors are counted but are not failures.
        pending.add(
            &record(Some("con_1"), OutcomeClass::RateLimited),
            start + time::Duration::minutes(5),
        );
        assert_eq!(pending.recent_errors.len(), MAX_RECENT_ERRORS);
        assert_eq!(
            pending.last_failure_at.map(|t| t - start),
            Some(time::Duration::seconds(24))
        );
    }

    #[test]
    fn minutes_start_on_the_minute() {
        let at = time::macros::datetime!(2026-03-01 12:34:56.789 UTC);
        assert_eq!(minute_of(at), time::macros::datetime!(2026-03-01 12:34 UTC));
    }
}
