//! Switchyard's HTTP server: the management API under `/v1`, operations endpoints, and the
//! cross-cutting layers every request passes through.
//!
//! A request goes, outermost first: request id → trace span → metrics → panic guard → body
//! limit → route; `/v1` routes add authentication and, for POSTs, idempotency. Errors anywhere
//! become one RFC 9457 problem response ([`error::ApiError`]).
//!
//! # Layout
//! - [`app`]: [`App`], the composition root used by both `switchyard serve` and the tests.
//! - [`error`]: [`error::ApiError`] and its Problem Details body.
//! - [`extract`]: JSON, path and query extractors whose rejections are problems.
//! - [`request_id`], [`metrics`]: per-request id and Prometheus instrumentation.
//! - [`auth`], [`credentials`], [`admin_token`]: who is calling, API key material, the
//!   platform admin token.
//! - [`idempotency`]: `Idempotency-Key` handling for POSTs.
//! - [`vault_setup`], [`audit_trail`]: opening the credential vault from configuration, and
//!   recording API changes in the audit log.
//! - [`pagination`]: cursors and list envelopes.
//! - [`inbound`], [`outbound`]: the webhook gateway's parts as the server holds them.
//! - [`background`]: the job kinds this server runs, by process role.
//! - [`connectors`]: connections, their credentials, syncs and actions.
//! - [`oauth`], [`connect`]: OAuth client registrations, connect sessions and their pages,
//!   token refresh.
//! - [`rotation`]: completing a data-key rotation: every owner re-seals its data first.
//! - [`routes`]: one module per resource, and [`openapi`] describing them.

pub mod admin_token;
pub mod app;
pub mod audit_trail;
pub mod auth;
pub mod background;
pub mod connect;
pub mod connectors;
pub mod credentials;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod inbound;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod outbound;
pub mod pagination;
pub mod provider_capture;
pub mod provider_credentials;
pub mod request_id;
pub mod retention;
pub mod rotation;
pub mod routes;
mod state;
pub mod vault_setup;

pub use app::{App, StartupError};
pub use state::AppState;
