//! Errors of the store of record.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL names no supported backend. Carries only the scheme, never the URL,
    /// which may hold a password.
    #[error("unsupported database URL scheme `{scheme}`: use `sqlite://…` or `postgres://…`")]
    UnsupportedUrl { scheme: String },

    /// The database has applied a migration this binary does not know: a newer Switchyard
    /// wrote it. Running an older binary against it could corrupt data.
    #[error(
        "the database schema is newer than this binary (it has migration {version}, unknown here); \
         upgrade Switchyard or point it at another database"
    )]
    SchemaTooNew { version: i64 },

    /// A migration applied earlier was changed afterwards.
    #[error("migration {version} was changed after it was applied to this database")]
    MigrationChanged { version: i64 },

    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),

    /// A value read from the database does not parse (for example an id with a wrong prefix).
    #[error("corrupt row in `{table}`: {reason}")]
    Corrupt { table: &'static str, reason: String },

    #[error("database error")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            table,
            reason: reason.to_string(),
        }
    }
}
