//! A cap on calls in flight per rate-limit scope: some providers limit concurrent requests
//! separately from their rate (Okta's concurrent rate limits, Jira's per-user cap), and a
//! sync that fans out must not open more connections than the provider accepts.
//!
//! In-process: each process holds its own cap. A budget shared across processes is the
//! rate limiter's job (Redis); concurrency is bounded per process because a permit must be
//! released when a process dies, which a local semaphore does for free.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The per-scope semaphores.
#[derive(Debug, Default)]
pub struct ConcurrencyLimits {
    scopes: Mutex<HashMap<String, (NonZeroU32, Arc<Semaphore>)>>,
}

/// No call slot freed up before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{limit} calls already in flight for this scope until the deadline")]
pub struct ConcurrencyExhausted {
    pub limit: u32,
}

impl ConcurrencyLimits {
    pub fn new() -> Self {
        Self::default()
    }

    fn scopes(&self) -> MutexGuard<'_, HashMap<String, (NonZeroU32, Arc<Semaphore>)>> {
        self.scopes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The scope's semaphore for `limit`. A changed limit starts a new semaphore; calls
    /// holding the old one finish under it.
    fn semaphore(&self, scope: &str, limit: NonZeroU32) -> Arc<Semaphore> {
        let mut scopes = self.scopes();
        match scopes.get(scope) {
            Some((current, semaphore)) if *current == limit => Arc::clone(semaphore),
            _ => {
                let semaphore = Arc::new(Semaphore::new(limit.get() as usize));
                scopes.insert(scope.to_owned(), (limit, Arc::clone(&semaphore)));
                semaphore
            }
        }
    }

    /// Waits for one of the scope's `limit` slots until `deadline`. The permit frees the slot
    /// when dropped.
    pub async fn acquire(
        &self,
        scope: &str,
        limit: NonZeroU32,
        deadline: Instant,
    ) -> Result<OwnedSemaphorePermit, ConcurrencyExhausted> {
        let semaphore = self.semaphore(scope, limit);
        let exhausted = ConcurrencyExhausted { limit: limit.get() };
        match tokio::time::timeout_at(deadline, semaphore.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Closed never happens (we never close); treat it like a timeout.
            Ok(Err(_)) | Err(_) => Err(exhausted),
        }
    }

    /// Scopes with a semaphore (idle ones included).
    pub fn tracked_scopes(&self) -> usize {
        self.scopes().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn two() -> NonZeroU32 {
        NonZeroU32::new(2).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_third_call_waits_for_a_slot_and_gives_up_at_the_deadline() {
        let limits = ConcurrencyLimits::new();
        let soon = Instant::now() + Duration::from_secs(1);
        let a = limits.acquire("s", two(), soon).await.unwrap();
        let _b = limits.acquire("s", two(), soon).await.unwrap();
        assert_eq!(
            limits.acquire("s", two(), soon).await.unwrap_err(),
            ConcurrencyExhausted { limit: 2 }
        );
        // Another scope is not affected; a freed slot is taken again.
        let _other = limits.acquire("other", two(), soon).await.unwrap();
        drop(a);
        let later = Instant::now() + Duration::from_secs(1);
        let _again = limits.acquire("s", two(), later).await.unwrap();
    }
}
