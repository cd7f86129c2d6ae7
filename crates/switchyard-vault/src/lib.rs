//! Switchyard's credential vault: envelope encryption of tenant secrets.
//!
//! # Key hierarchy
//! ```text
//! KEK (key file | environment | AWS KMS)          kek/         one per deployment
//!  └─ wraps tenant keys (stored wrapped only)      storage/     per tenant, versioned
//!      ├─ data keys (AES-256-GCM)                  crypto.rs    encrypt secrets and blobs
//!      └─ fingerprint key (HMAC-SHA256)            fingerprint.rs
//! ```
//! Every ciphertext's associated data binds the tenant, the secret name and the version (or,
//! for blobs, the caller's context), so a ciphertext moved anywhere else fails to decrypt.
//! Every wrapped key records its KEK id and the wrapping binds tenant, purpose and version, so
//! a wrong KEK is a typed error ([`VaultError::KekMismatch`] / [`VaultError::KekUnwrapFailed`]),
//! never garbage.
//!
//! # Layout (one owner per module)
//! - [`audited`]: [`AuditedVault`], the vault as the rest of Switchyard uses it: every
//!   operation names its actor and is recorded in the tenant's audit chain.
//! - [`vault`]: the [`Vault`]: secrets (put, resolve, rotate, confirm, rollback), data-key
//!   rotation and re-encryption, KEK rotation, crypto-shredding, blob encryption.
//! - [`kek`]: KEK providers ([`kek::file`], [`kek::env`], [`kek::aws_kms`]) behind
//!   [`KeyEncryptionKey`], and [`KekConfig`] which loads one, failing closed.
//! - [`secret`]: caller-facing types: [`Secret`] (zeroized, prints `[REDACTED]`),
//!   [`SecretRef`], [`Fingerprint`].
//! - `crypto`: AES-256-GCM sealing and the AAD encodings; `fingerprint`: HMAC fingerprints;
//!   `cache`: time-bounded cache of unwrapped keys and ciphertexts.
//! - [`storage`]: the [`VaultStorage`] trait and its SQL implementation
//!   ([`storage::sql`]) over `switchyard_store::Database` (tables `vault_tenant_keys` and
//!   `vault_secrets`, migration `0002_vault.sql` in the store's migration folders).
//! - [`error`]: [`VaultError`]; no variant carries key material or plaintext.

pub mod audited;
pub mod cache;
mod crypto;
pub mod error;
mod fingerprint;
pub mod kek;
pub mod secret;
pub mod storage;
pub mod vault;

pub use audited::{AuditContext, AuditedVault};
pub use cache::CacheStats;
pub use crypto::KeyBytes;
pub use error::VaultError;
pub use kek::{
    AwsKmsConfig, AwsKmsKek, EnvKek, FileKek, KekConfig, KeyEncryptionKey, KeyPurpose, LocalKek,
    StaticCredentials, WrapContext, WrappedKey,
};
pub use secret::{Fingerprint, Secret, SecretRef, SecretVersionInfo, StoredSecret, VersionState};
pub use storage::{KeyState, ShredCounts, VaultStorage, sql::storage_for};
pub use vault::{DataKeyInfo, DekRotationReport, KekRotationReport, Vault, VaultOptions};
