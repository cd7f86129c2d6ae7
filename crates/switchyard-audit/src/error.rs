//! The one error type of the audit log.

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The entry was rejected before it was queued (for example a malformed action or an
    /// over-long target). Nothing was recorded.
    #[error("invalid audit entry: `{field}` {reason}")]
    Invalid {
        field: &'static str,
        reason: &'static str,
    },

    /// The writer has shut down (or its task ended); the entry was not queued.
    #[error("the audit writer has shut down")]
    Closed,

    /// Shutdown gave up on entries the database would not take. They are logged, not stored.
    #[error("the audit writer stopped with {count} entries not written")]
    Unflushed { count: usize },

    /// A stored value does not parse back (an unknown actor kind, an id with a wrong prefix…).
    #[error("corrupt audit row: {reason}")]
    Corrupt { reason: String },

    #[error("audit database error")]
    Database(#[from] sqlx::Error),
}

impl AuditError {
    pub(crate) fn invalid(field: &'static str, reason: &'static str) -> Self {
        AuditError::Invalid { field, reason }
    }

    pub(crate) fn corrupt(reason: impl std::fmt::Display) -> Self {
        AuditError::Corrupt {
            reason: reason.to_string(),
        }
    }
}
