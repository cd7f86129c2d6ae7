//! [`StoreError`]: why reading or writing connections, checkpoints, records or the OAuth
//! tables (client registrations, connect sessions, states) failed.

/// Why a store operation failed. No variant carries record data, configuration or credential
/// material: errors end up in logs and API responses.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another connection of the tenant already has this name.
    #[error("a connection named `{name}` already exists")]
    NameTaken { name: String },

    /// The tenant already has an OAuth client registration for this provider.
    #[error("an OAuth client for provider `{provider}` already exists")]
    ProviderTaken { provider: String },

    /// The connection changed since the caller read it (optimistic concurrency).
    #[error("the connection is at version {current}, not the expected {expected}")]
    VersionMismatch { expected: i64, current: i64 },

    /// Records or a checkpoint were written for a connection the tenant does not have (or
    /// that was deleted while the write waited).
    #[error("no such connection")]
    ConnectionNotFound,

    /// An argument the store cannot accept (an empty name, a configuration that is not an
    /// object…).
    #[error("invalid {field}: {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },

    /// A JSON value could not be serialised.
    #[error("cannot serialise JSON")]
    InvalidJson(#[source] serde_json::Error),

    /// A stored value does not parse: a bug or a hand-edited row.
    #[error("corrupt row in `{table}`: {detail}")]
    Corrupt { table: &'static str, detail: String },

    #[error("database error")]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }

    /// Stable machine-readable code, for the API's Problem Details.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NameTaken { .. } => "connection_name_taken",
            Self::ProviderTaken { .. } => "conflict",
            Self::VersionMismatch { .. } => "version_conflict",
            Self::ConnectionNotFound => "connection_not_found",
            Self::Invalid { .. } => "invalid_request",
            Self::InvalidJson(_) => "invalid_json",
            Self::Corrupt { .. } => "corrupt_row",
            Self::Database(_) | Self::Store(_) => "database_error",
        }
    }

    /// Whether the request conflicts with the current state (HTTP 409).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            Self::NameTaken { .. } | Self::ProviderTaken { .. } | Self::VersionMismatch { .. }
        )
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Whether `error` is the violation of a unique constraint.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

/// Whether `error` is the violation of a foreign key.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_foreign_key_violation())
}
