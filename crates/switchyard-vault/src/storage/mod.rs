//! Persistence behind a small trait, so the crypto core and the rotation logic never see SQL.
//!
//! [`VaultStorage`] stores two table families, both keyed by `tenant_id`:
//! - tenant keys ([`TenantKeyRecord`]): data keys and the fingerprint key, only ever wrapped by
//!   a KEK;
//! - secret versions ([`SecretRecord`]): ciphertexts under a tenant data key.
//!
//! Implementations must make each method atomic and report lost races as outcomes (`false`,
//! [`InsertOutcome::Conflict`]), not errors, so the vault can retry. [`sql`] implements it for
//! SQLite and PostgreSQL over `switchyard_store::Database`.

pub mod sql;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::{error::Result, kek::KeyPurpose, kek::WrappedKey, secret::VersionState};

/// Life cycle of a tenant key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Encrypts new data (one per tenant and purpose).
    Active,
    /// Rotated out: still decrypts, pending re-encryption and retirement.
    DecryptOnly,
    /// Retired after re-encryption; the wrapped key is gone.
    Retired,
    /// Destroyed by crypto-shredding; the wrapped key is gone.
    Destroyed,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::DecryptOnly => "decrypt_only",
            KeyState::Retired => "retired",
            KeyState::Destroyed => "destroyed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "active" => Some(KeyState::Active),
            "decrypt_only" => Some(KeyState::DecryptOnly),
            "retired" => Some(KeyState::Retired),
            "destroyed" => Some(KeyState::Destroyed),
            _ => None,
        }
    }
}

/// One row of the tenant keys table.
#[derive(Debug, Clone)]
pub struct TenantKeyRecord {
    pub tenant_id: String,
    pub purpose: KeyPurpose,
    pub version: u32,
    pub state: KeyState,
    /// `None` once retired or destroyed.
    pub wrapped: Option<WrappedKey>,
    pub created_at: OffsetDateTime,
    pub state_changed_at: OffsetDateTime,
}

/// One row of the secrets table.
#[derive(Debug, Clone)]
pub struct SecretRecord {
    pub tenant_id: String,
    pub name: String,
    pub version: u32,
    pub state: VersionState,
    pub dek_version: u32,
    /// Sealed under data key `dek_version`; `None` once destroyed.
    pub ciphertext: Option<Vec<u8>>,
    pub fingerprint: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A compare-and-set change of one secret version's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretTransition {
    pub version: u32,
    pub from: VersionState,
    /// [`VersionState::Destroyed`] also erases the ciphertext.
    pub to: VersionState,
}

/// Result of an insert that can lose a race.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// The key already exists or a transition's `from` state no longer holds.
    Conflict,
    /// The data key the row was encrypted with is no longer the tenant's active one.
    DataKeyNotActive,
}

/// Result of [`VaultStorage::retire_data_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetireOutcome {
    Retired,
    /// Live secrets still use it.
    InUse {
        secrets: u64,
    },
    /// It is not in the decrypt-only state (still active, already retired, or missing).
    NotDecryptOnly {
        state: Option<KeyState>,
    },
}

/// What crypto-shredding destroyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShredCounts {
    pub keys: u64,
    pub secret_versions: u64,
}

/// The vault's persistence. Methods ending in `_admin` span all tenants.
#[async_trait]
pub trait VaultStorage: Send + Sync + std::fmt::Debug {
    // --- tenant keys ---

    /// Every key row of a tenant, any purpose and state, ordered by purpose then version.
    async fn tenant_keys(&self, tenant: &str) -> Result<Vec<TenantKeyRecord>>;

    /// One key row.
    async fn tenant_key(
        &self,
        tenant: &str,
        purpose: KeyPurpose,
        version: u32,
    ) -> Result<Option<TenantKeyRecord>>;

    /// Inserts a key; when `demote` names a version, that version moves from active to
    /// decrypt-only in the same transaction.
    async fn insert_tenant_key(
        &self,
        key: &TenantKeyRecord,
        demote: Option<u32>,
    ) -> Result<InsertOutcome>;

    /// Retires a decrypt-only data key, erasing its wrapped bytes, unless a live secret still
    /// uses it.
    async fn retire_data_key(
        &self,
        tenant: &str,
        version: u32,
        now: OffsetDateTime,
    ) -> Result<RetireOutcome>;

    /// Destroys every key of the tenant and every secret ciphertext, leaving tombstones so the
    /// tenant stays recognisably shredded.
    async fn shred_tenant(&self, tenant: &str, now: OffsetDateTime) -> Result<ShredCounts>;

    /// Distinct KEK ids that wrap at least one stored key.
    async fn kek_ids_in_use_admin(&self) -> Result<Vec<String>>;

    /// Any one key wrapped by `kek_id` (to prove the configured KEK can unwrap it).
    async fn sample_key_wrapped_by_admin(&self, kek_id: &str) -> Result<Option<TenantKeyRecord>>;

    /// Up to `limit` keys wrapped by a KEK other than `kek_id`.
    async fn keys_not_wrapped_by_admin(
        &self,
        kek_id: &str,
        limit: u32,
    ) -> Result<Vec<TenantKeyRecord>>;

    /// Replaces a wrapping if it is still `old`; `false` when it changed meanwhile.
    async fn rewrap_tenant_key(
        &self,
        tenant: &str,
        purpose: KeyPurpose,
        version: u32,
        old: &WrappedKey,
        new: &WrappedKey,
    ) -> Result<bool>;

    // --- secrets ---

    /// All versions of a secret, ascending.
    async fn secret_versions(&self, tenant: &str, name: &str) -> Result<Vec<SecretRecord>>;

    /// One version.
    async fn secret_version(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
    ) -> Result<Option<SecretRecord>>;

    /// Applies `transitions` (all must match) and inserts `record`, atomically, provided that
    /// `record.dek_version` is still the tenant's active data key.
    async fn insert_secret_version(
        &self,
        record: &SecretRecord,
        transitions: &[SecretTransition],
    ) -> Result<InsertOutcome>;

    /// Applies `transitions` atomically; `false` (and nothing changed) if any did not match.
    async fn transition_secret_versions(
        &self,
        tenant: &str,
        name: &str,
        transitions: &[SecretTransition],
        now: OffsetDateTime,
    ) -> Result<bool>;

    /// Up to `limit` live secret versions whose data key is not `dek_version`.
    async fn secrets_not_on_data_key(
        &self,
        tenant: &str,
        dek_version: u32,
        limit: u32,
    ) -> Result<Vec<SecretRecord>>;

    /// Replaces a live version's ciphertext if it is still under `old_dek`.
    #[allow(clippy::too_many_arguments)]
    async fn reencrypt_secret(
        &self,
        tenant: &str,
        name: &str,
        version: u32,
        old_dek: u32,
        new_dek: u32,
        ciphertext: &[u8],
        now: OffsetDateTime,
    ) -> Result<bool>;
}
