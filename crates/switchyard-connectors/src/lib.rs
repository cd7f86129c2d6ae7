//! Connectors: how Switchyard reads from and acts on a provider.
//!
//! - `manifest`: the declarative manifest (YAML) and its loader.
//! - `unified`: the unified data models (JSON Schemas) and declarative field mappings onto them.

pub mod unified;
