//! Tenants' OAuth client registrations: one per tenant and provider. The client id, scopes
//! and redirect URI are in the store; the client secret or private key is in the vault
//! (`oauth-client:{id}`), and the row holds only its reference and fingerprint.

use secrecy::{ExposeSecret as _, SecretString};
use serde_json::{Map, Value, json};
use switchyard_connectors::credentials::oauth::ClientRegistration;
use switchyard_connectors::manifest::{AuthMode, OAuth2Spec, OAuthGrant, TokenAuthMethod};
use switchyard_connectors::store::{
    NewOAuthClient, OAuthClient, OAuthClientStore, OAuthClientUpdate, SecretReference,
};
use switchyard_core::{ErrorCode, OAuthClientId, TenantId};
use switchyard_vault::{AuditContext, AuditedVault, SecretRef, VaultError};

use crate::connectors::{Catalogue, store_error};
use crate::error::ApiError;

/// The vault secret of a registration.
fn secret_name(id: &OAuthClientId) -> String {
    format!("oauth-client:{id}")
}

/// What proves the client to the token endpoint; write-only.
#[derive(Default)]
pub struct ClientSecrets {
    pub client_secret: Option<SecretString>,
    pub private_key: Option<SecretString>,
    pub key_id: Option<String>,
}

impl ClientSecrets {
    fn is_empty(&self) -> bool {
        self.client_secret.is_none() && self.private_key.is_none()
    }

    fn to_json(&self) -> Vec<u8> {
        let mut fields = Map::new();
        if let Some(secret) = &self.client_secret {
            fields.insert("client_secret".into(), json!(secret.expose_secret()));
        }
        if let Some(key) = &self.private_key {
            fields.insert("private_key".into(), json!(key.expose_secret()));
        }
        if let Some(key_id) = &self.key_id {
            fields.insert("key_id".into(), json!(key_id));
        }
        Value::Object(fields).to_string().into_bytes()
    }
}

/// A registration to create.
pub struct NewRegistration {
    pub provider: String,
    pub client_id: String,
    pub secrets: ClientSecrets,
    pub scopes: Option<Vec<String>>,
    pub redirect_uri: Option<String>,
}

/// Changes to a registration; `None` keeps a field.
#[derive(Default)]
pub struct RegistrationUpdate {
    pub client_id: Option<String>,
    /// New secrets replace the stored ones (a new vault version).
    pub secrets: Option<ClientSecrets>,
    pub scopes: Option<Vec<String>>,
    pub redirect_uri: Option<Option<String>>,
}

/// Registrations and their secrets.
#[derive(Clone)]
pub struct OAuthClients {
    pub store: OAuthClientStore,
    vault: AuditedVault,
    catalogue: Catalogue,
}

impl OAuthClients {
    pub fn new(store: OAuthClientStore, vault: AuditedVault, catalogue: Catalogue) -> Self {
        Self {
            store,
            vault,
            catalogue,
        }
    }

    /// The provider's authorization-code mode: registrations exist only for those.
    pub fn code_flow(&self, provider: &str) -> Result<OAuth2Spec, ApiError> {
        let manifest = self
            .catalogue
            .registry()
            .manifest(provider)
            .ok_or_else(|| ApiError::not_found(format_args!("provider `{provider}`")))?;
        manifest
            .auth
            .iter()
            .find_map(|mode| match mode {
                AuthMode::OAuth2(spec) if spec.grant == OAuthGrant::AuthorizationCode => {
                    Some(spec.clone())
                }
                _ => None,
            })
            .ok_or_else(|| {
                ApiError::new(ErrorCode::UnsupportedOperation).with_detail(format!(
                    "`{provider}` has no OAuth authorization-code auth mode"
                ))
            })
    }

    fn check_secrets(spec: &OAuth2Spec, secrets: &ClientSecrets) -> Result<(), ApiError> {
        let invalid = |detail: &str| {
            Err(ApiError::new(ErrorCode::ValidationFailed).with_detail(detail.to_owned()))
        };
        match spec.token_auth_method {
            TokenAuthMethod::PrivateKeyJwt if secrets.private_key.is_none() => {
                invalid("`private_key`: the provider authenticates clients with private_key_jwt")
            }
            TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretPost
                if secrets.client_secret.is_none() =>
            {
                invalid("`client_secret` is required")
            }
            _ => Ok(()),
        }
    }

    async fn store_secrets(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: &OAuthClientId,
        secrets: &ClientSecrets,
        rotate: bool,
    ) -> Result<SecretReference, ApiError> {
        let name = secret_name(id);
        let plaintext = secrets.to_json();
        let stored = if rotate {
            self.vault.rotate(context, tenant, &name, &plaintext).await
        } else {
            self.vault.put(context, tenant, &name, &plaintext).await
        }
        .map_err(vault_error)?;
        Ok(SecretReference {
            name: stored.reference.name,
            version: stored.reference.version,
            fingerprint: stored.fingerprint.to_string(),
        })
    }

