//! Connectors: how Switchyard reads from and acts on a provider.
//!
//! - `manifest`: the declarative manifest (YAML) and its loader.
//! - [`store`]: connections, sync checkpoints, records and their change stream.

pub mod store;
