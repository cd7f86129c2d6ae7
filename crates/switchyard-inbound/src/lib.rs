//! The inbound webhook gateway's state: sources, the durable ingest writer, inbound events
//! and their processing. Verification itself (schemes, handshakes, dedup keys, canonical
//! events) is pure and lives in `switchyard-webhooks`; the HTTP route lives in the server.
//!
//! # Layout
//! - [`sources`]: webhook sources (scheme, options, vault-held secret and its rotation).
//! - [`envelope`]: the stored form of a received request (method, URL, headers, time, body).
//! - [`writer`]: the ingest writer: atomic dedup claim, encrypted payload segments in the
//!   blob store, metadata rows and processing jobs, all in one group commit.
//! - [`events`]: reading inbound events for the API, and re-sealing their stored requests
//!   onto a tenant's new data key.
//! - [`process`]: the `inbound.process` job that turns a stored request into a canonical
//!   event.
//! - [`retention`]: how long events, payloads and dedup claims are kept.

mod sql;

pub mod envelope;
pub mod error;
pub mod events;
pub mod process;
pub mod retention;
pub mod sources;
pub mod writer;

pub use error::InboundError;
