//! Minted tokens in process memory, never anywhere else: not the vault, not the database,
//! not a log. One entry per (tenant, secret, secret version, what the token is for), so a
//! rotated credential never uses a token the old one minted, and a changed config (another
//! installation, another scope) mints its own. Each entry is its own lock, held across the
//! mint: concurrent attempts for one key wait for one exchange instead of racing it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use switchyard_http::{Clock, SystemClock};

use super::TokenError;
use super::endpoint::Minted;

/// A token is replaced this long before it expires, at most: calls in flight and clock
/// drift must not meet an expired token.
const MAX_MARGIN: Duration = Duration::from_secs(300);

/// What a cached token was minted from. The secret is named, never held.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    pub tenant: String,
    pub secret: String,
    pub version: u32,
    /// A digest of the non-secret inputs: the token URL, claims, scopes.
    pub purpose: [u8; 32],
}

struct Cached {
    token: SecretString,
    granted: Option<Vec<String>>,
    refresh_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

pub struct TokenCache {
    clock: Arc<dyn Clock>,
    slots: Mutex<HashMap<CacheKey, Slot>>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

impl TokenCache {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The cached token of `key`, or the one `mint` makes (cached when its lifetime is
    /// known). One mint per key at a time.
    pub async fn get_or_mint<F>(&self, key: CacheKey, mint: F) -> Result<SecretString, TokenError>
    where
        F: Future<Output = Result<Minted, TokenError>>,
    {
        let slot = self.slot(key.clone());
        let mut entry = slot.lock().await;
        if let Some(cached) = entry.as_ref()
            && self.clock.now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        *entry = None;
        let minted = mint.await?;
        if let Some(lifetime) = minted.lifetime {
            let margin = MAX_MARGIN.min(lifetime / 10);
            let keep_for = lifetime.saturating_sub(margin);
            if !keep_for.is_zero() {
                *entry = Some(Cached {
                    token: minted.token.clone(),
                    granted: minted.granted,
                    refresh_at: self.clock.now() + keep_for,
                });
                drop(entry);
                self.forget_older(&key);
            }
        }
        Ok(minted.token)
    }

    /// What a live token minted from this secret version was granted (any purpose: a
    /// connection's mode mints one kind of token). `None` when no such token is held: it was
    /// never minted here, has expired, or came without a lifetime and was not kept.
    pub fn granted(&self, tenant: &str, secret: &str, version: u32) -> Option<Vec<String>> {
        let slots: Vec<Slot> = {
            let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            slots
                .iter()
                .filter(|(key, _)| {
                    key.tenant == tenant && key.secret == secret && key.version == version
                })
                .map(|(_, slot)| Arc::clone(slot))
                .collect()
        };
        let now = self.clock.now();
        slots.iter().find_map(|slot| {
            // A slot being minted right now has nothing to say yet.
            let entry = slot.try_lock().ok()?;
            let cached = entry.as_ref().filter(|c| now < c.refresh_at)?;
            cached.granted.clone()
        })
    }

    /// A newer version of the secret minted a token: the rotation is through, and the
    /// older versions' tokens are no longer kept.
    fn forget_older(&self, key: &CacheKey) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|other, _| {
            !(other.tenant == key.tenant
                && other.secret == key.secret
                && other.version < key.version)
        });
    }

    /// The entry of `key`. A new key sweeps the map first: expired entries go (a new key
    /// is rare: a new connection, a rotation, a changed config).
    fn slot(&self, key: CacheKey) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = slots.get(&key) {
            return Arc::clone(slot);
        }
        let now = self.clock.now();
        slots.retain(|_, slot| {
            match slot.try_lock() {
                Ok(entry) => entry.as_ref().is_some_and(|c| now < c.refresh_at),
                // Being minted right now.
                Err(_) => true,
            }
        });
        Arc::clone(slots.entry(key).or_default())
    }

