//! A KEK supplied as configuration: base64 of 32 bytes (e.g. `SWITCHYARD_VAULT_KEY`).

use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::LocalKek;
use crate::{
    crypto::KeyBytes,
    error::{Result, VaultError},
};

/// Constructors for a [`LocalKek`] supplied through the environment.
#[derive(Debug)]
pub struct EnvKek;

impl EnvKek {
    /// Decodes base64 (standard alphabet, padding optional) of exactly 32 bytes.
    pub fn from_base64(value: &SecretString) -> Result<LocalKek> {
        let trimmed = value.expose_secret().trim();
        let decoded = Zeroizing::new(
            STANDARD
                .decode(trimmed)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(trimmed))
                .map_err(|_| VaultError::EnvKeyInvalid {
                    reason: "not base64",
                })?,
        );
        let key = KeyBytes::from_slice(&decoded).ok_or(VaultError::EnvKeyInvalid {
            reason: "must decode to exactly 32 bytes",
        })?;
        Ok(LocalKek::new("env", &key))
    }

    /// Reads the named environment variable and decodes it as [`EnvKek::from_base64`].
    pub fn from_env_var(name: &str) -> Result<LocalKek> {
        let value = std::env::var(name).map_err(|_| VaultError::EnvKeyInvalid {
            reason: "environment variable is not set or not UTF-8",
        })?;
        Self::from_base64(&SecretString::from(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kek::KeyEncryptionKey;

    #[test]
    fn decodes_and_rejects() {
        let good = SecretString::from(STANDARD.encode([3_u8; 32]));
        let kek = EnvKek::from_base64(&good).unwrap();
        assert!(kek.kek_id().starts_with("env:"));
        for bad in ["", "***", &STANDARD.encode([3_u8; 31])] {
            let error = EnvKek::from_base64(&SecretString::from(bad.to_owned())).unwrap_err();
            assert!(matches!(error, VaultError::EnvKeyInvalid { .. }));
        }
        assert!(EnvKek::from_env_var("SWITCHYARD_TEST_SURELY_UNSET_VAR").is_err());
    }
}
