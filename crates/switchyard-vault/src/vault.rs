//! The vault: secrets, data keys, rotations and crypto-shredding, on top of a KEK key ring,
//! the key cache and a [`VaultStorage`].

use std::{
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use time::OffsetDateTime;
use zeroize::Zeroizing;

use crate::{
    cache::{ActiveKeys, CacheStats, CachedSecret, DataKey, KeyCache},
    crypto::{self, Aad, KeyBytes},
    error::{Result, VaultError},
    fingerprint::fingerprint,
    kek::{KekConfig, KeyEncryptionKey, KeyPurpose, KeyRing, WrapContext},
    secret::{Fingerprint, Secret, SecretRef, SecretVersionInfo, StoredSecret, VersionState},
    storage::{
        InsertOutcome, KeyState, RetireOutcome, SecretRecord, SecretTransition, ShredCounts,
        TenantKeyRecord, VaultStorage,
    },
};

/// How often a write retries after losing a race to a concurrent writer.
const WRITE_ATTEMPTS: usize = 4;
const BLOB_FORMAT_V1: u8 = 1;
const MAX_TENANT_LEN: usize = 128;
const MAX_NAME_LEN: usize = 255;

/// Tuning knobs.
#[derive(Debug, Clone)]
pub struct VaultOptions {
    /// How long unwrapped data keys (and secret ciphertexts) stay in memory. Also the grace
    /// period before a rotated-out data key may be retired, so that no process still encrypts
    /// with it. Zero disables caching.
    pub cache_ttl: Duration,
    /// Upper bound on the number of tenants with cached keys.
    pub max_cached_tenants: usize,
    /// Rows per batch in re-encryption and re-wrapping passes.
    pub batch_size: u32,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(300),
            max_cached_tenants: 10_000,
            batch_size: 100,
        }
    }
}

/// Metadata of one tenant data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKeyInfo {
    pub version: u32,
    pub state: KeyState,
    /// The KEK wrapping it; `None` once retired or destroyed.
    pub kek_id: Option<String>,
    pub created_at: OffsetDateTime,
}

/// Outcome of [`Vault::complete_dek_rotation`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DekRotationReport {
    pub reencrypted: u64,
    pub retired: Vec<u32>,
}

/// Outcome of a KEK rotation or re-wrap pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekRotationReport {
    pub kek_id: String,
    pub rewrapped: u64,
}

/// The credential vault. Cheap to share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct Vault {
    storage: Arc<dyn VaultStorage>,
    keyring: RwLock<Arc<KeyRing>>,
    /// Held shared while a new tenant key is generated and stored, and exclusively while the
    /// primary KEK is swapped, so no key can be wrapped by the old KEK after the swap.
    key_creation: tokio::sync::RwLock<()>,
    cache: KeyCache,
    options: VaultOptions,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache")
            .field("ttl", &self.ttl())
            .finish()
    }
}

