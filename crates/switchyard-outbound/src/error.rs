//! [`OutboundError`]: every failure of this crate, with a stable code for the API.

use switchyard_core::ErrorCode;

/// Why an outbound operation failed. No variant carries a secret, a URL's credentials or a
/// request body.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("database error")]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),

    #[error("vault error")]
    Vault(#[from] switchyard_vault::VaultError),

    /// The resource does not exist for this tenant (another tenant's resource looks the same).
    #[error("{what} not found")]
    NotFound { what: &'static str },

    /// A field of the request is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },

    /// The resource is in a state that does not allow the operation.
    #[error("conflict: {0}")]
    Conflict(String),

    /// A stored value does not parse: a bug or a hand-edited row.
    #[error("corrupt row in `{table}`: {detail}")]
    Corrupt { table: &'static str, detail: String },

    /// The outbound HTTP client could not be built.
    #[error("could not build the delivery client")]
    Client(#[source] switchyard_http::OutboundError),

    #[error("blob store error")]
    Blob(#[from] switchyard_blob::BlobError),

    /// A signing secret or key from the vault (or the caller) is malformed.
    #[error("invalid signing key: {0}")]
    Key(#[from] switchyard_webhooks::standard_webhooks::KeyError),
}

impl OutboundError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }

    /// The API error this maps to.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Invalid { .. } | Self::Key(_) => ErrorCode::ValidationFailed,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Database(_)
            | Self::Store(_)
            | Self::Vault(_)
            | Self::Corrupt { .. }
            | Self::Blob(_)
            | Self::Client(_) => ErrorCode::Internal,
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Database(_) | Self::Store(_) => "database_error",
            Self::Vault(_) => "vault_error",
            Self::NotFound { .. } => "not_found",
            Self::Invalid { .. } => "validation_failed",
            Self::Conflict(_) => "conflict",
            Self::Corrupt { .. } => "corrupt_row",
            Self::Client(_) => "client_build_failed",
            Self::Blob(_) => "blob_error",
            Self::Key(_) => "invalid_signing_key",
        }
    }
}

pub type Result<T, E = OutboundError> = std::result::Result<T, E>;
