//! Connection credentials from the vault, placed by the provider stack on every attempt.
//!
//! The connection row names its vault secret and auth mode ([`CredentialRef`]); each attempt
//! reads the row, resolves the secret through the audited vault (one `secret.resolve` entry,
//! actor `provider.call`) and has the process's [`TokenBroker`] place it as the connector's
//! auth mode says. Stored values are never cached: a rotated or deleted credential takes
//! effect on the next attempt, in every process. Tokens minted from them (GitHub App
//! installation tokens, OAuth client-credentials tokens) are cached in this process's
//! memory only, under the secret's version, so a rotation mints anew.
//!
//! [`CredentialRef`]: switchyard_connectors::store::CredentialRef

use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_audit::Actor;
use switchyard_connectors::credentials::{
    Placement, SecretIdentity, TokenBroker, connection_base_url,
};
use switchyard_connectors::manifest::AuthMode;
use switchyard_connectors::store::{Connection, ConnectionStore};
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

/// Every connection's credential, read from its row and the vault per attempt.
#[derive(Clone)]
pub struct ConnectionCredentials {
    pub connections: ConnectionStore,
    pub vault: AuditedVault,
    pub catalogue: Catalogue,
    /// Places credentials and holds minted tokens; one per process.
    pub broker: Arc<TokenBroker>,
    /// Refreshes OAuth access tokens that are due before they are placed.
    pub refresher: Arc<crate::oauth::refresh::Refresher>,
}

/// Why a stored credential could not be read for a call.
enum ReadError {
    /// The version the row named was destroyed: a refresh elsewhere moved the row on
    /// between our read of it and of the vault. Read the row again.
    Superseded,
    Failed(CredentialError),
}

impl ConnectionCredentials {
    /// The same placement with one given secret version: the check of a rotated credential
    /// before it is confirmed.
    pub fn probe(&self, secret: SecretRef, mode: AuthMode) -> ProbeCredentials {
        ProbeCredentials {
            base: self.clone(),
            secret,
            mode: Arc::new(mode),
        }
    }

    /// The connection the call is for, in the scope's tenant.
    async fn connection(
        &self,
        scope: &CallScope,
    ) -> Result<Option<(TenantId, Connection)>, CredentialError> {
        let Some(connection) = &scope.connection else {
            return Ok(None);
        };
        let tenant: TenantId = scope
            .tenant
            .parse()
            .map_err(|_| CredentialError::unavailable("not a tenant id"))?;
        let id: ConnectionId = connection
            .parse()
            .map_err(|_| CredentialError::unavailable("not a connection id"))?;
        let row = self
            .connections
            .get(&tenant, &id)
            .await
            .map_err(|e| CredentialError::unavailable(format!("connection store: {}", e.code())))?
            .ok_or_else(|| CredentialError::unavailable("the connection is gone"))?;
        Ok(Some((tenant, row)))
    }

    /// Resolves `secret` and places it as `mode` says for `connection`. With `current` (the
    /// row's own reference, not a probe of a new version) a due OAuth token is refreshed first.
    async fn place(
        &self,
        connection: &Connection,
        secret: &SecretRef,
        mode: &AuthMode,
        current: Option<&switchyard_connectors::store::CredentialRef>,
    ) -> Result<Credential, ReadError> {
        let manifest = self
            .catalogue
            .registry()
            .manifest(&connection.provider)
            .ok_or_else(|| {
                ReadError::Failed(CredentialError::unavailable(format!(
                    "connector `{}` takes no stored credentials",
                    connection.provider
                )))
            })?;
        let plaintext = match self.vault.resolve(&audit_context(), secret).await {
            Ok(plaintext) => plaintext,
            Err(switchyard_vault::VaultError::SecretNotFound { .. }) if current.is_some() => {
                return Err(ReadError::Superseded);
            }
            Err(e) => {
                return Err(ReadError::Failed(CredentialError::unavailable(format!(
                    "vault: {}",
                    e.code()
                ))));
            }
        };
        let mut fields: Map<String, Value> = plaintext
            .expose_str()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| {
                ReadError::Failed(CredentialError::unavailable(
                    "the stored credential is not a JSON object",
                ))
            })?;
        if let (Some(reference), AuthMode::OAuth2(spec)) = (current, mode)
            && spec.grant == switchyard_connectors::manifest::OAuthGrant::AuthorizationCode
        {
            fields = self
                .refresher
                .fresh_fields(connection, reference, fields)
                .await
                .map_err(|e| ReadError::Failed(e.into()))?;
        }
        let placed = async {
            let base_url = connection_base_url(
                &manifest.base_url,
                connection.base_url.as_deref(),
                &connection.config,
            )?;
            let identity = SecretIdentity {
                tenant: secret.tenant.clone(),
                secret: secret.name.clone(),
                version: secret.version,
            };
            self.broker
                .credential(&Placement {
                    mode,
                    fields: &fields,
                    config: &connection.config,
                    base_url: &base_url,
                    headers: &manifest.headers,
                    secret: &identity,
                })
                .await
        };
        placed.await.map_err(|error| {
            // The message names codes, fields and URLs only (see `TokenError`).
            tracing::warn!(
                connection = %connection.id,
                provider = %connection.provider,
                code = error.code(),
                %error,
                "the connection's credential could not be placed"
            );
            ReadError::Failed(CredentialError::from(error))
        })
    }
}

