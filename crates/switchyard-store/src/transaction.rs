//! A transaction on either backend, so a crate can make its own change and another crate's
//! (for example enqueueing a job) commit or roll back together.
//!
//! It is a small struct over the backend's `sqlx` transaction rather than a bare enum because
//! some effects must happen only once the data is visible: on SQLite the job queue wakes
//! in-process workers with a channel, which must fire *after* COMMIT (PostgreSQL's NOTIFY is
//! itself transactional). [`Transaction::after_commit`] holds such callbacks; a rollback, or
//! dropping the transaction, discards them.

use std::fmt;

use sqlx::{Postgres, Sqlite};

use crate::{Backend, Database, StoreError};

/// The backend transaction inside a [`Transaction`].
#[derive(Debug)]
pub enum BackendTransaction {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

type Callback = Box<dyn FnOnce() + Send + 'static>;

/// An open transaction. Dropping it without [`Transaction::commit`] rolls it back.
pub struct Transaction {
    inner: BackendTransaction,
    after_commit: Vec<Callback>,
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("inner", &self.inner)
            .field("after_commit", &self.after_commit.len())
            .finish()
    }
}

impl Database {
    /// Starts a transaction on a connection from the pool.
    ///
    /// # Errors
    /// [`StoreError::Database`] when no connection can be had or `BEGIN` fails.
    pub async fn begin(&self) -> Result<Transaction, StoreError> {
        let inner = match self {
            Database::Sqlite(pool) => BackendTransaction::Sqlite(pool.begin().await?),
            Database::Postgres(pool) => BackendTransaction::Postgres(pool.begin().await?),
        };
        Ok(Transaction {
            inner,
            after_commit: Vec::new(),
        })
    }
}

impl Transaction {
    /// The engine this transaction runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            BackendTransaction::Sqlite(_) => Backend::Sqlite,
            BackendTransaction::Postgres(_) => Backend::Postgres,
        }
    }

    /// The backend transaction, to run queries in it (`&mut **tx` is the connection).
    pub fn inner(&mut self) -> &mut BackendTransaction {
        &mut self.inner
    }

    /// The SQLite transaction, or `None` on PostgreSQL.
    pub fn as_sqlite(&mut self) -> Option<&mut sqlx::Transaction<'static, Sqlite>> {
        match &mut self.inner {
            BackendTransaction::Sqlite(tx) => Some(tx),
            BackendTransaction::Postgres(_) => None,
        }
    }

    /// The PostgreSQL transaction, or `None` on SQLite.
    pub fn as_postgres(&mut self) -> Option<&mut sqlx::Transaction<'static, Postgres>> {
        match &mut self.inner {
            BackendTransaction::Postgres(tx) => Some(tx),
            BackendTransaction::Sqlite(_) => None,
        }
    }

    /// Runs `callback` right after a successful commit (never after a rollback or drop).
    pub fn after_commit(&mut self, callback: impl FnOnce() + Send + 'static) {
        self.after_commit.push(Box::new(callback));
    }

    /// Commits, then runs the [`Transaction::after_commit`] callbacks in order.
    ///
    /// # Errors
    /// [`StoreError::Database`] when COMMIT fails; the callbacks do not run.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self.inner {
            BackendTransaction::Sqlite(tx) => tx.commit().await?,
            BackendTransaction::Postgres(tx) => tx.commit().await?,
        }
        for callback in self.after_commit {
            callback();
        }
        Ok(())
    }

    /// Rolls back and discards the [`Transaction::after_commit`] callbacks.
    ///
    /// # Errors
    /// [`StoreError::Database`] when ROLLBACK fails (the server rolls back anyway when the
    /// connection closes).
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self.inner {
            BackendTransaction::Sqlite(tx) => tx.rollback().await?,
            BackendTransaction::Postgres(tx) => tx.rollback().await?,
        }
        Ok(())
    }
}
