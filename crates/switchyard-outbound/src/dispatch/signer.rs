//! Signing material and custom header values per endpoint, resolved from the vault and kept
//! briefly.
//!
//! Resolving on every attempt would put a vault read and an audit entry behind each delivery;
//! the cache keys on the versions the endpoint row names (so a rotation or a header change is
//! seen at the next claim) and expires after a few minutes (so a destroyed version is not used
//! for long).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use switchyard_vault::{AuditContext, AuditedVault, SecretRef};
use switchyard_webhooks::standard_webhooks::{
    SigningKey, SigningSecret, sign, sign_v1a, signature_header,
};
use time::OffsetDateTime;

use crate::endpoints::{EndpointRecord, decode_headers, headers_secret_name};
use crate::error::{OutboundError, Result};

/// Which vault versions a signer was built from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Versions {
    secret: u32,
    previous_secret: Option<u32>,
    key: Option<u32>,
    previous_key: Option<u32>,
    headers: Option<u32>,
}

impl Versions {
    fn of(record: &EndpointRecord, now: OffsetDateTime) -> Self {
        let keys = &record.keys;
        let in_grace = keys.previous_expires_at.is_some_and(|until| until > now);
        Self {
            secret: keys.secret_version,
            previous_secret: keys.previous_secret_version.filter(|_| in_grace),
            key: keys.signing_key_version,
            previous_key: keys.previous_signing_key_version.filter(|_| in_grace),
            headers: keys.headers_version,
        }
    }
}

/// The secrets and keys one endpoint's deliveries are signed with, newest first, and the
/// custom headers they carry.
pub(crate) struct Signer {
    versions: Versions,
    secrets: Vec<SigningSecret>,
    keys: Vec<SigningKey>,
    /// Values marked sensitive, so the HTTP stack never prints them.
    pub headers: HeaderMap,
    loaded_at: Instant,
}

impl Signer {
    /// The `webhook-signature` value: every `v1` then every `v1a` signature, space-separated.
    pub fn header(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let v1 = self
            .secrets
            .iter()
            .map(|secret| sign(msg_id, timestamp, body, secret));
        let v1a = self
            .keys
            .iter()
            .map(|key| sign_v1a(msg_id, timestamp, body, key));
        signature_header(v1.chain(v1a))
    }
}

pub(crate) struct Signers {
    vault: AuditedVault,
    context: AuditContext,
    ttl: Duration,
    cache: Mutex<HashMap<String, Arc<Signer>>>,
}

impl Signers {
    pub fn new(vault: AuditedVault, context: AuditContext, ttl: Duration) -> Self {
        Self {
            vault,
            context,
            ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub async fn get(&self, record: &EndpointRecord, now: OffsetDateTime) -> Result<Arc<Signer>> {
        let id = record.endpoint.id.to_string();
        let versions = Versions::of(record, now);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned();
        if let Some(signer) = cached
            && signer.versions == versions
            && signer.loaded_at.elapsed() < self.ttl
        {
            return Ok(signer);
        }
        let signer = Arc::new(self.load(record, versions).await?);
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, Arc::clone(&signer));
        Ok(signer)
    }

    async fn resolve(&self, tenant: &str, name: &str, version: u32) -> Result<String> {
        let reference = SecretRef::new(tenant, name, version);
        let secret = self.vault.resolve(&self.context, &reference).await?;
        secret.expose_str().map(str::to_owned).ok_or_else(|| {
            OutboundError::corrupt("vault_secrets", "an endpoint secret is not text")
        })
    }

    async fn load(&self, record: &EndpointRecord, versions: Versions) -> Result<Signer> {
        let tenant = record.endpoint.tenant.to_string();
        let keys = &record.keys;
        let mut secrets = Vec::new();
        for version in std::iter::once(versions.secret).chain(versions.previous_secret) {
            let text = self.resolve(&tenant, &keys.secret_name, version).await?;
            secrets.push(SigningSecret::parse(&text)?);
        }
        let mut signing_keys = Vec::new();
        if let Some(name) = &keys.signing_key_name {
            for version in versions.key.into_iter().chain(versions.previous_key) {
                let text = self.resolve(&tenant, name, version).await?;
                signing_keys.push(SigningKey::parse(&text)?);
            }
        }
        let headers = match versions.headers {
            Some(version) => {
                let name = headers_secret_name(record.endpoint.id);
                decode_headers(&self.resolve(&tenant, &name, version).await?)?
            }
            None => HeaderMap::new(),
        };
        Ok(Signer {
            versions,
            secrets,
            keys: signing_keys,
            headers,
            loaded_at: Instant::now(),
        })
    }

    /// Forgets endpoints not seen for a while (bounded memory with many endpoints).
    pub fn prune(&self) {
        let ttl = self.ttl;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, signer| signer.loaded_at.elapsed() < ttl);
    }
}
