//! Connection health: what the provider stack's attempts say about each connection, shared by
//! every process through the database. See `docs/connection-health.md`.
//!
//! # Layout (one owner per module)
//! - [`recorder`]: [`HealthRecorder`], the [`switchyard_http::CallObserver`] that counts in
//!   memory and flushes to the database, announcing status changes.
//! - `accumulator`: the in-memory counts between flushes.
//! - `db`: every statement on the health tables.
//! - [`status`]: [`HealthStatus`] and the thresholds; [`counts`]: [`OutcomeCounts`] and what
//!   counts as an error; [`histogram`]: the latency buckets and percentiles.
//! - [`report`]: [`connection_health`], the document the API serves.
//! - [`events`]: the `switchyard.connection.*` events.
//! - [`model`], [`error`], [`retention`].
//!
//! Tables: `connection_health_buckets` (per tenant, connection and minute) and
//! `connection_health` (per connection), migration `0012_connection_health.sql` in the store's
//! folders.

mod accumulator;
mod db;

pub mod counts;
pub mod error;
pub mod events;
pub mod histogram;
pub mod model;
pub mod recorder;
pub mod report;
pub mod retention;
pub mod status;

pub use counts::{OutcomeCounts, counts_as_error};
pub use error::HealthError;
pub use events::{CONNECTION_DEGRADED, CONNECTION_RECOVERED, CONNECTION_UNHEALTHY};
pub use model::{ConnectionHealth, MAX_RECENT_ERRORS, RecentError};
pub use recorder::{FlushReport, HealthOptions, HealthRecorder, Transition};
pub use report::connection_health;
pub use status::{HealthStatus, WINDOW};