    /// How many entries are held.
    pub fn entries(&self) -> usize {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use secrecy::ExposeSecret as _;
    use switchyard_http::ManualClock;

    use super::*;

    fn key(version: u32) -> CacheKey {
        CacheKey {
            tenant: "t".into(),
            secret: "connection:c".into(),
            version,
            purpose: [0; 32],
        }
    }

    fn minted(token: &str, lifetime: Option<Duration>) -> Result<Minted, TokenError> {
        Ok(Minted {
            token: SecretString::from(token.to_owned()),
            lifetime,
            granted: Some(vec![format!("{token}:read")]),
        })
    }

    #[tokio::test]
    async fn grants_are_known_while_their_token_is_kept() {
        let clock = ManualClock::new();
        let cache = TokenCache::new(Arc::new(clock.clone()));
        assert_eq!(cache.granted("t", "connection:c", 1), None);
        let hour = Some(Duration::from_secs(3600));
        cache
            .get_or_mint(key(1), async { minted("a", hour) })
            .await
            .unwrap();
        assert_eq!(
            cache.granted("t", "connection:c", 1),
            Some(vec!["a:read".to_owned()])
        );
        // Another version, secret or tenant knows nothing of them.
        assert_eq!(cache.granted("t", "connection:c", 2), None);
        assert_eq!(cache.granted("t", "connection:d", 1), None);
        assert_eq!(cache.granted("u", "connection:c", 1), None);
        clock.advance(Duration::from_secs(3600));
        assert_eq!(
            cache.granted("t", "connection:c", 1),
            None,
            "the token expired"
        );
        // A token without a lifetime is not kept, nor is what it was granted.
        cache
            .get_or_mint(key(3), async { minted("b", None) })
            .await
            .unwrap();
        assert_eq!(cache.granted("t", "connection:c", 3), None);
    }

    #[tokio::test]
    async fn a_token_is_reused_until_shortly_before_it_expires() {
        let clock = ManualClock::new();
        let cache = TokenCache::new(Arc::new(clock.clone()));
        let hour = Some(Duration::from_secs(3600));
        let first = cache
            .get_or_mint(key(1), async { minted("a", hour) })
            .await
            .unwrap();
        let again = cache
            .get_or_mint(key(1), async { minted("b", hour) })
            .await
            .unwrap();
        assert_eq!((first.expose_secret(), again.expose_secret()), ("a", "a"));
        // Five minutes before the hour is up, a new one is minted.
        clock.advance(Duration::from_secs(3300));
        let renewed = cache
            .get_or_mint(key(1), async { minted("c", hour) })
            .await
            .unwrap();
        assert_eq!(renewed.expose_secret(), "c");
        // A short-lived token keeps a tenth of its life as the margin.
        let short = Some(Duration::from_secs(100));
        cache
            .get_or_mint(key(1), async { minted("d", short) })
            .await
            .ok();
        clock.advance(Duration::from_secs(3300));
        cache
            .get_or_mint(key(1), async { minted("e", short) })
            .await
            .ok();
        clock.advance(Duration::from_secs(89));
        let kept = cache
            .get_or_mint(key(1), async { minted("f", short) })
            .await
            .unwrap();
        assert_eq!(kept.expose_secret(), "e");
        clock.advance(Duration::from_secs(1));
        let renewed = cache
            .get_or_mint(key(1), async { minted("g", short) })
            .await
            .unwrap();
        assert_eq!(renewed.expose_secret(), "g");
    }

    #[tokio::test]
    async fn tokens_without_a_lifetime_or_failures_are_not_kept() {
        let cache = TokenCache::default();
        cache
            .get_or_mint(key(1), async { minted("a", None) })
            .await
            .unwrap();
        let next = cache
            .get_or_mint(key(1), async { minted("b", None) })
            .await
            .unwrap();
        assert_eq!(next.expose_secret(), "b");
        let failed = cache
            .get_or_mint(key(2), async { Err(TokenError::Signing) })
            .await;
        assert!(failed.is_err());
        let next = cache
            .get_or_mint(key(2), async { minted("c", Some(Duration::from_secs(60))) })
            .await
            .unwrap();
        assert_eq!(next.expose_secret(), "c");
    }

    #[tokio::test]
    async fn a_new_secret_version_mints_anew_and_evicts_the_old() {
        let cache = TokenCache::default();
        let hour = Some(Duration::from_secs(3600));
        cache
            .get_or_mint(key(1), async { minted("old", hour) })
            .await
            .unwrap();
        // A new version that fails (a refused rotation) leaves the old token in use.
        let refused = cache
            .get_or_mint(key(2), async { Err(TokenError::Signing) })
            .await;
        assert!(refused.is_err());
        let old = cache
            .get_or_mint(key(1), async { minted("other", hour) })
            .await
            .unwrap();
        assert_eq!(old.expose_secret(), "old");
        // One that mints replaces it.
        let rotated = cache
            .get_or_mint(key(3), async { minted("new", hour) })
            .await
            .unwrap();
        assert_eq!(rotated.expose_secret(), "new");
        assert_eq!(cache.entries(), 1);
    }

    #[tokio::test]
    async fn concurrent_attempts_share_one_mint() {
        let cache = Arc::new(TokenCache::default());
        let mints = Arc::new(AtomicUsize::new(0));
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (cache, mints) = (Arc::clone(&cache), Arc::clone(&mints));
            tokio::spawn(async move {
                cache
                    .get_or_mint(key(1), async {
                        mints.fetch_add(1, Ordering::SeqCst);
                        released.await.ok();
                        minted("one", Some(Duration::from_secs(3600)))
                    })
                    .await
            })
        };
        // The first attempt holds the entry until released; the second waits on it.
        while mints.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let second = {
            let (cache, mints) = (Arc::clone(&cache), Arc::clone(&mints));
            tokio::spawn(async move {
                cache
                    .get_or_mint(key(1), async {
                        mints.fetch_add(1, Ordering::SeqCst);
                        minted("two", Some(Duration::from_secs(3600)))
                    })
                    .await
            })
        };
        // One thread runs the test's tasks: these yields let the second reach the lock.
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        release.send(()).ok();
        let (first, second) = (
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        );
        assert_eq!(
            (first.expose_secret(), second.expose_secret()),
            ("one", "one")
        );
        assert_eq!(mints.load(Ordering::SeqCst), 1);
    }
}
