//! [`RefreshLocks`]: one token refresh at a time per credential, across the cluster.
//!
//! Refresh tokens are often single use: two processes refreshing the same credential at once
//! make the provider revoke one of the results (or the whole grant). So a refresher first takes
//! this lock, then re-reads the credential (someone may have refreshed it meanwhile), and only
//! then calls the provider.
//!
//! Two layers: an in-process async mutex per key, so that of one process's tasks only one waits
//! on the database; then, on PostgreSQL, a transaction holding `pg_advisory_xact_lock`, which
//! excludes the other processes and is released by the server when the transaction ends, even
//! if the holder's process dies. On SQLite (one process) the in-process mutex is the lock.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use switchyard_store::{Database, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::error::Result;

/// A credential's lock key: (tenant, vault secret name).
type Key = (String, String);
type LocalLocks = Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>;

/// The refresh locks of one process. Cheap to clone: clones share the in-process locks.
#[derive(Debug, Clone)]
pub struct RefreshLocks {
    database: Database,
    local: Arc<LocalLocks>,
}

/// A held refresh lock. Dropping it releases the lock (on PostgreSQL the transaction rolls
/// back, which the server completes shortly after); [`RefreshGuard::release`] releases it
/// and waits for the database to confirm.
#[derive(Debug)]
pub struct RefreshGuard {
    /// The transaction holding the advisory lock, on PostgreSQL.
    transaction: Option<Transaction>,
    /// `None` only once released.
    local: Option<OwnedMutexGuard<()>>,
    key: Key,
    locks: Arc<LocalLocks>,
}

/// The advisory lock key: the first 8 bytes of SHA-256 of `refresh:{tenant}:{secret}`, so
/// every process derives the same number.
fn advisory_key(tenant: &str, secret_name: &str) -> i64 {
    let digest = Sha256::digest(format!("refresh:{tenant}:{secret_name}").as_bytes());
    let mut first = [0_u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

impl RefreshLocks {
    pub fn new(database: Database) -> Self {
        Self {
            database,
            local: Arc::default(),
        }
    }

    /// Waits until no one else, in this process or another, holds the lock of the
    /// credential `secret_name` of `tenant`, and takes it. The wait has no bound of its own:
    /// holders are expected to hold it for one refresh (a provider call with a timeout).
    ///
    /// # Errors
    /// When the database fails (no connection, the lock statement fails).
    pub async fn lock(&self, tenant: &str, secret_name: &str) -> Result<RefreshGuard> {
        let key: Key = (tenant.to_owned(), secret_name.to_owned());
        let mutex = {
            let mut map = self.local.lock().unwrap_or_else(PoisonError::into_inner);
            // Entries only the map references: a waiter cancelled after the last holder left
            // (guards remove their own entry otherwise). The map holds as many entries as
            // credentials being refreshed, so the sweep is short.
            map.retain(|_, mutex| Arc::strong_count(mutex) > 1);
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let local = mutex.lock_owned().await;
        let mut guard = RefreshGuard {
            transaction: None,
            local: Some(local),
            key,
            locks: Arc::clone(&self.local),
        };
        if let Database::Postgres(_) = &self.database {
            let mut transaction = self.database.begin().await?;
            if let Some(tx) = transaction.as_postgres() {
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(advisory_key(tenant, secret_name))
                    .execute(&mut **tx)
                    .await?;
            }
            guard.transaction = Some(transaction);
        }
        Ok(guard)
    }

    /// How many keys have an in-process lock entry (held or waited for): entries go when
    /// the last guard or waiter of a key is gone.
    pub fn local_entries(&self) -> usize {
        self.local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl RefreshGuard {
    /// Releases the lock: commits the transaction holding the advisory lock (on PostgreSQL),
    /// then lets the next task of this process in.
    ///
    /// # Errors
    /// When COMMIT fails; the lock is released anyway (the transaction is gone).
    pub async fn release(mut self) -> Result<()> {
        if let Some(transaction) = self.transaction.take() {
            transaction.commit().await?;
        }
        Ok(())
    }
}

impl Drop for RefreshGuard {
    fn drop(&mut self) {
        // The database lock first, so a local waiter let in below finds it free (or soon
        // free: a dropped transaction's rollback completes in the background).
        drop(self.transaction.take());
        let mut map = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.local.take());
        // Under the map's lock no one can clone the entry: if the map holds its only
        // reference, no guard or waiter remains and the entry can go.
        if let Entry::Occupied(entry) = map.entry(self.key.clone())
            && Arc::strong_count(entry.get()) == 1
        {
            entry.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::advisory_key;

    #[test]
    fn the_advisory_key_is_stable_and_per_credential() {
        assert_eq!(advisory_key("ten_a", "s"), advisory_key("ten_a", "s"));
        assert_ne!(advisory_key("ten_a", "s"), advisory_key("ten_b", "s"));
        assert_ne!(advisory_key("ten_a", "s"), advisory_key("ten_a", "t"));
        // Pinned: every process (and every version) must derive the same number.
        let digest = <sha2::Sha256 as sha2::Digest>::digest(b"refresh:ten_a:s");
        let expected = i64::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ]);
        assert_eq!(advisory_key("ten_a", "s"), expected);
    }
}
