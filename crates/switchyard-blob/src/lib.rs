//! Raw payload and body storage for Switchyard over [`object_store`].
//!
//! Inbound webhook bodies, delivery response bodies and similar payloads are stored as opaque
//! bytes (callers encrypt them with the tenant's data key first) under
//! [`BlobKey`]s of the form `{tenant}/{kind}/{yyyy}/{mm}/{dd}/{id}`, on a local directory
//! (default), S3 or Azure Blob Storage. See `docs/blob-storage.md`.

mod aws_chain;
mod backend;
mod config;
mod error;
mod key;
mod local;
pub mod metrics;
mod store;

pub use config::{AzureBlobConfig, BlobConfig, LocalBlobConfig, S3BlobConfig};
pub use error::{BlobError, Result};
pub use key::{BlobKey, validate_kind, validate_tenant};
pub use store::BlobStore;
