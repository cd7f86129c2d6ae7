//! The vault as the rest of Switchyard uses it: every operation names who performs it, and
//! its outcome is recorded in the tenant's audit chain.
//!
//! Entries go through [`AuditLog::record`], which only enqueues; the audit writer batches
//! them, so auditing a resolve costs a channel send, not a database write. Destructive,
//! tenant-wide operations (shredding, key rotations) wait until their entry is durable. If
//! the audit log cannot take an entry, the operation's result is still returned but the
//! failure is logged as an error: refusing to resolve secrets because the audit writer is
//! shutting down would stall in-flight work for no security gain.

use std::sync::Arc;

use switchyard_audit::{Action, Actor, AuditEntry, AuditLog, Chain, Outcome};
use switchyard_core::TenantId;

use crate::{
    DataKeyInfo, DekRotationReport, KekRotationReport, KeyEncryptionKey, Secret, SecretRef,
    StoredSecret, Vault, VaultError, error::Result, storage::ShredCounts,
};

/// Who performs a vault operation, and in answer to which request.
#[derive(Debug, Clone)]
pub struct AuditContext {
    pub actor: Actor,
    pub request_id: Option<String>,
}

impl AuditContext {
    pub fn new(actor: Actor) -> Self {
        Self {
            actor,
            request_id: None,
        }
    }

    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }
}

/// A [`Vault`] whose every operation is audited.
#[derive(Debug, Clone)]
pub struct AuditedVault {
    vault: Arc<Vault>,
    audit: AuditLog,
}

/// How long to wait for an entry: enqueue, or until it is durable.
#[derive(Clone, Copy)]
enum Durability {
    Queued,
    Durable,
}

impl AuditedVault {
    pub fn new(vault: Arc<Vault>, audit: AuditLog) -> Self {
        Self { vault, audit }
    }

    /// The id of the KEK wrapping new keys.
    pub fn kek_id(&self) -> String {
        self.vault.kek_id()
    }

    /// Cache counters, for metrics.
    pub fn cache_stats(&self) -> crate::CacheStats {
        self.vault.cache_stats()
    }

    /// Encrypts data-plane bytes (an inbound payload, a response body) with the tenant's data
    /// key. Not audited: it writes data, it reveals nothing.
    pub async fn encrypt_blob(
        &self,
        tenant: TenantId,
        aad_context: &[u8],
        bytes: &[u8],
    ) -> Result<Vec<u8>> {
        self.vault
            .encrypt_blob(&tenant.to_string(), aad_context, bytes)
            .await
    }

    /// Decrypts bytes from [`AuditedVault::encrypt_blob`]. Not audited here: a route that shows
    /// the plaintext to a person records that read itself; the processing pipeline does not.
    pub async fn decrypt_blob(
        &self,
        tenant: TenantId,
        aad_context: &[u8],
        sealed: &[u8],
    ) -> Result<zeroize::Zeroizing<Vec<u8>>> {
        self.vault
            .decrypt_blob(&tenant.to_string(), aad_context, sealed)
            .await
    }

    /// Re-seals a blob onto the tenant's active data key (unchanged if it already is). Not
    /// audited: the plaintext never leaves the vault.
    pub async fn reencrypt_blob(
        &self,
        tenant: TenantId,
        aad_context: &[u8],
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        self.vault
            .reencrypt_blob(&tenant.to_string(), aad_context, sealed)
            .await
    }

    /// See [`Vault::prepare_dek_completion`]. Not audited: the completion that follows is.
    pub async fn prepare_dek_completion(&self, tenant: TenantId) -> Result<Option<u32>> {
        self.vault.prepare_dek_completion(&tenant.to_string()).await
    }

    /// Stores a new version of a secret.
    pub async fn put(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        name: &str,
        plaintext: &[u8],
    ) -> Result<StoredSecret> {
        let result = self.vault.put(&tenant.to_string(), name, plaintext).await;
        let target = match &result {
            Ok(stored) => secret_target(&stored.reference),
            Err(_) => format!("secret:{name}"),
        };
        self.record(
            context,
            tenant,
            Action::SECRET_PUT,
            target,
            &result,
            Durability::Queued,
        )
        .await;
        result
    }

    /// Decrypts a secret version for immediate use.
    pub async fn resolve(&self, context: &AuditContext, reference: &SecretRef) -> Result<Secret> {
        let tenant = tenant_of(reference)?;
        let result = self.vault.resolve(reference).await;
        self.record(
            context,
            tenant,
            Action::SECRET_RESOLVE,
            secret_target(reference),
            &result,
            Durability::Queued,
        )
        .await;
        result
    }

