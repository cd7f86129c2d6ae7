//! Errors of the blob store, with a stable classification for callers and metrics.

/// Result alias of this crate.
pub type Result<T, E = BlobError> = std::result::Result<T, E>;

/// What went wrong with a blob operation.
///
/// Messages name keys and backends but never credentials: configuration secrets live in
/// `SecretString`s that are never formatted, and backend errors are those of `object_store`,
/// which redacts signed URLs.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// A key component or a key string is not acceptable.
    #[error("invalid blob key: {0}")]
    InvalidKey(String),
    /// No blob is stored under this key.
    #[error("blob {key} not found")]
    NotFound {
        /// The key asked for.
        key: String,
    },
    /// The configuration cannot describe a working backend.
    #[error("invalid blob configuration: {0}")]
    Config(String),
    /// The backend rejected our credentials or their permissions.
    #[error("blob backend {backend} denied access")]
    Unauthorized {
        /// `local`, `s3` or `azure`.
        backend: &'static str,
        #[source]
        source: object_store::Error,
    },
    /// The backend failed or could not be reached; usually worth retrying.
    #[error("blob backend {backend} failed during {operation}")]
    Backend {
        /// `local`, `s3` or `azure`.
        backend: &'static str,
        /// `put`, `get`, `delete`, `list` or `check`.
        operation: &'static str,
        #[source]
        source: object_store::Error,
    },
    /// Local file system work outside `object_store` (directory sync and clean-up) failed.
    #[error("blob directory operation failed during {operation}")]
    Io {
        /// What was being done.
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl BlobError {
    /// A stable, machine-readable classification (for logs, metrics and problem codes).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidKey(_) => "blob_invalid_key",
            Self::NotFound { .. } => "blob_not_found",
            Self::Config(_) => "blob_config",
            Self::Unauthorized { .. } => "blob_unauthorized",
            Self::Backend { .. } | Self::Io { .. } => "blob_unavailable",
        }
    }

    /// Whether trying the same operation again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend { .. } | Self::Io { .. })
    }

    /// Classifies an `object_store` error from `operation` on `key`.
    pub(crate) fn from_store(
        backend: &'static str,
        operation: &'static str,
        key: &str,
        source: object_store::Error,
    ) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound {
                key: key.to_owned(),
            },
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => Self::Unauthorized { backend, source },
            source => Self::Backend {
                backend,
                operation,
                source,
            },
        }
    }
}
