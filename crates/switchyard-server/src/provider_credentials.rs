//! Provider credentials from the vault, injected by the provider stack at call time.
//!
//! A connection is bound to a [`SecretRef`] and to where the secret goes on the request
//! ([`Placement`]). Each attempt resolves the secret through the audited vault (one
//! `secret.resolve` audit entry per attempt, actor `provider.call`) and builds the
//! [`Credential`] the stack applies to that one request; the plaintext lives only for the call.
//! Bindings hold references, never values.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use reqwest::header::HeaderName;
use secrecy::SecretString;
use switchyard_audit::Actor;
use switchyard_http::{CallScope, Credential, CredentialError, CredentialSource};
use switchyard_vault::{AuditContext, AuditedVault, SecretRef};

/// Where a secret goes on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// `Authorization: Bearer {secret}`.
    Bearer,
    /// `Authorization: Basic base64({username}:{secret})`.
    Basic { username: String },
    /// `{name}: {prefix}{secret}` (`X-Api-Key`, Okta's `Authorization: SSWS …`).
    Header { name: HeaderName, prefix: String },
    /// `?{name}={secret}` (providers that only take keys in the query).
    Query { name: String },
}

/// A connection's credential: which secret, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialBinding {
    pub secret: SecretRef,
    pub placement: Placement,
}

/// Resolves bound connections' secrets from the vault for each attempt.
#[derive(Debug)]
pub struct VaultCredentials {
    vault: AuditedVault,
    bindings: RwLock<HashMap<(String, String), CredentialBinding>>,
}

impl VaultCredentials {
    pub fn new(vault: AuditedVault) -> Self {
        Self {
            vault,
            bindings: RwLock::new(HashMap::new()),
        }
    }

    /// Binds `connection` of `tenant` to a secret. The secret must be the tenant's own.
    ///
    /// # Errors
    /// [`CredentialError`] when the secret belongs to another tenant.
    pub fn bind(
        &self,
        tenant: &str,
        connection: &str,
        binding: CredentialBinding,
    ) -> Result<(), CredentialError> {
        if binding.secret.tenant != tenant {
            return Err(CredentialError::unavailable(
                "the secret belongs to another tenant",
            ));
        }
        self.bindings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((tenant.to_owned(), connection.to_owned()), binding);
        Ok(())
    }

    pub fn unbind(&self, tenant: &str, connection: &str) {
        self.bindings
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&(tenant.to_owned(), connection.to_owned()));
    }

    fn binding(&self, scope: &CallScope) -> Option<CredentialBinding> {
        let connection = scope.connection.as_ref()?;
        self.bindings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(scope.tenant.clone(), connection.clone()))
            .cloned()
    }
}

impl CredentialSource for VaultCredentials {
    async fn credential(&self, scope: &CallScope) -> Result<Option<Credential>, CredentialError> {
        let Some(binding) = self.binding(scope) else {
            return Ok(None);
        };
        // Bindings are checked on bind; checked again so no path can lend one tenant's
        // secret to another's call.
        if binding.secret.tenant != scope.tenant {
            return Err(CredentialError::unavailable(
                "the secret belongs to another tenant",
            ));
        }
        let context = AuditContext::new(Actor::Internal {
            component: "provider.call".to_owned(),
            run_id: None,
        });
        let secret = self
            .vault
            .resolve(&context, &binding.secret)
            .await
            .map_err(|e| CredentialError::unavailable(format!("vault: {}", e.code())))?;
        let value = secret
            .expose_str()
            .ok_or_else(|| CredentialError::unavailable("the secret is not UTF-8 text"))?;
        let value = SecretString::from(value.to_owned());
        Ok(Some(match binding.placement {
            Placement::Bearer => Credential::Bearer(value),
            Placement::Basic { username } => Credential::Basic {
                username,
                password: value,
            },
            Placement::Header { name, prefix } => Credential::Header {
                name,
                prefix,
                value,
            },
            Placement::Query { name } => Credential::Query { name, value },
        }))
    }
}
