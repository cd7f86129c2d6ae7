//! In-memory cache of unwrapped tenant keys and of secret ciphertexts, each entry bounded in
//! time (default five minutes) so a key destroyed elsewhere (shredding, retirement in another
//! process) stops being usable here within that bound.
//!
//! Plaintext is never cached: `resolve` decrypts on every call (well under a microsecond for
//! a short secret). Caching the ciphertext row as well as the data key is what makes a warm
//! `resolve` cost microseconds rather than a database round trip.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use aes_gcm::Aes256Gcm;

use crate::crypto::KeyBytes;

/// An unwrapped data key, ready to encrypt (its key schedule is wiped on drop).
pub(crate) struct DataKey {
    pub(crate) version: u32,
    pub(crate) cipher: Aes256Gcm,
}

/// What writes need: the active data key and the fingerprint key.
#[derive(Clone)]
pub(crate) struct ActiveKeys {
    pub(crate) dek: Arc<DataKey>,
    pub(crate) fingerprint: Arc<KeyBytes>,
}

/// A secret version's ciphertext (not its plaintext).
pub(crate) struct CachedSecret {
    pub(crate) dek_version: u32,
    pub(crate) ciphertext: Vec<u8>,
}

struct Timed<T> {
    value: T,
    at: Instant,
}

#[derive(Default)]
struct TenantEntry {
    active: Option<Timed<ActiveKeys>>,
    deks: HashMap<u32, Timed<Arc<DataKey>>>,
    secrets: HashMap<String, HashMap<u32, Timed<Arc<CachedSecret>>>>,
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Data keys served from memory.
    pub key_hits: u64,
    /// Data keys that had to be read and unwrapped (a KEK call: KMS when configured).
    pub key_unwraps: u64,
}

pub(crate) struct KeyCache {
    ttl: Duration,
    max_tenants: usize,
    tenants: RwLock<HashMap<String, TenantEntry>>,
    last_sweep: Mutex<Instant>,
    key_hits: AtomicU64,
    key_unwraps: AtomicU64,
}

impl KeyCache {
    pub(crate) fn new(ttl: Duration, max_tenants: usize) -> Self {
        Self {
            ttl,
            max_tenants: max_tenants.max(1),
            tenants: RwLock::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
            key_hits: AtomicU64::new(0),
            key_unwraps: AtomicU64::new(0),
        }
    }

    pub(crate) fn ttl(&self) -> Duration {
        self.ttl
    }

    fn fresh<T: Clone>(&self, timed: Option<&Timed<T>>) -> Option<T> {
        timed
            .filter(|timed| timed.at.elapsed() < self.ttl)
            .map(|timed| timed.value.clone())
    }

    // A poisoned lock only means another thread panicked mid-update of a cache; the map is
    // still structurally valid, and at worst holds an entry we would have replaced.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, TenantEntry>> {
        self.tenants.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, TenantEntry>> {
        self.tenants.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn active(&self, tenant: &str) -> Option<ActiveKeys> {
        let found = self.fresh(self.read().get(tenant).and_then(|t| t.active.as_ref()));
        if found.is_some() {
            self.key_hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    pub(crate) fn dek(&self, tenant: &str, version: u32) -> Option<Arc<DataKey>> {
        let found = self.fresh(self.read().get(tenant).and_then(|t| t.deks.get(&version)));
        if found.is_some() {
            self.key_hits.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    pub(crate) fn secret(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Option<Arc<CachedSecret>> {
        self.fresh(
            self.read()
                .get(tenant)
                .and_then(|t| t.secrets.get(name))
                .and_then(|versions| versions.get(&version)),
        )
    }

    pub(crate) fn record_unwrap(&self) {
        self.key_unwraps.fetch_add(1, Ordering::Relaxed);
    }

    fn with_tenant(&self, tenant: &str, update: impl FnOnce(&mut TenantEntry)) {
        if self.ttl.is_zero() {
            return;
        }
        self.maybe_sweep();
        let mut tenants = self.write();
        if !tenants.contains_key(tenant) && tenants.len() >= self.max_tenants {
            // Bounded size: drop an arbitrary tenant; it is re-read on its next use.
            if let Some(victim) = tenants.keys().next().cloned() {
                tenants.remove(&victim);
            }
        }
        update(tenants.entry(tenant.to_owned()).or_default());
    }

    pub(crate) fn put_active(&self, tenant: &str, keys: ActiveKeys) {
        let at = Instant::now();
        self.with_tenant(tenant, |entry| {
            entry.deks.insert(
                keys.dek.version,
                Timed {
                    value: Arc::clone(&keys.dek),
                    at,
                },
            );
            entry.active = Some(Timed { value: keys, at });
        });
    }

    pub(crate) fn put_dek(&self, tenant: &str, key: Arc<DataKey>) {
        let at = Instant::now();
        self.with_tenant(tenant, |entry| {
            entry.deks.insert(key.version, Timed { value: key, at });
        });
    }

    pub(crate) fn put_secret(&self, tenant: &str, name: &str, version: u32, secret: CachedSecret) {
        let at = Instant::now();
        self.with_tenant(tenant, |entry| {
            entry.secrets.entry(name.to_owned()).or_default().insert(
                version,
                Timed {
                    value: Arc::new(secret),
                    at,
                },
            );
        });
    }

    pub(crate) fn invalidate_tenant(&self, tenant: &str) {
        self.write().remove(tenant);
    }

    pub(crate) fn invalidate_secret(&self, tenant: &str, name: &str) {
        if let Some(entry) = self.write().get_mut(tenant) {
            entry.secrets.remove(name);
        }
    }

    /// Drops every expired entry now, so expired key material does not linger in memory.
    pub(crate) fn sweep(&self) {
        let ttl = self.ttl;
        let mut tenants = self.write();
        tenants.retain(|_, entry| {
            if entry.active.as_ref().is_some_and(|t| t.at.elapsed() >= ttl) {
                entry.active = None;
            }
            entry.deks.retain(|_, t| t.at.elapsed() < ttl);
            entry.secrets.retain(|_, versions| {
                versions.retain(|_, t| t.at.elapsed() < ttl);
                !versions.is_empty()
            });
            entry.active.is_some() || !entry.deks.is_empty() || !entry.secrets.is_empty()
        });
    }

    fn maybe_sweep(&self) {
        let due = {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.elapsed() >= self.ttl {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due {
            self.sweep();
        }
    }

    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            key_hits: self.key_hits.load(Ordering::Relaxed),
            key_unwraps: self.key_unwraps.load(Ordering::Relaxed),
        }
    }
}