impl CredentialSource for ConnectionCredentials {
    async fn credential(&self, scope: &CallScope) -> Result<Option<Credential>, CredentialError> {
        // Twice at most: a credential refreshed by another process between our reads of its
        // row and of the vault is read again from the row.
        for _ in 0..2 {
            let Some((tenant, row)) = self.connection(scope).await? else {
                return Ok(None);
            };
            match self.current(tenant, &row).await {
                Err(ReadError::Superseded) => continue,
                Err(ReadError::Failed(error)) => return Err(error),
                Ok(credential) => return Ok(credential),
            }
        }
        Err(CredentialError::unavailable(
            "the credential kept changing while it was read",
        ))
    }

    /// Read from the broker's cache under the row's secret version: the check that asks
    /// has just placed (and so minted) that version's token.
    async fn granted_scopes(&self, scope: &CallScope) -> Option<Vec<String>> {
        let (tenant, row) = self.connection(scope).await.ok()??;
        let reference = row.credential?;
        self.broker.granted(&SecretIdentity {
            tenant: tenant.to_string(),
            secret: reference.name,
            version: reference.version,
        })
    }
}

impl ConnectionCredentials {
    /// The row's own credential, placed.
    async fn current(
        &self,
        tenant: switchyard_core::TenantId,
        row: &Connection,
    ) -> Result<Option<Credential>, ReadError> {
        let Some(reference) = &row.credential else {
            return Ok(None);
        };
        let mode = self
            .catalogue
            .auth_mode(&row.provider, &reference.mode)
            .ok_or_else(|| {
                ReadError::Failed(CredentialError::unavailable(format!(
                    "connector `{}` has no auth mode `{}`",
                    row.provider, reference.mode
                )))
            })?;
        // The secret is always the row's tenant's: the reference carries no tenant of its own.
        let secret = SecretRef::new(
            tenant.to_string(),
            reference.name.clone(),
            reference.version,
        );
        self.place(row, &secret, &mode, Some(reference))
            .await
            .map(Some)
    }
}

/// One given secret version, for the check of a rotated credential before it is confirmed.
pub struct ProbeCredentials {
    base: ConnectionCredentials,
    secret: SecretRef,
    mode: Arc<AuthMode>,
}

impl CredentialSource for ProbeCredentials {
    async fn credential(&self, scope: &CallScope) -> Result<Option<Credential>, CredentialError> {
        if self.secret.tenant != scope.tenant {
            return Err(CredentialError::unavailable(
                "the secret belongs to another tenant",
            ));
        }
        let (_, row) = self.base.connection(scope).await?.ok_or_else(|| {
            CredentialError::unavailable("a credential check names no connection")
        })?;
        match self.base.place(&row, &self.secret, &self.mode, None).await {
            Ok(credential) => Ok(Some(credential)),
            Err(ReadError::Failed(error)) => Err(error),
            Err(ReadError::Superseded) => Err(CredentialError::unavailable(
                "the credential being checked is gone",
            )),
        }
    }

    async fn granted_scopes(&self, scope: &CallScope) -> Option<Vec<String>> {
        (self.secret.tenant == scope.tenant).then_some(())?;
        self.base.broker.granted(&SecretIdentity {
            tenant: self.secret.tenant.clone(),
            secret: self.secret.name.clone(),
            version: self.secret.version,
        })
    }
}
