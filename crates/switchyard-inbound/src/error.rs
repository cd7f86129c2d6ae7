//! Errors of the inbound gateway, each with a stable code for the API.

use switchyard_webhooks::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("store: {0}")]
    Store(#[from] switchyard_store::StoreError),
    #[error("vault: {0}")]
    Vault(#[from] switchyard_vault::VaultError),
    #[error("blob store: {0}")]
    Blob(#[from] switchyard_blob::BlobError),
    #[error("job queue: {0}")]
    Queue(#[from] switchyard_jobs::queue::QueueError),
    #[error("invalid source configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Invalid(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The ingest writer stopped (the process is shutting down).
    #[error("the ingest writer is not running")]
    WriterStopped,
}

impl InboundError {
    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Corrupt(what.to_string())
    }

    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Config(_) | Self::Invalid(_) => "validation_failed",
            Self::WriterStopped => "unavailable",
            Self::Vault(error) => error.code(),
            _ => "internal",
        }
    }
}
