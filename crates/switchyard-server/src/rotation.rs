//! Completing a tenant's data-key rotation. Data sealed with the tenant's data key lives with
//! the features that own it, so each owner first re-seals its own onto the active key (inbound
//! payloads, outbound event bodies, stored response bodies); only then does the vault
//! re-encrypt the secrets and retire the rotated-out keys (audited there).
//!
//! The `vault.complete_dek_rotation` job and the API route (which the CLI calls) both come
//! here, so no path retires a key that stored data still needs.

use switchyard_core::TenantId;
use switchyard_inbound::{InboundError, events::InboundEvents};
use switchyard_outbound::{OutboundError, ResponseBodies, reseal::ResealReport};
use switchyard_store::Database;
use switchyard_vault::{AuditContext, AuditedVault, VaultError};

/// Why a completion stopped. Whatever was re-sealed stays so; running it again resumes.
#[derive(Debug, thiserror::Error)]
pub enum CompletionError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("re-sealing inbound payloads failed")]
    Inbound(#[source] InboundError),
    #[error("re-sealing outbound bodies failed")]
    Outbound(#[source] OutboundError),
}

impl CompletionError {
    /// A stable code for job failures and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Vault(error) => error.code(),
            Self::Inbound(error) => error.code(),
            Self::Outbound(error) => error.code(),
        }
    }
}

/// What a completion did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompletionReport {
    /// Secret versions re-encrypted by the vault.
    pub reencrypted: u64,
    /// Inbound requests re-sealed.
    pub inbound_payloads: u64,
    /// Outbound event bodies and stored response bodies re-sealed.
    pub outbound: ResealReport,
    /// Data key versions retired.
    pub retired: Vec<u32>,
}

/// Everything that owns data sealed with tenant data keys. Cheap to clone.
#[derive(Clone)]
pub struct DekCompletion {
    pub vault: AuditedVault,
    pub database: Database,
    pub inbound_events: InboundEvents,
    pub response_bodies: ResponseBodies,
}

impl DekCompletion {
    /// Re-seals the tenant's blobs onto its active data key, then completes the rotation in
    /// the vault.
    ///
    /// # Errors
    /// [`VaultError::DekRetireTooEarly`] (as [`CompletionError::Vault`]) while a rotated-out
    /// key may still be cached somewhere, before anything is moved; any failure of a pass.
    pub async fn complete(
        &self,
        context: &AuditContext,
        tenant: TenantId,
    ) -> Result<CompletionReport, CompletionError> {
        let mut report = CompletionReport::default();
        if let Some(target) = self.vault.prepare_dek_completion(tenant).await? {
            report.inbound_payloads = self
                .inbound_events
                .reseal_tenant(tenant, target)
                .await
                .map_err(CompletionError::Inbound)?;
            report.outbound = switchyard_outbound::reseal::reseal_tenant(
                &self.database,
                &self.vault,
                &self.response_bodies,
                tenant,
                target,
            )
            .await
            .map_err(CompletionError::Outbound)?;
        }
        let completed = self.vault.complete_dek_rotation(context, tenant).await?;
        report.reencrypted = completed.reencrypted;
        report.retired = completed.retired;
        tracing::info!(
            %tenant,
            inbound_payloads = report.inbound_payloads,
            event_bodies = report.outbound.event_bodies,
            response_bodies = report.outbound.response_bodies,
            secrets = report.reencrypted,
            retired = ?report.retired,
            "completed data key rotation"
        );
        Ok(report)
    }
}
