//! Fetching provider public keys (SNS certificates, Pub/Sub JWKS) through the caller's HTTP
//! client, with a parsed-key cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use url::Url;

use crate::error::Rejection;
use crate::schemes::{SnsCertificate, jwt::Jwks};

/// Why a fetch failed; only logged by the caller, never shown to the sender.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(pub String);

/// Fetches a key document. The server implements it with its SSRF-guarded client (timeouts,
/// size limit, no redirects); this crate has already checked the URL against the source's
/// configuration before calling it.
#[async_trait]
pub trait KeyFetcher: Send + Sync {
    async fn fetch(&self, url: &Url) -> Result<Bytes, FetchError>;
}

/// A fetcher for deployments (and tests) that verify no key-based scheme.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFetcher;

#[async_trait]
impl KeyFetcher for NoFetcher {
    async fn fetch(&self, _url: &Url) -> Result<Bytes, FetchError> {
        Err(FetchError("key fetching is not configured".into()))
    }
}

/// Bounded so a sender cannot grow it without limit by naming ever new certificate URLs.
const MAX_ENTRIES: usize = 64;
/// A JWKS is re-fetched for an unknown `kid` (key rotation), but not more often than this.
const MIN_REFRESH: Duration = Duration::from_secs(60);

struct Entry<T> {
    fetched: Instant,
    value: Arc<T>,
}

struct Map<T>(Mutex<HashMap<String, Entry<T>>>);

impl<T> Map<T> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    fn get(&self, url: &Url, max_age: Duration) -> Option<Arc<T>> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.get(url.as_str())
            .filter(|entry| entry.fetched.elapsed() < max_age)
            .map(|entry| Arc::clone(&entry.value))
    }

    fn put(&self, url: &Url, value: Arc<T>) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES && !map.contains_key(url.as_str()) {
            let oldest = map
                .iter()
                .min_by_key(|(_, entry)| entry.fetched)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(
            url.as_str().to_owned(),
            Entry {
                fetched: Instant::now(),
                value,
            },
        );
    }
}

/// The caller's fetcher plus caches of parsed keys. Keep one per process and share it.
pub struct KeyCache {
    fetcher: Arc<dyn KeyFetcher>,
    ttl: Duration,
    certificates: Map<SnsCertificate>,
    jwks: Map<Jwks>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl KeyCache {
    /// Default lifetime of a cached key: one hour.
    pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

    pub fn new(fetcher: Arc<dyn KeyFetcher>) -> Self {
        Self::with_ttl(fetcher, Self::DEFAULT_TTL)
    }

    pub fn with_ttl(fetcher: Arc<dyn KeyFetcher>, ttl: Duration) -> Self {
        Self {
            fetcher,
            ttl,
            certificates: Map::new(),
            jwks: Map::new(),
        }
    }

    /// A cache that can fetch nothing (schemes without public keys).
    pub fn offline() -> Self {
        Self::new(Arc::new(NoFetcher))
    }

    async fn fetch(&self, url: &Url) -> Result<Bytes, Rejection> {
        self.fetcher
            .fetch(url)
            .await
            .map_err(|_| Rejection::KeyFetchFailed)
    }

    pub(crate) async fn certificate(&self, url: &Url) -> Result<Arc<SnsCertificate>, Rejection> {
        if let Some(cert) = self.certificates.get(url, self.ttl) {
            return Ok(cert);
        }
        let bytes = self.fetch(url).await?;
        let cert = Arc::new(SnsCertificate::parse(&bytes)?);
        self.certificates.put(url, Arc::clone(&cert));
        Ok(cert)
    }

    /// The key set; with `refresh`, a cached set older than a minute is fetched again (the
    /// token names a key the cached set does not have).
    pub(crate) async fn jwks(&self, url: &Url, refresh: bool) -> Result<Arc<Jwks>, Rejection> {
        let max_age = if refresh {
            MIN_REFRESH.min(self.ttl)
        } else {
            self.ttl
        };
        if let Some(jwks) = self.jwks.get(url, max_age) {
            return Ok(jwks);
        }
        let bytes = self.fetch(url).await?;
        let jwks = Arc::new(Jwks::parse(&bytes)?);
        self.jwks.put(url, Arc::clone(&jwks));
        Ok(jwks)
    }
}
