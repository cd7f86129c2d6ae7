//! Connection credentials from the vault, placed by the provider stack on every attempt.
//!
//! The connection row names its vault secret and auth mode ([`CredentialRef`]); each attempt
//! reads the row, resolves the secret through the audited vault (one `secret.resolve` entry,
//! actor `provider.call`) and builds the [`Credential`] of the connector's auth mode. Nothing
//! is cached: a rotated or deleted credential takes effect on the next attempt, in every
//! process.

use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_audit::Actor;
use switchyard_connectors::credentials;
use switchyard_connectors::manifest::AuthMode;
use switchyard_connectors::store::ConnectionStore;
use switchyard_core::{ConnectionId, TenantId};
use switchyard_http::{CallScope, Credential, CredentialError, CredentialSource};
use switchyard_vault::{AuditContext, AuditedVault, SecretRef};

use super::catalogue::Catalogue;

/// The vault secret a connection's credential is stored under.
pub fn secret_name(connection: &ConnectionId) -> String {
    format!("connection:{connection}")
}

fn audit_context() -> AuditContext {
    AuditContext::new(Actor::Internal {
        component: "provider.call".to_owned(),
        run_id: None,
    })
}

/// Resolves `secret` and places it as `mode` says.
async fn resolve(
    vault: &AuditedVault,
    secret: &SecretRef,
    mode: &AuthMode,
) -> Result<Credential, CredentialError> {
    let plaintext = vault
        .resolve(&audit_context(), secret)
        .await
        .map_err(|e| CredentialError(format!("vault: {}", e.code())))?;
    let fields: Map<String, Value> = plaintext
        .expose_str()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(|| CredentialError("the stored credential is not a JSON object".to_owned()))?;
    credentials::credential(mode, &fields).map_err(|e| CredentialError(e.to_string()))
}

/// Every connection's credential, read from its row and the vault per attempt.
#[derive(Clone)]
pub struct ConnectionCredentials {
    pub connections: ConnectionStore,
    pub vault: AuditedVault,
    pub catalogue: Catalogue,
}

impl CredentialSource for ConnectionCredentials {
    async fn credential(&self, scope: &CallScope) -> Result<Option<Credential>, CredentialError> {
        let Some(connection) = &scope.connection else {
            return Ok(None);
        };
        let tenant: TenantId = scope
            .tenant
            .parse()
            .map_err(|_| CredentialError("not a tenant id".into()))?;
        let id: ConnectionId = connection
            .parse()
            .map_err(|_| CredentialError("not a connection id".into()))?;
        let row = self
            .connections
            .get(&tenant, &id)
            .await
            .map_err(|e| CredentialError(format!("connection store: {}", e.code())))?
            .ok_or_else(|| CredentialError("the connection is gone".into()))?;
        let Some(reference) = row.credential else {
            return Ok(None);
        };
        let mode = self
            .catalogue
            .auth_mode(&row.provider, &reference.mode)
            .ok_or_else(|| {
                CredentialError(format!(
                    "connector `{}` has no auth mode `{}`",
                    row.provider, reference.mode
                ))
            })?;
        // The secret is always the row's tenant's: the reference carries no tenant of its own.
        let secret = SecretRef::new(tenant.to_string(), reference.name, reference.version);
        resolve(&self.vault, &secret, &mode).await.map(Some)
    }
}

/// One given secret version, for the check of a rotated credential before it is confirmed.
pub struct ProbeCredentials {
    pub vault: AuditedVault,
    pub secret: SecretRef,
    pub mode: Arc<AuthMode>,
}

impl CredentialSource for ProbeCredentials {
    async fn credential(&self, scope: &CallScope) -> Result<Option<Credential>, CredentialError> {
        if self.secret.tenant != scope.tenant {
            return Err(CredentialError(
                "the secret belongs to another tenant".to_owned(),
            ));
        }
        resolve(&self.vault, &self.secret, &self.mode)
            .await
            .map(Some)
    }
}
