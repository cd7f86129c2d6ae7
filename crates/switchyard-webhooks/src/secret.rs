//! Secrets as the caller hands them in: bytes that are never printed.

use secrecy::{ExposeSecret, SecretSlice, SecretString};

/// One configured secret (an HMAC key, a shared token, `user:password`, a `whpk_` public key…).
/// Several may be configured at once: the current one and the previous ones still in their
/// rotation grace period.
pub struct Secret(SecretSlice<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(SecretSlice::from(bytes.into()))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.expose_secret()
    }

    /// The secret as text, when it is UTF-8 (prefixed formats like `whsec_` need this).
    pub(crate) fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl From<SecretString> for Secret {
    fn from(value: SecretString) -> Self {
        Self::new(value.expose_secret().as_bytes().to_vec())
    }
}

impl From<&SecretString> for Secret {
    fn from(value: &SecretString) -> Self {
        Self::new(value.expose_secret().as_bytes().to_vec())
    }
}

impl From<SecretSlice<u8>> for Secret {
    fn from(value: SecretSlice<u8>) -> Self {
        Self(value)
    }
}

impl From<&[u8]> for Secret {
    fn from(value: &[u8]) -> Self {
        Self::new(value.to_vec())
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.as_bytes().to_vec())
    }
}