fn validate(what: &'static str, value: &str, max: usize) -> Result<()> {
    let reason = if value.is_empty() {
        "must not be empty"
    } else if value.len() > max {
        "too long"
    } else if value.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(());
    };
    Err(VaultError::InvalidIdentifier { what, reason })
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl Vault {
    /// Loads the KEK described by `kek` (creating a key file only for an empty vault), checks
    /// it against the stored keys and opens the vault.
    pub async fn open(
        storage: Arc<dyn VaultStorage>,
        kek: &KekConfig,
        options: VaultOptions,
    ) -> Result<Self> {
        let primary = kek.load(storage.as_ref()).await?;
        Self::open_with_keks(storage, primary, Vec::new(), options).await
    }

    /// Opens with an explicit key ring: `primary` wraps new keys; `previous` KEKs can still
    /// unwrap keys not yet re-wrapped (an interrupted or multi-process KEK rotation).
    ///
    /// Fails closed: [`VaultError::KekMismatch`] if stored keys name a KEK outside the ring,
    /// and an unwrap error if a KEK in use cannot actually unwrap one of its keys.
    pub async fn open_with_keks(
        storage: Arc<dyn VaultStorage>,
        primary: Arc<dyn KeyEncryptionKey>,
        previous: Vec<Arc<dyn KeyEncryptionKey>>,
        options: VaultOptions,
    ) -> Result<Self> {
        let ring = KeyRing { primary, previous };
        let in_use = storage.kek_ids_in_use_admin().await?;
        let missing: Vec<&String> = in_use.iter().filter(|id| ring.find(id).is_none()).collect();
        if !missing.is_empty() {
            return Err(VaultError::KekMismatch {
                configured: ring.ids().join(", "),
                missing: missing
                    .iter()
                    .map(|id| id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        // Prove each KEK in use really unwraps its keys (right key, KMS reachable) before
        // serving anything.
        for id in &in_use {
            if let (Some(kek), Some(sample)) = (
                ring.find(id),
                storage.sample_key_wrapped_by_admin(id).await?,
            ) {
                unwrap_record(kek.as_ref(), &sample).await?;
            }
        }
        Ok(Self {
            storage,
            keyring: RwLock::new(Arc::new(ring)),
            key_creation: tokio::sync::RwLock::new(()),
            cache: KeyCache::new(options.cache_ttl, options.max_cached_tenants),
            options,
        })
    }

    /// The id of the KEK that wraps new keys.
    pub fn kek_id(&self) -> String {
        self.ring().primary.kek_id().to_owned()
    }

    /// Cache counters (for metrics).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// Drops expired cache entries now (also done lazily on writes to the cache).
    pub fn purge_expired_cache(&self) {
        self.cache.sweep();
    }

    fn ring(&self) -> Arc<KeyRing> {
        Arc::clone(&self.keyring.read().unwrap_or_else(PoisonError::into_inner))
    }

    // ------------------------------------------------------------------ secrets

    /// Stores `plaintext` as a new version of `name`. The first version is current at once;
    /// a later one starts a rotation (see [`Vault::rotate`]).
    ///
    /// # Errors
    /// [`VaultError::RotationPending`] while an earlier rotation awaits confirm/rollback.
    pub async fn put(&self, tenant: &str, name: &str, plaintext: &[u8]) -> Result<StoredSecret> {
        self.write_version(tenant, name, plaintext, false).await
    }

    /// Rotates an existing secret: the new version becomes current, the previous one stays
    /// readable until [`Vault::confirm`] (which destroys it) or [`Vault::rollback`].
    pub async fn rotate(&self, tenant: &str, name: &str, plaintext: &[u8]) -> Result<StoredSecret> {
        self.write_version(tenant, name, plaintext, true).await
    }

    async fn write_version(
        &self,
        tenant: &str,
        name: &str,
        plaintext: &[u8],
        must_exist: bool,
    ) -> Result<StoredSecret> {
        validate("tenant id", tenant, MAX_TENANT_LEN)?;
        validate("secret name", name, MAX_NAME_LEN)?;
        for _ in 0..WRITE_ATTEMPTS {
            let keys = self.active_keys(tenant).await?;
            let versions = self.storage.secret_versions(tenant, name).await?;
            let current = versions.iter().find(|v| v.state == VersionState::Current);
            if let (Some(current), true) = (
                current,
                versions.iter().any(|v| v.state == VersionState::Previous),
            ) {
                return Err(VaultError::RotationPending {
                    tenant: tenant.to_owned(),
                    name: name.to_owned(),
                    pending: current.version,
                });
            }
            if must_exist && current.is_none() {
                return Err(VaultError::SecretNotFound {
                    tenant: tenant.to_owned(),
                    name: name.to_owned(),
                    version: None,
                });
            }
            let version = versions
                .last()
                .map_or(Some(1), |v| v.version.checked_add(1))
                .ok_or(VaultError::Conflict {
                    what: "secret version counter",
                })?;
            let ciphertext = crypto::seal(
                &keys.dek.cipher,
                Aad::secret(tenant, name, version).bytes(),
                plaintext,
            )?;
            let fingerprint = fingerprint(&keys.fingerprint, plaintext);
            let at = now();
            let record = SecretRecord {
                tenant_id: tenant.to_owned(),
                name: name.to_owned(),
                version,
                state: VersionState::Current,
                dek_version: keys.dek.version,
                ciphertext: Some(ciphertext),
                fingerprint: fingerprint.as_str().to_owned(),
                created_at: at,
                updated_at: at,
            };
            let transitions: Vec<SecretTransition> = current
                .map(|c| SecretTransition {
                    version: c.version,
                    from: VersionState::Current,
                    to: VersionState::Previous,
                })
                .into_iter()
                .collect();
            match self
                .storage
                .insert_secret_version(&record, &transitions)
                .await?
            {
                InsertOutcome::Inserted => {
                    return Ok(StoredSecret {
                        reference: SecretRef::new(tenant, name, version),
                        fingerprint,
                        replaces: current.map(|c| c.version),
                    });
                }
                InsertOutcome::Conflict => continue,
                // Another process rotated the data key; our cached active key is stale.
                InsertOutcome::DataKeyNotActive => self.cache.invalidate_tenant(tenant),
            }
        }
        Err(VaultError::Conflict {
            what: "secret version",
        })
    }

    /// Decrypts the referenced version (current or, during a rotation, previous).
    pub async fn resolve(&self, reference: &SecretRef) -> Result<Secret> {
        let SecretRef {
            tenant,
            name,
            version,
        } = reference;
        if let Some(cached) = self.cache.secret(tenant, name, *version) {
            match self.decrypt_secret(tenant, name, *version, &cached).await {
                Ok(secret) => return Ok(secret),
                // Stale ciphertext (re-encrypted and its key retired elsewhere): re-read.
                Err(VaultError::DekRetired { .. } | VaultError::DekNotFound { .. }) => {
                    self.cache.invalidate_secret(tenant, name);
                }
                Err(other) => return Err(other),
            }
        }
        let record = self
            .storage
            .secret_version(tenant, name, *version)
            .await?
            .ok_or_else(|| VaultError::SecretNotFound {
                tenant: tenant.clone(),
                name: name.clone(),
                version: Some(*version),
            })?;
        let Some(ciphertext) = record.ciphertext else {
            self.fail_if_shredded(tenant).await?;
            return Err(VaultError::SecretDestroyed {
                tenant: tenant.clone(),
                name: name.clone(),
                version: *version,
            });
        };
        let cached = CachedSecret {
            dek_version: record.dek_version,
            ciphertext,
        };
        let secret = self.decrypt_secret(tenant, name, *version, &cached).await?;
        self.cache.put_secret(tenant, name, *version, cached);
        Ok(secret)
    }

    async fn decrypt_secret(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
        cached: &CachedSecret,
    ) -> Result<Secret> {
        let dek = self.data_key(tenant, cached.dek_version).await?;
        let mut plaintext = crypto::open(
            &dek.cipher,
            Aad::secret(tenant, name, version).bytes(),
            &cached.ciphertext,
            "secret ciphertext",
        )?;
        Ok(Secret::new(std::mem::take(&mut *plaintext)))
    }

    /// The current version of a secret.
    pub async fn current(&self, tenant: &str, name: &str) -> Result<SecretRef> {
        self.storage
            .secret_versions(tenant, name)
            .await?
            .into_iter()
            .find(|v| v.state == VersionState::Current)
            .map(|v| SecretRef::new(tenant, name, v.version))
            .ok_or_else(|| VaultError::SecretNotFound {
                tenant: tenant.to_owned(),
                name: name.to_owned(),
                version: None,
            })
    }

    /// Every version of a secret with its state and fingerprint (no plaintext).
    pub async fn versions(&self, tenant: &str, name: &str) -> Result<Vec<SecretVersionInfo>> {
        Ok(self
            .storage
            .secret_versions(tenant, name)
            .await?
            .into_iter()
            .map(|v| SecretVersionInfo {
                reference: SecretRef::new(tenant, name, v.version),
                state: v.state,
                fingerprint: Fingerprint::from_hex(v.fingerprint),
                dek_version: v.dek_version,
                created_at: v.created_at,
            })
            .collect())
    }

    /// Confirms a rotation: `reference` (the current version) stays, the previous version is
    /// destroyed. Confirming an already confirmed current version is a no-op.
    pub async fn confirm(&self, reference: &SecretRef) -> Result<()> {
        let versions = self
            .current_checked(reference, "only the current version can be confirmed")
            .await?;
        let transitions: Vec<SecretTransition> = versions
            .iter()
            .filter(|v| v.state == VersionState::Previous)
            .map(|v| SecretTransition {
                version: v.version,
                from: VersionState::Previous,
                to: VersionState::Destroyed,
            })
            .collect();
        if transitions.is_empty() {
            return Ok(());
        }
        self.apply(reference, &transitions).await
    }

    /// Rolls back an unconfirmed rotation: `reference` (the new current version) is destroyed
    /// and the previous version is current again. Returns the restored version.
    pub async fn rollback(&self, reference: &SecretRef) -> Result<SecretRef> {
        let versions = self
            .current_checked(reference, "only the current version can be rolled back")
            .await?;
        let previous = versions
            .iter()
            .rev()
            .find(|v| v.state == VersionState::Previous)
            .ok_or_else(|| VaultError::InvalidTransition {
                tenant: reference.tenant.clone(),
                name: reference.name.clone(),
                reason: "there is no unconfirmed rotation to roll back",
            })?;
        let transitions = [
            SecretTransition {
                version: reference.version,
                from: VersionState::Current,
                to: VersionState::Destroyed,
            },
            SecretTransition {
                version: previous.version,
                from: VersionState::Previous,
                to: VersionState::Current,
            },
        ];
        self.apply(reference, &transitions).await?;
        Ok(SecretRef::new(
            reference.tenant.clone(),
            reference.name.clone(),
            previous.version,
        ))
    }

    /// Destroys every version of a secret. Returns how many were live.
    pub async fn delete(&self, tenant: &str, name: &str) -> Result<u64> {
        let versions = self.storage.secret_versions(tenant, name).await?;
        let transitions: Vec<SecretTransition> = versions
            .iter()
            .filter(|v| v.state != VersionState::Destroyed)
            .map(|v| SecretTransition {
                version: v.version,
                from: v.state,
                to: VersionState::Destroyed,
            })
            .collect();
        if !transitions.is_empty() {
            self.apply(&SecretRef::new(tenant, name, 0), &transitions)
                .await?;
        }
        Ok(transitions.len() as u64)
    }

    async fn current_checked(
        &self,
        reference: &SecretRef,
        reason: &'static str,
    ) -> Result<Vec<SecretRecord>> {
        let versions = self
            .storage
            .secret_versions(&reference.tenant, &reference.name)
            .await?;
        let Some(target) = versions.iter().find(|v| v.version == reference.version) else {
            return Err(VaultError::SecretNotFound {
                tenant: reference.tenant.clone(),
                name: reference.name.clone(),
                version: Some(reference.version),
            });
        };
        if target.state != VersionState::Current {
            return Err(VaultError::InvalidTransition {
                tenant: reference.tenant.clone(),
                name: reference.name.clone(),
                reason,
            });
        }
        Ok(versions)
    }

    async fn apply(&self, reference: &SecretRef, transitions: &[SecretTransition]) -> Result<()> {
        let applied = self
            .storage
            .transition_secret_versions(&reference.tenant, &reference.name, transitions, now())
            .await?;
        self.cache
            .invalidate_secret(&reference.tenant, &reference.name);
        if applied {
            Ok(())
        } else {
            Err(VaultError::Conflict {
                what: "secret version state",
            })
        }
    }

    /// The fingerprint `plaintext` would have in `tenant` (to compare without storing).
    pub async fn fingerprint(&self, tenant: &str, plaintext: &[u8]) -> Result<Fingerprint> {
        validate("tenant id", tenant, MAX_TENANT_LEN)?;
        let keys = self.active_keys(tenant).await?;
        Ok(fingerprint(&keys.fingerprint, plaintext))
    }

    // ------------------------------------------------------------------ blobs

    /// Encrypts `bytes` with the tenant's active data key, bound to `aad_context` (e.g. the
    /// blob key). Output: `[format][dek version: u32 BE][sealed]`.
    pub async fn encrypt_blob(
        &self,
        tenant: &str,
        aad_context: &[u8],
        bytes: &[u8],
    ) -> Result<Vec<u8>> {
        validate("tenant id", tenant, MAX_TENANT_LEN)?;
        let keys = self.active_keys(tenant).await?;
        seal_blob(&keys.dek, tenant, aad_context, bytes)
    }

    /// Decrypts a blob from [`Vault::encrypt_blob`] with the same tenant and context.
    pub async fn decrypt_blob(
        &self,
        tenant: &str,
        aad_context: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (version, body) = split_blob(sealed)?;
        let dek = self.data_key(tenant, version).await?;
        crypto::open(
            &dek.cipher,
            Aad::blob(tenant, aad_context).bytes(),
            body,
            "blob ciphertext",
        )
    }

    /// The data key version a blob is sealed with, so the blob owner can find blobs to move
    /// before retiring a data key.
    pub fn blob_data_key_version(sealed: &[u8]) -> Result<u32> {
        split_blob(sealed).map(|(version, _)| version)
    }

    /// Re-seals a blob under the tenant's active data key (returned unchanged if it already is).
    pub async fn reencrypt_blob(
        &self,
        tenant: &str,
        aad_context: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        let keys = self.active_keys(tenant).await?;
        if split_blob(sealed)?.0 == keys.dek.version {
            return Ok(sealed.to_vec());
        }
        let plaintext = self.decrypt_blob(tenant, aad_context, sealed).await?;
        seal_blob(&keys.dek, tenant, aad_context, &plaintext)
    }

    // ------------------------------------------------------------------ data keys

    /// The tenant's data keys, oldest first.
    pub async fn data_keys(&self, tenant: &str) -> Result<Vec<DataKeyInfo>> {
        Ok(self
            .storage
            .tenant_keys(tenant)
            .await?
            .into_iter()
            .filter(|k| k.purpose == KeyPurpose::DataKey)
            .map(|k| DataKeyInfo {
                version: k.version,
                state: k.state,
                kek_id: k.wrapped.map(|w| w.kek_id),
                created_at: k.created_at,
            })
            .collect())
    }

    /// Creates a new data key version; new writes use it at once (in other processes, once
    /// their cache expires or a write notices). Returns the new version.
    pub async fn rotate_dek(&self, tenant: &str) -> Result<u32> {
        validate("tenant id", tenant, MAX_TENANT_LEN)?;
        let _creation = self.key_creation.read().await;
        let keys = self.storage.tenant_keys(tenant).await?;
        ensure_not_shredded(tenant, &keys)?;
        let dek_rows = || keys.iter().filter(|k| k.purpose == KeyPurpose::DataKey);
        let active = dek_rows()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.version);
        let version = dek_rows().map(|k| k.version).max().unwrap_or(0) + 1;
        let context = WrapContext {
            tenant,
            purpose: KeyPurpose::DataKey,
            version,
        };
        let ring = self.ring();
        let (_key, wrapped) = ring.primary.generate(&context).await?;
        let at = now();
        let record = TenantKeyRecord {
            tenant_id: tenant.to_owned(),
            purpose: KeyPurpose::DataKey,
            version,
            state: KeyState::Active,
            wrapped: Some(wrapped),
            created_at: at,
            state_changed_at: at,
        };
        match self.storage.insert_tenant_key(&record, active).await? {
            InsertOutcome::Inserted => {
                self.cache.invalidate_tenant(tenant);
                tracing::info!(tenant, version, "rotated tenant data key");
                Ok(version)
            }
            _ => Err(VaultError::Conflict {
                what: "tenant data key",
            }),
        }
    }

    /// Moves every live secret version of the tenant onto the active data key. Returns how
    /// many were re-encrypted. Plaintexts exist only transiently in memory.
    pub async fn reencrypt_secrets(&self, tenant: &str) -> Result<u64> {
        self.cache.invalidate_tenant(tenant);
        let keys = self.active_keys(tenant).await?;
        let target = keys.dek.version;
        let mut moved = 0_u64;
        // Each pass shrinks the set unless rows change under us; bound it regardless.
        for _ in 0..10_000 {
            let batch = self
                .storage
                .secrets_not_on_data_key(tenant, target, self.options.batch_size)
                .await?;
            if batch.is_empty() {
                return Ok(moved);
            }
            for row in batch {
                let Some(ciphertext) = &row.ciphertext else {
                    continue;
                };
                let aad = Aad::secret(tenant, &row.name, row.version);
                let old = self.data_key(tenant, row.dek_version).await?;
                let plaintext =
                    crypto::open(&old.cipher, aad.bytes(), ciphertext, "secret ciphertext")?;
                let resealed = crypto::seal(&keys.dek.cipher, aad.bytes(), &plaintext)?;
                if self
                    .storage
                    .reencrypt_secret(
                        tenant,
                        &row.name,
                        row.version,
                        row.dek_version,
                        target,
                        &resealed,
                        now(),
                    )
                    .await?
                {
                    moved += 1;
                    self.cache.invalidate_secret(tenant, &row.name);
                }
            }
        }
        Err(VaultError::Conflict {
            what: "re-encryption pass",
        })
    }

    /// Retires a rotated-out data key once no secret uses it and every process's cache has
    /// had time to stop encrypting with it. Retiring an already retired key is a no-op.
    ///
    /// Blobs sealed with it become unreadable: move them first ([`Vault::reencrypt_blob`]).
    pub async fn retire_dek(&self, tenant: &str, version: u32) -> Result<()> {
        let key = self
            .storage
            .tenant_key(tenant, KeyPurpose::DataKey, version)
            .await?
            .ok_or_else(|| VaultError::DekNotFound {
                tenant: tenant.to_owned(),
                version,
            })?;
        match key.state {
            KeyState::Retired => return Ok(()),
            KeyState::Destroyed => {
                return Err(VaultError::TenantShredded {
                    tenant: tenant.to_owned(),
                });
            }
            KeyState::Active => {
                return Err(VaultError::DekRetireRefused {
                    tenant: tenant.to_owned(),
                    version,
                    reason: "it is the active data key; rotate first".to_owned(),
                });
            }
            KeyState::DecryptOnly => {}
        }
        self.ensure_grace_passed(&key)?;
        match self.storage.retire_data_key(tenant, version, now()).await? {
            RetireOutcome::Retired => {
                self.cache.invalidate_tenant(tenant);
                tracing::info!(tenant, version, "retired tenant data key");
                Ok(())
            }
            RetireOutcome::InUse { secrets } => Err(VaultError::DekRetireRefused {
                tenant: tenant.to_owned(),
                version,
                reason: format!(
                    "{secrets} secret version(s) still use it; run the re-encryption pass first"
                ),
            }),
            RetireOutcome::NotDecryptOnly { .. } => Err(VaultError::Conflict {
                what: "tenant data key state",
            }),
        }
    }

    /// [`VaultError::DekRetireTooEarly`] while a rotated-out key is younger than the cache TTL:
    /// until then some process may still encrypt with it.
    fn ensure_grace_passed(&self, key: &TenantKeyRecord) -> Result<()> {
        let since = now() - key.state_changed_at;
        let grace = self.cache.ttl();
        if since < grace {
            let retry_after = grace
                .checked_sub(Duration::try_from(since).unwrap_or_default())
                .unwrap_or_default();
            return Err(VaultError::DekRetireTooEarly {
                tenant: key.tenant_id.clone(),
                version: key.version,
                retry_after,
            });
        }
        Ok(())
    }

    /// Readies a tenant for [`Vault::complete_dek_rotation`] by the owners of its blobs, who
    /// must move them onto the active key first. Returns the active data key version when
    /// rotated-out keys await retirement (`None`: nothing to move).
    ///
    /// Fails with [`VaultError::DekRetireTooEarly`] while a rotated-out key is within its grace
    /// period: some process may still seal blobs with it, and a pass run now could miss them.
    /// Drops this process's cached keys of the tenant so re-sealing uses the key that is active
    /// in storage.
    pub async fn prepare_dek_completion(&self, tenant: &str) -> Result<Option<u32>> {
        validate("tenant id", tenant, MAX_TENANT_LEN)?;
        let keys = self.storage.tenant_keys(tenant).await?;
        ensure_not_shredded(tenant, &keys)?;
        let data_keys = || keys.iter().filter(|k| k.purpose == KeyPurpose::DataKey);
        let mut rotated_out = data_keys()
            .filter(|k| k.state == KeyState::DecryptOnly)
            .peekable();
        if rotated_out.peek().is_none() {
            return Ok(None);
        }
        for key in rotated_out {
            self.ensure_grace_passed(key)?;
        }
        self.cache.invalidate_tenant(tenant);
        Ok(data_keys()
            .find(|k| k.state == KeyState::Active)
            .map(|k| k.version))
    }

    /// Re-encrypts all secrets onto the active data key, then retires every rotated-out key.
    ///
    /// Blobs are not the vault's to find: their owners move them first (see
    /// [`Vault::prepare_dek_completion`]), or they become unreadable.
    pub async fn complete_dek_rotation(&self, tenant: &str) -> Result<DekRotationReport> {
        let reencrypted = self.reencrypt_secrets(tenant).await?;
        let mut retired = Vec::new();
        for key in self.data_keys(tenant).await? {
            if key.state == KeyState::DecryptOnly {
                self.retire_dek(tenant, key.version).await?;
                retired.push(key.version);
            }
        }
        Ok(DekRotationReport {
            reencrypted,
            retired,
        })
    }

    // ------------------------------------------------------------------ KEK rotation

    /// Makes `new` the primary KEK and re-wraps every stored key under it while the vault
    /// keeps serving (the old KEK stays in the ring until nothing uses it). No secret is
    /// re-encrypted. Other processes need `new` in their key ring before their caches expire.
    pub async fn rotate_kek(&self, new: Arc<dyn KeyEncryptionKey>) -> Result<KekRotationReport> {
        {
            // Wait for in-flight key creations under the old primary, then swap.
            let _exclusive = self.key_creation.write().await;
            let mut ring = self.keyring.write().unwrap_or_else(PoisonError::into_inner);
            let old = Arc::clone(&ring.primary);
            if old.kek_id() != new.kek_id() {
                let mut previous = vec![old];
                previous.extend(
                    ring.previous
                        .iter()
                        .filter(|k| k.kek_id() != new.kek_id())
                        .cloned(),
                );
                *ring = Arc::new(KeyRing {
                    primary: Arc::clone(&new),
                    previous,
                });
            }
        }
        let report = self.rewrap_keys_admin().await?;
        // Keep only KEKs something still uses (nothing, unless a concurrent writer raced).
        let in_use = self.storage.kek_ids_in_use_admin().await?;
        {
            let mut ring = self.keyring.write().unwrap_or_else(PoisonError::into_inner);
            let previous = ring
                .previous
                .iter()
                .filter(|k| in_use.iter().any(|id| id == k.kek_id()))
                .cloned()
                .collect();
            *ring = Arc::new(KeyRing {
                primary: Arc::clone(&ring.primary),
                previous,
            });
        }
        tracing::info!(kek_id = %report.kek_id, rewrapped = report.rewrapped, "rotated key-encryption key");
        Ok(report)
    }

    /// Re-wraps every stored key (all tenants) that the primary KEK did not wrap.
    pub async fn rewrap_keys_admin(&self) -> Result<KekRotationReport> {
        let ring = self.ring();
        let target = ring.primary.kek_id().to_owned();
        let mut rewrapped = 0_u64;
        for _ in 0..100_000 {
            let batch = self
                .storage
                .keys_not_wrapped_by_admin(&target, self.options.batch_size)
                .await?;
            if batch.is_empty() {
                return Ok(KekRotationReport {
                    kek_id: target,
                    rewrapped,
                });
            }
            for row in batch {
                let Some(old) = &row.wrapped else { continue };
                let kek = ring
                    .find(&old.kek_id)
                    .ok_or_else(|| VaultError::KekMismatch {
                        configured: ring.ids().join(", "),
                        missing: old.kek_id.clone(),
                    })?;
                let key = unwrap_record(kek.as_ref(), &row).await?;
                let context = WrapContext {
                    tenant: &row.tenant_id,
                    purpose: row.purpose,
                    version: row.version,
                };
                let new = ring.primary.wrap(&key, &context).await?;
                if self
                    .storage
                    .rewrap_tenant_key(&row.tenant_id, row.purpose, row.version, old, &new)
                    .await?
                {
                    rewrapped += 1;
                }
            }
        }
        Err(VaultError::Conflict {
            what: "re-wrapping pass",
        })
    }

    // ------------------------------------------------------------------ shredding

    /// Crypto-shreds a tenant: destroys all its keys (and secret ciphertexts) at once, so
    /// every ciphertext of the tenant, blobs included, is unreadable. Irreversible. Other
    /// processes stop using cached keys within the cache TTL.
    pub async fn shred_tenant(&self, tenant: &str) -> Result<ShredCounts> {
        validate("tenant id", tenant, MAX_TENANT_LEN)?;
        let counts = self.storage.shred_tenant(tenant, now()).await?;
        self.cache.invalidate_tenant(tenant);
        tracing::warn!(
            tenant,
            keys = counts.keys,
            secret_versions = counts.secret_versions,
            "crypto-shredded tenant"
        );
        Ok(counts)
    }

    // ------------------------------------------------------------------ key plumbing

    /// The active data key and fingerprint key, creating them on a tenant's first write.
    async fn active_keys(&self, tenant: &str) -> Result<ActiveKeys> {
        if let Some(keys) = self.cache.active(tenant) {
            return Ok(keys);
        }
        for _ in 0..WRITE_ATTEMPTS {
            let rows = self.storage.tenant_keys(tenant).await?;
            ensure_not_shredded(tenant, &rows)?;
            let dek_row = rows
                .iter()
                .find(|k| k.purpose == KeyPurpose::DataKey && k.state == KeyState::Active);
            let fp_row = rows
                .iter()
                .find(|k| k.purpose == KeyPurpose::FingerprintKey && k.state == KeyState::Active);
            let (Some(dek_row), Some(fp_row)) = (dek_row, fp_row) else {
                // First write of this tenant (or a lost race): create what is missing.
                if dek_row.is_none() {
                    self.create_first_key(tenant, KeyPurpose::DataKey, &rows)
                        .await?;
                }
                if fp_row.is_none() {
                    self.create_first_key(tenant, KeyPurpose::FingerprintKey, &rows)
                        .await?;
                }
                continue;
            };
            let ring = self.ring();
            let dek = Arc::new(DataKey {
                version: dek_row.version,
                cipher: self.unwrap_with(&ring, dek_row).await?.cipher(),
            });
            let fingerprint = Arc::new(self.unwrap_with(&ring, fp_row).await?);
            let keys = ActiveKeys { dek, fingerprint };
            self.cache.put_active(tenant, keys.clone());
            return Ok(keys);
        }
        Err(VaultError::Conflict {
            what: "tenant key creation",
        })
    }

    async fn create_first_key(
        &self,
        tenant: &str,
        purpose: KeyPurpose,
        rows: &[TenantKeyRecord],
    ) -> Result<()> {
        let _creation = self.key_creation.read().await;
        let version = rows
            .iter()
            .filter(|k| k.purpose == purpose)
            .map(|k| k.version)
            .max()
            .unwrap_or(0)
            + 1;
        let context = WrapContext {
            tenant,
            purpose,
            version,
        };
        let (_key, wrapped) = self.ring().primary.generate(&context).await?;
        let at = now();
        let record = TenantKeyRecord {
            tenant_id: tenant.to_owned(),
            purpose,
            version,
            state: KeyState::Active,
            wrapped: Some(wrapped),
            created_at: at,
            state_changed_at: at,
        };
        // A conflict means a concurrent writer created it; the caller re-reads either way.
        self.storage.insert_tenant_key(&record, None).await?;
        Ok(())
    }

    /// A data key by version, for decryption.
    async fn data_key(&self, tenant: &str, version: u32) -> Result<Arc<DataKey>> {
        if let Some(key) = self.cache.dek(tenant, version) {
            return Ok(key);
        }
        let row = self
            .storage
            .tenant_key(tenant, KeyPurpose::DataKey, version)
            .await?;
        let Some(row) = row else {
            self.fail_if_shredded(tenant).await?;
            return Err(VaultError::DekNotFound {
                tenant: tenant.to_owned(),
                version,
            });
        };
        match row.state {
            KeyState::Destroyed => Err(VaultError::TenantShredded {
                tenant: tenant.to_owned(),
            }),
            KeyState::Retired => Err(VaultError::DekRetired {
                tenant: tenant.to_owned(),
                version,
            }),
            KeyState::Active | KeyState::DecryptOnly => {
                let key = Arc::new(DataKey {
                    version,
                    cipher: self.unwrap_with(&self.ring(), &row).await?.cipher(),
                });
                self.cache.put_dek(tenant, Arc::clone(&key));
                Ok(key)
            }
        }
    }

    async fn unwrap_with(&self, ring: &KeyRing, row: &TenantKeyRecord) -> Result<KeyBytes> {
        let wrapped = row
            .wrapped
            .as_ref()
            .ok_or_else(|| VaultError::corrupt("live tenant key without a wrapping"))?;
        let kek = ring
            .find(&wrapped.kek_id)
            .ok_or_else(|| VaultError::KekMismatch {
                configured: ring.ids().join(", "),
                missing: wrapped.kek_id.clone(),
            })?;
        let key = unwrap_record(kek.as_ref(), row).await?;
        self.cache.record_unwrap();
        Ok(key)
    }

    async fn fail_if_shredded(&self, tenant: &str) -> Result<()> {
        ensure_not_shredded(tenant, &self.storage.tenant_keys(tenant).await?)
    }
}

async fn unwrap_record(kek: &dyn KeyEncryptionKey, row: &TenantKeyRecord) -> Result<KeyBytes> {
    let wrapped = row
        .wrapped
        .as_ref()
        .ok_or_else(|| VaultError::corrupt("live tenant key without a wrapping"))?;
    let context = WrapContext {
        tenant: &row.tenant_id,
        purpose: row.purpose,
        version: row.version,
    };
    kek.unwrap(wrapped, &context).await
}

fn ensure_not_shredded(tenant: &str, rows: &[TenantKeyRecord]) -> Result<()> {
    if rows.iter().any(|k| k.state == KeyState::Destroyed) {
        Err(VaultError::TenantShredded {
            tenant: tenant.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn seal_blob(dek: &DataKey, tenant: &str, aad_context: &[u8], bytes: &[u8]) -> Result<Vec<u8>> {
    let sealed = crypto::seal(&dek.cipher, Aad::blob(tenant, aad_context).bytes(), bytes)?;
    let mut out = Vec::with_capacity(5 + sealed.len());
    out.push(BLOB_FORMAT_V1);
    out.extend_from_slice(&dek.version.to_be_bytes());
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn split_blob(sealed: &[u8]) -> Result<(u32, &[u8])> {
    let malformed = VaultError::Malformed {
        what: "blob ciphertext",
    };
    let Some((&format, rest)) = sealed.split_first() else {
        return Err(malformed);
    };
    if format != BLOB_FORMAT_V1 || rest.len() < 4 {
        return Err(malformed);
    }
    let (version, body) = rest.split_at(4);
    let version: [u8; 4] = version.try_into().map_err(|_| VaultError::Malformed {
        what: "blob ciphertext",
    })?;
    Ok((u32::from_be_bytes(version), body))
}
