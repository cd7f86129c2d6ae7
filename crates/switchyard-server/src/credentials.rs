//! Bearer credential material: generating API keys and admin tokens, and hashing them.
//!
//! Only SHA-256 hashes are stored. The credentials carry 256 random bits, so a slow password
//! hash would add latency to every request without adding protection.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Every tenant API key starts with this, which also tells it apart from the admin token.
pub const API_KEY_PREFIX: &str = "sy_";
/// Generated admin tokens start with this.
pub const ADMIN_TOKEN_PREFIX: &str = "sya_";
/// How much of a key is kept in clear for people to tell keys apart (`sy_` + 6 characters).
const DISPLAY_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 6;

/// A freshly generated API key: the secret, shown once, and what is stored about it.
pub struct GeneratedApiKey {
    pub key: SecretString,
    pub hash: String,
    pub display_prefix: String,
}

/// A new tenant API key with 256 bits of randomness.
pub fn generate_api_key() -> GeneratedApiKey {
    let key = format!("{API_KEY_PREFIX}{}", random_token_body());
    let hash = hash_credential(&key);
    let display_prefix = key[..DISPLAY_PREFIX_LEN].to_owned();
    GeneratedApiKey {
        key: SecretString::from(key),
        hash,
        display_prefix,
    }
}

/// A new platform admin token with 256 bits of randomness.
pub fn generate_admin_token() -> SecretString {
    SecretString::from(format!("{ADMIN_TOKEN_PREFIX}{}", random_token_body()))
}

/// Hex SHA-256 of a credential, as stored.
pub fn hash_credential(credential: &str) -> String {
    hex::encode(Sha256::digest(credential.as_bytes()))
}

/// Hex SHA-256 of a secret credential.
pub fn hash_secret(credential: &SecretString) -> String {
    hash_credential(credential.expose_secret())
}

fn random_token_body() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_long_random_and_hashed() {
        let first = generate_api_key();
        let second = generate_api_key();
        let text = first.key.expose_secret();
        assert!(text.starts_with(API_KEY_PREFIX));
        // 32 bytes in unpadded base64 are 43 characters.
        assert_eq!(text.len(), API_KEY_PREFIX.len() + 43);
        assert_ne!(text, second.key.expose_secret());
        assert_eq!(first.hash, hash_credential(text));
        assert!(text.starts_with(&first.display_prefix));
        assert!(!first.hash.contains(&text[API_KEY_PREFIX.len()..]));
    }
}