    /// A secret's versions with their states and fingerprints (metadata only: nothing is
    /// decrypted, so nothing is audited).
    pub async fn versions(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Vec<crate::SecretVersionInfo>> {
        self.vault.versions(&tenant.to_string(), name).await
    }

    /// Makes a new version current; the previous stays readable until [`Self::confirm`].
    pub async fn rotate(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        name: &str,
        plaintext: &[u8],
    ) -> Result<StoredSecret> {
        let result = self
            .vault
            .rotate(&tenant.to_string(), name, plaintext)
            .await;
        let target = match &result {
            Ok(stored) => secret_target(&stored.reference),
            Err(_) => format!("secret:{name}"),
        };
        self.record(
            context,
            tenant,
            Action::SECRET_ROTATE,
            target,
            &result,
            Durability::Queued,
        )
        .await;
        result
    }

    /// Confirms a rotated version works; the previous version is destroyed.
    pub async fn confirm(&self, context: &AuditContext, reference: &SecretRef) -> Result<()> {
        let tenant = tenant_of(reference)?;
        let result = self.vault.confirm(reference).await;
        self.record(
            context,
            tenant,
            Action::SECRET_CONFIRM,
            secret_target(reference),
            &result,
            Durability::Queued,
        )
        .await;
        result
    }

    /// Abandons an unconfirmed rotation; the previous version is current again.
    pub async fn rollback(
        &self,
        context: &AuditContext,
        reference: &SecretRef,
    ) -> Result<SecretRef> {
        let tenant = tenant_of(reference)?;
        let result = self.vault.rollback(reference).await;
        self.record(
            context,
            tenant,
            Action::SECRET_DESTROY,
            secret_target(reference),
            &result,
            Durability::Queued,
        )
        .await;
        result
    }

    /// Destroys every version of a secret.
    pub async fn delete(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        name: &str,
    ) -> Result<u64> {
        let result = self.vault.delete(&tenant.to_string(), name).await;
        let target = format!("secret:{name}");
        self.record(
            context,
            tenant,
            Action::SECRET_DESTROY,
            target,
            &result,
            Durability::Durable,
        )
        .await;
        result
    }

    /// The tenant's data keys (metadata only).
    pub async fn data_keys(&self, tenant: TenantId) -> Result<Vec<DataKeyInfo>> {
        self.vault.data_keys(&tenant.to_string()).await
    }

    /// Starts a data-key rotation: new writes use a new key at once.
    pub async fn rotate_dek(&self, context: &AuditContext, tenant: TenantId) -> Result<u32> {
        let result = self.vault.rotate_dek(&tenant.to_string()).await;
        let target = match &result {
            Ok(version) => format!("dek:{version}"),
            Err(_) => "dek".to_owned(),
        };
        self.record(
            context,
            tenant,
            Action::DEK_ROTATE,
            target,
            &result,
            Durability::Durable,
        )
        .await;
        result
    }

    /// Re-encrypts onto the active data key and retires rotated-out keys.
    pub async fn complete_dek_rotation(
        &self,
        context: &AuditContext,
        tenant: TenantId,
    ) -> Result<DekRotationReport> {
        let result = self.vault.complete_dek_rotation(&tenant.to_string()).await;
        let target = match &result {
            Ok(report) => format!("dek:retired={:?}", report.retired),
            Err(_) => "dek".to_owned(),
        };
        self.record(
            context,
            tenant,
            Action::DEK_ROTATE,
            target,
            &result,
            Durability::Durable,
        )
        .await;
        result
    }

    /// Makes `new` the primary KEK and re-wraps every tenant key under it (platform chain).
    pub async fn rotate_kek(
        &self,
        context: &AuditContext,
        new: Arc<dyn KeyEncryptionKey>,
    ) -> Result<KekRotationReport> {
        let target = format!("kek:{}", new.kek_id());
        let result = self.vault.rotate_kek(new).await;
        self.record_in(
            context,
            Chain::Platform,
            Action::KEK_ROTATE,
            target,
            &result,
            Durability::Durable,
        )
        .await;
        result
    }

    /// Re-wraps every tenant key not yet wrapped by the primary KEK (platform chain).
    pub async fn rewrap_keys(&self, context: &AuditContext) -> Result<KekRotationReport> {
        let target = format!("kek:{}", self.vault.kek_id());
        let result = self.vault.rewrap_keys_admin().await;
        self.record_in(
            context,
            Chain::Platform,
            Action::KEK_ROTATE,
            target,
            &result,
            Durability::Durable,
        )
        .await;
        result
    }

    /// Crypto-shreds the tenant: all its keys, so all its ciphertexts, destroyed at once.
    pub async fn shred_tenant(
        &self,
        context: &AuditContext,
        tenant: TenantId,
    ) -> Result<ShredCounts> {
        let result = self.vault.shred_tenant(&tenant.to_string()).await;
        self.record(
            context,
            tenant,
            Action::TENANT_SHRED,
            format!("tenant:{tenant}"),
            &result,
            Durability::Durable,
        )
        .await;
        result
    }

    async fn record<T>(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        action: Action,
        target: String,
        result: &Result<T>,
        durability: Durability,
    ) {
        self.record_in(
            context,
            Chain::Tenant(tenant),
            action,
            target,
            result,
            durability,
        )
        .await;
    }

    async fn record_in<T>(
        &self,
        context: &AuditContext,
        chain: Chain,
        action: Action,
        target: String,
        result: &Result<T>,
        durability: Durability,
    ) {
        let outcome = match result {
            Ok(_) => Outcome::Success,
            Err(error) => Outcome::Failure {
                reason: Some(error.code().to_owned()),
            },
        };
        let mut entry =
            AuditEntry::new(chain, context.actor.clone(), action, target).with_outcome(outcome);
        if let Some(request_id) = &context.request_id {
            entry = entry.with_request_id(request_id.clone());
        }
        let recorded = match durability {
            Durability::Queued => self.audit.record(entry).await,
            Durability::Durable => self.audit.record_and_wait(entry).await.map(|_| ()),
        };
        if let Err(error) = recorded {
            tracing::error!(%error, "could not record a vault operation in the audit log");
        }
    }
}

fn tenant_of(reference: &SecretRef) -> Result<TenantId> {
    reference
        .tenant
        .parse()
        .map_err(|_| VaultError::InvalidIdentifier {
            what: "tenant",
            reason: "not a tenant id",
        })
}

fn secret_target(reference: &SecretRef) -> String {
    format!("secret:{}@{}", reference.name, reference.version)
}
