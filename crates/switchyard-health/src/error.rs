//! [`HealthError`]: every failure of this crate.

/// Why reading or writing connection health failed. No variant carries request or response
/// content: health never sees any.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("database error")]
    Database(#[from] sqlx::Error),

    #[error(transparent)]
    Store(#[from] switchyard_store::StoreError),

    #[error("vault error")]
    Vault(#[from] switchyard_vault::VaultError),

    /// Publishing a status-change event failed.
    #[error("could not publish the status change")]
    Publish(#[from] switchyard_outbound::OutboundError),

    /// A stored value does not parse: a bug or a hand-edited row.
    #[error("corrupt row in `{table}`: {detail}")]
    Corrupt { table: &'static str, detail: String },
}

impl HealthError {
    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Database(_) | Self::Store(_) => "database_error",
            Self::Vault(_) => "vault_error",
            Self::Publish(_) => "publish_failed",
            Self::Corrupt { .. } => "corrupt_row",
        }
    }
}

pub type Result<T, E = HealthError> = std::result::Result<T, E>;
