//! Connecting to SQLite or PostgreSQL, and applying migrations.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, SqlitePool,
    migrate::{MigrateError, Migrator},
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use crate::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a [`Database`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Pool settings that apply to both backends.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection pool to the store of record.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Database {
    /// Connects to `url` (`sqlite://path` or `postgres://…`), creating a SQLite file if missing.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for another scheme, [`StoreError::Database`] when the
    /// server cannot be reached.
    pub async fn connect(url: &str, options: &DatabaseOptions) -> Result<Self, StoreError> {
        match Backend::from_url(url)? {
            Backend::Sqlite => {
                let connect_options = SqliteConnectOptions::from_str(url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // NORMAL in WAL mode survives process crashes; only an OS crash can lose
                    // the last commits. Writes acknowledged to someone outside (webhook acks)
                    // go through [`Database::durable_writer`] instead.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect_options)
                    .await?;
                Ok(Database::Sqlite(pool))
            }
            Backend::Postgres => {
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect(url)
                    .await?;
                Ok(Database::Postgres(pool))
            }
        }
    }

    /// A pool for writes that must survive an OS crash before they are acknowledged (the
    /// ingest writer). On SQLite: one connection to the same file whose commits fsync the WAL
    /// (`synchronous = FULL`), beside the shared pool's NORMAL, which survives a process
    /// crash only. On PostgreSQL: this pool, whose commits are synchronous already.
    ///
    /// # Errors
    /// [`StoreError::Database`] when the SQLite file cannot be opened.
    pub async fn durable_writer(&self) -> Result<Self, StoreError> {
        match self {
            Database::Sqlite(pool) => {
                let options = (*pool.connect_options())
                    .clone()
                    .synchronous(SqliteSynchronous::Full);
                let pool = SqlitePoolOptions::new()
                    .max_connections(1)
                    // Its one connection is in process and only ever used by its owner: a
                    // ping before each use would only cost a thread hop.
                    .test_before_acquire(false)
                    .connect_with(options)
                    .await?;
                Ok(Database::Sqlite(pool))
            }
            Database::Postgres(_) => Ok(self.clone()),
        }
    }

    /// The engine behind this pool.
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies every pending migration. Safe to run from several processes at once on
    /// PostgreSQL (sqlx takes an advisory lock).
    ///
    /// # Errors
    /// [`StoreError::SchemaTooNew`] when the database was migrated by a newer binary.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let result = match self {
            Database::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Database::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        };
        result.map_err(|error| match error {
            MigrateError::VersionMissing(version) => StoreError::SchemaTooNew { version },
            MigrateError::VersionMismatch(version) => StoreError::MigrationChanged { version },
            other => StoreError::Migrate(other),
        })
    }

    /// The newest migration version this binary knows.
    pub fn latest_known_migration(&self) -> i64 {
        let migrator = match self {
            Database::Sqlite(_) => &SQLITE_MIGRATIONS,
            Database::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Runs a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Database::Sqlite(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
            Database::Postgres(pool) => {
                sqlx::query("SELECT 1").execute(pool).await?;
            }
        }
        Ok(())
    }

    /// Closes every connection, waiting for checked-out ones to return.
    pub async fn close(&self) {
        match self {
            Database::Sqlite(pool) => pool.close().await,
            Database::Postgres(pool) => pool.close().await,
        }
    }
}

impl Backend {
    /// Picks the backend from a database URL's scheme.
    ///
    /// # Errors
    /// [`StoreError::UnsupportedUrl`] for any other scheme.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            other => Err(StoreError::UnsupportedUrl {
                scheme: other.to_owned(),
            }),
        }
    }
}
