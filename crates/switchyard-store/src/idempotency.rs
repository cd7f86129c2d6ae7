//! Idempotency records for `Idempotency-Key` on POST requests.

use time::Duration;

use crate::StoreError;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What happened when a request claimed an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyStart {
    /// The key was free; the caller now owns it and must complete or release it.
    Claimed,
    /// The same request is still being processed by someone else.
    InProgress,
    /// The key was used for a different request (method, path or body).
    Mismatch,
    /// The same request completed earlier; here is its response.
    Completed(StoredResponse),
}

/// The `idempotency_keys` table. `scope` separates callers (one tenant never sees another's
/// keys) and is chosen by the API layer.
#[async_trait::async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` in `scope` for a request whose fingerprint is `request_hash`. Records
    /// older than `ttl` are forgotten.
    async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        ttl: Duration,
    ) -> Result<IdempotencyStart, StoreError>;

    /// Stores the response of a claimed key.
    async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError>;

    /// Frees a claimed key without a response (the request failed in a way worth retrying).
    async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<(), StoreError>;
}