    pub async fn create(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        new: NewRegistration,
    ) -> Result<OAuthClient, ApiError> {
        let spec = self.code_flow(&new.provider)?;
        Self::check_secrets(&spec, &new.secrets)?;
        let id = OAuthClientId::generate();
        let secret = if new.secrets.is_empty() {
            None
        } else {
            Some(
                self.store_secrets(context, tenant, &id, &new.secrets, false)
                    .await?,
            )
        };
        let created = self
            .store
            .create(NewOAuthClient {
                tenant_id: tenant,
                id,
                provider: new.provider,
                client_id: new.client_id,
                secret: secret.clone(),
                scopes: new.scopes.unwrap_or(spec.scopes),
                redirect_uri: new.redirect_uri,
            })
            .await;
        match created {
            Ok(client) => Ok(client),
            Err(error) => {
                if secret.is_some()
                    && let Err(cleanup) =
                        self.vault.delete(context, tenant, &secret_name(&id)).await
                {
                    tracing::error!(error = %cleanup, client = %id, "could not destroy the secret of a registration that was not created");
                }
                Err(store_error(error))
            }
        }
    }

    pub async fn get(&self, tenant: TenantId, id: OAuthClientId) -> Result<OAuthClient, ApiError> {
        self.store
            .get(&tenant, &id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("OAuth client `{id}`")))
    }

    pub async fn update(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: OAuthClientId,
        update: RegistrationUpdate,
    ) -> Result<OAuthClient, ApiError> {
        let current = self.get(tenant, id).await?;
        let secret = match &update.secrets {
            Some(secrets) => {
                let spec = self.code_flow(&current.provider)?;
                Self::check_secrets(&spec, secrets)?;
                Some(Some(
                    self.store_secrets(context, tenant, &id, secrets, current.secret.is_some())
                        .await?,
                ))
            }
            None => None,
        };
        let updated = self
            .store
            .update(
                &tenant,
                &id,
                OAuthClientUpdate {
                    client_id: update.client_id,
                    secret: secret.clone(),
                    scopes: update.scopes,
                    redirect_uri: update.redirect_uri,
                },
            )
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("OAuth client `{id}`")))?;
        // The row points at the new version: only now may the old one go.
        if let (Some(Some(new)), Some(_)) = (&secret, &current.secret) {
            let reference = SecretRef::new(tenant.to_string(), new.name.clone(), new.version);
            self.vault
                .confirm(context, &reference)
                .await
                .map_err(vault_error)?;
        }
        Ok(updated)
    }

    pub async fn delete(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        id: OAuthClientId,
    ) -> Result<(), ApiError> {
        let deleted = self
            .store
            .delete(&tenant, &id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(format_args!("OAuth client `{id}`")))?;
        if deleted.secret.is_some() {
            match self.vault.delete(context, tenant, &secret_name(&id)).await {
                Ok(_) | Err(VaultError::SecretNotFound { .. }) => {}
                Err(error) => return Err(vault_error(error)),
            }
        }
        Ok(())
    }

    /// The tenant's registration for `provider` with its secrets, as the token endpoint
    /// needs them; `None` when the tenant registered no client for it.
    pub async fn registration(
        &self,
        context: &AuditContext,
        tenant: TenantId,
        provider: &str,
    ) -> Result<Option<(OAuthClient, ClientRegistration)>, RegistrationError> {
        let Some(client) = self
            .store
            .for_provider(&tenant, provider)
            .await
            .map_err(|e| RegistrationError::Store(e.code()))?
        else {
            return Ok(None);
        };
        let mut registration = ClientRegistration {
            client_id: client.client_id.clone(),
            client_secret: None,
            private_key: None,
            key_id: None,
        };
        if let Some(reference) = &client.secret {
            let secret = self
                .vault
                .resolve(
                    context,
                    &SecretRef::new(
                        tenant.to_string(),
                        reference.name.clone(),
                        reference.version,
                    ),
                )
                .await
                .map_err(|e| RegistrationError::Vault(e.code()))?;
            let fields: Map<String, Value> = secret
                .expose_str()
                .and_then(|text| serde_json::from_str(text).ok())
                .ok_or(RegistrationError::Corrupt)?;
            let text = |name: &str| fields.get(name).and_then(Value::as_str).map(str::to_owned);
            registration.client_secret = text("client_secret").map(SecretString::from);
            registration.private_key = text("private_key").map(SecretString::from);
            registration.key_id = text("key_id");
        }
        Ok(Some((client, registration)))
    }
}

/// Why a registration could not be read (codes only).
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("the OAuth client store failed: {0}")]
    Store(&'static str),
    #[error("the vault failed: {0}")]
    Vault(&'static str),
    #[error("the OAuth client's stored secret is not a JSON object")]
    Corrupt,
}

fn vault_error(error: VaultError) -> ApiError {
    match error {
        VaultError::RotationPending { .. } => ApiError::new(ErrorCode::Conflict)
            .with_detail("another change of this client's secret is in progress"),
        other => ApiError::internal(other),
    }
}
