//! One statement body, run on either engine: the macros expand `$body` once per backend, so
//! the generic sqlx calls in it are instantiated for SQLite and PostgreSQL. Callers depend on
//! `sqlx` themselves (the bodies name its types).

/// Runs `$body` with `$conn` bound to a pooled connection of the database's engine.
#[macro_export]
macro_rules! with_conn {
    ($database:expr, |$conn:ident| $body:expr) => {
        match $database {
            $crate::Database::Sqlite(pool) => {
                let mut pooled = pool.acquire().await?;
                let $conn: &mut sqlx::SqliteConnection = &mut pooled;
                $body
            }
            $crate::Database::Postgres(pool) => {
                let mut pooled = pool.acquire().await?;
                let $conn: &mut sqlx::PgConnection = &mut pooled;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of an open [`crate::Transaction`].
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx.inner() {
            $crate::BackendTransaction::Sqlite(inner) => {
                let $conn: &mut sqlx::SqliteConnection = &mut **inner;
                $body
            }
            $crate::BackendTransaction::Postgres(inner) => {
                let $conn: &mut sqlx::PgConnection = &mut **inner;
                $body
            }
        }
    };
}
