//! The values callers see: endpoints, events, deliveries and attempts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;
use switchyard_core::{DeliveryId, EndpointId, MessageId, TenantId};
use time::OffsetDateTime;

use crate::error::OutboundError;

pub use switchyard_store::Page;

/// Whether an endpoint receives events of one ordering key one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Deliveries go out in parallel; a failing one does not hold others back.
    #[default]
    None,
    /// Of the deliveries with the same ordering key, only the oldest unfinished one is sent;
    /// a key whose head keeps failing blocks only itself.
    Key,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Key => "key",
        }
    }
}

impl FromStr for Ordering {
    type Err = OutboundError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "key" => Ok(Self::Key),
            other => Err(OutboundError::invalid(
                "ordering",
                format!("`{other}` is not `none` or `key`"),
            )),
        }
    }
}

/// A tenant's subscriber.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Endpoint {
    pub id: EndpointId,
    pub tenant: TenantId,
    pub url: String,
    pub description: String,
    /// Patterns (`github.*`, exact types); empty: every type.
    pub event_types: Vec<String>,
    /// Names of the extra request headers sent with every delivery. Their values are
    /// credentials and live only in the vault.
    pub header_names: Vec<String>,
    /// Deliveries per second at most; `None`: unlimited.
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    /// This endpoint's retry delays (first entry: before the first attempt); `None`: the
    /// dispatcher's schedule.
    #[serde(skip)]
    pub retry_schedule: Option<Vec<Duration>>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Fingerprint of the current signing secret (the vault's keyed hash, not the secret).
    pub secret_fingerprint: String,
    /// The `whpk_` ed25519 public key when deliveries are also signed with `v1a`.
    pub public_key: Option<String>,
    /// While set and in the future, deliveries are signed with the previous secret too.
    #[serde(with = "time::serde::rfc3339::option")]
    pub rotation_expires_at: Option<OffsetDateTime>,
    /// The first failure since the last success; `None` while healthy.
    #[serde(with = "time::serde::rfc3339::option")]
    pub failing_since: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// An endpoint to create. `NewEndpoint::new(url)` plus field updates.
#[derive(Debug, Default)]
pub struct NewEndpoint {
    pub url: String,
    pub description: String,
    pub event_types: Vec<String>,
    /// Extra request headers (name → value), stored in the vault.
    pub headers: BTreeMap<String, SecretString>,
    pub rate_limit: Option<u32>,
    pub ordering: Ordering,
    pub retry_schedule: Option<Vec<Duration>>,
    /// A `whsec_` secret to use instead of a generated one (migrating from another sender).
    pub secret: Option<SecretString>,
    /// Also sign with an ed25519 key (`v1a`); its public key is returned.
    pub v1a: bool,
}

impl NewEndpoint {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// Replaces the whole set of extra headers; `Some(None)` (or an empty map) removes them.
    pub headers: Option<Option<BTreeMap<String, SecretString>>>,
    pub rate_limit: Option<Option<u32>>,
    pub ordering: Option<Ordering>,
    pub retry_schedule: Option<Option<Vec<Duration>>>,
}

/// What creating an endpoint returns: the only time the secret is shown without asking.
#[derive(Debug)]
pub struct CreatedEndpoint {
    pub endpoint: Endpoint,
    /// `whsec_…`.
    pub secret: SecretString,
}

/// An endpoint's verification material, for the tenant to configure its receiver.
#[derive(Debug)]
pub struct EndpointSecret {
    /// The current `whsec_…`.
    pub secret: SecretString,
    /// The previous secret while a rotation's grace period lasts.
    pub previous: Option<SecretString>,
    pub public_key: Option<String>,
}

/// An event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub data: Value,
    /// The caller's id: publishing it again returns the first event, and it is the
    /// `webhook-id` of every delivery. Generated (`msg_…`) when absent.
    pub id: Option<String>,
    /// Deliveries to endpoints with [`Ordering::Key`] go out one at a time per key.
    pub ordering_key: Option<String>,
}

impl NewEvent {
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self {
            event_type: event_type.into(),
            data,
            id: None,
            ordering_key: None,
        }
    }

    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    pub fn ordering_key(mut self, key: impl Into<String>) -> Self {
        self.ordering_key = Some(key.into());
        self
    }
}

/// A published event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub id: MessageId,
    pub tenant: TenantId,
    /// The `webhook-id` header of its deliveries.
    pub webhook_id: String,
    pub event_type: String,
    pub ordering_key: Option<String>,
    /// The exact body sent: `{"type","timestamp","data"}`.
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What publishing did.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub event: Event,
    /// `false`: an event with the same id existed and is returned; nothing was fanned out.
    pub created: bool,
    pub deliveries: Vec<DeliveryId>,
}

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for `next_attempt_at`.
    Pending,
    /// Leased by a dispatcher and on the wire.
    Sending,
    Succeeded,
    /// No attempt left, or the endpoint answered 410 Gone: the dead letter.
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Sending, Self::Succeeded, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryStatus {
    type Err = OutboundError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| OutboundError::invalid("status", format!("unknown status `{s}`")))
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: DeliveryId,
    pub tenant: TenantId,
    pub endpoint_id: EndpointId,
    pub event_id: MessageId,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// One HTTP request of a delivery and what came back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attempt {
    pub delivery_id: DeliveryId,
    /// 1-based.
    pub attempt: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    pub duration_ms: u32,
    pub status_code: Option<u16>,
    pub response_headers: BTreeMap<String, String>,
    /// Where the first 64 KiB of the response body are (blob store, kind `delivery-response`).
    pub response_body_key: Option<String>,
    pub response_body_len: u32,
    /// `timeout`, `connect`, `ssrf_denied`, `redirect`, `http_status`, …; `None` on success.
    pub error_class: Option<String>,
    pub error: Option<String>,
    pub succeeded: bool,
}

/// A delivery with its attempts, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryDetail {
    pub delivery: Delivery,
    pub attempts: Vec<Attempt>,
}

/// An event with its deliveries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventDetail {
    pub event: Event,
    pub deliveries: Vec<Delivery>,
}

/// What an event is without its body: for readers not allowed to see the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMetadata {
    pub id: MessageId,
    pub tenant: TenantId,
    pub webhook_id: String,
    pub event_type: String,
    pub ordering_key: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&Event> for EventMetadata {
    fn from(event: &Event) -> Self {
        Self {
            id: event.id,
            tenant: event.tenant,
            webhook_id: event.webhook_id.clone(),
            event_type: event.event_type.clone(),
            ordering_key: event.ordering_key.clone(),
            created_at: event.created_at,
        }
    }
}

/// An event's metadata with its deliveries; the body is never opened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMetadataDetail {
    pub event: EventMetadata,
    pub deliveries: Vec<Delivery>,
}

/// Which deliveries of an endpoint to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFilter {
    /// Deliveries created at or after this time…
    pub since: OffsetDateTime,
    /// … and before this one (`None`: now).
    pub until: Option<OffsetDateTime>,
    /// Only these statuses; empty: succeeded and failed (finished deliveries).
    pub statuses: Vec<DeliveryStatus>,
}
