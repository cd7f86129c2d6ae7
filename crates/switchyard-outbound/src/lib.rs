//! Outbound webhook delivery: endpoints, events with fan-out, the delivery queue and its
//! dispatcher, signed with Standard Webhooks. See `docs/webhooks-outbound.md`.
//!
//! # Layout (one owner per module)
//! - [`endpoints`]: [`Endpoints`], the endpoint store: filters, settings, secrets and custom
//!   header values in the vault, rotation with a grace period.
//! - [`publish`]: [`publish`]/[`publish_in`]: the event row and its fan-out in one transaction.
//! - [`queries`]: what the API reads (deliveries, attempts, events), manual retry and replay.
//! - [`dispatch`]: [`Dispatcher`], claiming due deliveries with leases and sending them, with
//!   per-endpoint concurrency caps, rate limits, circuit breakers and ordering by key.
//! - [`reseal`]: moving event and response bodies onto a tenant's new data key before its
//!   rotation completes.
//! - [`filter`]: event types and subscription patterns.
//! - [`clock`]: wall-clock time, replaceable in tests.
//! - [`model`], [`error`], [`metrics`], [`retention`].
//!
//! Tables: `webhook_endpoints`, `webhook_events`, `webhook_deliveries`,
//! `webhook_delivery_attempts` (migrations `0010_outbound.sql` and
//! `0011_endpoint_header_secrets.sql` in the store's folders).

mod db;

pub mod clock;
pub mod dispatch;
pub mod endpoints;
pub mod error;
pub mod filter;
pub mod metrics;
pub mod model;
pub mod publish;
pub mod queries;
pub mod reseal;
pub mod retention;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::{Dispatcher, DispatcherConfig, ResponseBodies};
pub use endpoints::{Endpoints, EndpointsConfig, RotateSecret};
pub use error::OutboundError;
pub use model::{
    Attempt, CreatedEndpoint, Delivery, DeliveryDetail, DeliveryStatus, Endpoint, EndpointSecret,
    EndpointUpdate, Event, EventDetail, EventMetadata, EventMetadataDetail, NewEndpoint, NewEvent,
    Ordering, Page, Published, ReplayFilter,
};
pub use publish::{NOTIFY_CHANNEL, publish, publish_in};
pub use queries::{
    get_delivery, get_event, get_event_metadata, list_deliveries, replay, retry_delivery,
};
