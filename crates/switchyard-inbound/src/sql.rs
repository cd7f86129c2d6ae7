//! Running one statement body on whichever engine a handle holds. The body is written once
//! and type-checked per engine, so the two backends cannot drift apart.

/// `$body` with `$conn` bound to the pool of `$database` (a `&Database`).
macro_rules! on_pool {
    ($database:expr, |$conn:ident| $body:expr) => {
        match $database {
            switchyard_store::Database::Sqlite($conn) => $body,
            switchyard_store::Database::Postgres($conn) => $body,
        }
    };
}
pub(crate) use on_pool;

/// `$body` with `$conn` bound to the open transaction of `$tx` (a `&mut Transaction`).
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx.inner() {
            switchyard_store::BackendTransaction::Sqlite(inner) => {
                let $conn = &mut **inner;
                $body
            }
            switchyard_store::BackendTransaction::Postgres(inner) => {
                let $conn = &mut **inner;
                $body
            }
        }
    };
}
pub(crate) use on_tx;
