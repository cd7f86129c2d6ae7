//! Connectors: how Switchyard reads from and acts on a provider.
//!
//! - `manifest`: the declarative manifest (YAML) and its loader.
