//! The types callers hold: a [`Secret`] plaintext (zeroized on drop, never printed), a
//! [`SecretRef`] naming one version, and a [`Fingerprint`] identifying a value without
//! revealing it.

use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A resolved secret. The bytes are wiped when it is dropped; `Debug` and `Display` print
/// `[REDACTED]` so it cannot leak through logs or error messages by accident.
#[derive(Clone)]
pub struct Secret {
    bytes: Zeroizing<Vec<u8>>,
}

impl Secret {
    /// Takes ownership of `bytes`; they are wiped when the `Secret` is dropped.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// The plaintext bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }

    /// The plaintext as UTF-8, or `None` when it is binary.
    pub fn expose_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Length in bytes (not secret: ciphertexts reveal it too).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Secret {
    fn from(value: Vec<u8>) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value.into_bytes())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Names one version of one tenant's secret. This, never the plaintext, is what connections,
/// sources and endpoints store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SecretRef {
    pub tenant: String,
    pub name: String,
    pub version: u32,
}

impl SecretRef {
    pub fn new(tenant: impl Into<String>, name: impl Into<String>, version: u32) -> Self {
        Self {
            tenant: tenant.into(),
            name: name.into(),
            version,
        }
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@v{}", self.tenant, self.name, self.version)
    }
}

/// Keyed HMAC-SHA256 of a plaintext under the tenant's fingerprint key, truncated to 16 hex
/// characters: equal values give equal fingerprints within a tenant, and nothing can be
/// learned about the value (or matched across tenants) without the key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub(crate) fn from_hex(hex: String) -> Self {
        Fingerprint(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a secret version stands in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionState {
    /// The version new callers should use.
    Current,
    /// The version before an unconfirmed rotation; still readable until `confirm`.
    Previous,
    /// Destroyed: its ciphertext is gone.
    Destroyed,
}

impl VersionState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            VersionState::Current => "current",
            VersionState::Previous => "previous",
            VersionState::Destroyed => "destroyed",
        }
    }

    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "current" => Some(VersionState::Current),
            "previous" => Some(VersionState::Previous),
            "destroyed" => Some(VersionState::Destroyed),
            _ => None,
        }
    }
}

/// What `put`/`rotate` return: the reference to hold and the fingerprint to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub reference: SecretRef,
    pub fingerprint: Fingerprint,
    /// The version this one replaces, readable until [`crate::Vault::confirm`].
    pub replaces: Option<u32>,
}

/// Metadata of one secret version (no plaintext, no ciphertext).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretVersionInfo {
    pub reference: SecretRef,
    pub state: VersionState,
    pub fingerprint: Fingerprint,
    pub dek_version: u32,
    pub created_at: time::OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = Secret::from("hunter2-very-secret");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{:#?}", Some(&secret)), "Some(\n    [REDACTED],\n)");
        assert_eq!(secret.expose_str(), Some("hunter2-very-secret"));
    }
}
