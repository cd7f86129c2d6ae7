//! Connectors: how Switchyard reads from and acts on a provider.
//!
//! - [`connector`]: the [`Connector`] trait and the values that cross it.
//! - [`conformance`]: the conformance kit every connector's tests run against its stand-in.
//! - [`credentials`]: a connection's credential fields placed on a request, by auth mode.
//! - [`manifest`]: the declarative manifest (YAML), its loader and its JSON Schema.
//! - [`engine`]: the generic connector that runs a manifest.
//! - [`registry`]: the connectors a process knows (built-in and from a directory).
//! - [`store`]: connections, sync checkpoints, records and their change stream.
//! - [`sync`]: running a stream's sync into the store, page by page.
//! - [`template`]: the templates manifests write requests with.
//! - [`unified`]: unified models and the field mappings onto them.

pub mod conformance;
pub mod connector;
pub mod credentials;
pub mod engine;
pub mod manifest;
pub mod registry;
pub mod store;
pub mod sync;
pub mod template;
pub mod unified;

pub use connector::{
    CallContext, CheckReport, ConnectionContext, Connector, ConnectorError, ConnectorMetadata,
    EmittedEvent, Page, ProviderCalls, Record, RefusedRecord, WebhookEvent, WebhookOutcome,
    WebhookRecords,
};
pub use engine::ManifestConnector;
pub use registry::{Registry, RegistryError};
