//! A connection's credential held in memory instead of the vault, as a call-stack
//! [`CredentialSource`]: engine-level tests and tools place credentials exactly as the
//! server does, minted tokens included.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_http::{CallScope, Credential, CredentialError, CredentialSource};
use url::Url;

use super::broker::{Placement, SecretIdentity, TokenBroker, connection_base_url};
use super::{TokenError, check_fields};
use crate::connector::ConnectionContext;
use crate::manifest::{AuthMode, Manifest};

pub struct HeldCredential {
    broker: Arc<TokenBroker>,
    mode: AuthMode,
    fields: Map<String, Value>,
    config: Value,
    base_url: Url,
    headers: BTreeMap<String, String>,
    secret: SecretIdentity,
}

impl std::fmt::Debug for HeldCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "HeldCredential({}, v{})",
            self.mode.kind(),
            self.secret.version
        )
    }
}

impl HeldCredential {
    /// `fields` for `manifest`'s auth mode `kind` (or its only one), used by `connection`;
    /// checked as the server checks a credential before storing it. Version 1.
    pub fn new(
        broker: Arc<TokenBroker>,
        manifest: &Manifest,
        kind: Option<&str>,
        connection: &ConnectionContext,
        fields: Map<String, Value>,
    ) -> Result<Self, TokenError> {
        let mode = manifest
            .auth_mode(kind)
            .ok_or_else(|| TokenError::NoMode(kind.unwrap_or("(the only one)").to_owned()))?
            .clone();
        check_fields(&mode, &fields)?;
        Ok(Self {
            broker,
            base_url: connection_base_url(
                &manifest.base_url,
                connection.base_url.as_deref(),
                &connection.config,
            )?,
            mode,
            fields,
            config: connection.config.clone(),
            headers: manifest.headers.clone(),
            secret: SecretIdentity {
                tenant: connection.tenant.to_string(),
                secret: format!("connection:{}", connection.connection),
                version: 1,
            },
        })
    }

    /// The same credential as another version of its secret (a rotation).
    pub fn with_version(mut self, version: u32) -> Self {
        self.secret.version = version;
        self
    }
}

impl CredentialSource for HeldCredential {
    async fn credential(&self, _: &CallScope) -> Result<Option<Credential>, CredentialError> {
        let placement = Placement {
            mode: &self.mode,
            fields: &self.fields,
            config: &self.config,
            base_url: &self.base_url,
            headers: &self.headers,
            secret: &self.secret,
        };
        self.broker
            .credential(&placement)
            .await
            .map(Some)
            .map_err(CredentialError::from)
    }

    async fn granted_scopes(&self, _: &CallScope) -> Option<Vec<String>> {
        self.broker.granted(&self.secret)
    }
}
