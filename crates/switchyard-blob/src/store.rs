//! [`BlobStore`]: the operations the rest of Switchyard uses.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, stream};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use time::Date;

use crate::backend;
use crate::config::BlobConfig;
use crate::error::{BlobError, Result};
use crate::key::{self, BlobKey};
use crate::local::LocalDirs;
use crate::metrics;

/// Objects deleted per backend call: small enough that a purge never holds one request (or
/// one S3 `DeleteObjects`, limit 1000) for long.
const DELETE_BATCH: usize = 500;

/// Opaque bytes by [`BlobKey`], on the configured backend. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    backend: &'static str,
    store: Arc<dyn ObjectStore>,
    local: Option<LocalDirs>,
}

impl fmt::Debug for BlobStore {
    // The object_store clients are left out: their Debug may show configuration we do not audit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobStore")
            .field("backend", &self.inner.backend)
            .finish_non_exhaustive()
    }
}

impl BlobStore {
    /// Opens the configured backend. The local directory is created if missing; buckets and
    /// containers must already exist (see [`check`](Self::check)).
    pub async fn open(config: &BlobConfig, data_dir: &Path) -> Result<Self> {
        let backend::Backend { store, local } = backend::build(config, data_dir).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                backend: config.backend(),
                store,
                local,
            }),
        })
    }

    /// `local`, `s3` or `azure`.
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// Stores `bytes` under `key`, replacing any previous blob.
    ///
    /// When this returns `Ok` the blob is durable: on S3 and Azure once the service acknowledged
    /// it; locally once the file and every directory entry leading to it have been fsynced, so it
    /// survives a kill -9 or a power loss. A reader never sees a partial blob.
    pub async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let started = Instant::now();
        let len = bytes.len();
        let result = self.put_inner(key, bytes).await;
        metrics::put(self.inner.backend, len, started.elapsed(), &result);
        result
    }

    async fn put_inner(&self, key: &BlobKey, bytes: Bytes) -> Result<()> {
        let _no_pruning = match &self.inner.local {
            Some(local) => Some(local.put_guard().await),
            None => None,
        };
        self.inner
            .store
            .put(&key.to_path(), PutPayload::from(bytes))
            .await
            .map_err(|e| self.error("put", &key.to_string(), e))?;
        if let Some(local) = &self.inner.local {
            local.sync_ancestors(key).await?;
        }
        Ok(())
    }

    /// The blob under `key`; [`BlobError::NotFound`] if there is none.
    pub async fn get(&self, key: &BlobKey) -> Result<Bytes> {
        let result = async {
            let fetched = self
                .inner
                .store
                .get(&key.to_path())
                .await
                .map_err(|e| self.error("get", &key.to_string(), e))?;
            fetched
                .bytes()
                .await
                .map_err(|e| self.error("get", &key.to_string(), e))
        }
        .await;
        metrics::operation(self.inner.backend, "get", &result);
        if let Ok(bytes) = &result {
            metrics::get_bytes(self.inner.backend, bytes.len());
        }
        result
    }

    /// Byte ranges of the blob under `key`, in the order asked (a backend may fetch nearby
    /// ranges together). For reading a few slices, or headers, of a large blob.
    ///
    /// # Errors
    /// [`BlobError::NotFound`] if there is no blob; an error if a range lies past its end.
    pub async fn get_ranges(&self, key: &BlobKey, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        let result = self
            .inner
            .store
            .get_ranges(&key.to_path(), ranges)
            .await
            .map_err(|e| self.error("get", &key.to_string(), e));
        metrics::operation(self.inner.backend, "get", &result);
        if let Ok(parts) = &result {
            metrics::get_bytes(self.inner.backend, parts.iter().map(Bytes::len).sum());
        }
        result
    }

    /// Removes the blob under `key`. Removing a blob that does not exist succeeds.
    pub async fn delete(&self, key: &BlobKey) -> Result<()> {
        let result = match self.inner.store.delete(&key.to_path()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("delete", &key.to_string(), e)),
        };
        metrics::operation(self.inner.backend, "delete", &result);
        result
    }

    /// Removes every blob of `tenant` (all kinds, all days) and returns how many there were.
    ///
    /// For tenant deletion after crypto-shredding. Idempotent: run it again after a failure.
    pub async fn delete_tenant(&self, tenant: &str) -> Result<u64> {
        key::validate_tenant(tenant)?;
        let result = async {
            let count = self.delete_under(&StorePath::from(tenant)).await?;
            if let Some(local) = &self.inner.local {
                local.prune(tenant).await?;
            }
            Ok(count)
        }
        .await;
        metrics::operation(self.inner.backend, "delete_tenant", &result);
        if let Ok(count) = result {
            metrics::deleted(self.inner.backend, "tenant", count);
        }
        result
    }

    /// Retention: removes every tenant's blobs of `kind` whose day is before `cutoff` (the
    /// cutoff day itself is kept) and returns how many were removed.
    ///
    /// Works from the date components of the keys alone (no object is read or stat'ed): whole
    /// years and months before the cutoff go by prefix, the cutoff's month day by day, each in
    /// batches of at most 500. Idempotent; an interrupted purge resumes on the next run.
    pub async fn purge_older_than(&self, kind: &str, cutoff: Date) -> Result<u64> {
        key::validate_kind(kind)?;
        let result = self.purge_inner(kind, cutoff).await;
        metrics::operation(self.inner.backend, "purge", &result);
        if let Ok(count) = result {
            metrics::deleted(self.inner.backend, "retention", count);
        }
        result
    }

    async fn purge_inner(&self, kind: &str, cutoff: Date) -> Result<u64> {
        let mut total = 0;
        for tenant in self.children(&StorePath::default()).await? {
            if key::validate_tenant(&tenant).is_err() {
                continue; // not ours: never touch what we did not write
            }
            let base = StorePath::from_iter([tenant.as_str(), kind]);
            let removed = self.purge_kind(&base, cutoff).await?;
            if removed > 0
                && let Some(local) = &self.inner.local
            {
                local.prune(&format!("{tenant}/{kind}")).await?;
            }
            total += removed;
        }
        Ok(total)
    }

    async fn purge_kind(&self, base: &StorePath, cutoff: Date) -> Result<u64> {
        let mut removed = 0;
        for year in self.children(base).await? {
            let Some(y) = key::parse_date(&year, "01", "01").map(|d| d.year()) else {
                continue;
            };
            let year_path = base.clone().join(year.as_str());
            if y < cutoff.year() {
                removed += self.delete_under(&year_path).await?;
                continue;
            }
            if y > cutoff.year() {
                continue;
            }
            for month in self.children(&year_path).await? {
                let Some(m) = key::parse_date(&year, &month, "01").map(|d| d.month()) else {
                    continue;
                };
                let month_path = year_path.clone().join(month.as_str());
                if m < cutoff.month() {
                    removed += self.delete_under(&month_path).await?;
                    continue;
                }
                if m > cutoff.month() {
                    continue;
                }
                for day in self.children(&month_path).await? {
                    if key::parse_date(&year, &month, &day).is_some_and(|d| d < cutoff) {
                        removed += self
                            .delete_under(&month_path.clone().join(day.as_str()))
                            .await?;
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Readiness: the backend answers, accepts our credentials and the bucket or container
    /// exists. Two small reads (a HEAD of a key no tenant can own, one listing page); writes
    /// nothing. A missing bucket or container is `blob_unavailable`.
    pub async fn check(&self) -> Result<()> {
        let result = self.check_inner().await;
        metrics::operation(self.inner.backend, "check", &result);
        result
    }

    async fn check_inner(&self) -> Result<()> {
        // object_store classifies HEAD failures (401/403) but reports listing failures only as
        // generic errors, so the HEAD is what tells bad credentials apart.
        let probe = StorePath::from(".switchyard-check");
        match self.inner.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.error("check", "", e)),
        }
        match self.inner.store.list(None).next().await {
            None | Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(BlobError::Backend {
                backend: self.inner.backend,
                operation: "check",
                source: e,
            }),
        }
    }

    /// The names of the "directories" directly under `prefix`.
    async fn children(&self, prefix: &StorePath) -> Result<Vec<String>> {
        let prefix = (!prefix.as_ref().is_empty()).then_some(prefix);
        let listing = match self.inner.store.list_with_delimiter(prefix).await {
            Ok(listing) => listing,
            Err(object_store::Error::NotFound { .. }) if self.inner.local.is_some() => {
                return Ok(Vec::new()); // a local prefix that was never created
            }
            Err(e) => return Err(self.error("list", prefix.map_or("", |p| p.as_ref()), e)),
        };
        Ok(listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect())
    }

    /// Deletes everything under `prefix` in batches; returns how many objects went.
    async fn delete_under(&self, prefix: &StorePath) -> Result<u64> {
        let store = &self.inner.store;
        let mut listing = store.list(Some(prefix)).chunks(DELETE_BATCH);
        let mut deleted = 0;
        while let Some(batch) = listing.next().await {
            let paths = batch
                .into_iter()
                .map(|meta| meta.map(|m| m.location))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.error("list", prefix.as_ref(), e))?;
            let results: Vec<_> = store
                .delete_stream(stream::iter(paths.into_iter().map(Ok)).boxed())
                .collect()
                .await;
            for result in results {
                match result {
                    Ok(_) => deleted += 1,
                    // Deleted concurrently (another purge, a retried run): the goal is met.
                    Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.error("delete", prefix.as_ref(), e)),
                }
            }
        }
        Ok(deleted)
    }

    fn error(&self, operation: &'static str, key: &str, source: object_store::Error) -> BlobError {
        BlobError::from_store(self.inner.backend, operation, key, source)
    }
}
